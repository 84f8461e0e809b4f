package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/alerts/service"
	"github.com/meterd/meterd/alerts/template"
	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/keyring"
)

// alertsStack is newStack with the alert and notification routes mounted
// (alerts/service on alerts/postgres, tokens sealed with the field key).
func alertsStack(t *testing.T) (*stack, *alertspg.Store) {
	t.Helper()
	w := newWiring(t, nil)
	svc := w.services()
	svc.Usage = w.usage(t)
	store := alertspg.New(w.pool)
	svc.Notifications = notifications(t, store, w.ring)
	return w.serve(t, "127.0.0.1:0", svc), store
}

// notifications is alerts/service on store, push tokens sealed with ring.
func notifications(t testing.TB, store *alertspg.Store, ring *keyring.Ring) *service.Service {
	t.Helper()
	tpl, err := template.New()
	must(t, err)
	return service.New(store, ring, tpl, nil)
}

// alertResources are, per target, an alert on the owner's meter, a
// notification to the owner and a push device of the owner.
type alertResources struct{ alert, notification, device int64 }

// alertWorld adds alerts, notifications and devices to buildWorld's
// owners.
func alertWorld(t *testing.T, s *stack, store *alertspg.Store, w *world) map[string]alertResources {
	ctx := context.Background()
	owners := map[string]string{"own": "demo.consumer", "peer": "demo.peer", "foreign": "other.consumer"}
	out := map[string]alertResources{}
	for target, owner := range owners {
		res := w.res[target]
		var tenant int64
		must(t, s.pool.QueryRow(ctx, `SELECT tenant_id FROM meters WHERE id = $1`, res.meter).Scan(&tenant))
		// The meter on the owner's connection (the API's meter number alone
		// does not install it).
		_, err := s.pool.Exec(ctx, `INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at)
			SELECT $1, $2, $3, now() - interval '30 days'
			WHERE NOT EXISTS (SELECT 1 FROM meter_installations WHERE meter_id = $3 AND removed_at IS NULL)`, tenant, res.connection, res.meter)
		must(t, err)
		_, err = store.Apply(ctx, time.Now(), []alerts.Finding{{TenantID: tenant, MeterID: res.meter, Kind: alerts.KindConsumptionThreshold,
			Severity: alerts.SeverityWarning, At: time.Now().Add(-24 * time.Hour), Summary: "41 kWh used, above the daily threshold of 20 kWh",
			Observed: 41, Expected: 20, Unit: "kWh"}}, nil)
		must(t, err)
		var a, n int64
		must(t, s.pool.QueryRow(ctx, `SELECT id FROM alerts WHERE meter_id = $1`, res.meter).Scan(&a))
		must(t, s.pool.QueryRow(ctx, `SELECT id FROM notification_outbox WHERE user_id = $1 ORDER BY id DESC LIMIT 1`, res.user).Scan(&n))
		r := s.do("POST", "/api/notifications/devices", w.people[owner].Token, map[string]any{"platform": "android", "token": fmt.Sprintf("fcm-token-of-%s-0123456789", target)})
		want(t, r, 201, "")
		out[target] = alertResources{alert: a, notification: n, device: num(r.JSON(t)["id"])}
	}
	return out
}

