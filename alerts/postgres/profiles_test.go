package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/detect"
	"github.com/meterd/meterd/alerts/internal/fixture"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/meter"
	meterpg "github.com/meterd/meterd/meter/postgres"
)

// The detector reads the rollups alike in both storage profiles (tables
// kept by meterd's job, or TimescaleDB continuous aggregates): three days
// of readings every 15 minutes with the register wound back on the third
// day (no counter event) give the same days, hours and tamper finding.
func TestDetectorOnBothProfiles(t *testing.T) {
	schematest.ForEachProfile(t, func(t *testing.T, pool *pgxpool.Pool) {
		ctx := context.Background()
		st := alertspg.New(pool)
		tenant := fixture.Tenant(t, pool, "Asia/Kolkata")
		m := fixture.Meter(t, pool, tenant, "p-1")
		kol, _ := time.LoadLocation("Asia/Kolkata")
		start := time.Date(2026, 3, 2, 0, 0, 0, 0, kol)
		storage, err := schema.LoadStorage(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		up := schema.NewUpkeep(pool, storage, schema.UpkeepConfig{})
		if _, err := up.EnsurePartitions(ctx, start.Add(-24*time.Hour), start.Add(96*time.Hour)); err != nil {
			t.Fatal(err)
		}
		var rows []meter.Reading
		reg := int64(1_000_000)
		for i := range 3 * 96 {
			if i == 2*96+40 {
				reg -= 300_000 // wound back at 10:00 on the third day
			}
			reg += 250
			rows = append(rows, meter.Reading{MeterID: m, Time: start.Add(time.Duration(i) * 15 * time.Minute), ReceivedAt: start, ImportWh: reg,
				PowerW: 1000, Fields: meter.FieldImport | meter.FieldPower, Source: meter.SourceMQTT})
		}
		if _, err := meterpg.NewStore(pool).CopyReadings(ctx, rows); err != nil {
			t.Fatal(err)
		}
		if _, err := up.RefreshRollups(ctx); err != nil {
			t.Fatal(err)
		}
		var days []detect.Day
		if err := st.Days(ctx, m, m, start, start.Add(72*time.Hour), func(_ int64, ds []detect.Day) error { days = append(days, ds...); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(days) != 3 || days[0].Samples != 96 || !days[0].Bucket.Equal(start.UTC()) || days[1].FirstImport != 1_000_000+250*97 {
			t.Fatalf("days %+v", days)
		}
		hours, err := st.Hours(ctx, []int64{m}, []time.Time{start.Add(time.Hour).UTC(), start.Add(25 * time.Hour).UTC()})
		if err != nil || len(hours) != 2 || hours[0].Samples != 4 || hours[0].PowerSamples != 4 || hours[0].MaxPowerW != 1000 {
			t.Fatalf("hours %+v %v", hours, err)
		}
		use, err := st.Usage(ctx, []int64{m}, start, start.Add(48*time.Hour))
		if err != nil || use[m].MeanImportW < 900 || use[m].MeanImportW > 1100 {
			t.Fatalf("usage %+v %v", use, err)
		}
		sc, err := detect.NewScanner(detect.Config{}, st, func() time.Time { return start.Add(80 * time.Hour) }, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := sc.ScanDays(ctx, detect.Tenant{ID: tenant, Zone: kol}, kol, start, start, start.Add(72*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("findings %d, %v", n, err)
		}
		list, err := st.Alerts(ctx, alerts.AlertFilter{TenantID: tenant})
		if err != nil || len(list) != 1 || list[0].Kind != alerts.KindTamper {
			t.Fatalf("alerts %+v %v", list, err)
		}
		var hrs []time.Time
		for h := start.Add(48 * time.Hour); h.Before(start.Add(72 * time.Hour)); h = h.Add(time.Hour) {
			hrs = append(hrs, h.UTC())
		}
		if _, err := sc.ScanHours(ctx, detect.Tenant{ID: tenant, Zone: kol}, hrs); err != nil {
			t.Fatal(err)
		}
	})
}
