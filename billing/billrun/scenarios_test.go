package billrun

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/postgres"
)

func i64(v int64) *int64 { return &v }

// E11: a meter replaced mid-cycle; consumption of both meters is summed and
// the slabs apply once: 145 + 180 kWh is 200 × 3 + 125 × 4.5 = 1162.50.
func TestBillRunMeterReplacement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	f.publish(store, "lt-domestic")
	conn := f.connection("E-REPL", "lt-domestic", "2")
	day := func(d int) time.Time { return time.Date(2024, 4, d, 0, 0, 0, 0, f.loc) }
	swap := day(15).Add(10 * time.Hour)
	old := f.install(conn, "OLD-1", day(1).AddDate(0, -1, 0), swap, i64(12_000_000), i64(12_345_000))
	nu := f.install(conn, "NEW-1", swap, time.Time{}, i64(0), nil)
	f.bucket("readings_daily", old, day(0), day(0).Add(time.Hour), day(0).Add(23*time.Hour), 12_190_000, 12_200_000)
	for d := 1; d <= 14; d++ {
		f.bucket("readings_daily", old, day(d), day(d).Add(time.Hour), day(d).Add(23*time.Hour), 12_200_000+int64(d-1)*10_000+100, 12_200_000+int64(d)*10_000)
	}
	f.bucket("readings_daily", old, day(15), day(15).Add(time.Hour), day(15).Add(9*time.Hour), 12_340_000, 12_343_000)
	f.bucket("readings_daily", nu, day(15), day(15).Add(11*time.Hour), day(15).Add(23*time.Hour), 500, 6_000)
	for d := 16; d <= 30; d++ {
		f.bucket("readings_daily", nu, day(d), day(d).Add(time.Hour), day(d).Add(23*time.Hour), 6_000+int64(d-16)*11_600+10, 6_000+int64(d-15)*11_600)
	}
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, april, 10).ID, nil)
	if err != nil || done.Billed != 1 {
		t.Fatalf("run %+v: %v", done, err)
	}
	b, err := store.Bill(ctx, f.tenant, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b.ConsumptionWh != 325_000 || b.Estimated || b.MeterSerial != "NEW-1" {
		t.Errorf("consumption %d Wh estimated %v meter %s, want 325000, false, NEW-1", b.ConsumptionWh, b.Estimated, b.MeterSerial)
	}
	energy := decimal.Zero
	for _, l := range b.Lines {
		if l.Code == "energy" {
			energy = energy.Add(l.Amount)
		}
	}
	if !energy.Equal(dec("1162.50")) || !b.Totals.Total.Equal(dec("1263")) {
		t.Errorf("energy %s total %s, want 1162.50 and 1263 (40 fixed, 60.13 duty, round-off)", energy, b.Totals.Total)
	}
	if *b.PreviousReadWh != 12_200_000 || *b.CurrentReadWh != 180_000 {
		t.Errorf("reads %d → %d", *b.PreviousReadWh, *b.CurrentReadWh)
	}
}