// TestAlertRoutesAuthorization calls every alert and notification route as
// every role, on the caller's own records, a peer consumer's and another
// tenant's, and checks what the permission table declares, as
// TestAuthorizationMatrix does for the other routes.
func TestAlertRoutesAuthorization(t *testing.T) {
	s, store := alertsStack(t)
	w := buildWorld(t, s)
	ar := alertWorld(t, s, store, w)
	callers := []string{"anonymous", "demo.consumer", "demo.official", "demo.official-billing", "demo.support", "demo.admin"}
	checked := 0
	for _, rt := range s.routes {
		mine := strings.HasPrefix(rt.Path, "/api/alerts") ||
			strings.HasPrefix(rt.Path, "/api/notifications") && rt.Path != "/api/notifications/reminder" && rt.Path != "/api/notifications/query"
		if !mine {
			continue
		}
		for _, who := range callers {
			caller := w.people[who]
			p := account.Principal{}
			if who != "anonymous" {
				st, err := s.svc.Accounts.Authenticate(t.Context(), caller.Token)
				must(t, err)
				p = st
			}
			targets := []string{"own"}
			if strings.Contains(rt.Path, ":") {
				targets = []string{"own", "peer", "foreign"}
			}
			for _, target := range targets {
				t.Run(fmt.Sprintf("%s %s as %s on %s", rt.Method, rt.Path, who, target), func(t *testing.T) {
					s.t = t
					res := ar[target]
					path := strings.NewReplacer(":alertId", fmt.Sprint(res.alert), ":notificationId", fmt.Sprint(res.notification),
						":deviceId", fmt.Sprint(res.device)).Replace(rt.Path)
					var body any
					switch rt.Method + " " + rt.Path {
					case "PUT /api/alerts/thresholds":
						body = map[string]any{"plan": "domestic", "daily_kwh": 30}
					case "PUT /api/notifications/preferences":
						body = map[string]any{"event": "*", "channels": []string{"email"}}
					case "POST /api/notifications/devices":
						body = map[string]any{"platform": "web", "token": fmt.Sprintf("web-push-token-%d-abcdef", next())}
					case "PUT /api/notifications/policy":
						body = map[string]any{"due_days": []int{3, 1}, "overdue_days": []int{2, 9}, "second_channel_step": 1, "staff_step": 2, "staff_role": "official", "send_at": "09:30"}
					case "PUT /api/notifications/templates":
						body = map[string]any{"event": "bill.issued", "locale": "en", "source": `{{define "subject"}}Bill {{.P.number}}{{end}}`}
					case "PUT /api/notifications/branding":
						body = map[string]any{"display_name": "Demo Power", "brand_color": "#336699"}
					default:
						if rt.Body != nil {
							body = map[string]any{}
						}
					}
					r := s.do(rt.Method, path, caller.Token, body)
					checked++
					switch {
					case who == "anonymous":
						want(t, r, 401, "Unauthenticated")
					case !rt.Allows(p):
						want(t, r, 403, "UnauthorizedAccess")
					case r.Status >= 500:
						t.Fatalf("server error %d %s", r.Status, r.Body)
					case target == "foreign" || (target == "peer" && p.Role == account.RoleConsumer) ||
						(rt.Owner == account.OwnerSelf && strings.Contains(rt.Path, ":") && who != "demo.consumer"):
						// Out of scope; a device is only ever its owner's.
						if r.Status != 404 {
							t.Fatalf("reached a record outside its scope: %d %s", r.Status, r.Body)
						}
					case r.Status == 404:
						t.Fatalf("own record not found: %s", r.Body)
					case r.Status >= 400 && r.Code() != "Conflict":
						t.Fatalf("allowed caller refused: %d %s", r.Status, r.Body)
					}
				})
			}
		}
	}
	s.t = t
	if checked < 150 {
		t.Fatalf("only %d calls checked", checked)
	}
	t.Logf("%d alert/notification route × caller × target calls checked", checked)
	// Lists never show other owners' or other tenants' records.
	for _, c := range []struct {
		who, path string
		must      []int64
		never     []int64
	}{
		{"demo.consumer", "/api/alerts?limit=200", []int64{ar["own"].alert}, []int64{ar["peer"].alert, ar["foreign"].alert}},
		{"demo.official", "/api/alerts?limit=200", []int64{ar["own"].alert, ar["peer"].alert}, []int64{ar["foreign"].alert}},
		{"demo.consumer", "/api/notifications?limit=200", []int64{ar["own"].notification}, []int64{ar["peer"].notification, ar["foreign"].notification}},
		{"demo.admin", "/api/notifications?limit=200", []int64{ar["own"].notification, ar["peer"].notification}, []int64{ar["foreign"].notification}},
	} {
		r := s.do("GET", c.path, w.people[c.who].Token, nil)
		want(t, r, 200, "")
		ids := map[int64]bool{}
		for _, it := range r.JSON(t)["items"].([]any) {
			ids[num(it.(map[string]any)["id"])] = true
		}
		for _, id := range c.must {
			if !ids[id] {
				t.Errorf("%s %s: %d missing", c.who, c.path, id)
			}
		}
		for _, id := range c.never {
			if ids[id] {
				t.Errorf("%s %s: shows %d, out of scope", c.who, c.path, id)
			}
		}
	}
}

