package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/usage"
	usagepg "github.com/meterd/meterd/api/usage/postgres"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/meter"
)

func TestMain(m *testing.M) { schematest.Main(m) }

type world struct {
	pool              *pgxpool.Pool
	svc               *usage.Service
	upkeep            *schema.Upkeep
	now               time.Time
	tenant            int64
	consumer, other   account.Actor
	staff             account.Actor
	meter, conn, prop int64
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newWorld builds a tenant with a consumer whose connection has meter 1
// installed from installedAt, and a second consumer.
func newWorld(t *testing.T, installedAt time.Time) *world {
	t.Helper()
	ctx := context.Background()
	pool := schematest.New(t)
	w := &world{pool: pool, now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	st, err := schema.LoadStorage(ctx, pool)
	must(t, err)
	w.upkeep = schema.NewUpkeep(pool, st, schema.UpkeepConfig{})
	svc, err := usage.New(usagepg.New(pool, func(ctx context.Context, from, to time.Time) error {
		_, err := w.upkeep.EnsurePartitions(ctx, from, to)
		return err
	}), usage.Config{Now: func() time.Time { return w.now }})
	must(t, err)
	w.svc = svc
	must(t, pool.QueryRow(ctx, `INSERT INTO tenants (code, name) VALUES ('demo', 'Demo') RETURNING id`).Scan(&w.tenant))
	user := func(email string, role account.Role) account.Actor {
		var id int64
		must(t, pool.QueryRow(ctx, `INSERT INTO users (tenant_id, email, role, department, password_hash)
			VALUES ($1, $2, $3, CASE WHEN $3 = 'official' THEN 'metering' END, '$argon2id$x') RETURNING id`, w.tenant, email, role).Scan(&id))
		return account.Actor{Principal: account.Principal{TenantID: w.tenant, UserID: id, Role: role}}
	}
	w.consumer, w.other, w.staff = user("c@example.com", account.RoleConsumer), user("o@example.com", account.RoleConsumer), user("s@example.com", account.RoleOfficial)
	must(t, pool.QueryRow(ctx, `INSERT INTO properties (tenant_id, user_id, address_enc) VALUES ($1, $2, '\x00') RETURNING id`, w.tenant, w.consumer.UserID).Scan(&w.prop))
	must(t, pool.QueryRow(ctx, `INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, sanctioned_load_kw)
		VALUES ($1, $2, 'electricity', 'E1', 'active', 5) RETURNING id`, w.tenant, w.prop).Scan(&w.conn))
	must(t, pool.QueryRow(ctx, `INSERT INTO meters (tenant_id, external_id, serial, model, protocol, expected_interval)
		VALUES ($1, 'm-1', 'SN1', 'sdm120', 'mqtt', '15 minutes') RETURNING id`, w.tenant).Scan(&w.meter))
	_, err = pool.Exec(ctx, `INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at) VALUES ($1, $2, $3, $4)`,
		w.tenant, w.conn, w.meter, installedAt)
	must(t, err)
	return w
}

func (w *world) scope(a account.Actor) account.Scope {
	return account.OwnerSelfOrTenant.ScopeFor(a.Principal)
}

// readings inserts hourly readings of a register climbing by stepWh each
// hour, from start for n hours, and refreshes the rollups.
func (w *world) readings(t *testing.T, meterID int64, start time.Time, n int, baseWh, stepWh int64) {
	t.Helper()
	ctx := context.Background()
	_, err := w.upkeep.EnsurePartitions(ctx, start, start.Add(time.Duration(n)*time.Hour))
	must(t, err)
	for i := 0; i < n; i++ {
		_, err := w.pool.Exec(ctx, `INSERT INTO readings (meter_id, ts, import_wh, power_w, source) VALUES ($1, $2, $3, $4, 1)`,
			meterID, start.Add(time.Duration(i)*time.Hour), baseWh+int64(i)*stepWh, float32(stepWh))
		must(t, err)
	}
	_, err = w.upkeep.RefreshRollups(ctx)
	must(t, err)
}

func TestHistoryGranularitiesAndScope(t *testing.T) {
	w := newWorld(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	ist, _ := time.LoadLocation("Asia/Kolkata")
	// 3 days of hourly readings from 2026-03-01 00:00 IST, 500 Wh an hour.
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, ist)
	w.readings(t, w.meter, start, 72, 1_000_000, 500)

	day, err := w.svc.History(ctx, w.scope(w.consumer), usage.HistoryQuery{ConnectionID: w.conn, Granularity: usage.Day,
		From: start, To: start.AddDate(0, 0, 3)})
	must(t, err)
	if len(day.Points) != 3 || day.TimeZone != "Asia/Kolkata" {
		t.Fatalf("day series %+v", day)
	}
	// Day 1 has no previous bucket: its in-bucket delta is 23 steps; days
	// 2 and 3 count from the previous day's last reading: 24 steps.
	want := []int64{23 * 500, 24 * 500, 24 * 500}
	for i, p := range day.Points {
		if p.ConsumptionWh != want[i] || !p.Start.Equal(start.AddDate(0, 0, i)) || p.Samples != 24 {
			t.Errorf("day %d: %+v, want %d Wh", i, p, want[i])
		}
	}
	hour, err := w.svc.History(ctx, w.scope(w.consumer), usage.HistoryQuery{ConnectionID: w.conn, Granularity: usage.Hour,
		From: start.Add(10 * time.Hour), To: start.Add(14 * time.Hour)})
	must(t, err)
	if len(hour.Points) != 4 || hour.ConsumptionWh != 4*500 || *hour.Points[0].AvgPowerW != 500 {
		t.Fatalf("hour series total %d, points %d", hour.ConsumptionWh, len(hour.Points))
	}
	month, err := w.svc.History(ctx, w.scope(w.consumer), usage.HistoryQuery{ConnectionID: w.conn, Granularity: usage.Month,
		From: start.AddDate(0, -1, 0), To: start.AddDate(0, 1, 0)})
	must(t, err)
	if len(month.Points) != 2 || month.Points[1].ConsumptionWh != 71*500 || month.Points[0].ConsumptionWh != 0 {
		t.Fatalf("month series %+v", month.Points)
	}
	// Another consumer cannot read it, by connection or by meter.
	if _, err := w.svc.History(ctx, w.scope(w.other), usage.HistoryQuery{ConnectionID: w.conn}); !errors.Is(err, usage.ErrNotFound) {
		t.Fatalf("other consumer by connection: %v", err)
	}
	if _, err := w.svc.History(ctx, w.scope(w.other), usage.HistoryQuery{MeterID: w.meter}); !errors.Is(err, usage.ErrNotFound) {
		t.Fatalf("other consumer by meter: %v", err)
	}
	// Rendering.
	var csv bytes.Buffer
	must(t, usage.WriteCSV(&csv, day))
	if lines := strings.Split(strings.TrimSpace(csv.String()), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[1], "2026-03-01T00:00:00+05:30,2026-03-02T00:00:00+05:30,11500,") {
		t.Fatalf("csv:\n%s", csv.String())
	}
	svg, err := usage.SVG(day, "Daily use")
	must(t, err)
	if !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("Daily use")) {
		t.Fatalf("svg: %.200s", svg)
	}
	long, err := w.svc.History(ctx, w.scope(w.staff), usage.HistoryQuery{MeterID: w.meter, Granularity: usage.Hour, From: start, To: start.Add(72 * time.Hour)})
	must(t, err)
	if _, err := usage.SVG(long, "Hourly use"); err != nil {
		t.Fatal(err)
	}
	// Too many buckets.
	_, err = w.svc.History(ctx, w.scope(w.staff), usage.HistoryQuery{MeterID: w.meter, Granularity: usage.Hour, From: start.AddDate(-1, 0, 0), To: start})
	var ve *account.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("year of hours: %v", err)
	}
}