// Time of use from hourly rollups in the tenant's zone (half-hour offset).
func TestBillRunTimeOfUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	doc := `{"tenant": "test-discom", "plan": "tou", "version": "2024", "effective_from": "2024-01-01", "currency": "INR",
		"rounding": {"mode": "half_up", "places": 2},
		"energy": {"kind": "time_of_use", "windows": [
			{"name": "night", "from": "00:00", "to": "06:00"}, {"name": "day", "from": "06:00", "to": "17:00"},
			{"name": "peak", "from": "17:00", "to": "21:00"}, {"name": "night", "from": "21:00", "to": "24:00"}],
			"rates": {"day": "2.86", "peak": "3.30", "night": "2.26"}},
		"round_off": {"places": 0, "mode": "half_ceiling"}}`
	if _, err := store.PublishTariff(ctx, postgres.Publish{TenantID: f.tenant, Service: "electricity", Plan: "tou", Document: []byte(doc)}); err != nil {
		t.Fatal(err)
	}
	conn := f.connection("E-TOU", "tou", "10")
	start := time.Date(2024, 4, 1, 0, 0, 0, 0, f.loc)
	meter := f.install(conn, "TOU-1", start.AddDate(0, -1, 0), time.Time{}, i64(0), nil)
	reg := int64(1_000_000)
	f.bucket("readings_daily", meter, start.AddDate(0, 0, -1), start.Add(-23*time.Hour), start.Add(-time.Minute), reg-1000, reg)
	f.bucket("readings_hourly", meter, start.Add(-time.Hour), start.Add(-50*time.Minute), start.Add(-time.Minute), reg-100, reg)
	for d := 0; d < 30; d++ {
		dayStart := start.AddDate(0, 0, d)
		first := reg
		for h := 0; h < 24; h++ {
			wh := int64(500)
			switch {
			case h >= 6 && h < 17:
				wh = 1000
			case h >= 17 && h < 21:
				wh = 2000
			}
			hs := dayStart.Add(time.Duration(h) * time.Hour)
			f.bucket("readings_hourly", meter, hs, hs.Add(time.Minute), hs.Add(59*time.Minute), reg, reg+wh)
			reg += wh
		}
		f.bucket("readings_daily", meter, dayStart, dayStart.Add(time.Minute), dayStart.Add(24*time.Hour-time.Minute), first, reg)
	}
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, april, 10).ID, nil)
	if err != nil || done.Billed != 1 {
		t.Fatalf("run %+v: %v", done, err)
	}
	b, err := store.Bill(ctx, f.tenant, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 30 days × (11 h × 1 + 4 h × 2 + 9 h × 0.5) kWh: day 330, peak 240, night 135.
	want := map[string]string{"330": "943.80", "240": "792.00", "135": "305.10"}
	for _, l := range b.Lines {
		if l.Code != "energy" {
			continue
		}
		if w, ok := want[l.Quantity.String()]; !ok || !l.Amount.Equal(dec(w)) {
			t.Errorf("line %s: %s kWh → %s", l.Description, l.Quantity, l.Amount)
		}
		delete(want, l.Quantity.String())
	}
	if len(want) != 0 || !b.Totals.Total.Equal(dec("2041")) {
		t.Errorf("missing windows %v; total %s, want 2041", want, b.Totals.Total)
	}
}

// Tariff versions are validated on publish (errors name the field),
// conflict on a second version for the same date, and refuse a document of
// another tenant or plan.
func TestPublishTariff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	f.publish(store, "lt-domestic")
	doc := []byte(`{"tenant": "test-discom", "plan": "lt-domestic", "version": "v", "effective_from": "2024-04-01", "currency": "INR",
		"rounding": {"mode": "half_up", "places": 2}, "energy": {"kind": "flat", "rate": "3"}}`)
	tests := []struct {
		name     string
		give     postgres.Publish
		wantErr  error
		wantPath string
	}{
		{"same date again", postgres.Publish{TenantID: f.tenant, Service: "electricity", Plan: "lt-domestic", Document: doc}, billing.ErrConflict, ""},
		{"other plan", postgres.Publish{TenantID: f.tenant, Service: "electricity", Plan: "other", Document: doc}, billing.ErrInvalidInput, "plan"},
		{"invalid slab", postgres.Publish{TenantID: f.tenant, Service: "electricity", Plan: "bad", Document: []byte(`{"tenant": "test-discom", "plan": "bad",
			"version": "v", "effective_from": "2024-04-01", "currency": "INR", "rounding": {"mode": "half_up", "places": 2},
			"energy": {"kind": "telescopic", "slabs": [{"upto_kwh": 100, "rate": "-1"}]}}`)}, billing.ErrInvalidInput, "energy.slabs"},
		{"other tenant", postgres.Publish{TenantID: f.tenant, Service: "electricity", Plan: "x", Document: []byte(`{"tenant": "elsewhere", "plan": "x",
			"version": "v", "effective_from": "2024-04-01", "currency": "INR", "rounding": {"mode": "half_up", "places": 2}, "energy": {"kind": "flat", "rate": "3"}}`)},
			billing.ErrInvalidInput, "tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store.PublishTariff(ctx, tt.give)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var ve *billing.ValidationError
			if tt.wantPath != "" {
				if !errors.As(err, &ve) || len(ve.Fields) == 0 || len(ve.Fields[0].Path) < len(tt.wantPath) || ve.Fields[0].Path[:len(tt.wantPath)] != tt.wantPath {
					t.Errorf("err = %v, want a field error at %s", err, tt.wantPath)
				}
			}
		})
	}
	list, err := store.Tariffs(ctx, f.tenant, "electricity", "")
	if err != nil || len(list) != 1 {
		t.Fatalf("tariffs = %+v, %v", list, err)
	}
	v, err := store.TariffDocument(ctx, f.tenant, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := readTestdata("testdata/tariff.json")
	if string(v.Document) != string(raw) {
		t.Errorf("stored document is not verbatim")
	}
}

