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
