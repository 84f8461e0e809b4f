package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/api/account"
)

// TestPortalConsumerForms checks that refused submissions come back as the
// form with the problem named and each invalid field marked, and that good
// ones are stored: properties (DuplicateProperty), manual readings
// (InvalidReading per field), support queries (InvalidQuery, and staff
// being unavailable), reminders (ReminderSetting) and preferences.
func TestPortalConsumerForms(t *testing.T) {
	ps := newPortalStack(t, portalOptions{})
	s := ps.stack
	metering := s.staffUser("demo", "meter@demo.example.com", account.RoleOfficial, account.DepartmentMetering)
	r := s.do("POST", "/api/meters", metering.Token, map[string]any{"external_id": "pf-1", "serial": "PF-0001", "model": "sdm120", "protocol": "mqtt"})
	want(t, r, 201, "")
	meter := num(r.JSON(t)["meter"].(map[string]any)["id"])
	u := s.staffUser("demo", "forms@demo.example.com", account.RoleConsumer, "")
	v := ps.visitor(t)
	v.login(u.Email)

	prop := url.Values{"label": {"Home"}, "address.line1": {"4 Lake View"}, "address.city": {"Pune"}, "address.postal_code": {"411001"},
		"connections[0].meter_number": {"PF-0001"}, "connections[0].tariff_plan": {"domestic"}, "connections[0].sanctioned_load_kw": {"3"}}
	p := v.post("/properties", url.Values{"address.line1": {""}, "connections[0].meter_number": {"bad number!"}, "connections[0].sanctioned_load_kw": {"lots"}})
	wantPage(t, p, http.StatusBadRequest, "InvalidInput")
	wantContains(t, p, `id="f-connections-0--sanctioned-load-kw-err"`, `href="#f-connections-0--sanctioned-load-kw">Sanctioned load kw</a>`)
	if r := v.post("/properties", prop); r.Status != http.StatusSeeOther {
		t.Fatalf("add property: %d %s\n%s", r.Status, r.Problem(), r.Body)
	}
	p = v.get("/properties")
	wantContains(t, p, "Property added.", "PF-0001", "domestic", "Active")
	other := ps.visitor(t)
	other.login(s.staffUser("demo", "other@demo.example.com", account.RoleConsumer, "").Email)
	p = other.post("/properties", prop)
	wantPage(t, p, http.StatusConflict, "DuplicateProperty")
	wantContains(t, p, `id="f-connections-0--meter-number-err"`, "already registered", `value="4 Lake View"`)

	// Manual readings.
	var conn int64
	must(t, s.pool.QueryRow(t.Context(), `SELECT connection_id FROM meter_installations WHERE meter_id = $1`, meter).Scan(&conn))
	s.readings(meter, time.Now().UTC().Add(-2*time.Hour), 4, 15*time.Minute, 5_000_000, 200)
	p = v.post("/readings", url.Values{"connection_id": {fmt.Sprint(conn)}, "import_wh": {"4999"}})
	wantPage(t, p, http.StatusUnprocessableEntity, "InvalidReading")
	wantContains(t, p, `id="f-import-wh-err"`, "lower than the previous reading")
	p = v.post("/readings", url.Values{"connection_id": {fmt.Sprint(conn)}, "import_wh": {"5000.9999"}, "ts": {"yesterday"}})
	wantPage(t, p, http.StatusUnprocessableEntity, "InvalidReading")
	wantContains(t, p, `id="f-import-wh-err"`, `id="f-ts-err"`, "at most 3 decimals")
	p = v.post("/readings", url.Values{"connection_id": {fmt.Sprint(conn)}, "import_wh": {"5001.2"}})
	wantPage(t, p, http.StatusCreated, "")
	wantContains(t, p, "Reading recorded", "5,001.200 kWh", "used since the previous reading")

	// Usage: the page draws from the history, the CSV downloads it.
	p = v.get(fmt.Sprintf("/usage?connection_id=%d&granularity=hour&from=%s", conn, time.Now().In(ist(t)).Format(time.DateOnly)))
	wantPage(t, p, http.StatusOK, "")
	wantContains(t, p, `data-chart="{&#34;t&#34;:[`, "Download CSV")
	c := v.get(fmt.Sprintf("/usage/csv?connection_id=%d&granularity=day", conn))
	if c.Status != 200 || !strings.HasPrefix(c.Header.Get("Content-Type"), "text/csv") || !strings.Contains(c.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv: %d %v", c.Status, c.Header)
	}
	wantPage(t, v.get("/usage?from=someday"), http.StatusBadRequest, "InvalidInput")

	// Support: nobody is available for the category, so the query is
	// queued and the consumer told so; field errors name the fields.
	p = v.post("/support", url.Values{"category": {"weather"}, "description": {"short"}})
	wantPage(t, p, http.StatusBadRequest, "InvalidQuery")
	wantContains(t, p, `id="f-category-err"`, `id="f-description-err"`)
	r2 := v.post("/support", url.Values{"category": {"meter"}, "description": {"The display flickers every evening."}})
	if r2.Status != http.StatusSeeOther {
		t.Fatalf("raise: %d %s", r2.Status, r2.Problem())
	}
	p = v.get(r2.Header.Get("Location"))
	wantContains(t, p, "is queued", "Waiting for support staff", "The display flickers every evening.")

	// Reminders and preferences.
	p = v.post("/settings/reminder", url.Values{"days_before": {"90"}, "channel": {"pigeon"}})
	wantPage(t, p, http.StatusBadRequest, "ReminderSetting")
	wantContains(t, p, `id="f-days-before-err"`, "between 1 and 60")
	if r := v.post("/settings/reminder", url.Values{"days_before": {"5"}, "channel": {"sms"}, "enabled": {"on", "off"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("reminder: %d %s", r.Status, r.Problem())
	}
	wantContains(t, v.get("/settings"), "Reminding 5 days before every bill by sms", `value="5"`)
	p = v.post("/settings/preferences", url.Values{"ch_email": {"on"}, "quiet_from": {"22:00"}, "quiet_to": {"late"}})
	wantPage(t, p, http.StatusBadRequest, "InvalidInput")
	if r := v.post("/settings/preferences", url.Values{"ch_email": {"on"}, "ch_push": {"on"}, "quiet_from": {"22:00"}, "quiet_to": {"07:00"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("preferences: %d %s", r.Status, r.Problem())
	}
	p = v.get("/settings")
	wantContains(t, p, `name="ch_push" value="on" checked`, `value="22:00"`)
	if strings.Contains(p.Body, `name="ch_sms" value="on" checked`) {
		t.Fatal("sms shown as chosen")
	}
}

func ist(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Asia/Kolkata")
	must(t, err)
	return loc
}

// TestPortalPayAndSupport walks requirement cases 12, 13 and 18–20 through
// the portal without a browser: a bill made by a bill run that staff start
// from the portal, its PDF, a UPI payment through the sandbox checkout
// (with one Idempotency-Key per attempt: the same form submitted twice is
// one payment) back to its receipt, and a support query answered by staff
// whose status change the consumer sees in the timeline.
func TestPortalPayAndSupport(t *testing.T) {
	ps := newPortalStack(t, portalOptions{})
	w, _ := portalWorld(t, ps)
	consumer := ps.visitor(t)
	consumer.login(w.people["demo.consumer"].Email)
	biller := ps.visitor(t)
	biller.login(w.people["demo.official-billing"].Email)
	support := ps.visitor(t)
	support.login(w.people["demo.support"].Email)

	// A second bill run from the portal: the connection is billed already.
	p := biller.get("/staff/billing")
	wantContains(t, p, "Start a bill run", "Dead letters")
	period := regexp.MustCompile(`name="period" type="text" value="" placeholder="([0-9.-]+)"`).FindStringSubmatch(p.Body)
	if period == nil {
		t.Fatalf("no example period\n%s", p.Body)
	}
	r := biller.post("/staff/billing/runs", url.Values{"period": {period[1]}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("run: %d %s", r.Status, r.Problem())
	}
	p = biller.get(r.Header.Get("Location"))
	wantContains(t, p, "Completed", "Already billed (unchanged)")
	wantPage(t, biller.post("/staff/billing/runs", url.Values{"period": {"last spring"}}), http.StatusBadRequest, "InvalidInput")

	// The consumer's bill was paid in portalWorld; a second property gets
	// a bill of its own from another run, paid here through the portal.
	metering := ps.staffUser("demo", "meter2@demo.example.com", account.RoleOfficial, account.DepartmentMetering)
	rr := ps.do("POST", "/api/meters", metering.Token, map[string]any{"external_id": "pay-2", "serial": "PAY-0002", "model": "sdm120", "protocol": "mqtt"})
	want(t, rr, 201, "")
	meter := num(rr.JSON(t)["meter"].(map[string]any)["id"])
	if r := consumer.post("/properties", url.Values{"label": {"Shop"}, "address.line1": {"9 Market St"}, "address.city": {"Pune"}, "address.postal_code": {"411002"},
		"connections[0].meter_number": {"PAY-0002"}, "connections[0].tariff_plan": {"domestic"}, "connections[0].sanctioned_load_kw": {"2"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("property: %d %s", r.Status, r.Problem())
	}
	ps.readings(meter, time.Now().UTC().Add(-3*time.Hour), 8, 15*time.Minute, 2_000_000, 300)
	if r := biller.post("/staff/billing/runs", url.Values{"period": {period[1]}}); r.Status != http.StatusSeeOther {
		t.Fatalf("run: %d %s", r.Status, r.Problem())
	}
	p = consumer.get("/bills")
	ids := regexp.MustCompile(`href="/bills/(\d+)"`).FindAllStringSubmatch(p.Body, -1)
	if len(ids) != 2 {
		t.Fatalf("%d bills listed\n%s", len(ids), p.Body)
	}
	bill := ids[0][1] // newest first
	p = consumer.get("/bills/" + bill)
	wantContains(t, p, "Pay ₹", `href="/bills/`+bill+`/pdf"`, "Charges", "Total payable")
	pdf := consumer.get("/bills/" + bill + "/pdf")
	if pdf.Status != 200 || pdf.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(pdf.Body, "%PDF") {
		t.Fatalf("pdf: %d %s", pdf.Status, pdf.Header.Get("Content-Type"))
	}

	p = consumer.get("/bills/" + bill + "/pay")
	key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(p.Body)
	amount := regexp.MustCompile(`name="amount" type="text" value="([0-9.]+)"`).FindStringSubmatch(p.Body)
	if key == nil || amount == nil {
		t.Fatalf("pay form\n%s", p.Body)
	}
	again := consumer.get("/bills/" + bill + "/pay")
	if strings.Contains(again.Body, key[1]) {
		t.Fatal("a second visit to the pay page reused the attempt's key")
	}
	p = consumer.post("/bills/"+bill+"/pay", url.Values{"key": {key[1]}, "amount": {"0"}, "method": {"upi"}})
	wantPage(t, p, http.StatusBadRequest, "InvalidInput")
	wantContains(t, p, `id="f-amount-err"`, key[1])
	form := url.Values{"key": {key[1]}, "amount": {amount[1]}, "method": {"upi"}}
	first := consumer.post("/bills/"+bill+"/pay", form)
	second := consumer.post("/bills/"+bill+"/pay", form) // a double click
	if first.Status != http.StatusSeeOther || second.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("pay: %d %s / %s", first.Status, first.Header.Get("Location"), second.Header.Get("Location"))
	}
	var payments int
	must(t, ps.pool.QueryRow(t.Context(), `SELECT count(*) FROM payments WHERE bill_id = $1`, bill).Scan(&payments))
	if payments != 1 {
		t.Fatalf("%d payments for one attempt", payments)
	}
	checkout, err := url.Parse(first.Header.Get("Location"))
	must(t, err)
	if checkout.Path != "/sandbox/checkout" {
		t.Fatalf("redirected to %s", checkout)
	}
	order := checkout.Query().Get("order")
	res, err := ps.sbx.Pay(order, "upi_success")
	must(t, err)
	ret, err := url.Parse(res.ReturnURL)
	must(t, err)
	if ret.Path != "/bills/"+bill+"/paid" {
		t.Fatalf("return URL %s", ret)
	}
	r = consumer.get(ret.RequestURI())
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/payments/") {
		t.Fatalf("return: %d %s %s", r.Status, r.Header.Get("Location"), r.Problem())
	}
	p = consumer.get(r.Header.Get("Location"))
	wantContains(t, p, "Captured", `id="receipt"`, "Receipt ", "receipt.pdf")
	rc := consumer.get(r.Header.Get("Location") + "/receipt.pdf")
	if rc.Status != 200 || !strings.HasPrefix(rc.Body, "%PDF") {
		t.Fatalf("receipt pdf: %d", rc.Status)
	}
	// Requirement case 17: the payment confirmation is among the
	// consumer's messages.
	wantContains(t, consumer.get("/messages"), "Payment received (receipt)", "Bill issued (PDF attached)")
	tampered := ret.Query()
	tampered.Set("sandbox_signature", strings.Repeat("0", 64))
	wantPage(t, consumer.get("/bills/"+bill+"/paid?"+tampered.Encode()), http.StatusBadRequest, "InvalidSignature")
	r = consumer.get("/bills/" + bill + "/paid")
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/bills/"+bill {
		t.Fatalf("return without an answer: %d %s", r.Status, r.Header.Get("Location"))
	}

	// Support: the query is assigned to the available support staff, who
	// moves it along; the consumer sees each step in the timeline.
	r = consumer.post("/support", url.Values{"category": {"billing"}, "description": {"My bill looks higher than usual this month."}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("raise: %d %s", r.Status, r.Problem())
	}
	ticket := r.Header.Get("Location")
	wantContains(t, consumer.get(ticket), "assigned to", "Assigned to support staff.")
	id := strings.TrimPrefix(ticket, "/support/")
	wantContains(t, support.get("/staff/tickets"), "/staff/tickets/"+id)
	p = support.post("/staff/tickets/"+id+"/status", url.Values{"status": {"resolved"}})
	wantPage(t, p, http.StatusBadRequest, "InvalidQuery")
	wantContains(t, p, `id="f-note-err"`, "required when resolving")
	if r := support.post("/staff/tickets/"+id+"/status", url.Values{"status": {"in_progress"}, "note": {"Checking the meter data."}}); r.Status != http.StatusSeeOther {
		t.Fatalf("status: %d %s", r.Status, r.Problem())
	}
	if r := support.post("/staff/tickets/"+id+"/comments", url.Values{"body": {"Internal: compare with last year."}, "internal": {"on"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("note: %d", r.Status)
	}
	p = consumer.get(ticket)
	wantContains(t, p, "Status changed from <strong>Assigned</strong> to <strong>In progress</strong>.", "Checking the meter data.")
	if strings.Contains(p.Body, "compare with last year") {
		t.Fatal("the consumer sees an internal note")
	}
	wantContains(t, support.get("/staff/tickets/"+id), "compare with last year", "internal note")
}

// TestPortalStaffForms: tariffs refused with their validation errors shown
// by field, a meter's MQTT secret shown once, users created and unlocked
// by an administrator.
func TestPortalStaffForms(t *testing.T) {
	ps := newPortalStack(t, portalOptions{})
	s := ps.stack
	admin := ps.visitor(t)
	admin.login(s.staffUser("demo", "admin@demo.example.com", account.RoleAdmin, "").Email)
	metering := ps.visitor(t)
	metering.login(s.staffUser("demo", "m@demo.example.com", account.RoleOfficial, account.DepartmentMetering).Email)

	p := admin.post("/staff/tariffs", url.Values{"plan": {"domestic"}, "document": {"{not json"}})
	wantPage(t, p, http.StatusBadRequest, "InvalidInput")
	wantContains(t, p, `id="f-document-err"`, "malformed JSON", "{not json")
	p = admin.post("/staff/tariffs", url.Values{"plan": {"domestic"}, "document": {"plan: [unclosed\n"}})
	wantPage(t, p, http.StatusBadRequest, "InvalidInput")
	wantContains(t, p, `id="f-document-err"`, "neither JSON nor YAML")
	p = admin.post("/staff/tariffs", url.Values{"plan": {"domestic"}, "document": {`{"tenant": "demo", "plan": "domestic", "version": "v1", "effective_from": "2024-04-01", "currency": "INR",
		"rounding": {"mode": "half_up", "places": 2}, "energy": {"kind": "telescopic", "slabs": [{"upto_kwh": 100, "rate": "-3"}]}}`}})
	wantPage(t, p, http.StatusBadRequest, "InvalidInput")
	wantContains(t, p, `id="f-document-err"`, "energy.slabs")
	wantPage(t, metering.post("/staff/tariffs", url.Values{"plan": {"domestic"}}), http.StatusForbidden, "UnauthorizedAccess")

	p = metering.post("/staff/meters", url.Values{"serial": {"SEC-1"}, "external_id": {"sec-1"}, "model": {"sdm120"}, "protocol": {"mqtt"}})
	wantPage(t, p, http.StatusCreated, "")
	pw := regexp.MustCompile(`id="mqtt-password">([^<]+)<`).FindStringSubmatch(p.Body)
	if pw == nil || len(pw[1]) < 20 || p.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("credentials page\n%s", p.Body)
	}
	list := metering.get("/staff/meters")
	wantContains(t, list, "SEC-1", "credentials issued")
	if strings.Contains(list.Body, pw[1]) {
		t.Fatal("the MQTT password is shown again")
	}
	wantPage(t, metering.post("/staff/meters", url.Values{"serial": {"SEC-1"}, "external_id": {"sec-1"}, "model": {"sdm120"}, "protocol": {"mqtt"}}), http.StatusConflict, "Conflict")

	p = admin.post("/staff/users", url.Values{"email": {"new-official@demo.example.com"}, "name": {"N"}, "password": {password}, "role": {"official"}})
	wantPage(t, p, http.StatusBadRequest, "InvalidInput")
	wantContains(t, p, `id="f-department-err"`)
	if r := admin.post("/staff/users", url.Values{"email": {"new-official@demo.example.com"}, "name": {"N"}, "password": {password}, "role": {"official"}, "department": {"billing"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", r.Status, r.Problem())
	}
	wantContains(t, admin.get("/staff/users?role=official"), "new-official@demo.example.com", "Official (billing)")
}
