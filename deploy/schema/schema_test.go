package schema_test

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/deploy/localpg"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := schematest.EmptyURL(t)

	first, err := schema.Migrate(ctx, url, schema.Config{RollupTimeZone: "Asia/Kolkata"})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Current() || first.SchemaVersion == 0 {
		t.Fatalf("after first migrate: %+v", first)
	}
	// timescaledb is a trusted extension, so even this ordinary role gets
	// the timescale profile wherever the extension is installed.
	want := schema.ProfilePostgres
	if schematest.Timescale(t) {
		want = schema.ProfileTimescale
	}
	if first.Profile != want || first.ProfileReason == "" {
		t.Errorf("profile %q (%s), want %q with a reason", first.Profile, first.ProfileReason, want)
	}
	second, err := schema.Migrate(ctx, url, schema.Config{RollupTimeZone: "UTC", Profile: schema.ProfileTimescale})
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if second.SchemaVersion != first.SchemaVersion || second.Profile != first.Profile {
		t.Errorf("second migrate changed the schema: %+v -> %+v", first, second)
	}
	if second.RollupTimeZone != "Asia/Kolkata" {
		t.Errorf("recorded rollup zone changed to %q", second.RollupTimeZone)
	}
}

// TestMigrateConcurrently runs two migrations of one empty database at
// once, each on its own pool (its own sessions, as two processes would).
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := schematest.EmptyURL(t)

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = schema.Migrate(ctx, url, schema.Config{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", i, err)
		}
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st, err := schema.Check(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Current() {
		t.Errorf("not current after concurrent migrations: %+v", st)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM meterd_storage`).Scan(&n); err != nil || n != 1 {
		t.Errorf("meterd_storage rows = %d, %v", n, err)
	}
}

func TestCheckUnmigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, schematest.EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := schema.Check(ctx, pool); err != schema.ErrNotMigrated {
		t.Fatalf("Check on an empty database = %v, want ErrNotMigrated", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		give    schema.Config
		wantErr bool
	}{
		{"defaults", schema.Config{}, false},
		{"zone and profile", schema.Config{Profile: schema.ProfileTimescale, RollupTimeZone: "Asia/Kolkata"}, false},
		{"unknown profile", schema.Config{Profile: "mysql"}, true},
		{"unknown zone", schema.Config{RollupTimeZone: "Mars/Olympus"}, true},
		{"partial days", schema.Config{PartitionInterval: 36 * time.Hour}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.give.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestStatusReportsProfile(t *testing.T) {
	t.Parallel()
	schematest.ForEachProfile(t, func(t *testing.T, pool *pgxpool.Pool) {
		st, err := schema.Check(context.Background(), pool)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Current() || st.RollupTimeZone != schematest.RollupTimeZone {
			t.Errorf("status %+v", st)
		}
		if want := schema.Profile(t.Name()[len("TestStatusReportsProfile/"):]); st.Profile != want {
			t.Errorf("profile %q, want %q", st.Profile, want)
		}
		if st.Profile == schema.ProfileTimescale && st.TimescaleVersion == "" {
			t.Error("timescale profile without an extension version")
		}
	})
}

func TestPartitionsAndRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := schematest.New(t)
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-400 * 24 * time.Hour)
	_, err = pool.Exec(ctx, `INSERT INTO readings (meter_id, ts, import_wh, source) VALUES (1, $1, 10, 1)`, old)
	if !schema.IsMissingPartition(err) {
		t.Fatalf("insert far in the past: %v, want a missing-partition error", err)
	}
	u := schema.NewUpkeep(pool, st, schema.UpkeepConfig{Retention: 365 * 24 * time.Hour})
	n, err := u.EnsurePartitions(ctx, old, old)
	if err != nil || n != 1 {
		t.Fatalf("EnsurePartitions = %d, %v; want 1 created", n, err)
	}
	if n, err := u.EnsurePartitions(ctx, old, old); err != nil || n != 0 {
		t.Fatalf("second EnsurePartitions = %d, %v; want 0", n, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO readings (meter_id, ts, import_wh, source) VALUES (1, $1, 10, 1), (1, now(), 20, 1)`, old); err != nil {
		t.Fatalf("insert after creating the partition: %v", err)
	}
	dropped, err := u.ApplyRetention(ctx)
	if err != nil || dropped != 1 {
		t.Fatalf("ApplyRetention = %d, %v; want 1 partition dropped", dropped, err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&left); err != nil || left != 1 {
		t.Errorf("readings left = %d, %v; want the recent one", left, err)
	}
}

// reading is one test row.
type reading struct {
	meter    int64
	ts       time.Time
	importWh int64
	power    *float32
}

func f32(v float32) *float32 { return &v }

func insert(t *testing.T, pool *pgxpool.Pool, rs ...reading) {
	t.Helper()
	batch := &pgx.Batch{}
	for _, r := range rs {
		batch.Queue(`INSERT INTO readings (meter_id, ts, import_wh, power_w, source) VALUES ($1, $2, $3, $4, 1) ON CONFLICT DO NOTHING`,
			r.meter, r.ts, r.importWh, r.power)
	}
	if err := pool.SendBatch(context.Background(), batch).Close(); err != nil {
		t.Fatal(err)
	}
}

func copyIn(t *testing.T, pool *pgxpool.Pool, rs ...reading) {
	t.Helper()
	rows := make([][]any, len(rs))
	for i, r := range rs {
		rows[i] = []any{r.meter, r.ts, r.importWh, r.power, int16(1)}
	}
	_, err := pool.CopyFrom(context.Background(), pgx.Identifier{"readings"},
		[]string{"meter_id", "ts", "import_wh", "power_w", "source"}, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatal(err)
	}
}

type rollup struct {
	Bucket         time.Time
	FirstTS        time.Time
	LastTS         time.Time
	FirstImport    *int64
	LastImport     *int64
	ImportDelta    *int64
	MinPower       *float32
	MaxPower       *float32
	AvgPower       *float64
	PowerSamples   int64
	Samples        int64
	FirstExport    *int64
	LastExportDlta *int64
}

func rollups(t *testing.T, pool *pgxpool.Pool, table string, meter int64) []rollup {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT bucket, first_ts, last_ts, first_import_wh, last_import_wh, import_delta_wh,
			min_power_w, max_power_w, avg_power_w, power_samples, samples, first_export_wh, export_delta_wh
		FROM `+table+` WHERE meter_id = $1 ORDER BY bucket`, meter)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rollup])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func refresh(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	st, err := schema.LoadStorage(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	// A small batch makes the refresh loop over several transactions.
	if _, err := schema.NewUpkeep(pool, st, schema.UpkeepConfig{RollupBatch: 2}).RefreshRollups(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRollupsAreExact writes readings in order, out of order, late and as
// duplicate attempts, and checks every rollup column in both profiles.
func TestRollupsAreExact(t *testing.T) {
	t.Parallel()
	ist, err := time.LoadLocation(schematest.RollupTimeZone)
	if err != nil {
		t.Fatal(err)
	}
	schematest.ForEachProfile(t, func(t *testing.T, pool *pgxpool.Pool) {
		ctx := context.Background()
		st, err := schema.LoadStorage(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		// 10:00 and 11:00 on 20 Nov (IST), and 23:30 on 19 Nov for late data.
		day := time.Date(2026, 11, 20, 0, 0, 0, 0, ist)
		prevDay := day.AddDate(0, 0, -1)
		if _, err := schema.NewUpkeep(pool, st, schema.UpkeepConfig{}).EnsurePartitions(ctx, prevDay, day.AddDate(0, 0, 2)); err != nil {
			t.Fatal(err)
		}
		at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }

		// Hour 10, in order, by COPY.
		copyIn(t, pool,
			reading{1, at(10, 0), 1000, f32(400)},
			reading{1, at(10, 15), 1100, f32(420)},
			reading{1, at(10, 30), 1200, nil}, // no power sample
			reading{1, at(10, 45), 1300, f32(380)},
		)
		// Hour 11, out of order, with duplicate attempts that must not count.
		insert(t, pool,
			reading{1, at(11, 45), 1700, f32(100)},
			reading{1, at(11, 0), 1400, f32(300)},
			reading{1, at(11, 30), 1600, f32(200)},
			reading{1, at(11, 0), 9999, f32(9999)}, // duplicate key: ignored
			reading{1, at(11, 15), 1500, f32(250)},
			reading{1, at(11, 45), 8888, f32(1)}, // duplicate key: ignored
		)
		// Another meter in the same hours must not leak into meter 1.
		insert(t, pool, reading{2, at(10, 5), 5, f32(5)}, reading{2, at(11, 5), 50, f32(50)})
		refresh(t, pool)

		i64 := func(v int64) *int64 { return &v }
		f64 := func(v float64) *float64 { return &v }
		wantHourly := []rollup{
			{Bucket: at(10, 0), FirstTS: at(10, 0), LastTS: at(10, 45), FirstImport: i64(1000), LastImport: i64(1300), ImportDelta: i64(300),
				MinPower: f32(380), MaxPower: f32(420), AvgPower: f64(400), PowerSamples: 3, Samples: 4},
			{Bucket: at(11, 0), FirstTS: at(11, 0), LastTS: at(11, 45), FirstImport: i64(1400), LastImport: i64(1700), ImportDelta: i64(300),
				MinPower: f32(100), MaxPower: f32(300), AvgPower: f64(212.5), PowerSamples: 4, Samples: 4},
		}
		checkRollups(t, "hourly", rollups(t, pool, "readings_hourly", 1), wantHourly)
		wantDaily := []rollup{
			{Bucket: day, FirstTS: at(10, 0), LastTS: at(11, 45), FirstImport: i64(1000), LastImport: i64(1700), ImportDelta: i64(700),
				MinPower: f32(100), MaxPower: f32(420), AvgPower: f64(2050.0 / 7), PowerSamples: 7, Samples: 8},
		}
		checkRollups(t, "daily", rollups(t, pool, "readings_daily", 1), wantDaily)

		// A reading a day late, into yesterday's last half hour (23:30 IST
		// is 18:00 UTC: the bucket must follow the rollup zone), plus one
		// late reading into an hour already rolled up.
		insert(t, pool,
			reading{1, prevDay.Add(23*time.Hour + 40*time.Minute), 900, f32(50)},
			reading{1, at(10, 50), 1350, f32(500)},
		)
		refresh(t, pool)
		wantHourly = append([]rollup{{Bucket: prevDay.Add(23 * time.Hour), FirstTS: prevDay.Add(23*time.Hour + 40*time.Minute),
			LastTS: prevDay.Add(23*time.Hour + 40*time.Minute), FirstImport: i64(900), LastImport: i64(900), ImportDelta: i64(0),
			MinPower: f32(50), MaxPower: f32(50), AvgPower: f64(50), PowerSamples: 1, Samples: 1}}, wantHourly...)
		wantHourly[1].LastTS, wantHourly[1].LastImport, wantHourly[1].ImportDelta = at(10, 50), i64(1350), i64(350)
		wantHourly[1].MaxPower, wantHourly[1].AvgPower, wantHourly[1].PowerSamples, wantHourly[1].Samples = f32(500), f64(425), 4, 5
		checkRollups(t, "hourly after late data", rollups(t, pool, "readings_hourly", 1), wantHourly)
		wantDaily = []rollup{
			{Bucket: prevDay, FirstTS: prevDay.Add(23*time.Hour + 40*time.Minute), LastTS: prevDay.Add(23*time.Hour + 40*time.Minute),
				FirstImport: i64(900), LastImport: i64(900), ImportDelta: i64(0), MinPower: f32(50), MaxPower: f32(50), AvgPower: f64(50), PowerSamples: 1, Samples: 1},
			{Bucket: day, FirstTS: at(10, 0), LastTS: at(11, 45), FirstImport: i64(1000), LastImport: i64(1700), ImportDelta: i64(700),
				MinPower: f32(100), MaxPower: f32(500), AvgPower: f64(2550.0 / 8), PowerSamples: 8, Samples: 9},
		}
		checkRollups(t, "daily after late data", rollups(t, pool, "readings_daily", 1), wantDaily)
		if got := rollups(t, pool, "readings_daily", 2); len(got) != 1 || got[0].Samples != 2 || *got[0].ImportDelta != 45 {
			t.Errorf("meter 2 daily = %+v", got)
		}
	})
}

func checkRollups(t *testing.T, what string, got, want []rollup) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d buckets, want %d: %+v", what, len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		eqT := func(a, b time.Time) bool { return a.Equal(b) }
		if !eqT(g.Bucket, w.Bucket) || !eqT(g.FirstTS, w.FirstTS) || !eqT(g.LastTS, w.LastTS) {
			t.Errorf("%s[%d]: times %v %v %v, want %v %v %v", what, i, g.Bucket, g.FirstTS, g.LastTS, w.Bucket, w.FirstTS, w.LastTS)
		}
		if !eqI(g.FirstImport, w.FirstImport) || !eqI(g.LastImport, w.LastImport) || !eqI(g.ImportDelta, w.ImportDelta) {
			t.Errorf("%s[%d]: import first/last/delta %v/%v/%v, want %v/%v/%v", what, i,
				deref(g.FirstImport), deref(g.LastImport), deref(g.ImportDelta), deref(w.FirstImport), deref(w.LastImport), deref(w.ImportDelta))
		}
		if !eqF32(g.MinPower, w.MinPower) || !eqF32(g.MaxPower, w.MaxPower) || !eqF64(g.AvgPower, w.AvgPower) {
			t.Errorf("%s[%d]: power min/max/avg %v/%v/%v, want %v/%v/%v", what, i,
				deref(g.MinPower), deref(g.MaxPower), deref(g.AvgPower), deref(w.MinPower), deref(w.MaxPower), deref(w.AvgPower))
		}
		if g.PowerSamples != w.PowerSamples || g.Samples != w.Samples {
			t.Errorf("%s[%d]: samples %d/%d, want %d/%d", what, i, g.PowerSamples, g.Samples, w.PowerSamples, w.Samples)
		}
		if g.FirstExport != nil || g.LastExportDlta != nil {
			t.Errorf("%s[%d]: export registers without export readings", what, i)
		}
	}
}

func eqI(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
func eqF32(a, b *float32) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
func eqF64(a, b *float64) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	d := *a - *b
	return d < 1e-9 && d > -1e-9
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestAutoProfileWithoutPreload migrates a server that has the extension
// files but does not preload the library. CREATE EXTENSION would raise a
// FATAL error there and kill the migration's connection; auto must choose
// the postgres profile instead and say why.
func TestAutoProfileWithoutPreload(t *testing.T) {
	t.Parallel()
	if !schematest.Timescale(t) {
		t.Skip("the timescaledb extension is not installed; nothing to preload")
	}
	ctx := context.Background()
	dir := t.TempDir()
	// Reachable by the postgres OS user, so the cluster stays in dir and
	// is removed with it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := localpg.Start(ctx, localpg.Config{
		DataDir:  dir + "/pg",
		Machine:  localpg.Machine{MemoryBytes: 1 << 30, CPUs: 1},
		Settings: map[string]string{"shared_preload_libraries": "", "timescaledb.max_background_workers": "0"},
		Log:      io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop(ctx) }()
	st, err := schema.Migrate(ctx, c.URL("postgres"), schema.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Profile != schema.ProfilePostgres || !strings.Contains(st.ProfileReason, "shared_preload_libraries") {
		t.Errorf("profile %q (%s), want postgres because the library is not preloaded", st.Profile, st.ProfileReason)
	}
	if _, err := schema.Migrate(ctx, c.URL("postgres"), schema.Config{Profile: schema.ProfileTimescale}); err != nil {
		t.Errorf("re-migrating a recorded postgres database: %v", err)
	}
}

// TestRollupsOutliveRetention drops old raw data and checks that the
// rollups of that data stay, in both profiles (in the timescale profile a
// refresh over a dropped range would otherwise delete them).
func TestRollupsOutliveRetention(t *testing.T) {
	t.Parallel()
	schematest.ForEachProfile(t, func(t *testing.T, pool *pgxpool.Pool) {
		ctx := context.Background()
		st, err := schema.LoadStorage(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		u := schema.NewUpkeep(pool, st, schema.UpkeepConfig{Retention: 30 * 24 * time.Hour, RollupBatch: 100})
		old := time.Now().Add(-60 * 24 * time.Hour).Truncate(time.Hour)
		if _, err := u.EnsurePartitions(ctx, old, old); err != nil {
			t.Fatal(err)
		}
		copyIn(t, pool, reading{7, old, 100, f32(10)}, reading{7, old.Add(10 * time.Minute), 150, f32(20)})
		// A full refresh while the data is still there.
		if _, err := schema.NewUpkeep(pool, st, schema.UpkeepConfig{}).RefreshRollups(ctx); err != nil {
			t.Fatal(err)
		}
		if got := rollups(t, pool, "readings_hourly", 7); len(got) != 1 || *got[0].ImportDelta != 50 {
			t.Fatalf("hourly before retention: %+v", got)
		}
		dropped, err := u.ApplyRetention(ctx)
		if err != nil || dropped == 0 {
			t.Fatalf("ApplyRetention = %d, %v", dropped, err)
		}
		if _, err := u.RefreshRollups(ctx); err != nil {
			t.Fatal(err)
		}
		var raw int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM readings WHERE meter_id = 7`).Scan(&raw); err != nil || raw != 0 {
			t.Fatalf("raw readings left: %d, %v", raw, err)
		}
		if got := rollups(t, pool, "readings_hourly", 7); len(got) != 1 || *got[0].ImportDelta != 50 || got[0].Samples != 2 {
			t.Errorf("hourly after retention: %+v", got)
		}
		if got := rollups(t, pool, "readings_daily", 7); len(got) != 1 || got[0].Samples != 2 {
			t.Errorf("daily after retention: %+v", got)
		}
	})
}
