package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/input"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/account"
)

// The browser tests drive Debian's chromium (installed by .ci/install-deps
// test) against the portal on a real server and database.
const chromiumPath = "/usr/bin/chromium"

var portalShots = flag.String("portal.shots", "", "keep the browser tests' screenshots in this directory (default: a temporary one)")

// browserTest starts a headless chromium for the test, or skips the test
// when there is none.
func browserTest(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test skipped: %s not found (install it with .ci/install-deps test)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // tests run as root here
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// tab opens a tab in a browser context of its own (its own cookies: one
// person at one computer). Until the test ends it collects the page's
// uncaught exceptions and the browser's complaints about the content
// security policy, and fails the test if there were any.
func tab(bctx context.Context, t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	console := chromedp.Console(cctx)
	var problems []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
				problems = append(problems, string(m.Type)+": "+m.Text)
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		<-done
		for _, p := range problems {
			t.Errorf("browser console: %s", p)
		}
	})
	return ctx
}

// step runs browser steps, failing the test with where it stopped.
func step(ctx context.Context, t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 1500) : ""`))
		t.Fatalf("%s: %v\nat %s\n%s", what, err, loc, body)
	}
}

// follow clicks sel and waits for the page it loads.
func follow(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)))
		return err
	})
}

// fill sets form fields by CSS selector.
func fill(fields ...string) chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for i := 0; i+1 < len(fields); i += 2 {
		steps = append(steps, chromedp.SetValue(chromedp.CSS(fields[i]), fields[i+1], chromedp.NodeReady))
	}
	return chromedp.Steps(steps...)
}

// until waits for a JavaScript condition to hold.
func until(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
		return err
	})
}

// hasText is a condition: the element's text contains s.
func hasText(sel, s string) string {
	q, _ := json.Marshal(sel)
	v, _ := json.Marshal(s)
	return fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.textContent.includes(%s); })()`, q, v)
}

// monthSoFar is the current month up to today in the tenant's zone, as a
// bill-run period.
func monthSoFar(t *testing.T) string {
	today := time.Now().In(ist(t))
	return fmt.Sprintf("%s..%s", today.Format("2006-01")+"-01", today.Format(time.DateOnly))
}

// shot saves a full-page screenshot and returns its path.
func shot(ctx context.Context, t *testing.T, dir, name string) string {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name+".png")
	must(t, os.WriteFile(p, b, 0o644))
	return p
}

