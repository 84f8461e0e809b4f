package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/account"
)

// world is two tenants, each with every role and a consumer's property,
// connection, meter and ticket; tenant A has a second consumer (a peer).
type world struct {
	people map[string]session // by principal name
	// resources by target: "own" (consumer A's, tenant A), "peer"
	// (consumer A2's, tenant A), "foreign" (tenant B's).
	res map[string]resources
	// tariff is an electricity tariff document of tenant demo (for
	// quotes), sewerage the Punjab sewerage masters (for publishing).
	tariff, sewerage json.RawMessage
}

type resources struct {
	property, connection, meter, ticket, user, staff int64
	// The records of the other services (fullWorld): the owner's sewerage
	// connection, its bill from its tenant's bill run (and that run), a
	// captured payment of another bill (with its receipt), a saved
	// payment method, an alert on the owner's meter, a notification to
	// the owner and a push device of the owner.
	sewerage, bill, run, payment, method, alert, notification, device int64
	// billTotal is the bill's total; order the sandbox order of a
	// pending payment of the bill.
	billTotal, order string
	// spareConnection is another electricity connection of the owner,
	// pending its meter; spareMeter is that meter, provisioned after the
	// connection, so not installed (the world's first meters are).
	spareConnection, spareMeter int64
}

func buildWorld(t *testing.T, s *stack) *world {
	w := &world{people: map[string]session{}, res: map[string]resources{}}
	for _, tn := range []string{"demo", "other"} {
		p := tn + "."
		w.people[p+"consumer"] = s.register(tn, "consumer@"+tn+".example.com", "Consumer "+tn)
		w.people[p+"official"] = s.staffUser(tn, "official@"+tn+".example.com", account.RoleOfficial, account.DepartmentMetering)
		w.people[p+"support"] = s.staffUser(tn, "support@"+tn+".example.com", account.RoleSupport, "")
		w.people[p+"admin"] = s.staffUser(tn, "admin@"+tn+".example.com", account.RoleAdmin, "")
	}
	w.people["demo.peer"] = s.register("demo", "peer@demo.example.com", "Peer")
	w.people["demo.official-billing"] = s.staffUser("demo", "billing@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
	owned := func(tn, owner, target string) {
		off := w.people[tn+".official"]
		n := next()
		r := s.do("POST", "/api/meters", off.Token, map[string]any{"external_id": fmt.Sprintf("w-%d", n), "serial": fmt.Sprintf("W-%d", n), "model": "sdm120", "protocol": "mqtt"})
		want(t, r, 201, "")
		meter := num(r.JSON(t)["meter"].(map[string]any)["id"])
		who := w.people[owner]
		r = s.do("POST", "/api/users/properties", who.Token, map[string]any{"address": map[string]any{"line1": "1 Test Road", "city": "Pune", "postal_code": "411001"},
			"meter_number": fmt.Sprintf("W-%d", n), "tariff_plan": "domestic", "sanctioned_load_kw": "5"})
		want(t, r, 201, "")
		p := r.JSON(t)
		conn := num(p["connections"].([]any)[0].(map[string]any)["id"])
		s.readings(meter, time.Now().UTC().Add(-2*time.Hour), 8, 15*time.Minute, 1_000_000, 100)
		want(t, s.do("PUT", "/api/support/staff/me", w.people[tn+".support"].Token, map[string]any{"skills": []string{"meter", "billing"}, "available": true}), 200, "")
		r = s.do("POST", "/api/tickets", who.Token, map[string]any{"category": "meter", "description": "The display flickers at night."})
		want(t, r, 201, "")
		w.res[target] = resources{property: num(p["id"]), connection: conn, meter: meter, ticket: num(r.JSON(t)["id"]),
			user: who.ID, staff: w.people[tn+".support"].ID}
	}
	owned("demo", "demo.consumer", "own")
	owned("demo", "demo.peer", "peer")
	owned("other", "other.consumer", "foreign")
	return w
}

// matrixOwners are the consumers whose records each target names.
var matrixOwners = map[string]string{"own": "demo.consumer", "peer": "demo.peer", "foreign": "other.consumer"}

// fullWorld is buildWorld with the records of billing, payments, alerts
// and the municipal calculators, made as the per-service tests make them:
// sewerage masters published and a sewerage connection per owner, a bill
// run per tenant (so each owner has a bill), a captured payment through
// the sandbox's checkout and webhooks (of a second connection's bill, so
// the first one's stays unpaid for the adhoc route), a pending payment of the
// run's bill, a saved method, and alertWorld's alert, notification (with
// a dead delivery) and device.
func fullWorld(t *testing.T, fs *fullStack) *world {
	w := buildWorld(t, fs.stack)
	w.sewerage = pbSewerage(t)
	tariff, err := os.ReadFile("../billing/billrun/testdata/tariff.json")
	must(t, err)
	w.tariff = bytes.ReplaceAll(tariff, []byte(`"test-discom"`), []byte(`"demo"`))
	billers := map[string]string{"demo": "demo.official-billing", "other": "other.admin"}
	for _, who := range billers {
		want(t, fs.do("POST", "/api/billing/tariffs", w.people[who].Token, map[string]any{"service": "sewerage", "plan": "pb-sewerage", "version": "v1",
			"effective_from": "2024-01-01", "document": w.sewerage}), 201, "")
	}
	// Two sewerage connections each: one's bill is paid, the other's
	// stays unpaid (for the adhoc route and new payments).
	closets, paidConn := 2, map[string]int64{}
	for target, owner := range matrixOwners {
		res := w.res[target]
		res.sewerage = fs.sewerageConnection(w.people[owner], closets)
		paidConn[target] = fs.sewerageConnection(w.people[owner], closets+1)
		closets += 2
		w.res[target] = res
	}
	runs := map[string]int64{}
	for tn, who := range billers {
		r := fs.do("POST", "/api/billing/runs", w.people[who].Token, map[string]any{"service": "sewerage", "period": "2024-05", "issue_date": "2024-06-01"})
		want(t, r, 202, "")
		runs[tn] = num(r.JSON(t)["id"])
	}
	alerts := alertWorld(t, fs.stack, fs.alerts, w)
	for target, owner := range matrixOwners {
		who, res := w.people[owner], w.res[target]
		res.run = runs[who.Tenant]
		bill := func(conn int64) (int64, string) {
			t.Helper()
			r := fs.do("GET", fmt.Sprintf("/api/bills?connection_id=%d", conn), who.Token, nil)
			want(t, r, 200, "")
			items := r.JSON(t)["items"].([]any)
			if len(items) != 1 {
				t.Fatalf("%s's bills of connection %d: %s", owner, conn, r.Body)
			}
			return num(items[0].(map[string]any)["id"]), items[0].(map[string]any)["total"].(string)
		}
		res.bill, res.billTotal = bill(res.sewerage)
		paidBill, paidTotal := bill(paidConn[target])
		r := fs.post("/api/payments", who.Token, map[string]any{"bill_id": paidBill, "amount": paidTotal, "method": "wallet"}, newKey())
		want(t, r, 201, "")
		paid := r.JSON(t)
		fs.checkoutSandbox(paid, "wallet_success")
		res.payment = num(paid["id"])
		r = fs.post("/api/payments", who.Token, map[string]any{"bill_id": res.bill, "amount": res.billTotal, "method": "upi"}, newKey())
		want(t, r, 201, "")
		res.order = r.JSON(t)["provider_order_id"].(string)
		r = fs.post("/api/payment-methods", who.Token, map[string]any{"provider": "sandbox", "method": "upi", "token": "sbx_tok_upi_success"}, "")
		want(t, r, 201, "")
		res.method = num(r.JSON(t)["id"])
		res.alert, res.notification, res.device = alerts[target].alert, alerts[target].notification, alerts[target].device
		// A pending connection: its meter number names no meter yet.
		serial := fmt.Sprintf("SPARE-%d", next())
		r = fs.do("POST", "/api/users/properties", who.Token, map[string]any{"address": map[string]any{"line1": "3 Test Road", "city": "Pune", "postal_code": "411001"},
			"meter_number": serial, "tariff_plan": "domestic", "sanctioned_load_kw": "5"})
		want(t, r, 201, "")
		res.spareConnection = num(r.JSON(t)["connections"].([]any)[0].(map[string]any)["id"])
		r = fs.do("POST", "/api/meters", w.people[who.Tenant+".official"].Token, map[string]any{"external_id": strings.ToLower(serial), "serial": serial, "model": "sdm120", "protocol": "mqtt"})
		want(t, r, 201, "")
		res.spareMeter = num(r.JSON(t)["meter"].(map[string]any)["id"])
		// The notification's email died (as the engine leaves it after its
		// last attempt), so staff may retry it.
		_, err := fs.pool.Exec(t.Context(), `INSERT INTO notification_deliveries (outbox_id, tenant_id, user_id, channel, reason, status,
				attempts, max_attempts, next_attempt_at, last_error)
			SELECT id, tenant_id, user_id, 'email', 'preference', 'dead', 5, 5, now(), 'smtp: 554 mailbox unavailable' FROM notification_outbox WHERE id = $1`, res.notification)
		must(t, err)
		w.res[target] = res
	}
	return w
}

// call is one request of the matrix: a JSON body, or a url.Values sent
// as a form.
type call struct {
	path string
	body any
}

// fixture returns a request for rt against the target's resources, made
// by caller.
func fixture(rt api.Route, res resources, caller session, w *world) call {
	n := next()
	ids := map[string]int64{"propertyId": res.property, "connectionId": res.connection, "meterId": res.meter, "ticketId": res.ticket, "userId": res.user,
		"billId": res.bill, "runId": res.run, "paymentId": res.payment, "methodId": res.method, "alertId": res.alert,
		"notificationId": res.notification, "deviceId": res.device}
	if strings.HasPrefix(rt.Path, "/api/support/staff/") {
		ids["userId"] = res.staff
	}
	if strings.HasPrefix(rt.Path, "/api/municipal/") {
		ids["connectionId"] = res.sewerage
	}
	if rt.Path == "/api/connections/:connectionId/meter" && res.spareConnection != 0 {
		ids["connectionId"] = res.spareConnection
	}
	path := rt.Path
	for k, v := range ids {
		path = strings.ReplaceAll(path, ":"+k, fmt.Sprint(v))
	}
	key := rt.Method + " " + rt.Path
	switch key {
	case "POST /api/register":
		return call{path, map[string]any{"email": fmt.Sprintf("new%d@example.com", n), "password": password, "name": "New"}}
	case "POST /api/login":
		return call{path, map[string]any{"email": "nobody@example.com", "password": password}}
	case "POST /authenticate":
		return call{path, map[string]any{"username": "nobody@example.com", "password": password}}
	case "POST /api/token/refresh":
		return call{path, map[string]any{"refresh_token": "not-a-token"}}
	case "POST /api/verify-email":
		return call{path, map[string]any{"token": "not-a-token"}}
	case "GET /api/verify-email":
		return call{path + "?token=not-a-token", nil}
	case "POST /api/verify-email/resend":
		return call{path, map[string]any{"email": "nobody@example.com"}}
	case "POST /api/account/password":
		return call{path, map[string]any{"current_password": "not it at all", "new_password": "another long password"}}
	case "POST /api/account/totp/enable":
		return call{path, map[string]any{"code": "000000"}}
	case "POST /api/account/totp/disable":
		return call{path, map[string]any{"password": "wrong", "code": "000000"}}
	case "GET /api/user-profiles":
		return call{fmt.Sprintf("%s?user_id=%d", path, res.user), nil}
	case "PUT /api/user-profiles":
		return call{path, map[string]any{"name": "Renamed"}}
	case "GET /api/users/properties", "GET /api/tickets", "GET /api/meters", "GET /api/admin/users", "GET /api/admin/audit",
		"GET /api/bills", "GET /api/payments", "GET /api/alerts", "GET /api/notifications":
		return call{path + "?limit=5", nil}
	case "POST /api/users/properties":
		body := map[string]any{"address": map[string]any{"line1": "2 Test Road", "city": "Pune", "postal_code": "411001"}, "meter_number": fmt.Sprintf("NEW-%d", n)}
		if caller.ID != res.user {
			body["user_id"] = res.user
		}
		return call{path, body}
	case "POST /api/users/properties/:propertyId/connections":
		return call{path, map[string]any{"service": "water", "water_closets": 1}}
	case "PATCH /api/connections/:connectionId":
		return call{path, map[string]any{"tariff_plan": "domestic-2"}}
	case "PUT /api/connections/:connectionId/meter":
		if res.spareMeter != 0 {
			return call{path, map[string]any{"meter_id": res.spareMeter}}
		}
		return call{path, map[string]any{"meter_id": res.meter}}
	case "POST /api/meters":
		return call{path, map[string]any{"external_id": fmt.Sprintf("n-%d", n), "serial": fmt.Sprintf("N-%d", n), "model": "x", "protocol": "manual"}}
	case "GET /api/usage-data":
		return call{fmt.Sprintf("%s?meter_id=%d", path, res.meter), nil}
	case "POST /api/usage-data":
		return call{path, map[string]any{"connection_id": res.connection, "import_wh": 1_000_000 + 800 + int64(n)}}
	case "GET /api/usage-data/history":
		return call{fmt.Sprintf("%s?connection_id=%d&granularity=hour", path, res.connection), nil}
	case "POST /api/notifications/query", "POST /api/tickets":
		return call{path, map[string]any{"category": "other", "description": "Just a question about the tariff."}}
	case "POST /api/tickets/:ticketId/comments":
		return call{path, map[string]any{"body": "Any news?"}}
	case "POST /api/tickets/:ticketId/status":
		return call{path, map[string]any{"status": "in_progress"}}
	case "POST /api/tickets/:ticketId/assign":
		return call{path, map[string]any{"staff_id": w.people["demo.support"].ID}}
	case "PUT /api/support/staff/me", "PUT /api/support/staff/:userId":
		return call{path, map[string]any{"available": true}}
	case "POST /api/notifications/reminder":
		return call{path, map[string]any{"days_before": 3, "channel": "email"}}
	case "POST /api/admin/users":
		return call{path, map[string]any{"email": fmt.Sprintf("staff%d@example.com", n), "password": password, "role": "support", "name": "S"}}
	case "PATCH /api/admin/users/:userId":
		return call{path, map[string]any{"unlock": true}}

	// Billing.
	case "POST /api/billing/tariffs": // a new version each time, in force far ahead
		return call{path, map[string]any{"service": "sewerage", "plan": "pb-sewerage", "version": fmt.Sprintf("m%d", n),
			"effective_from": time.Date(2030, 1, 1+n, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), "document": w.sewerage}}
	case "POST /api/billing/quote":
		return call{path, map[string]any{"tariff": w.tariff,
			"usage": map[string]any{"period": map[string]any{"from": "2024-05-01", "to": "2024-05-31"}, "import_kwh": "150", "sanctioned_load_kw": "2"}}}
	case "POST /api/billing/runs": // a period before any connection: bills nobody
		return call{path, map[string]any{"service": "sewerage", "period": "2023-01", "issue_date": "2023-02-01"}}

	// Payments.
	case "POST /api/payments":
		return call{path, map[string]any{"bill_id": res.bill, "amount": res.billTotal, "method": "upi"}}
	case "POST /api/payments/:paymentId/confirm":
		return call{path, map[string]any{"sandbox_payment_id": "sbx_pay_matrix", "sandbox_signature": "00"}}
	case "POST /api/payments/:paymentId/refunds":
		return call{path, map[string]any{"amount": "1", "reason": "authorization matrix"}}
	case "POST /api/payment-methods":
		return call{path, map[string]any{"provider": "sandbox", "method": "upi", "token": "sbx_tok_upi_success"}}
	case "GET /sandbox/checkout":
		return call{path + "?order=" + url.QueryEscape(res.order), nil}
	case "POST /sandbox/checkout": // leaving without paying: no webhook
		return call{path, url.Values{"order": {res.order}, "instrument": {"abandon"}}}

	// Alerts and notifications.
	case "PUT /api/alerts/thresholds":
		return call{path, map[string]any{"plan": "domestic", "daily_kwh": 30}}
	case "PUT /api/notifications/preferences":
		return call{path, map[string]any{"event": "*", "channels": []string{"email"}}}
	case "POST /api/notifications/devices":
		return call{path, map[string]any{"platform": "web", "token": fmt.Sprintf("web-push-token-%d-abcdef", n)}}
	case "PUT /api/notifications/policy":
		return call{path, map[string]any{"due_days": []int{3, 1}, "overdue_days": []int{2, 9}, "second_channel_step": 1, "staff_step": 2, "staff_role": "official", "send_at": "09:30"}}
	case "PUT /api/notifications/templates":
		return call{path, map[string]any{"event": "bill.issued", "locale": "en", "source": `{{define "subject"}}Bill {{.P.number}}{{end}}`}}
	case "PUT /api/notifications/branding":
		return call{path, map[string]any{"display_name": "Demo Power", "brand_color": "#336699"}}

	// Water and sewerage.
	case "POST /api/municipal/estimate":
		return call{path, map[string]any{"connection_id": res.sewerage, "date": "2024-05-10"}}
	case "POST /api/municipal/calculate":
		return call{path, map[string]any{"connection_id": res.sewerage, "period": "2024-05"}}
	case "POST /api/municipal/connections/:connectionId/adhoc":
		return call{path, map[string]any{"penalty": "5", "reason": "authorization matrix"}}
	case "PUT /api/municipal/connections/:connectionId/attributes":
		return call{path, map[string]any{"taps": 2, "pipe_size": 15}}
	}
	// Webhooks get a body and no signature; routes with an empty body
	// (acknowledge, resolve, fee-demand) take {}.
	if rt.Body != nil {
		return call{path, map[string]any{}}
	}
	return call{path, nil}
}

// resourceRoute reports whether the route reaches a specific record
// (by path or by an id in the query or body), so it is tried against
// other owners' and other tenants' records too.
func resourceRoute(rt api.Route) bool {
	if strings.Contains(rt.Path, ":") && rt.Path != "/api/support/staff/me" {
		return true
	}
	switch rt.Method + " " + rt.Path {
	case "GET /api/user-profiles", "GET /api/usage-data", "POST /api/usage-data", "GET /api/usage-data/history",
		"POST /api/payments", "POST /api/municipal/estimate", "POST /api/municipal/calculate":
		return true
	}
	return false
}

// otherAnswer is what an allowed caller, in scope, may get from a route
// instead of a success: the problem codes, and why. only: the matrix's
// fixture never succeeds (the route's success is tested elsewhere).
type otherAnswer struct {
	codes []string
	only  bool
	why   string
}

// otherAnswers are the matrix's expected refusals that are not about
// authorization. Every route not listed with only must succeed (2xx) for
// at least one allowed caller, so a route added to the table without a
// fixture fails the matrix.
var otherAnswers = map[string]otherAnswer{
	// A success would change the caller's credentials or sessions under
	// the rest of the matrix; e2e_test.go and portal tests walk them.
	"POST /api/login":                {codes: []string{"InvalidCredentials"}, only: true, why: "an unknown address"},
	"POST /authenticate":             {codes: []string{"InvalidCredentials"}, only: true, why: "an unknown address"},
	"POST /api/token/refresh":        {codes: []string{"Unauthenticated"}, only: true, why: "not a refresh token"},
	"POST /api/verify-email":         {codes: []string{"InvalidToken"}, only: true, why: "not a verification token"},
	"GET /api/verify-email":          {codes: []string{"InvalidToken"}, only: true, why: "not a verification token"},
	"POST /api/account/password":     {codes: []string{"InvalidCredentials"}, only: true, why: "the wrong current password"},
	"POST /api/account/totp/enable":  {codes: []string{"InvalidInput"}, only: true, why: "not the authenticator's code"},
	"POST /api/account/totp/disable": {codes: []string{"InvalidCredentials"}, only: true, why: "the wrong password"},
	// Public by signature: an unsigned delivery is refused, not
	// unauthenticated; signed ones are in the payment tests.
	"POST /api/webhooks/razorpay": {codes: []string{"InvalidSignature"}, only: true, why: "unsigned"},
	"POST /api/webhooks/stripe":   {codes: []string{"InvalidSignature"}, only: true, why: "unsigned"},
	"POST /api/webhooks/sandbox":  {codes: []string{"InvalidSignature"}, only: true, why: "unsigned"},
	"POST /api/payments/:paymentId/confirm": {codes: []string{"InvalidSignature"}, only: true,
		why: "a made-up checkout signature; TestPaymentRequirementCases confirms with a real one"},
	// The first allowed caller changes the record; the next ones find it
	// changed.
	"POST /api/users/properties/:propertyId/connections": {codes: []string{"Conflict"}, why: "the property has its water connection already"},
	"PUT /api/connections/:connectionId/meter":           {codes: []string{"Conflict"}, why: "the spare meter is installed already"},
	"POST /api/tickets/:ticketId/status":                 {codes: []string{"Conflict"}, why: "in progress already, or a step consumers may not take"},
	"POST /api/alerts/:alertId/acknowledge":              {codes: []string{"Conflict"}, why: "acknowledged or resolved already"},
	"POST /api/alerts/:alertId/resolve":                  {codes: []string{"Conflict"}, why: "resolved already"},
	"POST /api/notifications/:notificationId/retry":      {codes: []string{"Conflict"}, why: "no dead delivery left"},
	"POST /api/usage-data": {codes: []string{"InvalidReading"},
		why: "readings moments apart rise faster than the connection can draw"},
}

// TestAuthorizationMatrix calls every route of the full permission table
// (every service mounted) as every role (and anonymously), on the caller's
// own records, another consumer's records in the same tenant, and another
// tenant's records, and checks the answer the table declares: 401 without
// a token, 403 for a role (or an official's department) the route does not
// allow, 404 for records outside the caller's scope, never a server error,
// and otherwise a success or a refusal listed in otherAnswers. Every
// answer is checked against the OpenAPI document by stack.do.
func TestAuthorizationMatrix(t *testing.T) {
	fs := newFullStack(t)
	s := fs.stack
	w := fullWorld(t, fs)
	callers := []string{"anonymous", "demo.consumer", "demo.official", "demo.official-billing", "demo.support", "demo.admin"}
	checked := 0
	succeeded := map[string]bool{}
	for _, rt := range s.routes {
		key := rt.Method + " " + rt.Path
		for _, who := range callers {
			caller := w.people[who]
			if key == "POST /api/logout" && who != "anonymous" {
				caller = s.login(caller.Tenant, caller.Email) // a session of its own to end
			}
			p := account.Principal{}
			if who != "anonymous" {
				st, err := s.svc.Accounts.Authenticate(t.Context(), caller.Token)
				must(t, err)
				p = st
			}
			targets := []string{"own"}
			if resourceRoute(rt) {
				targets = []string{"own", "peer", "foreign"}
			}
			for _, target := range targets {
				name := fmt.Sprintf("%s %s as %s on %s", rt.Method, rt.Path, who, target)
				t.Run(name, func(t *testing.T) {
					s.t = t
					c := fixture(rt, w.res[target], caller, w)
					if strings.Contains(c.path, "/:") {
						t.Fatalf("the fixture has no id for %s", c.path)
					}
					var header []string
					for _, h := range rt.Headers {
						if h.Name == "Idempotency-Key" {
							header = append(header, h.Name, newKey())
						}
					}
					var r resp
					if form, ok := c.body.(url.Values); ok {
						hdr := http.Header{}
						if caller.Token != "" {
							hdr.Set("Authorization", "Bearer "+caller.Token)
						}
						r = fs.raw(rt.Method, c.path, "", "application/x-www-form-urlencoded", []byte(form.Encode()), hdr)
					} else {
						r = s.do(rt.Method, c.path, caller.Token, c.body, header...)
					}
					checked++
					// A record only its owner reaches (a device, a saved
					// method) is out of everyone else's scope.
					outside := target == "foreign" || (target == "peer" && p.Role == account.RoleConsumer) ||
						(rt.Owner == account.OwnerSelf && resourceRoute(rt) && who != matrixOwners[target])
					switch {
					case who == "anonymous" && !rt.Public():
						want(t, r, 401, "Unauthenticated")
					case !rt.Allows(p):
						want(t, r, 403, "UnauthorizedAccess")
					case r.Code() == "Unauthenticated" && !rt.Public() || r.Code() == "UnauthorizedAccess":
						t.Fatalf("allowed caller refused: %d %s", r.Status, r.Body)
					case r.Status >= 500:
						t.Fatalf("server error %d %s", r.Status, r.Body)
					case outside:
						if r.Status != 404 {
							t.Fatalf("reached a record outside its scope: %d %s", r.Status, r.Body)
						}
					case r.Status == 404:
						t.Fatalf("own record not found: %s", r.Body)
					case r.Status >= 300:
						if !slices.Contains(otherAnswers[key].codes, r.Code()) {
							t.Fatalf("answered %d %s, which otherAnswers does not list for the route:\n%s", r.Status, r.Code(), r.Body)
						}
					default:
						succeeded[key] = true
					}
				})
			}
		}
	}
	s.t = t
	// A route without a working fixture fails here.
	for _, rt := range s.routes {
		key := rt.Method + " " + rt.Path
		switch oa, listed := otherAnswers[key]; {
		case listed && oa.only && succeeded[key]:
			t.Errorf("%s succeeds now: drop only from its otherAnswers entry", key)
		case (!listed || !oa.only) && !succeeded[key]:
			t.Errorf("%s: no allowed caller got a success; give it a fixture (or list it in otherAnswers, only, with the reason)", key)
		}
	}
	for key := range otherAnswers {
		if !slices.ContainsFunc(s.routes, func(rt api.Route) bool { return rt.Method+" "+rt.Path == key }) {
			t.Errorf("otherAnswers lists %s, which is not in the table", key)
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d calls checked", checked)
	}
	t.Logf("%d route × caller × target calls checked (%d routes)", checked, len(s.routes))

	// The document names every route's roles and departments.
	paths := s.doc["paths"].(map[string]any)
	for _, rt := range s.routes {
		tmpl := regexp.MustCompile(`:(\w+)`).ReplaceAllString(rt.Path, "{$1}")
		op := paths[tmpl].(map[string]any)[strings.ToLower(rt.Method)].(map[string]any)
		if got, want := fmt.Sprint(op["x-meterd-roles"]), fmt.Sprint(rt.Roles); got != want {
			t.Errorf("%s %s: document names roles %s, the table %s", rt.Method, rt.Path, got, want)
		}
		if got, want := fmt.Sprint(op["x-meterd-official-departments"]), fmt.Sprint(rt.Departments); len(rt.Departments) > 0 && got != want {
			t.Errorf("%s %s: document names departments %s, the table %s", rt.Method, rt.Path, got, want)
		}
	}

	// Lists never show other owners' or other tenants' records.
	listIDs := func(tok, path, field string) map[int64]bool {
		r := s.do("GET", path, tok, nil)
		want(t, r, 200, "")
		out := map[int64]bool{}
		for _, it := range r.JSON(t)["items"].([]any) {
			out[num(it.(map[string]any)[field])] = true
		}
		return out
	}
	own, peer, foreign := w.res["own"], w.res["peer"], w.res["foreign"]
	consumer, official, support, admin := w.people["demo.consumer"].Token, w.people["demo.official"].Token, w.people["demo.support"].Token, w.people["demo.admin"].Token
	biller := w.people["demo.official-billing"].Token
	for _, c := range []struct {
		name        string
		ids         map[int64]bool
		must, never []int64
	}{
		{"consumer's properties", listIDs(consumer, "/api/users/properties?limit=200", "id"), []int64{own.property}, []int64{peer.property, foreign.property}},
		{"consumer's tickets", listIDs(consumer, "/api/tickets?limit=200", "id"), []int64{own.ticket}, []int64{peer.ticket, foreign.ticket}},
		{"consumer's meters", listIDs(consumer, "/api/usage-data?limit=200", "meter_id"), []int64{own.meter}, []int64{peer.meter, foreign.meter}},
		{"official's properties", listIDs(official, "/api/users/properties?limit=200", "id"), []int64{own.property, peer.property}, []int64{foreign.property}},
		{"official's meters", listIDs(official, "/api/meters?limit=200", "id"), []int64{own.meter, peer.meter}, []int64{foreign.meter}},
		{"support's tickets", listIDs(support, "/api/tickets?limit=200", "id"), []int64{own.ticket, peer.ticket}, []int64{foreign.ticket}},
		{"admin's users", listIDs(admin, "/api/admin/users?limit=200", "id"), []int64{own.user, peer.user}, []int64{foreign.user}},
		{"support staff", listIDs(support, "/api/support/staff", "user_id"), []int64{own.staff}, []int64{foreign.staff}},
		{"consumer's bills", listIDs(consumer, "/api/bills?limit=200", "id"), []int64{own.bill}, []int64{peer.bill, foreign.bill}},
		{"support's bills", listIDs(support, "/api/bills?limit=200", "id"), []int64{own.bill, peer.bill}, []int64{foreign.bill}},
		{"official's bill runs", listIDs(biller, "/api/billing/runs", "id"), []int64{own.run}, []int64{foreign.run}},
		{"consumer's payments", listIDs(consumer, "/api/payments?limit=200", "id"), []int64{own.payment}, []int64{peer.payment, foreign.payment}},
		{"support's payments", listIDs(support, "/api/payments?limit=200", "id"), []int64{own.payment, peer.payment}, []int64{foreign.payment}},
		{"consumer's payment methods", listIDs(w.people["demo.peer"].Token, "/api/payment-methods", "id"), []int64{peer.method}, []int64{own.method, foreign.method}},
		{"consumer's alerts", listIDs(consumer, "/api/alerts?limit=200", "id"), []int64{own.alert}, []int64{peer.alert, foreign.alert}},
		{"official's alerts", listIDs(official, "/api/alerts?limit=200", "id"), []int64{own.alert, peer.alert}, []int64{foreign.alert}},
		{"consumer's notifications", listIDs(consumer, "/api/notifications?limit=200", "id"), []int64{own.notification}, []int64{peer.notification, foreign.notification}},
		{"admin's notifications", listIDs(admin, "/api/notifications?limit=200", "id"), []int64{own.notification, peer.notification}, []int64{foreign.notification}},
		{"consumer's devices", listIDs(w.people["demo.peer"].Token, "/api/notifications/devices", "id"), []int64{peer.device}, []int64{own.device, foreign.device}},
	} {
		for _, id := range c.must {
			if !c.ids[id] {
				t.Errorf("%s: %d missing", c.name, id)
			}
		}
		for _, id := range c.never {
			if c.ids[id] {
				t.Errorf("%s: shows %d, which is out of scope", c.name, id)
			}
		}
	}
	r := s.do("GET", "/api/admin/audit?limit=200", admin, nil)
	for _, it := range r.JSON(t)["items"].([]any) {
		e := it.(map[string]any)
		if e["entity_type"] == "user" && e["entity_id"] == fmt.Sprint(foreign.user) {
			t.Errorf("audit log shows another tenant's user: %v", e)
		}
	}
}

// TestRejectedTokens checks that only tokens this server issued, unexpired,
// for this audience, signed with HS256 and a known key, of a live session,
// are accepted.
func TestRejectedTokens(t *testing.T) {
	s := newStack(t)
	u := s.register("demo", "t@example.com", "T")
	good, err := s.svc.Accounts.Authenticate(t.Context(), u.Token)
	must(t, err)
	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "meterd", "aud": "meterd-api", "sub": fmt.Sprint(good.UserID), "tid": good.TenantID,
			"role": "admin", "sid": good.SessionID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
		tok := jwt.NewWithClaims(m, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		str, err := tok.SignedString(key)
		must(t, err)
		return str
	}
	parts := strings.Split(u.Token, ".")
	var payload map[string]any
	raw, _ := jwt.NewParser().DecodeSegment(parts[1])
	must(t, json.Unmarshal(raw, &payload))
	payload["role"] = "admin"
	forgedBody, _ := json.Marshal(payload)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forgedBody) + "." + parts[2]

	// A control token made the same way is accepted (as the role it names):
	// the failures below fail for their stated reason.
	control := sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(nil), jwtKey.ID)
	want(t, s.do("GET", "/hello", control, nil), 200, "")

	for _, tt := range []struct {
		name  string
		token string
	}{
		{"forged payload (role raised, signature of the original)", forged},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), jwtKey.ID)},
		{"HS512 with the right key", sign(jwt.SigningMethodHS512, jwtKey.Secret, claims(nil), jwtKey.ID)},
		{"wrong key", sign(jwt.SigningMethodHS256, []byte("another key of thirty-two bytes!"), claims(nil), jwtKey.ID)},
		{"unknown key id", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(nil), "test-9")},
		{"expired", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), jwtKey.ID)},
		{"wrong audience", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["aud"] = "payments" }), jwtKey.ID)},
		{"wrong issuer", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["iss"] = "someone" }), jwtKey.ID)},
		{"another user's session", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["sub"] = "999" }), jwtKey.ID)},
		{"other tenant claimed", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["tid"] = good.TenantID + 1 }), jwtKey.ID)},
		{"no such session", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["sid"] = 424242 }), jwtKey.ID)},
		{"malformed", "abc.def"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.t = t
			for _, path := range []string{"/hello", "/api/me", "/api/usage-data"} {
				want(t, s.do("GET", path, tt.token, nil), 401, "Unauthenticated")
			}
		})
	}
	s.t = t
	// The control token named the admin role, but the session's user is a
	// consumer: the role comes from the session, not the token.
	want(t, s.do("GET", "/api/admin/users", control, nil), 403, "UnauthorizedAccess")
	// Revoked sessions end their tokens.
	want(t, s.do("POST", "/api/logout", u.Token, nil), 204, "")
	want(t, s.do("GET", "/hello", u.Token, nil), 401, "Unauthenticated")
	want(t, s.do("GET", "/hello", control, nil), 401, "Unauthenticated")
}
