package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/alerts/service"
	"github.com/meterd/meterd/alerts/template"
	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/account"
	accountpg "github.com/meterd/meterd/api/account/postgres"
	"github.com/meterd/meterd/api/keyring"
	"github.com/meterd/meterd/api/support"
	supportpg "github.com/meterd/meterd/api/support/postgres"
	"github.com/meterd/meterd/api/usage"
	usagepg "github.com/meterd/meterd/api/usage/postgres"
	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/billrun"
	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/guard"
	"github.com/meterd/meterd/billing/payment/paymenttest"
	paymentpg "github.com/meterd/meterd/billing/payment/postgres"
	"github.com/meterd/meterd/billing/payment/razorpay"
	"github.com/meterd/meterd/billing/payment/sandbox"
	"github.com/meterd/meterd/billing/payment/stripe"
	billingpg "github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

// portalStack is the whole API with the web portal mounted: accounts,
// support, usage, billing (bill runs execute at once), payments through
// the sandbox (delivering its webhooks to this server) and notifications,
// on a real database, served on a real listener.
type portalStack struct {
	*stack
	clock      *testClock // the accounts' and tokens' clock
	portal     *api.Portal
	sbx        *sandbox.Gateway
	alerts     *alertspg.Store
	deliveries chan sandbox.Delivery
	rzp        *paymenttest.RazorpayPeer // with portalOptions.checkouts
	stp        *paymenttest.StripePeer   // with portalOptions.checkouts
}

type portalOptions struct {
	cfg       api.PortalConfig
	accessTTL time.Duration
	// checkouts adds Razorpay for net banking and Stripe for cards (local
	// peers), with stand-ins for their browser SDKs that the portal's
	// checkout page loads.
	checkouts bool
	account   func(*account.Config)
}

