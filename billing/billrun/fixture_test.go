package billrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// newPool returns a pool on a fresh database with the decimal codec, as
// cmd's pool has.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(schematest.URL(t, schema.ProfilePostgres))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error { pgxdecimal.Register(c.TypeMap()); return nil }
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// fixture builds a tenant with users, properties, electricity connections
// and meters whose daily rollups cover April 2024.
type fixture struct {
	t      testing.TB
	pool   *pgxpool.Pool
	tenant int64
	user   int64
	loc    *time.Location
	days   int // days of rollups after 31 March (default 30: April)
}

func newFixture(t testing.TB, pool *pgxpool.Pool) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, pool: pool}
	loc, err := time.LoadLocation(schematest.RollupTimeZone)
	if err != nil {
		t.Fatal(err)
	}
	f.loc = loc
	f.exec(`INSERT INTO tenants (code, name, time_zone) VALUES ('test-discom', 'Test Discom', $1)`, schematest.RollupTimeZone)
	if err := pool.QueryRow(ctx, `SELECT id FROM tenants WHERE code = 'test-discom'`).Scan(&f.tenant); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO users (tenant_id, email, role, password_hash) VALUES ($1, 'asha@example.com', 'consumer', '$argon2id$test') RETURNING id`, f.tenant).Scan(&f.user); err != nil {
		t.Fatal(err)
	}
	f.exec(`INSERT INTO user_profiles (tenant_id, user_id, name) VALUES ($1, $2, 'Asha Rao')`, f.tenant, f.user)
	f.exec(`INSERT INTO users (tenant_id, email, role, department, password_hash) VALUES ($1, 'officer@example.com', 'official', 'billing', '$argon2id$test')`, f.tenant)
	return f
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", strings.Fields(sql)[0]+" "+strings.Fields(sql)[2], err)
	}
}

// conn is a connection to create: plan "" for none; kwhPerDay < 0 for no meter.
type conn struct {
	plan      string
	loadKW    string
	kwhPerDay int64 // daily consumption in kWh
	backwards bool  // the register falls on day 10 without a counter event
	noMeter   bool
	skipDays  []int // April days without a rollup row
}

// addConnections creates the connections with meters installed on 1 March
// and daily rollups from 31 March to 30 April 2024; it returns their ids.
func (f *fixture) addConnections(conns []conn) []int64 {
	f.t.Helper()
	ctx := context.Background()
	ids := make([]int64, len(conns))
	var daily [][]any
	for i, c := range conns {
		var prop int64
		if err := f.pool.QueryRow(ctx, `INSERT INTO properties (tenant_id, user_id, label, address_enc) VALUES ($1, $2, $3, '\x00') RETURNING id`,
			f.tenant, f.user, fmt.Sprintf("House %d", i+1)).Scan(&prop); err != nil {
			f.t.Fatal(err)
		}
		var plan any
		if c.plan != "" {
			plan = c.plan
		}
		load := c.loadKW
		if load == "" {
			load = "2"
		}
		if err := f.pool.QueryRow(ctx, `INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, tariff_plan, sanctioned_load_kw, connected_at)
			VALUES ($1, $2, 'electricity', $3, 'active', $4, $5, '2024-01-01T00:00:00+05:30') RETURNING id`,
			f.tenant, prop, fmt.Sprintf("E%06d", i+1), plan, load).Scan(&ids[i]); err != nil {
			f.t.Fatal(err)
		}
		if c.noMeter {
			continue
		}
		var meter int64
		if err := f.pool.QueryRow(ctx, `INSERT INTO meters (tenant_id, external_id, serial, model, protocol, installed_at) VALUES ($1, $2, $2, 'sdm120', 'mqtt', '2024-03-01') RETURNING id`,
			f.tenant, fmt.Sprintf("M%06d", i+1)).Scan(&meter); err != nil {
			f.t.Fatal(err)
		}
		f.exec(`INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at, initial_import_wh) VALUES ($1, $2, $3, '2024-03-01T00:00:00+05:30', 0)`, f.tenant, ids[i], meter)
		reg := int64(1_000_000)
		skip := map[int]bool{}
		for _, d := range c.skipDays {
			skip[d] = true
		}
		lastDay := f.days
		if lastDay == 0 {
			lastDay = 30
		}
		for d := 0; d <= lastDay; d++ { // 0 is 31 March
			day := time.Date(2024, 4, d, 0, 0, 0, 0, f.loc)
			first := reg
			reg += c.kwhPerDay * 1000
			if c.backwards && d == 10 {
				reg = 500
			}
			if d > 0 && skip[d] {
				continue
			}
			daily = append(daily, []any{meter, day, day.Add(15 * time.Minute), day.Add(23*time.Hour + 45*time.Minute), first, reg, reg - first, int64(96), int64(96)})
		}
	}
	if _, err := f.pool.CopyFrom(ctx, pgx.Identifier{"readings_daily"}, []string{"meter_id", "bucket", "first_ts", "last_ts", "first_import_wh", "last_import_wh", "import_delta_wh", "power_samples", "samples"},
		pgx.CopyFromRows(daily)); err != nil {
		f.t.Fatal(err)
	}
	return ids
}

func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) publish(store *postgres.Store, plan string) {
	f.t.Helper()
	doc, err := os.ReadFile("testdata/tariff.json")
	if err != nil {
		f.t.Fatal(err)
	}
	doc = []byte(strings.Replace(string(doc), `"plan": "lt-domestic"`, fmt.Sprintf(`"plan": %q`, plan), 1))
	if _, err := store.PublishTariff(context.Background(), postgres.Publish{TenantID: f.tenant, Service: "electricity", Plan: plan, Document: doc}); err != nil {
		f.t.Fatal(err)
	}
}

// memOutbox records notifications; it writes nothing.
type memOutbox struct{ msgs []postgres.Notification }

func (m *memOutbox) Enqueue(_ context.Context, _ pgx.Tx, msgs []postgres.Notification) error {
	m.msgs = append(m.msgs, msgs...)
	return nil
}

func (m *memOutbox) events(event string) int {
	n := 0
	for _, x := range m.msgs {
		if x.Event == event {
			n++
		}
	}
	return n
}

func pgErrCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// connection creates one electricity connection of the fixture's consumer.
func (f *fixture) connection(code, plan, loadKW string) int64 {
	f.t.Helper()
	ctx := context.Background()
	var prop, id int64
	if err := f.pool.QueryRow(ctx, `INSERT INTO properties (tenant_id, user_id, label, address_enc) VALUES ($1, $2, 'Home', '\x00') RETURNING id`, f.tenant, f.user).Scan(&prop); err != nil {
		f.t.Fatal(err)
	}
	if err := f.pool.QueryRow(ctx, `INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, tariff_plan, sanctioned_load_kw, connected_at)
		VALUES ($1, $2, 'electricity', $3, 'active', $4, $5, '2024-01-01T00:00:00+05:30') RETURNING id`, f.tenant, prop, code, plan, loadKW).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// install puts a new meter on a connection from installed (to removed, if
// not zero) with the registers read then (nil: not recorded).
func (f *fixture) install(conn int64, serial string, installed, removed time.Time, initial, final *int64) int64 {
	f.t.Helper()
	ctx := context.Background()
	var meter int64
	if err := f.pool.QueryRow(ctx, `INSERT INTO meters (tenant_id, external_id, serial, model, protocol, installed_at) VALUES ($1, $2, $2, 'sdm120', 'mqtt', $3) RETURNING id`,
		f.tenant, serial, installed).Scan(&meter); err != nil {
		f.t.Fatal(err)
	}
	var rem, reason any
	if !removed.IsZero() {
		rem, reason = removed, "replaced"
	}
	f.exec(`INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at, removed_at, removal_reason, initial_import_wh, final_import_wh)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, f.tenant, conn, meter, installed, rem, reason, initial, final)
	return meter
}

// bucket writes one rollup row.
func (f *fixture) bucket(table string, meter int64, start, first, last time.Time, firstWh, lastWh int64) {
	f.t.Helper()
	f.exec(`INSERT INTO `+table+` (meter_id, bucket, first_ts, last_ts, first_import_wh, last_import_wh, import_delta_wh, power_samples, samples)
		VALUES ($1, $2, $3, $4, $5::bigint, $6::bigint, $6::bigint - $5::bigint, 1, 1)`, meter, start, first, last, firstWh, lastWh)
}

func readTestdata(path string) ([]byte, error) { return os.ReadFile(path) }
