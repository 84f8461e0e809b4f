package billrun

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/postgres"
)

// fleetSize is the number of connections BenchmarkBillRun bills. make bench
// uses the default; the issue's figure is measured with
//
//	go test ./billing/billrun -run '^$' -bench BillRun -benchtime 1x -billrun.fleet 100000
var fleetSize = flag.Int("billrun.fleet", 2000, "connections in BenchmarkBillRun's fleet (100000 for the issue's figure)")

// sqlOutbox writes notifications to notification_outbox in the batch's
// transaction, one statement per call, as the API's outbox does in cmd.
type sqlOutbox struct{}

func (sqlOutbox) Enqueue(ctx context.Context, tx pgx.Tx, msgs []postgres.Notification) error {
	tenants, users, events, keys := make([]int64, len(msgs)), make([]int64, len(msgs)), make([]string, len(msgs)), make([]string, len(msgs))
	payloads := make([]string, len(msgs))
	for i, m := range msgs {
		p, err := json.Marshal(m.Payload)
		if err != nil {
			return err
		}
		tenants[i], users[i], events[i], keys[i], payloads[i] = m.TenantID, m.UserID, m.Event, m.DedupeKey, string(p)
	}
	_, err := tx.Exec(ctx, `INSERT INTO notification_outbox (tenant_id, user_id, event, payload, dedupe_key)
		SELECT t, u, e, p::jsonb, k FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[]) AS x(t, u, e, p, k)
		ON CONFLICT (dedupe_key) DO NOTHING`, tenants, users, events, payloads, keys)
	return err
}

// benchFleet creates n electricity connections of one tenant, each with a
// meter installed before April 2024 and 31 daily rollups (31 March to 30
// April), straight in SQL.
func benchFleet(b *testing.B, pool *pgxpool.Pool, n int) int64 {
	b.Helper()
	ctx := context.Background()
	var tenant int64
	steps := []struct {
		sql  string
		args func() []any
	}{
		{`INSERT INTO tenants (code, name, time_zone) VALUES ('test-discom', 'Bench Discom', 'Asia/Kolkata')`, func() []any { return nil }},
		{`INSERT INTO users (tenant_id, email, role, password_hash) SELECT $1, 'u' || g || '@bench.test', 'consumer', '$argon2id$bench'
			FROM generate_series(1, $2 / 50 + 1) g`, func() []any { return []any{tenant, n} }},
		{`INSERT INTO properties (tenant_id, user_id, label, address_enc)
			SELECT $1, u.first + g % ($2 / 50 + 1), 'House ' || g, '\x00'::bytea FROM generate_series(1, $2) g,
			(SELECT min(id) AS first FROM users WHERE tenant_id = $1) u`, func() []any { return []any{tenant, n} }},
		{`INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, tariff_plan, sanctioned_load_kw, connected_at)
			SELECT $1, p.id, 'electricity', 'E' || lpad(p.id::text, 8, '0'), 'active', 'lt-domestic', 1 + p.id % 6, '2024-01-01T00:00:00+05:30'
			FROM properties p WHERE p.tenant_id = $1`, func() []any { return []any{tenant} }},
		{`INSERT INTO meters (tenant_id, external_id, serial, model, protocol, installed_at)
			SELECT $1, 'M' || c.id, 'M' || c.id, 'sdm120', 'mqtt', '2024-03-01' FROM connections c WHERE c.tenant_id = $1`, func() []any { return []any{tenant} }},
		{`INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at, initial_import_wh)
			SELECT $1, c.id, m.id, '2024-03-01T00:00:00+05:30', 0 FROM connections c JOIN meters m ON m.tenant_id = c.tenant_id AND m.external_id = 'M' || c.id
			WHERE c.tenant_id = $1`, func() []any { return []any{tenant} }},
		{`INSERT INTO readings_daily (meter_id, bucket, first_ts, last_ts, first_import_wh, last_import_wh, import_delta_wh, power_samples, samples)
			SELECT m.id, x.d, x.d + interval '15 minutes', x.d + interval '23 hours 45 minutes',
				1000000 + k * x.daily + 100, 1000000 + (k + 1) * x.daily, x.daily - 100, 96, 96
			FROM meters m CROSS JOIN generate_series(0, 30) k
			CROSS JOIN LATERAL (SELECT ('2024-03-31'::date + k)::timestamp AT TIME ZONE 'Asia/Kolkata' AS d, 3000 + (m.id % 25) * 700 AS daily) x
			WHERE m.tenant_id = $1`, func() []any { return []any{tenant} }},
		{`ANALYZE`, func() []any { return nil }},
	}
	for i, s := range steps {
		if _, err := pool.Exec(ctx, s.sql, s.args()...); err != nil {
			b.Fatalf("fleet step %d: %v", i, err)
		}
		if i == 0 {
			if err := pool.QueryRow(ctx, `SELECT id FROM tenants WHERE code = 'test-discom'`).Scan(&tenant); err != nil {
				b.Fatal(err)
			}
		}
	}
	return tenant
}