func TestHistoryAcrossReplacementOnlyOwnSpans(t *testing.T) {
	ist, _ := time.LoadLocation("Asia/Kolkata")
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, ist)
	swap := start.AddDate(0, 0, 1)
	w := newWorld(t, start)
	ctx := context.Background()
	// Meter 1 on the connection for day 1, then meter 2 (starting from 0).
	var m2 int64
	must(t, w.pool.QueryRow(ctx, `INSERT INTO meters (tenant_id, external_id, serial, model, protocol) VALUES ($1, 'm-2', 'SN2', 'x', 'mqtt') RETURNING id`, w.tenant).Scan(&m2))
	_, err := w.pool.Exec(ctx, `UPDATE meter_installations SET removed_at = $1, removal_reason = 'replaced' WHERE meter_id = $2`, swap, w.meter)
	must(t, err)
	_, err = w.pool.Exec(ctx, `INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at, reason, initial_import_wh) VALUES ($1, $2, $3, $4, 'replacement', 0)`,
		w.tenant, w.conn, m2, swap)
	must(t, err)
	w.readings(t, w.meter, start, 48, 5_000_000, 1000) // meter 1 keeps reporting on day 2 (moved elsewhere)
	w.readings(t, m2, swap, 24, 0, 200)
	day, err := w.svc.History(ctx, w.scope(w.consumer), usage.HistoryQuery{ConnectionID: w.conn, Granularity: usage.Day, From: start, To: swap.AddDate(0, 0, 1)})
	must(t, err)
	// Day 1: meter 1 only (23 steps of 1000); day 2: meter 2 from its
	// initial 0 Wh (23 steps of 200), not meter 1's readings after removal.
	if day.Points[0].ConsumptionWh != 23_000 || day.Points[1].ConsumptionWh != 23*200 || len(day.MeterIDs) != 2 {
		t.Fatalf("points %+v", day.Points)
	}
}

