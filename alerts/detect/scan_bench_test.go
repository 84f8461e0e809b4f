package detect_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/alerts/detect"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

// loadDaily creates a tenant with n meters and `days` daily rollups each,
// written with COPY: a random daily use per meter, with ~0.5 % of
// meter-days frozen, a few registers wound back and a few days above a
// plan threshold, so every rule has work. It returns the tenant and the
// first day.
func loadDaily(tb testing.TB, pool *pgxpool.Pool, n, days int) (detect.Tenant, time.Time) {
	tb.Helper()
	ctx := context.Background()
	kol, _ := time.LoadLocation("Asia/Kolkata")
	var tenant int64
	if err := pool.QueryRow(ctx, `INSERT INTO tenants (code, name, time_zone) VALUES ('bench', 'Bench', 'Asia/Kolkata') RETURNING id`).Scan(&tenant); err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO meters (tenant_id, external_id, serial, model, protocol, installed_at)
		SELECT $1, 'b-' || g, 'S-' || g, 'sdm120', 'mqtt', '2025-01-01' FROM generate_series(1, $2) g`, tenant, n); err != nil {
		tb.Fatal(err)
	}
	var first int64
	if err := pool.QueryRow(ctx, `SELECT min(id) FROM meters WHERE tenant_id = $1`, tenant).Scan(&first); err != nil {
		tb.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, kol)
	rnd := rand.New(rand.NewPCG(1, 2))
	m, d := 0, 0
	reg := int64(0)
	perDay := int64(0)
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if m == n {
			return nil, nil
		}
		if d == 0 {
			reg = int64(rnd.IntN(50_000_000))
			perDay = int64(2000 + rnd.IntN(20000))
		}
		day := start.AddDate(0, 0, d)
		use := perDay/2 + int64(rnd.IntN(int(perDay)))
		switch r := rnd.IntN(1000); {
		case r < 5: // frozen
			use = 0
		case r < 6: // wound back
			reg -= 50_000
		}
		firstWh := reg
		reg += use
		row := []any{first + int64(m), day, day.Add(10 * time.Minute), day.Add(23*time.Hour + 50*time.Minute),
			firstWh, reg, int64(0), int64(0), use, int64(0), float32(10), float32(use / 10), float64(use / 24), float64(use * 4), int64(96), int64(96)}
		d++
		if d == days {
			d = 0
			m++
		}
		return row, nil
	})
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"readings_daily"}, []string{"meter_id", "bucket", "first_ts", "last_ts",
		"first_import_wh", "last_import_wh", "first_export_wh", "last_export_wh", "import_delta_wh", "export_delta_wh",
		"min_power_w", "max_power_w", "avg_power_w", "power_sum_w", "power_samples", "samples"}, src); err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO alert_thresholds (tenant_id, service, tariff_plan, daily_wh) VALUES ($1, 'electricity', '*', 30000)`, tenant); err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE readings_daily`); err != nil {
		tb.Fatal(err)
	}
	return detect.Tenant{ID: tenant, Zone: kol}, start
}

// BenchmarkDailyScan100k scans 100,000 meters × 90 days of daily rollups
// (the first scan of a tenant: every rule over every day). The baseline,
// measured in the same run, streams the same rows from PostgreSQL and
// decodes them without judging anything; the ratio is the rules' and
// lifecycle's overhead over reading the data. -args -daily-scan.meters=N
// runs another size.
func BenchmarkDailyScan100k(b *testing.B) {
	n, days := *dailyScanMeters, 90
	ctx := context.Background()
	pool := schematest.New(b)
	began := time.Now()
	tenant, start := loadDaily(b, pool, n, days)
	load := time.Since(began)
	store := alertspg.New(pool)
	kol := tenant.Zone
	end := start.AddDate(0, 0, days)
	now := end.Add(time.Hour)
	var lo, hi int64
	if err := pool.QueryRow(ctx, `SELECT min(id), max(id) FROM meters WHERE tenant_id = $1`, tenant.ID).Scan(&lo, &hi); err != nil {
		b.Fatal(err)
	}
	var baseline, scan time.Duration
	var findings int
	for b.Loop() {
		t0 := time.Now()
		rows := 0
		for from := lo; from <= hi; from += 2000 {
			if err := store.Days(ctx, from, min(from+1999, hi), start, end, func(_ int64, ds []detect.Day) error {
				rows += len(ds)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		baseline = time.Since(t0)
		if rows != n*days {
			b.Fatalf("baseline read %d rows, want %d", rows, n*days)
		}
		if _, err := pool.Exec(ctx, `DELETE FROM alerts; DELETE FROM alert_scan_state; DELETE FROM notification_outbox`); err != nil {
			b.Fatal(err)
		}
		sc, err := detect.NewScanner(detect.Config{}, store, func() time.Time { return now }, nil)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		findings, err = sc.ScanDays(ctx, tenant, kol, start, start, end)
		if err != nil {
			b.Fatal(err)
		}
		scan = time.Since(t1)
	}
	var open int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE status <> 'resolved'`).Scan(&open); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "\ndaily scan: %d meters × %d days = %d meter-days (loaded with COPY in %v): scan %v (%.0f meter-days/s), %d findings, %d alerts open;"+
		" baseline (stream and decode the same rows) %v; ratio %.2f\n",
		n, days, n*days, load.Round(time.Second), scan.Round(time.Millisecond), float64(n*days)/scan.Seconds(), findings, open, baseline.Round(time.Millisecond),
		scan.Seconds()/baseline.Seconds())
	b.ReportMetric(scan.Seconds(), "s/scan")
	b.ReportMetric(baseline.Seconds(), "s/baseline")
	b.ReportMetric(scan.Seconds()/baseline.Seconds(), "x-baseline")
	b.ReportMetric(float64(n*days)/scan.Seconds(), "meter-days/s")
}
