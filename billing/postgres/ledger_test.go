package postgres_test

import (
	"context"
	"testing"
	"time"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// TV18 on a sewerage connection through the ledger API: a payment of 110
// against a demand of 60 leaves 50 as advance; the next demand of 60 is
// paid 50 by it on creation and 10 stays outstanding.
func TestLedgerTV18(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(schematest.URL(t, schema.ProfilePostgres))
	if err != nil {
		t.Fatal(err)
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error { pgxdecimal.Register(c.TypeMap()); return nil }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var tenant, user, prop, conn int64
	steps := []struct {
		sql  string
		dst  *int64
		args func() []any
	}{
		{`INSERT INTO tenants (code, name, time_zone) VALUES ('pb', 'Punjab ULB', 'Asia/Kolkata') RETURNING id`, &tenant, func() []any { return nil }},
		{`INSERT INTO users (tenant_id, email, role, password_hash) VALUES ($1, 'c@pb.test', 'consumer', '$argon2id$x') RETURNING id`, &user, func() []any { return []any{tenant} }},
		{`INSERT INTO properties (tenant_id, user_id, address_enc) VALUES ($1, $2, '\x00') RETURNING id`, &prop, func() []any { return []any{tenant, user} }},
		{`INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, tariff_plan, connection_type, water_closets)
			VALUES ($1, $2, 'sewerage', 'SW/107/2024-25/000001', 'active', 'pb-sewerage', 'Non Metered', 4) RETURNING id`, &conn, func() []any { return []any{tenant, prop} }},
	}
	for _, s := range steps {
		if err := pool.QueryRow(ctx, s.sql, s.args()...).Scan(s.dst); err != nil {
			t.Fatal(err)
		}
	}
	store := postgres.NewStore(pool, postgres.Deps{})
	tx := func(f func(pgx.Tx) error) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, pool, f); err != nil {
			t.Fatal(err)
		}
	}
	charge := []billing.Estimate{{Head: "SW_CHARGE", Category: billing.CategoryCharges, Amount: dec("60")}}
	april := billing.Period{From: billing.NewDate(2024, 4, 1), To: billing.NewDate(2024, 4, 30)}
	may := billing.Period{From: billing.NewDate(2024, 5, 1), To: billing.NewDate(2024, 5, 31)}
	tx(func(tx pgx.Tx) error {
		_, err := store.AddDemand(ctx, tx, postgres.NewDemand{TenantID: tenant, ConnectionID: conn, Period: april, Due: billing.NewDate(2024, 5, 15), Plan: "pb-sewerage", Estimates: charge})
		return err
	})
	tx(func(tx pgx.Tx) error {
		p, err := store.PostCollection(ctx, tx, postgres.Payment{TenantID: tenant, ConnectionID: conn, Reference: "rcpt-1", Amount: dec("110"), ReceivedAt: time.Now()})
		if err == nil && (!p.Advance.Equal(dec("50")) || len(p.Collections) != 1 || !p.Collections[0].Amount.Equal(dec("60"))) {
			t.Errorf("posting = %+v", p)
		}
		return err
	})
	var next postgres.LedgerDemand
	tx(func(tx pgx.Tx) error {
		var err error
		next, err = store.AddDemand(ctx, tx, postgres.NewDemand{TenantID: tenant, ConnectionID: conn, Period: may, Due: billing.NewDate(2024, 6, 15), Plan: "pb-sewerage", Estimates: charge})
		return err
	})
	// Expected (TV18): previous [SW_CHARGE 60/60, SW_ADVANCE_CARRYFORWARD −50/−50]; new [SW_CHARGE 60/50].
	rows, err := pool.Query(ctx, `SELECT d.period_from::text, dd.tax_head, dd.tax_amount, dd.collection_amount FROM demand_details dd
		JOIN demands d ON d.id = dd.demand_id WHERE d.connection_id = $1 ORDER BY d.period_from, dd.id`, conn)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		from, head string
		tax, coll  decimal.Decimal
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.from, &x.head, &x.tax, &x.coll)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"2024-04-01", "SW_CHARGE", dec("60"), dec("60")},
		{"2024-04-01", "SW_ADVANCE_CARRYFORWARD", dec("-50"), dec("-50")},
		{"2024-05-01", "SW_CHARGE", dec("60"), dec("50")},
	}
	if len(got) != len(want) {
		t.Fatalf("details = %+v", got)
	}
	for i := range want {
		if got[i].from != want[i].from || got[i].head != want[i].head || !got[i].tax.Equal(want[i].tax) || !got[i].coll.Equal(want[i].coll) {
			t.Errorf("detail %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if out := billing.TotalOutstanding(next.Demand.Details); !out.Equal(dec("10")) {
		t.Errorf("new demand outstanding %s, want 10", out)
	}
	// A second demand for the period conflicts; a posting replayed is the same.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := store.AddDemand(ctx, tx, postgres.NewDemand{TenantID: tenant, ConnectionID: conn, Period: may, Due: may.To, Plan: "pb-sewerage", Estimates: charge})
		return err
	})
	if err == nil {
		t.Error("a second demand for May was created")
	}
}
