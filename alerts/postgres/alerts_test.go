package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/internal/fixture"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/alerts/reminder"
	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/deploy/schema/schematest"
	metermodel "github.com/meterd/meterd/meter"
)

func TestMain(m *testing.M) { schematest.Main(m) }

func outboxEvents(t *testing.T, s interface {
	Notifications(context.Context, alertspg.Scope, alerts.NotificationFilter) ([]alerts.Notification, error)
}, tenant int64) map[string]int {
	t.Helper()
	list, err := s.Notifications(context.Background(), alertspg.Scope{TenantID: tenant}, alerts.NotificationFilter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, n := range list {
		out[n.Event]++
	}
	return out
}

// An alert opens once per meter and kind (enforced by the database), tells
// the consumer about their usage and the metering staff about the device,
// is updated by later detections, resolves itself when the condition
// clears (tamper never does), and moves through acknowledged and resolved
// by people, audited.
func TestAlertLifecycle(t *testing.T) {
	ctx := context.Background()
	pool := schematest.New(t)
	st := alertspg.New(pool)
	tenant := fixture.Tenant(t, pool, "Asia/Kolkata")
	consumer := fixture.NewUser(t, pool, tenant, fixture.User{})
	other := fixture.NewUser(t, pool, tenant, fixture.User{})
	metering := fixture.NewUser(t, pool, tenant, fixture.User{Role: "official", Department: "metering"})
	fixture.NewUser(t, pool, tenant, fixture.User{Role: "official", Department: "billing"})
	meter := fixture.Meter(t, pool, tenant, "m-1")
	conn, code := fixture.NewConnection(t, pool, tenant, fixture.Connection{UserID: consumer, Plan: "domestic", MeterID: meter})
	now := time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)
	day := time.Date(2026, 3, 9, 18, 30, 0, 0, time.UTC)

	usage := alerts.Finding{TenantID: tenant, MeterID: meter, Kind: alerts.KindConsumptionThreshold, Severity: alerts.SeverityWarning, At: day,
		Summary: "41.2 kWh used", Observed: 41.2, Expected: 20, Unit: "kWh", Evidence: map[string]any{"span": "day"}}
	tamper := alerts.Finding{TenantID: tenant, MeterID: meter, Kind: alerts.KindTamper, Severity: alerts.SeverityCritical, At: day, Summary: "register back"}
	opened, err := st.Apply(ctx, now, []alerts.Finding{usage, tamper}, nil)
	if err != nil || opened != 2 {
		t.Fatalf("opened %d, %v", opened, err)
	}
	// Detected again the next day: updated, not a second alert, no second message.
	usage.At, usage.Observed = day.Add(24*time.Hour), 44
	if opened, err := st.Apply(ctx, now.Add(24*time.Hour), []alerts.Finding{usage}, nil); err != nil || opened != 0 {
		t.Fatalf("re-detection opened %d, %v", opened, err)
	}
	list, err := st.Alerts(ctx, alerts.AlertFilter{TenantID: tenant})
	if err != nil || len(list) != 2 {
		t.Fatalf("alerts %d, %v", len(list), err)
	}
	var u, tp alerts.Alert
	for _, a := range list {
		switch a.Kind {
		case alerts.KindConsumptionThreshold:
			u = a
		case alerts.KindTamper:
			tp = a
		}
	}
	if u.Occurrences != 2 || u.Observed != 44 || !u.FirstSeenAt.Equal(day) || !u.LastSeenAt.Equal(day.Add(24*time.Hour)) ||
		u.UserID != consumer || u.ConnectionID != conn || u.ConsumerCode != code || u.MeterRef != "m-1" || u.Status != alerts.StatusOpen {
		t.Fatalf("usage alert %+v", u)
	}
	ev := outboxEvents(t, st, tenant)
	if ev[alerts.EventUsageAbnormal] != 1 || ev[alerts.EventMeterAlert] != 1 {
		t.Fatalf("notifications %v: want the consumer told of the usage and the metering official of the tamper", ev)
	}
	var toStaff int64
	if err := pool.QueryRow(ctx, `SELECT user_id FROM notification_outbox WHERE event = 'meter.alert'`).Scan(&toStaff); err != nil || toStaff != metering {
		t.Fatalf("meter alert went to %d, want the metering official %d (%v)", toStaff, metering, err)
	}

	// The database refuses a second unresolved alert of a kind.
	_, err = pool.Exec(ctx, `INSERT INTO alerts (tenant_id, meter_id, kind, severity, summary, first_seen_at, last_seen_at, opened_at, updated_at)
		VALUES ($1, $2, 'tamper', 'critical', 'again', now(), now(), now(), now())`, tenant, meter)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		t.Fatalf("second open tamper alert: %v, want a unique violation", err)
	}

	// A consumer sees only their own alerts.
	if mine, _ := st.Alerts(ctx, alerts.AlertFilter{TenantID: tenant, UserID: other}); len(mine) != 0 {
		t.Fatalf("another consumer sees %d alerts", len(mine))
	}
	if _, err := st.Alert(ctx, tenant, other, u.ID); !errors.Is(err, alerts.ErrAlertNotFound) {
		t.Fatalf("another consumer's alert: %v", err)
	}

	// Clears: the usage alert resolves itself, the tamper alert does not;
	// a clear older than the last detection changes nothing.
	if _, err := st.Apply(ctx, now, nil, []alerts.Clear{{TenantID: tenant, MeterID: meter, Kind: alerts.KindConsumptionThreshold, At: day}}); err != nil {
		t.Fatal(err)
	}
	if a, _ := st.Alert(ctx, tenant, 0, u.ID); a.Status != alerts.StatusOpen {
		t.Fatalf("a stale clear resolved the alert: %s", a.Status)
	}
	clears := []alerts.Clear{{TenantID: tenant, MeterID: meter, Kind: alerts.KindConsumptionThreshold, At: day.Add(48 * time.Hour)},
		{TenantID: tenant, MeterID: meter, Kind: alerts.KindTamper, At: day.Add(48 * time.Hour)}}
	if _, err := st.Apply(ctx, now.Add(48*time.Hour), nil, clears); err != nil {
		t.Fatal(err)
	}
	if a, _ := st.Alert(ctx, tenant, 0, u.ID); a.Status != alerts.StatusResolved || a.Resolution != "auto" {
		t.Fatalf("usage alert after its clear: %+v", a)
	}
	if a, _ := st.Alert(ctx, tenant, 0, tp.ID); a.Status != alerts.StatusOpen {
		t.Fatalf("tamper alert resolved by itself: %s", a.Status)
	}
	// Once resolved, a new detection opens a new alert and a new message.
	usage.At = day.Add(72 * time.Hour)
	if opened, err := st.Apply(ctx, now.Add(72*time.Hour), []alerts.Finding{usage}, nil); err != nil || opened != 1 {
		t.Fatalf("after resolution: opened %d, %v", opened, err)
	}
	if ev := outboxEvents(t, st, tenant); ev[alerts.EventUsageAbnormal] != 2 {
		t.Fatalf("notifications %v", ev)
	}

	// People: the consumer acknowledges their alert; staff resolve the
	// tamper; a resolved alert cannot be acknowledged.
	actor := alertspg.Actor{UserID: metering, Role: "official"}
	if _, err := st.Transition(ctx, tenant, other, tp.ID, alerts.StatusAcknowledged, "", now, alertspg.Actor{UserID: other}); !errors.Is(err, alerts.ErrAlertNotFound) {
		t.Fatalf("another consumer acknowledged: %v", err)
	}
	a, err := st.Transition(ctx, tenant, 0, tp.ID, alerts.StatusAcknowledged, "site visit booked", now, actor)
	if err != nil || a.Status != alerts.StatusAcknowledged || a.AcknowledgedBy != metering || a.Note != "site visit booked" {
		t.Fatalf("acknowledge: %+v %v", a, err)
	}
	if a, err = st.Transition(ctx, tenant, 0, tp.ID, alerts.StatusResolved, "seal replaced", now, actor); err != nil || a.Status != alerts.StatusResolved || a.Resolution != "manual" {
		t.Fatalf("resolve: %+v %v", a, err)
	}
	if _, err := st.Transition(ctx, tenant, 0, tp.ID, alerts.StatusAcknowledged, "", now, actor); !errors.Is(err, alerts.ErrInvalidTransition) {
		t.Fatalf("acknowledging a resolved alert: %v", err)
	}
	var audits int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE entity_type = 'alert' AND actor_user_id = $1`, metering).Scan(&audits); err != nil || audits != 2 {
		t.Fatalf("audited %d, %v", audits, err)
	}
}

// The reminder source reads open bills from billing's table with the
// amount still due, and settled bills are settled.
func TestReminderSource(t *testing.T) {
	ctx := context.Background()
	pool := schematest.New(t)
	st := alertspg.New(pool)
	tenant := fixture.Tenant(t, pool, "America/New_York")
	consumer := fixture.NewUser(t, pool, tenant, fixture.User{})
	conn, code := fixture.NewConnection(t, pool, tenant, fixture.Connection{UserID: consumer, Plan: "domestic"})
	open := fixture.Bill(t, pool, fixture.BillRow{TenantID: tenant, ConnectionID: conn, UserID: consumer, ConsumerCode: code, Due: "2026-03-10", Total: "120.50", Paid: "20.50", Status: "partially_paid"})
	paid := fixture.Bill(t, pool, fixture.BillRow{TenantID: tenant, ConnectionID: conn, UserID: consumer, ConsumerCode: code, Due: "2026-03-12", Total: "80", Paid: "80", Status: "paid"})
	bills, err := st.OpenBills(ctx, tenant, billing.NewDate(2026, 3, 1), billing.NewDate(2026, 3, 31))
	if err != nil || len(bills) != 1 {
		t.Fatalf("open bills %+v, %v", bills, err)
	}
	b := bills[0]
	if b.ID != open || b.AmountDue != "100.00" || b.DueDate.String() != "2026-03-10" || b.UserID != consumer || b.ConsumerCode != code || b.Currency != "INR" {
		t.Fatalf("bill %+v", b)
	}
	for id, want := range map[int64]bool{open: false, paid: true, 999999: true} {
		if got, err := st.BillSettled(ctx, tenant, id); err != nil || got != want {
			t.Errorf("BillSettled(%d) = %v, %v; want %v", id, got, err, want)
		}
	}
	tenants, err := st.Tenants(ctx)
	if err != nil || len(tenants) != 1 || tenants[0].Zone.String() != "America/New_York" || tenants[0].Policy.SendAt != reminder.DefaultPolicy().SendAt {
		t.Fatalf("tenants %+v %v", tenants, err)
	}
	p := reminder.Policy{DueDays: []int{5, 2}, OverdueDays: []int{3, 10}, SecondChannelStep: 1, StaffStep: 2, StaffRole: "support", SendAt: 9*60 + 30}
	if err := st.SetPolicy(ctx, tenant, p, time.Now(), alertspg.Actor{Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Policy(ctx, tenant); err != nil || got.SendAt != 9*60+30 || len(got.DueDays) != 2 || got.StaffRole != "support" || got.StaffStep != 2 {
		t.Fatalf("policy %+v %v", got, err)
	}
	// Enqueueing the same notice twice writes it once.
	n := reminder.Notice{TenantID: tenant, UserID: consumer, Event: alerts.EventBillDueSoon, Payload: map[string]any{"bill_id": open}, DedupeKey: "bill_due:x:1", Due: time.Now()}
	for want := 1; want >= 0; want-- {
		if got, err := st.Enqueue(ctx, []reminder.Notice{n}); err != nil || got != want {
			t.Fatalf("enqueue: %d, %v; want %d", got, err, want)
		}
	}
}

// A water meter is scanned as one (its findings speak litres) and its
// alert's message names the meter kind, so templates say water.
func TestWaterMeterAlert(t *testing.T) {
	ctx := context.Background()
	pool := schematest.New(t)
	st := alertspg.New(pool)
	tenant := fixture.Tenant(t, pool, "Asia/Kolkata")
	consumer := fixture.NewUser(t, pool, tenant, fixture.User{})
	m := fixture.Meter(t, pool, tenant, "w-1")
	fixture.NewConnection(t, pool, tenant, fixture.Connection{UserID: consumer, Plan: "domestic", MeterID: m})
	if _, err := pool.Exec(ctx, `UPDATE meters SET model = 'water-litre' WHERE id = $1`, m); err != nil {
		t.Fatal(err)
	}
	meters, err := st.Meters(ctx, tenant)
	if err != nil || len(meters) != 1 || meters[0].Kind != metermodel.KindWater {
		t.Fatalf("meters %+v, %v", meters, err)
	}
	f := alerts.Finding{TenantID: tenant, MeterID: m, Kind: alerts.KindConsumptionThreshold, Severity: alerts.SeverityWarning,
		At: time.Date(2026, 3, 9, 18, 30, 0, 0, time.UTC), Summary: "1.2 kL used", Observed: 1.2, Expected: 1, Unit: "kL"}
	if _, err := st.Apply(ctx, time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC), []alerts.Finding{f}, nil); err != nil {
		t.Fatal(err)
	}
	var kind, unit string
	if err := pool.QueryRow(ctx, `SELECT payload->>'meter_kind', payload->>'unit' FROM notification_outbox WHERE event = $1`, alerts.EventUsageAbnormal).Scan(&kind, &unit); err != nil {
		t.Fatal(err)
	}
	if kind != "water" || unit != "kL" {
		t.Errorf("payload meter_kind %q unit %q, want water and kL", kind, unit)
	}
}