// The scheduler starts a run on the generation day in the tenant's zone
// for the cycle that just ended, once.
func TestSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	st := postgres.DefaultSettings(f.tenant, "electricity")
	st.Cycle, st.GenerationDay, st.Scheduled = billing.CycleQuarterly, 4, true
	if err := store.PutSettings(ctx, st); err != nil {
		t.Fatal(err)
	}
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		now  time.Time
		want string // period of the created run, "" for none
	}{
		{"not the day", time.Date(2024, 4, 5, 6, 0, 0, 0, time.UTC), ""},
		{"the day, not a quarter month", time.Date(2024, 5, 4, 6, 0, 0, 0, time.UTC), ""},
		{"the day in the tenant's zone (3 April 19:00 UTC is 4 April 00:30 IST)", time.Date(2024, 4, 3, 19, 0, 0, 0, time.UTC), "2024-01-01..2024-03-31"},
		{"again the same day", time.Date(2024, 4, 4, 8, 0, 0, 0, time.UTC), ""},
		{"next quarter", time.Date(2024, 7, 4, 8, 0, 0, 0, time.UTC), "2024-04-01..2024-06-30"},
	}
	for _, tt := range tests {
		runs, err := runner.Schedule(ctx, tt.now, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if len(runs) == 1 {
			got = runs[0].Period.String()
		}
		if len(runs) > 1 || got != tt.want {
			t.Errorf("%s: runs %+v, want period %q", tt.name, runs, tt.want)
		}
	}
}

// E12: April is billed on estimated reads (none after 20 April); when reads
// resume in May, April is rebilled on the day-average of the actual
// register movement across the gap, its estimated bill is cancelled, and
// May's bill carries the corrected April as arrears.
func TestBillRunRebillAfterEstimate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	f.publish(store, "lt-domestic")
	conn := f.connection("E-EST", "lt-domestic", "2")
	day := func(m time.Month, d int) time.Time { return time.Date(2024, m, d, 0, 0, 0, 0, f.loc) }
	meter := f.install(conn, "EST-1", day(3, 1), time.Time{}, i64(0), nil)
	reg := int64(1_000_000)
	put := func(d time.Time, wh int64) {
		f.bucket("readings_daily", meter, d, d.Add(15*time.Minute), d.Add(23*time.Hour+45*time.Minute), reg+1, reg+wh)
		reg += wh
	}
	put(day(3, 31), 0)
	for d := 1; d <= 20; d++ {
		put(day(4, d), 10_000)
	}
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, april, 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	aprID, aprTotal, _, _, _ := billOf(t, f, conn, april.From)
	var est bool
	var wh int64
	if err := pool.QueryRow(ctx, `SELECT estimated, consumption_wh FROM bills WHERE id = $1`, aprID).Scan(&est, &wh); err != nil {
		t.Fatal(err)
	}
	// 200 kWh read + 10 days estimated at 10 kWh: 600 + 450 + 40 + 5% → 1145.
	if !est || wh != 300_000 || !aprTotal.Equal(dec("1145")) {
		t.Fatalf("April bill: estimated %v, %d Wh, total %s", est, wh, aprTotal)
	}
	// Reads resume on 11 May: 105 kWh since 20 April (5 kWh a day over 21
	// days), then 10 kWh a day.
	put(day(5, 11), 105_000)
	for d := 12; d <= 31; d++ {
		put(day(5, d), 10_000)
	}
	done, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, may, 10).ID, nil)
	if err != nil || done.Billed != 1 {
		t.Fatalf("May run %+v: %v", done, err)
	}
	var status string
	if err := pool.QueryRow(ctx, `SELECT status FROM bills WHERE id = $1`, aprID).Scan(&status); err != nil {
		t.Fatal(err)
	}
	var aprWh int64
	var aprEst bool
	if err := pool.QueryRow(ctx, `SELECT import_wh, estimated FROM demands WHERE connection_id = $1 AND period_from = '2024-04-01'`, conn).Scan(&aprWh, &aprEst); err != nil {
		t.Fatal(err)
	}
	if status != "cancelled" || aprWh != 250_000 || aprEst {
		t.Errorf("April after the actual read: bill %s, demand %d Wh estimated %v; want cancelled, 250000, false", status, aprWh, aprEst)
	}
	_, total, arrears, _, _ := billOf(t, f, conn, may.From)
	// April rebilled: 250 kWh → 600 + 225 + 40 + 43.25 → 908, plus 16 days
	// of 18% p.a. late surcharge 7.16; May: 255 kWh → 932.
	if !arrears.Equal(dec("915.16")) || !total.Equal(dec("1847.16")) {
		t.Errorf("May bill: arrears %s total %s, want 915.16 and 1847.16", arrears, total)
	}
}