// TestPortalInBrowser walks the portal in chromium as its users do: a
// consumer registers, verifies the address with the token the email
// carries, logs in, adds a property (and is told plainly when the meter
// is taken), sees live usage refresh by itself and the usage chart drawn,
// drills into a day, raises a support query; support staff move it along
// and a billing official starts a bill run from the staff pages; the
// consumer sees the update in the query's timeline, downloads the bill's
// PDF, pays it with UPI through the sandbox checkout and lands on the
// receipt; the dashboard is checked at a phone's width. Screenshots are
// kept in -portal.shots.
func TestPortalInBrowser(t *testing.T) {
	bctx := browserTest(t)
	dir := *portalShots
	if dir == "" {
		dir = t.TempDir()
	}
	must(t, os.MkdirAll(dir, 0o755))
	ps := newPortalStack(t, portalOptions{cfg: api.PortalConfig{LivePoll: time.Second}, checkouts: true})
	s := ps.stack
	supportUser := s.staffUser("demo", "support@demo.example.com", account.RoleSupport, "")
	want(t, s.do("PUT", "/api/support/staff/me", supportUser.Token, map[string]any{"skills": []string{"meter", "billing", "other"}, "available": true}), 200, "")
	biller := s.staffUser("demo", "billing@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
	metering := s.staffUser("demo", "metering@demo.example.com", account.RoleOfficial, account.DepartmentMetering)
	r := s.do("POST", "/api/meters", metering.Token, map[string]any{"external_id": "brw-1", "serial": "BRW-0001", "model": "sdm120", "protocol": "mqtt"})
	want(t, r, 201, "")
	meterID := num(r.JSON(t)["meter"].(map[string]any)["id"])
	doc, err := os.ReadFile("../billing/billrun/testdata/tariff.json")
	must(t, err)
	doc = bytes.ReplaceAll(bytes.ReplaceAll(doc, []byte(`"test-discom"`), []byte(`"demo"`)), []byte(`"lt-domestic"`), []byte(`"domestic"`))
	want(t, s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"plan": "domestic", "document": json.RawMessage(doc)}), 201, "")
	// This utility takes part payments of at least 5 % of a bill.
	_, err = s.pool.Exec(t.Context(), `INSERT INTO billing_settings (tenant_id, service, minimum_payable_pct)
		SELECT id, 'electricity', 5 FROM tenants WHERE code = 'demo'
		ON CONFLICT (tenant_id, service) DO UPDATE SET minimum_payable_pct = EXCLUDED.minimum_payable_pct`)
	must(t, err)
	base := ps.base

	// The consumer registers, verifies and logs in.
	c := tab(bctx, t)
	email := "meera@example.com"
	step(c, t, "register", chromedp.Navigate(base+"/register"),
		fill("#f-name", "Meera Iyer", "#f-email", email, "#f-password", password, "#f-password2", password),
		follow("form[action='/register'] button[type=submit]"), until(hasText("h1", "Check your email")))
	step(c, t, "verify", chromedp.Navigate(base+"/verify?token="+ps.outboxToken(email)), until(hasText("h1", "Email address verified")),
		follow("a.btn[href='/login']"),
		fill("#f-email", email, "#f-password", password), follow("form[action='/login'] button[type=submit]"),
		until(hasText("h1", "Your electricity")))

	// A property with the meter; the same meter again is a clear refusal.
	property := []string{"#f-label", "Home", "#f-address-line1", "7 Temple Street", "#f-address-city", "Chennai", "#f-address-postal-code", "600004",
		"#f-connections-0--meter-number", "BRW-0001", "#f-connections-0--tariff-plan", "domestic", "#f-connections-0--sanctioned-load-kw", "5"}
	step(c, t, "add property", chromedp.Navigate(base+"/properties"), fill(property...), follow("form[action='/properties#add'] button[type=submit]"),
		until(hasText(".flash", "Property added.")), until(hasText("main table", "BRW-0001")))
	step(c, t, "duplicate property", fill(property...), follow("form[action='/properties#add'] button[type=submit]"),
		until(hasText("[data-problem=DuplicateProperty]", "Property already registered")), until(hasText("#f-connections-0--meter-number-err", "already registered")))
	shot(c, t, dir, "consumer-duplicate-property")

	// The meter has been reporting for a month (as the gateway stores it).
	ctx := t.Context()
	_, err = s.pool.Exec(ctx, `UPDATE meter_installations SET installed_at = now() - interval '40 days' WHERE meter_id = $1`, meterID)
	must(t, err)
	_, err = s.pool.Exec(ctx, `UPDATE connections SET connected_at = now() - interval '40 days' WHERE id = (SELECT connection_id FROM meter_installations WHERE meter_id = $1)`, meterID)
	must(t, err)
	start := time.Now().UTC().Add(-31 * 24 * time.Hour).Truncate(time.Hour)
	s.readings(meterID, start, int(time.Since(start)/(30*time.Minute)), 30*time.Minute, 1_000_000, 220)

	// Live usage refreshes by itself; the chart is drawn with a month of
	// days.
	step(c, t, "dashboard", chromedp.Navigate(base+"/"), until(hasText("#live", "Meter BRW-0001")), until(hasText("#live", "Online")))
	_, err = s.pool.Exec(ctx, `UPDATE meter_latest SET power_w = 2345, ts = now(), received_at = now(), last_seen = now() WHERE meter_id = $1`, meterID)
	must(t, err)
	step(c, t, "live refresh", until(hasText("#live [data-field=power]", "2.35 kW")))
	step(c, t, "chart", until(`(() => { const e = document.querySelector("#usage-chart"); return !!e && !!e._uplot && !!e.querySelector("canvas") && e._uplot.data[0].length >= 30; })()`))
	painted, err := chromedp.Run(c, chromedp.Evaluate[int](`(() => {
		const cv = document.querySelector("#usage-chart canvas");
		const px = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
		let n = 0;
		for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
		return n;
	})()`))
	must(t, err)
	if painted < 5000 {
		t.Fatalf("the chart canvas has %d painted pixels", painted)
	}
	shot(c, t, dir, "consumer-dashboard")

	// A day's bar opens its hours.
	step(c, t, "drill into a day", chromedp.ScrollIntoView(chromedp.CSS("#usage-chart")))
	box, err := chromedp.Run(c, chromedp.Evaluate[[]float64](`(() => { const r = document.querySelector("#usage-chart .u-over").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`))
	must(t, err)
	x, y := box[0]+box[2]*0.9, box[1]+box[3]*0.8
	step(c, t, "drill into a day", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.MouseClickXY(x, y)))
			return err
		}),
		until(`location.search.includes("granularity=hour")`), until(hasText("#usage-panel", "Back to days")),
		until(`(() => { const e = document.querySelector("#usage-chart"); return !!e && !!e._uplot && e._uplot.data[0].length === 24; })()`))
	shot(c, t, dir, "consumer-usage-hourly")

	// A support query: assigned at once to the available staff member.
	step(c, t, "raise a query", chromedp.Navigate(base+"/support"),
		chromedp.SetValue(chromedp.CSS("#f-category"), "meter"),
		fill("#f-subject", "Meter display", "#f-description", "The meter's display has gone blank since yesterday."),
		follow("form[action='/support'] button[type=submit]"), until(hasText(".flash", "raised and assigned to")))
	ticketURL, err := chromedp.Run(c, chromedp.Location())
	must(t, err)
	ticketID := ticketURL[strings.LastIndex(ticketURL, "/")+1:]

	// Staff: support moves the query along; a billing official starts a
	// bill run and follows it to the end.
	st := tab(bctx, t)
	step(st, t, "support logs in", chromedp.Navigate(base+"/login"), fill("#f-email", supportUser.Email, "#f-password", password),
		follow("form[action='/login'] button[type=submit]"), until(hasText("h1", "Staff")),
		follow("a[href='/staff/tickets']"), until(hasText("main table", "Meter display")),
		follow("a[href='/staff/tickets/"+ticketID+"']"),
		chromedp.SetValue(chromedp.CSS("#f-status"), "in_progress"),
		fill("#f-note", "An engineer visits tomorrow morning."),
		follow("#status-submit"), until(hasText(".flash", "is in progress")))
	shot(st, t, dir, "staff-ticket")
	step(st, t, "billing official starts a run", follow("nav form[action='/logout'] button"), until(hasText("h1", "Log in")),
		fill("#f-email", biller.Email, "#f-password", password), follow("form[action='/login'] button[type=submit]"),
		follow("a[href='/staff/billing']"), until(`document.querySelector("#f-period").placeholder.includes("..")`),
		fill("#f-period", monthSoFar(t)),
		follow("#start-run"), until(hasText("#run-status", "Completed")), until(hasText("#run-billed", "1")))
	shot(st, t, dir, "staff-bill-run")

	// The consumer sees the staff update in the timeline.
	step(c, t, "timeline", chromedp.Navigate(ticketURL), until(hasText("#ticket-status", "In progress")),
		until(hasText(".timeline", "to In progress")), until(hasText(".timeline", "An engineer visits tomorrow morning.")))

	// The bill: its PDF downloads; it is paid with UPI through the sandbox
	// checkout, and the consumer comes back to the receipt.
	downloads := t.TempDir()
	dctx, cancel := context.WithTimeout(c, 30*time.Second)
	defer cancel()
	progress := chromedp.BrowserEvents(dctx, browser.DownloadProgress)
	step(c, t, "bill", chromedp.Navigate(base+"/bills"), follow("main table a[href^='/bills/']"), until(hasText("h1", "Bill ")),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
				DownloadPath: downloads, EventsEnabled: new(true)})
			return err
		}),
		chromedp.Click(chromedp.CSS("#pdf"), chromedp.NodeVisible))
	for ev, err := range progress {
		must(t, err)
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the PDF download was cancelled")
		}
		if ev.State != browser.DownloadProgressStateCompleted {
			continue
		}
		pdf, err := os.ReadFile(filepath.Join(downloads, ev.GUID))
		must(t, err)
		if !bytes.HasPrefix(pdf, []byte("%PDF")) || len(pdf) < 1000 {
			t.Fatalf("the download is not a PDF (%d bytes)", len(pdf))
		}
		break
	}
	shot(c, t, dir, "consumer-bill")
	// Part of it with net banking, which this utility takes through
	// Razorpay: the checkout page loads Checkout's SDK from its own origin
	// (admitted by that page's content security policy alone), the payer
	// pays there, and the signed answer brings them back to the receipt.
	step(c, t, "pay part with Razorpay", follow("#pay"), until(hasText("h1", "Pay bill")),
		chromedp.Click(chromedp.CSS("input[name=method][value=netbanking]")), fill("#f-amount", "100"),
		follow("#pay-continue"), until(hasText("#checkout-open", "Open Razorpay Checkout")))
	shot(c, t, dir, "consumer-razorpay-checkout")
	step(c, t, "Razorpay Checkout", follow("#checkout-open"), until(`location.pathname.startsWith("/payments/")`), until(hasText("#receipt", "Receipt ")),
		until(hasText("#payment-status", "Captured")), until(hasText("#payment-status", "100.00")),
		follow("#payment-status a[href^='/bills/']"), until(hasText("h1", "Bill ")))
	// Another part by card, which it takes through Stripe: the checkout
	// page mounts Stripe's Payment Element and confirms the PaymentIntent;
	// Stripe sends the payer back with the intent, which meterd asks
	// Stripe about before it shows a receipt.
	step(c, t, "pay part with Stripe", follow("#pay"), until(hasText("h1", "Pay bill")),
		chromedp.Click(chromedp.CSS("input[name=method][value=card]")), fill("#f-amount", "100"),
		follow("#pay-continue"), until(hasText("#stripe-element", "4242")))
	step(c, t, "Stripe confirm", follow("#checkout-open"), until(`location.pathname.startsWith("/payments/")`),
		until(hasText("#receipt", "Receipt ")), until(hasText("#payment-status", "Captured")), until(hasText("#payment-status", "100.00")),
		follow("#payment-status a[href^='/bills/']"), until(hasText("h1", "Bill ")))
	step(c, t, "pay", follow("#pay"), until(hasText("h1", "Pay bill")),
		chromedp.Click(chromedp.CSS("input[name=method][value=upi]")),
		follow("#pay-continue"), until(`location.pathname === "/sandbox/checkout"`),
		chromedp.Click(chromedp.CSS("input[name=instrument][value=upi_success]")),
		follow("form button[type=submit]"), until(hasText("h2", "Payment successful")),
		follow("a[href*='/paid?']"), until(`location.pathname.startsWith("/payments/")`),
		until(hasText("#receipt", "Receipt ")), until(hasText("#payment-status", "Captured")))
	shot(c, t, dir, "consumer-receipt")
	step(c, t, "bill is paid", chromedp.Navigate(base+"/bills"), until(hasText("main table", "Paid")))

	// A phone: the menu folds away, nothing is wider than the screen.
	step(c, t, "phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(base+"/"),
		until(hasText("#live", "Meter BRW-0001")), until(`!!document.querySelector("#usage-chart canvas")`),
		until(`getComputedStyle(document.querySelector("nav.main")).display === "none"`),
		until(`document.documentElement.scrollWidth <= window.innerWidth`))
	shot(c, t, dir, "phone-dashboard")
	step(c, t, "phone menu", chromedp.Click(chromedp.CSS(".menu-toggle"), chromedp.NodeVisible),
		until(`getComputedStyle(document.querySelector("nav.main")).display !== "none"`))
	shot(c, t, dir, "phone-menu")
	step(c, t, "phone bill", chromedp.Navigate(base+"/bills"), follow("main table a[href^='/bills/']"),
		until(`document.documentElement.scrollWidth <= window.innerWidth`))
	shot(c, t, dir, "phone-bill")
	t.Logf("screenshots in %s", dir)
}