func TestManualEntry(t *testing.T) {
	w := newWorld(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	cs := w.scope(w.consumer)
	imp := func(v int64) *int64 { return &v }
	first := w.now.Add(-48 * time.Hour)
	e, err := w.svc.Record(ctx, w.consumer, cs, usage.EntryInput{ConnectionID: w.conn, Time: first, ImportWh: imp(1_000_000)})
	must(t, err)
	if e.MeterID != w.meter || e.ConsumptionWh != 0 {
		t.Fatalf("entry %+v", e)
	}
	e, err = w.svc.Record(ctx, w.consumer, cs, usage.EntryInput{ConnectionID: w.conn, Time: w.now.Add(-24 * time.Hour), ImportWh: imp(1_012_000)})
	must(t, err)
	if e.ConsumptionWh != 12_000 {
		t.Fatalf("consumption %d", e.ConsumptionWh)
	}
	tests := []struct {
		name  string
		who   account.Actor
		give  usage.EntryInput
		field string
	}{
		{"backwards", w.consumer, usage.EntryInput{ConnectionID: w.conn, Time: w.now, ImportWh: imp(1_011_000)}, "import_wh"},
		{"absurd jump", w.consumer, usage.EntryInput{ConnectionID: w.conn, Time: w.now, ImportWh: imp(9_000_000)}, "import_wh"},
		{"future", w.consumer, usage.EntryInput{ConnectionID: w.conn, Time: w.now.Add(time.Hour), ImportWh: imp(1_013_000)}, "ts"},
		{"same time", w.consumer, usage.EntryInput{ConnectionID: w.conn, Time: first, ImportWh: imp(1_000_000)}, "ts"},
		{"before the next reading", w.consumer, usage.EntryInput{ConnectionID: w.conn, Time: first.Add(time.Hour), ImportWh: imp(1_020_000)}, "import_wh"},
		{"negative", w.consumer, usage.EntryInput{ConnectionID: w.conn, Time: w.now, ImportWh: imp(-5)}, "import_wh"},
		{"missing register", w.consumer, usage.EntryInput{ConnectionID: w.conn, Time: w.now}, "import_wh"},
		{"consumer declares a reset", w.consumer, usage.EntryInput{ConnectionID: w.conn, Time: w.now, ImportWh: imp(10), Reset: true}, "reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.svc.Record(ctx, tt.who, w.scope(tt.who), tt.give)
			var ve *account.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, usage.ErrInvalidReading) || ve.Fields[0].Field != tt.field {
				t.Fatalf("err %v, want InvalidReading on %s", err, tt.field)
			}
		})
	}
	if _, err := w.svc.Record(ctx, w.other, w.scope(w.other), usage.EntryInput{ConnectionID: w.conn, Time: w.now, ImportWh: imp(1_013_000)}); !errors.Is(err, usage.ErrNotFound) {
		t.Fatalf("another consumer's meter: %v", err)
	}
	// Staff record a reset: accepted, with a counter event.
	e, err = w.svc.Record(ctx, w.staff, w.scope(w.staff), usage.EntryInput{MeterID: w.meter, Time: w.now, ImportWh: imp(3_000), Reset: true})
	must(t, err)
	var kind, consumption int64
	must(t, w.pool.QueryRow(ctx, `SELECT kind, consumption_wh FROM counter_events WHERE meter_id = $1`, w.meter).Scan(&kind, &consumption))
	if kind != 2 || consumption != 3_000 || e.ConsumptionWh != 3_000 {
		t.Fatalf("counter event kind %d consumption %d", kind, consumption)
	}
	// A back-dated entry a year ago lands in a partition created on demand.
	if _, err := w.svc.Record(ctx, w.staff, w.scope(w.staff), usage.EntryInput{MeterID: w.meter, Time: w.now.AddDate(0, 0, -300), ImportWh: imp(500)}); err != nil {
		t.Fatalf("back-dated entry: %v", err)
	}
	// Latest state reflects the newest entry, not the back-dated one.
	live, err := w.svc.Live(ctx, cs, usage.LiveFilter{}, account.Page{})
	must(t, err)
	if len(live) != 1 || live[0].Latest == nil || *live[0].Latest.ImportWh != 3_000 || live[0].Latest.Source != "manual" || live[0].Liveness != usage.Online {
		t.Fatalf("live %+v", live)
	}
	var audits int
	must(t, w.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'usage.manual_entry'`).Scan(&audits))
	if audits != 4 {
		t.Fatalf("%d audit rows, want 4", audits)
	}
}

func TestLiveNeverReported(t *testing.T) {
	w := newWorld(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	list, err := w.svc.Live(ctx, w.scope(w.consumer), usage.LiveFilter{}, account.Page{})
	must(t, err)
	if len(list) != 1 || list[0].Liveness != usage.NeverReported {
		t.Fatalf("live %+v", list)
	}
	if _, err := w.svc.Live(ctx, w.scope(w.consumer), usage.LiveFilter{MeterID: w.meter}, account.Page{}); !errors.Is(err, usage.ErrMeterConnection) {
		t.Fatalf("single silent meter: %v", err)
	}
	if list, _ := w.svc.Live(ctx, w.scope(w.other), usage.LiveFilter{}, account.Page{}); len(list) != 0 {
		t.Fatalf("other consumer sees %d meters", len(list))
	}
	_, err = w.pool.Exec(ctx, `INSERT INTO meter_latest (meter_id, ts, received_at, last_seen, import_wh, power_w, source) VALUES ($1, $2, $2, $2, 7, 1500, 1)`,
		w.meter, w.now.Add(-2*time.Hour))
	must(t, err)
	list, err = w.svc.Live(ctx, w.scope(w.consumer), usage.LiveFilter{MeterID: w.meter}, account.Page{})
	must(t, err)
	if list[0].Liveness != usage.Offline || list[0].Age != 2*time.Hour || *list[0].Latest.PowerW != 1500 {
		t.Fatalf("offline meter %+v", list[0])
	}
}

// A water meter's registers count litres: its history, CSV, chart, live
// state and manual-entry messages say litres and kilolitres, never Wh.
func TestWaterMeterUnits(t *testing.T) {
	w := newWorld(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	_, err := w.pool.Exec(ctx, `UPDATE meters SET model = 'water-litre' WHERE id = $1`, w.meter)
	must(t, err)
	ist, _ := time.LoadLocation("Asia/Kolkata")
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, ist)
	w.readings(t, w.meter, start, 48, 120_000, 25) // 25 L an hour
	day, err := w.svc.History(ctx, w.scope(w.consumer), usage.HistoryQuery{ConnectionID: w.conn, Granularity: usage.Day, From: start, To: start.AddDate(0, 0, 2)})
	must(t, err)
	if day.Kind != meter.KindWater || day.Points[1].ConsumptionWh != 24*25 {
		t.Fatalf("series kind %v, points %+v", day.Kind, day.Points)
	}
	var csv bytes.Buffer
	must(t, usage.WriteCSV(&csv, day))
	header, _, _ := strings.Cut(csv.String(), "\n")
	if header != "bucket_start,bucket_end,consumption_l,export_l,avg_power_w,max_power_w,last_import_l,samples" {
		t.Errorf("csv header %q", header)
	}
	svg, err := usage.SVG(day, "Daily use")
	must(t, err)
	if !bytes.Contains(svg, []byte(">kL<")) || bytes.Contains(svg, []byte("kWh")) {
		t.Errorf("svg axis is not in kL: %s", svg)
	}
	live, err := w.svc.Live(ctx, w.scope(w.consumer), usage.LiveFilter{}, account.Page{})
	must(t, err)
	if len(live) != 1 || live[0].Kind != meter.KindWater {
		t.Fatalf("live %+v", live)
	}
	imp := func(v int64) *int64 { return &v }
	_, err = w.svc.Record(ctx, w.consumer, w.scope(w.consumer), usage.EntryInput{ConnectionID: w.conn, Time: w.now, ImportWh: imp(100_000)})
	var ve *account.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.Fields[0].Message, "100000 L is lower than the previous reading of 121175 L") || strings.Contains(ve.Fields[0].Message, "Wh") {
		t.Errorf("backwards water reading: %v", err)
	}
	// An electricity meter's series stays in Wh and kWh.
	_, err = w.pool.Exec(ctx, `UPDATE meters SET model = 'sdm120' WHERE id = $1`, w.meter)
	must(t, err)
	day, err = w.svc.History(ctx, w.scope(w.consumer), usage.HistoryQuery{ConnectionID: w.conn, Granularity: usage.Day, From: start, To: start.AddDate(0, 0, 2)})
	must(t, err)
	csv.Reset()
	must(t, usage.WriteCSV(&csv, day))
	svg, err = usage.SVG(day, "Daily use")
	must(t, err)
	if day.Kind != meter.KindElectricity || !strings.HasPrefix(csv.String(), "bucket_start,bucket_end,consumption_wh,") || !bytes.Contains(svg, []byte(">kWh<")) {
		t.Errorf("electricity: kind %v, csv %.80s", day.Kind, csv.String())
	}
}