// A connection that starts mid-cycle is billed for its days with monthly
// charges prorated against the cycle, and a tariff version that takes
// effect mid-period splits the period by days (E05).
func TestBillRunPartialPeriodAndTariffChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	f.publish(store, "lt-domestic")
	// Version 2 from 16 April: the ≤ 2 kW band costs 50 instead of 20.
	doc, err := readTestdata("testdata/tariff.json")
	if err != nil {
		t.Fatal(err)
	}
	v2 := strings.NewReplacer(`"version": "FY2024-25"`, `"version": "FY2024-25 rev"`, `"effective_from": "2024-04-01"`, `"effective_from": "2024-04-16"`,
		`{"upto_kw": "2", "rate": "20"}`, `{"upto_kw": "2", "rate": "50"}`).Replace(string(doc))
	if _, err := store.PublishTariff(ctx, postgres.Publish{TenantID: f.tenant, Service: "electricity", Plan: "lt-domestic", Document: []byte(v2)}); err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2024, 4, d, 0, 0, 0, 0, f.loc) }
	whole := f.connection("E-WHOLE", "lt-domestic", "2")
	late := f.connection("E-LATE", "lt-domestic", "2")
	f.exec(`UPDATE connections SET connected_at = $2 WHERE id = $1`, late, day(16).Add(9*time.Hour))
	for _, c := range []struct {
		conn  int64
		from  int
		meter string
	}{{whole, 1, "W-1"}, {late, 16, "L-1"}} {
		m := f.install(c.conn, c.meter, day(c.from).Add(-time.Minute), time.Time{}, i64(0), nil)
		reg := int64(0)
		for d := c.from; d <= 30; d++ {
			f.bucket("readings_daily", m, day(d), day(d).Add(time.Hour), day(d).Add(23*time.Hour), reg, reg+10_000)
			reg += 10_000
		}
	}
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, april, 10).ID, nil); err != nil || done.Billed != 2 {
		t.Fatalf("run %+v: %v", done, err)
	}
	fixed := func(conn int64) (decimal.Decimal, billing.Period) {
		t.Helper()
		var id int64
		if err := pool.QueryRow(ctx, `SELECT id FROM bills WHERE connection_id = $1`, conn).Scan(&id); err != nil {
			t.Fatal(err)
		}
		b, err := store.Bill(ctx, f.tenant, 0, id)
		if err != nil {
			t.Fatal(err)
		}
		sum := decimal.Zero
		for _, l := range b.Lines {
			if l.Code == "fixed" {
				sum = sum.Add(l.Amount)
			}
		}
		return sum, b.Period
	}
	// Whole month: 15 days at 2 × 20 and 15 at 2 × 50 → 20 + 50 = 70.
	if got, p := fixed(whole); !got.Equal(dec("70")) || p != april {
		t.Errorf("whole month: fixed %s over %s, want 70 over April", got, p)
	}
	// From 16 April: 15 of 30 days, all under version 2 → 2 × 50 × 15/30 = 50.
	if got, p := fixed(late); !got.Equal(dec("50")) || p.From != billing.NewDate(2024, 4, 16) {
		t.Errorf("partial period: fixed %s over %s, want 50 from 16 April", got, p)
	}
}