// BenchmarkBillRun bills a fleet end to end (consumption from a month of
// daily rollups, rating, demand and details, bill with gap-free number and
// lines, "bill issued" outbox rows, run progress; PDFs are rendered lazily
// and measured by billing/pdf's benchmark) and reports bills/s next to a
// same-run baseline: COPY of the same number of rows into a plain table
// shaped like bills (no triggers, no indexes).
func BenchmarkBillRun(b *testing.B) {
	ctx := context.Background()
	n := *fleetSize
	doc, err := os.ReadFile("testdata/tariff.json")
	if err != nil {
		b.Fatal(err)
	}
	var billed, elapsed, baseline float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pool := newPool(b)
		tenant := benchFleet(b, pool, n)
		store := postgres.NewStore(pool, postgres.Deps{Outbox: sqlOutbox{}})
		if _, err := store.PublishTariff(ctx, postgres.Publish{TenantID: tenant, Service: "electricity", Plan: "lt-domestic", Document: doc}); err != nil {
			b.Fatal(err)
		}
		runner, err := NewRunner(store, Config{BatchSize: 1000}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		run, err := store.CreateRun(ctx, postgres.NewRun{TenantID: tenant, Service: "electricity", Cycle: billing.CycleMonthly, Period: april,
			IssueDate: billing.NewDate(2024, 5, 5), Trigger: postgres.TriggerCLI, BatchSize: 1000}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		done, err := runner.Execute(ctx, run.ID, nil)
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if done.Billed != n || done.Failed != 0 {
			b.Fatalf("run = %+v, want %d billed", done, n)
		}
		billed += float64(done.Billed)
		elapsed += took.Seconds()
		baseline += copyBaseline(b, pool, n)
		pool.Close()
	}
	bills := billed / elapsed
	base := baseline / float64(b.N)
	b.ReportMetric(bills, "bills/s")
	b.ReportMetric(base, "baseline-rows/s")
	b.ReportMetric(bills/base, "ratio")
	b.ReportMetric(0, "ns/op")
}

// copyBaseline COPYs n bill-shaped rows into an unindexed table in one
// transaction and returns rows per second.
func copyBaseline(b *testing.B, pool *pgxpool.Pool, n int) float64 {
	b.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_bills (id bigint, tenant_id bigint, connection_id bigint, number text, period_from date, period_to date,
		due_date date, current_charges numeric, arrears numeric, total numeric, minimum_payable numeric, consumption_wh bigint)`); err != nil {
		b.Fatal(err)
	}
	rows := make([][]any, n)
	d := time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)
	amount := decimal.RequireFromString("1234.56")
	for i := range rows {
		rows[i] = []any{int64(i), int64(1), int64(i), "TEST/2024-25/000001", d, d, d, amount, amount, amount, amount, int64(150000)}
	}
	start := time.Now()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"bench_bills"}, []string{"id", "tenant_id", "connection_id", "number", "period_from", "period_to", "due_date",
			"current_charges", "arrears", "total", "minimum_payable", "consumption_wh"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}