func newPortalStack(t *testing.T, o portalOptions) *portalStack {
	t.Helper()
	ctx := context.Background()
	pool := schematest.New(t)
	cfg := pool.Config().Copy()
	cfg.MaxConns = 16
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error { pgxdecimal.Register(c.TypeMap()); return nil }
	bpool, err := pgxpool.NewWithConfig(ctx, cfg)
	must(t, err)
	t.Cleanup(bpool.Close)
	ring, err := keyring.New([]keyring.Key{fieldKey})
	must(t, err)
	clock := &testClock{}
	tokens, err := account.NewTokens(account.TokenConfig{Keys: []keyring.Key{jwtKey}, AccessTTL: o.accessTTL, Leeway: time.Millisecond, Now: clock.Now})
	must(t, err)
	hasher, err := account.NewHasher(account.HasherConfig{Params: account.Argon2Params{MemoryKiB: 1024, Passes: 1, Lanes: 1, SaltBytes: 16, HashBytes: 32}})
	must(t, err)
	lots := account.LimitConfig{Burst: 10_000, Rate: 10_000, Per: time.Second}
	acfg := account.Config{DefaultTenant: "demo", LoginPerAddress: lots, LoginPerAccount: lots, RegisterPerAddress: lots, SessionCheckTTL: -1, Now: clock.Now}
	if o.account != nil {
		o.account(&acfg)
	}
	accounts, err := account.New(accountpg.New(pool), tokens, hasher, ring, acfg)
	must(t, err)
	desk, err := support.New(supportpg.New(pool), support.Config{})
	must(t, err)
	st, err := schema.LoadStorage(ctx, pool)
	must(t, err)
	up := schema.NewUpkeep(pool, st, schema.UpkeepConfig{})
	use, err := usage.New(usagepg.New(pool, func(ctx context.Context, from, to time.Time) error {
		_, err := up.EnsurePartitions(ctx, from, to)
		return err
	}), usage.Config{})
	must(t, err)
	ledger := billingpg.NewStore(bpool, billingpg.Deps{Outbox: e2eOutbox{}, Audit: e2eAudit{}})
	runner, err := billrun.NewRunner(ledger, billrun.Config{}, nil, nil)
	must(t, err)
	tpl, err := template.New()
	must(t, err)
	alertStore := alertspg.New(pool)

	ps := &portalStack{clock: clock, alerts: alertStore, deliveries: make(chan sandbox.Delivery, 1024)}
	addr := freeAddr(t)
	base := "http://" + addr
	ps.sbx, err = sandbox.New(sandbox.Config{Secret: "sandbox-portal-secret-01", CheckoutURL: base + "/sandbox/checkout", WebhookURL: base + "/api/webhooks/sandbox",
		RetryBackoff: 20 * time.Millisecond, OnDelivery: func(d sandbox.Delivery) {
			select {
			case ps.deliveries <- d:
			default: // nobody is waiting for this one
			}
		}})
	must(t, err)
	g, err := guard.Wrap(ps.sbx, guard.Config{Timeout: 5 * time.Second})
	must(t, err)
	payStore, err := paymentpg.New(bpool, paymentpg.Deps{Ledger: ledger, Outbox: e2eOutbox{}, Audit: e2eAudit{}, Sealer: ring})
	must(t, err)
	providers, payCfg := []payment.Provider{g}, payment.Config{}
	if o.checkouts {
		ps.rzp = paymenttest.NewRazorpayPeer(t)
		rp, err := razorpay.New(razorpay.Config{BaseURL: ps.rzp.URL, KeyID: ps.rzp.KeyID, KeySecret: ps.rzp.KeySecret,
			WebhookSecrets: []string{ps.rzp.WebhookSecret}, MerchantName: "Demo Power"})
		must(t, err)
		rg, err := guard.Wrap(rp, guard.Config{Timeout: 5 * time.Second})
		must(t, err)
		ps.stp = paymenttest.NewStripePeer(t)
		sp, err := stripe.New(stripe.Config{BaseURL: ps.stp.URL, SecretKey: ps.stp.SecretKey, PublishableKey: ps.stp.PublishableKey,
			WebhookSecrets: []string{ps.stp.WebhookSecret}})
		must(t, err)
		sg, err := guard.Wrap(sp, guard.Config{Timeout: 5 * time.Second})
		must(t, err)
		providers = append(providers, rg, sg)
		payCfg.Routes = map[payment.Method]string{payment.MethodNetbanking: razorpay.Name, payment.MethodCard: stripe.Name}
		o.cfg.CheckoutScripts = map[string]string{"razorpay_checkout": razorpayCheckoutStandIn(t, ps.rzp) + "/v1/checkout.js",
			"stripe_confirm": stripeJSStandIn(t, ps.stp) + "/v3/"}
	}
	pays, err := payment.New(payStore, providers, payCfg)
	must(t, err)

	srv, err := api.New(api.Config{Addr: addr}, api.Deps{Version: "test"})
	must(t, err)
	svc := api.Services{Accounts: accounts, Support: desk, Usage: use, Billing: &testBilling{store: ledger, runner: runner},
		Payments: pays, Sandbox: ps.sbx, Notifications: service.New(alertStore, ring, tpl, nil)}
	must(t, srv.Mount(svc))
	ps.portal, err = srv.MountPortal(svc, accountpg.New(pool), o.cfg)
	must(t, err)
	must(t, srv.Start(ctx))
	must(t, ps.sbx.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ps.sbx.Stop(ctx)
		_ = srv.Stop(ctx)
	})
	ps.stack = &stack{t: t, pool: pool, srv: srv, base: base, ring: ring, upkeep: up, svc: svc, routes: srv.Routes(),
		client: &http.Client{Timeout: 30 * time.Second}}
	raw, err := json.Marshal(srv.OpenAPI())
	must(t, err)
	must(t, json.Unmarshal(raw, &ps.doc))
	_, err = pool.Exec(ctx, `INSERT INTO tenants (code, name, time_zone, currency) VALUES
		('demo', 'Demo Power', 'Asia/Kolkata', 'INR'), ('other', 'Other Utility', 'Asia/Kolkata', 'INR')`)
	must(t, err)
	return ps
}

// testClock is the real time moved by an offset tests set.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward.
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// awaitDelivery waits until the sandbox delivered a webhook of type typ
// for order and meterd accepted it.
func (ps *portalStack) awaitDelivery(t testing.TB, order, typ string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case d := <-ps.deliveries:
			if d.OrderID == order && d.Type == typ && d.Status == 200 {
				return
			}
			if d.Status != 200 {
				t.Fatalf("sandbox delivery %s %s refused: %d %v", d.Type, d.EventID, d.Status, d.Err)
			}
		case <-deadline:
			t.Fatalf("no %s delivery for %s", typ, order)
		}
	}
}

// visitor is a browser without JavaScript: a cookie jar, no redirects
// followed, forms posted with the CSRF token of its cookie.
type visitor struct {
	t    testing.TB
	base string
	c    *http.Client
}

// page is an answer read whole.
type page struct {
	Status int
	Header http.Header
	Body   string
}