// TestAlertRoutes: a consumer sees their usage alert (marked AbnormalUsage),
// acknowledges it, sets preferences and quiet hours, registers a device;
// staff resolve the alert, set thresholds, the reminder policy (an invalid
// one is ReminderSetting), a template (rendered back; a broken one is
// InvalidInput) and branding.
func TestAlertRoutes(t *testing.T) {
	s, store := alertsStack(t)
	w := buildWorld(t, s)
	ar := alertWorld(t, s, store, w)
	consumer, official, billingOfficial, admin := w.people["demo.consumer"].Token, w.people["demo.official"].Token, w.people["demo.official-billing"].Token, w.people["demo.admin"].Token

	r := s.do("GET", "/api/alerts?status=unresolved&kind=consumption_threshold", consumer, nil)
	want(t, r, 200, "")
	items := r.JSON(t)["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("alerts %s", r.Body)
	}
	a := items[0].(map[string]any)
	if a["problem"] != "/problems/AbnormalUsage" || a["status"] != "open" || a["unit"] != "kWh" {
		t.Fatalf("alert %v", a)
	}
	want(t, s.do("GET", "/api/alerts?kind=nonsense", consumer, nil), 400, "InvalidInput")
	r = s.do("POST", fmt.Sprintf("/api/alerts/%d/acknowledge", ar["own"].alert), consumer, map[string]any{"note": "the heater was on"})
	want(t, r, 200, "")
	if r.JSON(t)["status"] != "acknowledged" {
		t.Fatalf("acknowledge: %s", r.Body)
	}
	want(t, s.do("POST", fmt.Sprintf("/api/alerts/%d/resolve", ar["own"].alert), consumer, nil), 403, "UnauthorizedAccess")
	r = s.do("POST", fmt.Sprintf("/api/alerts/%d/resolve", ar["own"].alert), official, map[string]any{"note": "checked"})
	want(t, r, 200, "")
	if r.JSON(t)["status"] != "resolved" || r.JSON(t)["resolution"] != "manual" {
		t.Fatalf("resolve: %s", r.Body)
	}
	want(t, s.do("POST", fmt.Sprintf("/api/alerts/%d/acknowledge", ar["own"].alert), official, nil), 409, "Conflict")

	r = s.do("PUT", "/api/notifications/preferences", consumer, map[string]any{"event": "*", "channels": []string{"email", "push"}, "quiet_hours": map[string]any{"from": "22:00", "to": "07:00"}, "locale": "hi"})
	want(t, r, 200, "")
	r = s.do("PUT", "/api/notifications/preferences", consumer, map[string]any{"event": "ticket.created", "channels": []string{}})
	want(t, r, 200, "")
	prefs := r.JSON(t)["items"].([]any)
	if len(prefs) != 2 || prefs[0].(map[string]any)["locale"] != "hi" || len(prefs[1].(map[string]any)["channels"].([]any)) != 0 {
		t.Fatalf("preferences %s", r.Body)
	}
	want(t, s.do("PUT", "/api/notifications/preferences", consumer, map[string]any{"event": "*", "channels": []string{"fax"}}), 400, "InvalidInput")
	want(t, s.do("PUT", "/api/notifications/preferences", consumer, map[string]any{"event": "*", "quiet_hours": map[string]any{"from": "25:00", "to": "07:00"}}), 400, "InvalidInput")

	r = s.do("GET", "/api/notifications/devices", consumer, nil)
	want(t, r, 200, "")
	if d := r.JSON(t)["items"].([]any); len(d) != 1 || strings.Contains(string(r.Body), "fcm-token-of") {
		t.Fatalf("devices %s (the token must not be shown)", r.Body)
	}
	var sealed []byte
	must(t, s.pool.QueryRow(t.Context(), `SELECT token_enc FROM push_devices WHERE id = $1`, ar["own"].device).Scan(&sealed))
	if strings.Contains(string(sealed), "fcm-token-of") {
		t.Fatal("push token stored in plaintext")
	}
	want(t, s.do("DELETE", fmt.Sprintf("/api/notifications/devices/%d", ar["own"].device), consumer, nil), 204, "")

	r = s.do("GET", fmt.Sprintf("/api/notifications/%d", ar["own"].notification), consumer, nil)
	want(t, r, 200, "")
	if r.JSON(t)["event"] == nil {
		t.Fatalf("notification %s", r.Body)
	}

	r = s.do("PUT", "/api/alerts/thresholds", official, map[string]any{"service": "electricity", "plan": "*", "daily_kwh": 25, "monthly_kwh": 500})
	want(t, r, 200, "")
	r = s.do("GET", "/api/alerts/thresholds", official, nil)
	if th := r.JSON(t)["items"].([]any); len(th) != 1 || th[0].(map[string]any)["daily_kwh"].(float64) != 25 {
		t.Fatalf("thresholds %s", r.Body)
	}
	r = s.do("PUT", "/api/notifications/policy", billingOfficial, map[string]any{"due_days": []int{0}, "overdue_days": []int{1}, "second_channel_step": 1,
		"staff_step": 1, "staff_role": "official", "send_at": "09:00"})
	want(t, r, 400, "ReminderSetting")
	r = s.do("PUT", "/api/notifications/policy", billingOfficial, map[string]any{"due_days": []int{5, 2}, "overdue_days": []int{1, 8}, "second_channel_step": 1,
		"staff_step": 2, "staff_role": "official", "staff_department": "billing", "send_at": "09:00"})
	want(t, r, 200, "")
	if r.JSON(t)["send_at"] != "09:00" {
		t.Fatalf("policy %s", r.Body)
	}
	r = s.do("PUT", "/api/notifications/templates", admin, map[string]any{"event": "bill.issued", "locale": "en", "source": `{{define "subject"}}Invoice {{.P.number}} from {{.Tenant.Name}}{{end}}`})
	want(t, r, 200, "")
	if r.JSON(t)["subject"] != "Invoice ED/2025-26/000123 from Example Power" {
		t.Fatalf("template preview %s", r.Body)
	}
	want(t, s.do("PUT", "/api/notifications/templates", admin, map[string]any{"event": "bill.issued", "locale": "en", "source": `{{define "subject"}}{{.P.number}`}), 400, "InvalidInput")
	r = s.do("PUT", "/api/notifications/branding", admin, map[string]any{"display_name": "Demo Power Ltd", "brand_color": "#aa3300", "support_email": "help@demo.example.com"})
	want(t, r, 200, "")
	if r.JSON(t)["brand_color"] != "#aa3300" {
		t.Fatalf("branding %s", r.Body)
	}
	var audited int
	must(t, s.pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_log WHERE action IN ('alert.acknowledge', 'alert.resolve', 'alert_threshold.set',
		'reminder_policy.set', 'notification_template.set', 'notification_branding.set', 'notification_preference.set')`).Scan(&audited))
	if audited < 8 {
		t.Fatalf("audited %d changes", audited)
	}
}