// Problem is the code of the problem a page shows ("" for none).
func (p page) Problem() string {
	m := regexp.MustCompile(`data-problem="([A-Za-z]*)"`).FindStringSubmatch(p.Body)
	if m == nil {
		return ""
	}
	return m[1]
}

func (ps *portalStack) visitor(t testing.TB) *visitor {
	jar, err := cookiejar.New(nil)
	must(t, err)
	return &visitor{t: t, base: ps.base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (v *visitor) do(req *http.Request, hdr []string) page {
	v.t.Helper()
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html")
	}
	r, err := v.c.Do(req)
	must(v.t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	must(v.t, err)
	return page{Status: r.StatusCode, Header: r.Header, Body: string(b)}
}

func (v *visitor) get(path string, hdr ...string) page {
	v.t.Helper()
	req, err := http.NewRequest(http.MethodGet, v.base+path, nil)
	must(v.t, err)
	return v.do(req, hdr)
}

// cookie returns the value of one of the visitor's cookies.
func (v *visitor) cookie(name string) string {
	u, _ := url.Parse(v.base)
	for _, c := range v.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// post submits a form; _csrf is the cookie's token unless the form has one.
func (v *visitor) post(path string, form url.Values, hdr ...string) page {
	v.t.Helper()
	f := url.Values{}
	for k, vs := range form {
		f[k] = vs
	}
	form = f
	if !form.Has("_csrf") {
		if v.cookie("meterd_csrf") == "" {
			v.get("/login")
		}
		form.Set("_csrf", v.cookie("meterd_csrf"))
	}
	req, err := http.NewRequest(http.MethodPost, v.base+path, strings.NewReader(form.Encode()))
	must(v.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return v.do(req, hdr)
}

// login logs in through the portal's form.
func (v *visitor) login(email string) {
	v.t.Helper()
	r := v.post("/login", url.Values{"email": {email}, "password": {password}})
	if r.Status != http.StatusSeeOther {
		v.t.Fatalf("log in as %s: %d %s\n%s", email, r.Status, r.Problem(), r.Body)
	}
}

func wantPage(t testing.TB, p page, status int, problem string) {
	t.Helper()
	if p.Status != status || p.Problem() != problem {
		body := p.Body
		if len(body) > 3000 {
			body = body[:3000]
		}
		t.Fatalf("got %d %q, want %d %q\n%s", p.Status, p.Problem(), status, problem, body)
	}
}

func wantContains(t testing.TB, p page, parts ...string) {
	t.Helper()
	for _, s := range parts {
		if !strings.Contains(p.Body, s) {
			t.Fatalf("page lacks %q\n%s", s, p.Body)
		}
	}
}

// portalResources are a target's records beyond buildWorld's.
type portalResources struct {
	bill, payment, alert, notification, run int64
}

// portalWorld is buildWorld with, per target, a bill from a real bill run
// paid through the sandbox, an alert and a notification.
func portalWorld(t *testing.T, ps *portalStack) (*world, map[string]portalResources) {
	t.Helper()
	s := ps.stack
	w := buildWorld(t, s)
	ar := alertWorld(t, s, ps.alerts, w)
	doc, err := os.ReadFile("../billing/billrun/testdata/tariff.json")
	must(t, err)
	loc, _ := time.LoadLocation("Asia/Kolkata")
	today := billing.DateOf(time.Now(), loc)
	period := fmt.Sprintf("%s..%s", billing.NewDate(today.Year(), today.Month(), 1), today)
	runs := map[string]int64{}
	for tn, biller := range map[string]session{"demo": w.people["demo.official-billing"], "other": w.people["other.admin"]} {
		d := bytes.ReplaceAll(bytes.ReplaceAll(doc, []byte(`"test-discom"`), []byte(`"`+tn+`"`)), []byte(`"lt-domestic"`), []byte(`"domestic"`))
		want(t, s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"plan": "domestic", "document": json.RawMessage(d)}), 201, "")
		r := s.do("POST", "/api/billing/runs", biller.Token, map[string]any{"period": period, "issue_date": today.String()})
		want(t, r, 202, "")
		runs[tn] = num(r.JSON(t)["id"])
	}
	owners := map[string]string{"own": "demo.consumer", "peer": "demo.peer", "foreign": "other.consumer"}
	out := map[string]portalResources{}
	for target, owner := range owners {
		who := w.people[owner]
		r := s.do("GET", fmt.Sprintf("/api/bills?connection_id=%d", w.res[target].connection), who.Token, nil)
		want(t, r, 200, "")
		items := r.JSON(t)["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("%s has %d bills", owner, len(items))
		}
		bill := items[0].(map[string]any)
		r = s.do("POST", "/api/payments", who.Token, map[string]any{"bill_id": bill["id"], "amount": bill["total"], "method": "upi"}, "Idempotency-Key", newKey())
		want(t, r, 201, "")
		pay := r.JSON(t)
		order := pay["provider_order_id"].(string)
		if _, err := ps.sbx.Pay(order, "upi_success"); err != nil {
			t.Fatal(err)
		}
		ps.awaitDelivery(t, order, "payment.captured")
		tn := "demo"
		if target == "foreign" {
			tn = "other"
		}
		out[target] = portalResources{bill: num(bill["id"]), payment: num(pay["id"]), alert: ar[target].alert, notification: ar[target].notification, run: runs[tn]}
	}
	return w, out
}

// portalCall is one request of the portal matrix.
type portalCall struct {
	path string
	form url.Values
}

// portalFixture returns a request for portal row rt against the target's
// records.
func portalFixture(rt api.PortalRoute, res resources, pr portalResources, w *world) portalCall {
	n := next()
	ids := map[string]int64{"ticketId": res.ticket, "billId": pr.bill, "paymentId": pr.payment, "alertId": pr.alert,
		"notificationId": pr.notification, "runId": pr.run, "meterId": res.meter, "userId": res.user}
	path := rt.Path
	for k, v := range ids {
		path = strings.ReplaceAll(path, ":"+k, fmt.Sprint(v))
	}
	loc, _ := time.LoadLocation("Asia/Kolkata")
	today := billing.DateOf(time.Now(), loc)
	form := url.Values{}
	switch rt.Method + " " + rt.Path {
	case "GET /usage", "GET /usage/chart", "GET /usage/csv":
		path += fmt.Sprintf("?connection_id=%d", res.connection)
	case "GET /verify":
		path += "?token=not-a-token"
	case "POST /login":
		form = url.Values{"email": {"nobody@example.com"}, "password": {password}}
	case "POST /register":
		form = url.Values{"name": {"New"}, "email": {fmt.Sprintf("portal%d@example.com", n)}, "password": {password}, "password2": {password}}
	case "POST /verify":
		form = url.Values{"token": {"not-a-token"}}
	case "POST /verify/resend":
		form = url.Values{"email": {"nobody@example.com"}}
	case "POST /profile":
		form = url.Values{"name": {"Renamed"}}
	case "POST /profile/password":
		form = url.Values{"current_password": {"not it at all"}, "new_password": {"another long password"}}
	case "POST /profile/totp/enable", "POST /profile/totp/disable":
		form = url.Values{"password": {"wrong"}, "code": {"000000"}}
	case "POST /readings":
		form = url.Values{"connection_id": {fmt.Sprint(res.connection)}, "import_wh": {fmt.Sprintf("%d.%03d", 1001+n/1000, n%1000)}}
	case "POST /properties":
		form = url.Values{"address.line1": {"2 Test Road"}, "address.city": {"Pune"}, "address.postal_code": {"411001"}, "connections[0].meter_number": {fmt.Sprintf("PNEW-%d", n)}}
	case "POST /support":
		form = url.Values{"category": {"other"}, "description": {"Just a question about the tariff."}}
	case "POST /support/:ticketId/comments", "POST /staff/tickets/:ticketId/comments":
		form = url.Values{"body": {"Any news?"}}
	case "POST /support/:ticketId/status":
		form = url.Values{"status": {"closed"}}
	case "POST /staff/tickets/:ticketId/status":
		form = url.Values{"status": {"in_progress"}, "note": {"Looking at it."}}
	case "POST /staff/tickets/:ticketId/assign":
		form = url.Values{"staff_id": {fmt.Sprint(w.people["demo.support"].ID)}}
	case "POST /staff/availability":
		form = url.Values{"available": {"true"}}
	case "POST /settings/reminder":
		form = url.Values{"days_before": {"3"}, "channel": {"email"}}
	case "POST /settings/preferences":
		form = url.Values{"ch_email": {"on"}}
	case "POST /bills/:billId/pay":
		form = url.Values{"amount": {"100"}, "method": {"upi"}}
	case "POST /staff/billing/runs":
		form = url.Values{"period": {fmt.Sprintf("%s..%s", billing.NewDate(today.Year(), today.Month(), 1), today)}}
	case "POST /staff/tariffs":
		form = url.Values{"plan": {"x"}, "document": {`{"plan": "x"}`}}
	case "POST /staff/tariffs/quote":
		form = url.Values{"tariff": {`{}`}, "usage": {`{}`}}
	case "POST /staff/meters":
		form = url.Values{"external_id": {fmt.Sprintf("p-%d", n)}, "serial": {fmt.Sprintf("P-%d", n)}, "model": {"sdm120"}, "protocol": {"mqtt"}}
	case "POST /staff/users":
		form = url.Values{"email": {fmt.Sprintf("staff%d@example.com", n)}, "password": {password}, "role": {"support"}, "name": {"S"}}
	case "POST /staff/users/:userId":
		form = url.Values{"action": {"unlock"}}
	}
	return portalCall{path: path, form: form}
}

// portalResourceRoute reports whether a portal row reaches a specific
// record, so it is tried on other owners' and other tenants' records too.
func portalResourceRoute(rt api.PortalRoute) bool {
	switch rt.Method + " " + rt.Path {
	case "GET /usage", "GET /usage/chart", "GET /usage/csv":
		return true
	}
	return strings.Contains(rt.Path, ":")
}

// TestPortalAuthorizationMatrix requests every portal row as every role
// (and anonymously), on the caller's own records, another consumer's in
// the same tenant and another tenant's, and checks what the portal's
// permission table declares: anonymous visitors are sent to the log-in
// page, roles (and officials' departments) a row does not allow get the
// UnauthorizedAccess page, records outside the caller's scope are not
// found, and allowed callers get an answer that is none of those.
func TestPortalAuthorizationMatrix(t *testing.T) {
	ps := newPortalStack(t, portalOptions{})
	w, pr := portalWorld(t, ps)
	callers := []string{"anonymous", "demo.consumer", "demo.official", "demo.official-billing", "demo.support", "demo.admin"}
	visitors := map[string]*visitor{}
	for _, who := range callers {
		v := ps.visitor(t)
		if who != "anonymous" {
			v.login(w.people[who].Email)
		}
		visitors[who] = v
	}
	routes := ps.portal.Routes()
	if len(routes) < 50 {
		t.Fatalf("only %d portal routes mounted", len(routes))
	}
	checked := 0
	for _, rt := range routes {
		for _, who := range callers {
			v := visitors[who]
			if rt.Method == "POST" && rt.Path == "/logout" && who != "anonymous" {
				v = ps.visitor(t) // a session of its own to end
				v.login(w.people[who].Email)
			}
			p := account.Principal{}
			if who != "anonymous" {
				st, err := ps.svc.Accounts.Authenticate(t.Context(), w.people[who].Token)
				must(t, err)
				p = st
			}
			targets := []string{"own"}
			if portalResourceRoute(rt) {
				targets = []string{"own", "peer", "foreign"}
			}
			for _, target := range targets {
				t.Run(fmt.Sprintf("%s %s as %s on %s", rt.Method, rt.Path, who, target), func(t *testing.T) {
					v.t = t
					c := portalFixture(rt, w.res[target], pr[target], w)
					var r page
					if rt.Method == http.MethodGet {
						r = v.get(c.path)
					} else {
						r = v.post(c.path, c.form)
					}
					checked++
					loc := r.Header.Get("Location")
					switch {
					case who == "anonymous" && !rt.Public():
						if r.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
							t.Fatalf("anonymous: %d %s, want a redirect to log in", r.Status, loc)
						}
					case !rt.Allows(p):
						wantPage(t, r, http.StatusForbidden, "UnauthorizedAccess")
					case rt.Path == "/logout":
						if r.Status != http.StatusSeeOther || loc != "/login" {
							t.Fatalf("logout: %d %s", r.Status, loc)
						}
						if again := v.get("/profile"); !strings.HasPrefix(again.Header.Get("Location"), "/login") {
							t.Fatalf("still logged in after logout: %d", again.Status)
						}
					case r.Problem() == "UnauthorizedAccess" || r.Problem() == "Unauthenticated" || strings.HasPrefix(loc, "/login"):
						t.Fatalf("allowed caller refused: %d %s %s", r.Status, r.Problem(), loc)
					case r.Status >= 500:
						t.Fatalf("server error %d\n%s", r.Status, r.Body)
					case target == "foreign" || (target == "peer" && p.Role == account.RoleConsumer):
						if r.Status != http.StatusNotFound {
							t.Fatalf("reached a record outside its scope: %d %s\n%.2000s", r.Status, loc, r.Body)
						}
					case r.Status == http.StatusNotFound:
						t.Fatalf("own record not found:\n%.2000s", r.Body)
					}
				})
			}
		}
	}
	if checked < 500 {
		t.Fatalf("only %d calls checked", checked)
	}
	t.Logf("%d portal route × caller × target calls checked", checked)
}

// razorpayCheckoutStandIn serves, from its own origin as Razorpay does, a
// stand-in for Checkout's SDK (checkout.js): new Razorpay(options).open()
// "pays" the order at the peer with net banking and calls options.handler
// with the payment id and the signature Checkout would return. It is
// loaded, like the real one, through the checkout page's content security
// policy, so a policy that did not admit the origin fails the test.
func razorpayCheckoutStandIn(t *testing.T, peer *paymenttest.RazorpayPeer) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/checkout.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, `(function () {
  var origin = new URL(document.currentScript.src).origin;
  window.Razorpay = function (o) {
    if (!o.key || !o.order_id || !o.amount || typeof o.handler !== "function") throw new Error("Razorpay: incomplete options");
    this.on = function () {};
    this.open = function () {
      window.__rzpHandler = o.handler;
      var s = document.createElement("script");
      s.src = origin + "/pay.js?key=" + encodeURIComponent(o.key) + "&order_id=" + encodeURIComponent(o.order_id) +
        "&method=" + encodeURIComponent((o.prefill || {}).method || "");
      document.head.appendChild(s);
    };
  };
})();`)
	})
	mux.HandleFunc("GET /pay.js", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("key") != peer.KeyID || q.Get("method") != string(payment.MethodNetbanking) {
			http.Error(w, "wrong key or method", http.StatusBadRequest)
			return
		}
		order := q.Get("order_id")
		py := peer.Pay(order, payment.MethodNetbanking, paymenttest.RazorpayCaptured)
		id, _ := py["id"].(string)
		resp, err := json.Marshal(map[string]string{"razorpay_payment_id": id, "razorpay_order_id": order,
			"razorpay_signature": peer.CheckoutSignature(order, id)})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = fmt.Fprintf(w, "window.__rzpHandler(%s);", resp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// stripeJSStandIn serves, from its own origin as Stripe does, a stand-in
// for Stripe.js (v3): Stripe(key).elements({clientSecret}) mounts a
// "Payment Element", and confirmPayment pays the PaymentIntent at the peer
// with pm_card_visa, then sends the payer to return_url with the
// parameters Stripe adds (payment_intent, its client secret,
// redirect_status).
func stripeJSStandIn(t *testing.T, peer *paymenttest.StripePeer) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v3/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, `(function () {
  var origin = new URL(document.currentScript.src).origin;
  window.Stripe = function (key) {
    if (!key) throw new Error("Stripe: no publishable key");
    return {
      elements: function (o) {
        var secret = o && o.clientSecret;
        if (!secret) throw new Error("Stripe: elements need the client secret");
        return {
          _secret: secret,
          create: function (type) {
            return { mount: function (sel) {
              var d = document.querySelector(sel);
              d.setAttribute("data-stripe-element", type);
              d.textContent = "Card •••• 4242";
            } };
          }
        };
      },
      confirmPayment: function (o) {
        var secret = o.elements._secret;
        var pi = secret.split("_secret_")[0];
        return new Promise(function () {
          window.__stripeReturn = o.confirmParams.return_url;
          var s = document.createElement("script");
          s.src = origin + "/confirm.js?key=" + encodeURIComponent(key) + "&payment_intent=" + encodeURIComponent(pi) +
            "&client_secret=" + encodeURIComponent(secret);
          document.head.appendChild(s);
        });
      }
    };
  };
})();`)
	})
	mux.HandleFunc("GET /confirm.js", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		pi := peer.Intent(q.Get("payment_intent"))
		if q.Get("key") != peer.PublishableKey || pi == nil || pi["client_secret"] != q.Get("client_secret") {
			http.Error(w, "wrong key, intent or client secret", http.StatusBadRequest)
			return
		}
		peer.Pay(q.Get("payment_intent"), "pm_card_visa")
		params := url.Values{"payment_intent": {q.Get("payment_intent")}, "payment_intent_client_secret": {q.Get("client_secret")},
			"redirect_status": {"succeeded"}}
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = fmt.Fprintf(w, "window.location.assign(window.__stripeReturn + (window.__stripeReturn.indexOf('?') < 0 ? '?' : '&') + %q);", params.Encode())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}
