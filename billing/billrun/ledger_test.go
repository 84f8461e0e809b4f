package billrun

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/postgres"
)

var may = billing.Period{From: billing.NewDate(2024, 5, 1), To: billing.NewDate(2024, 5, 31)}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func post(t *testing.T, f *fixture, store *postgres.Store, p postgres.Payment) postgres.Posting {
	t.Helper()
	var out postgres.Posting
	err := pgx.BeginFunc(context.Background(), f.pool, func(tx pgx.Tx) error {
		var err error
		out, err = store.PostCollection(context.Background(), tx, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func billOf(t *testing.T, f *fixture, conn int64, from billing.Date) (id int64, total, arrears, advance decimal.Decimal, status string) {
	t.Helper()
	if err := f.pool.QueryRow(context.Background(), `SELECT id, total, arrears, advance, status FROM bills WHERE connection_id = $1 AND period_from = $2::date AND status <> 'cancelled'`,
		conn, from.String()).Scan(&id, &total, &arrears, &advance, &status); err != nil {
		t.Fatal(err)
	}
	return
}

// TV18 on an electricity connection: an overpayment becomes advance, the
// next demand consumes it on creation and its bill shows it.
func TestLedgerAdvanceConsumedByNextDemand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	f.days = 61
	store := postgres.NewStore(pool, postgres.Deps{})
	f.publish(store, "lt-domestic")
	ids := f.addConnections([]conn{{plan: "lt-domestic", kwhPerDay: 5}})
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, april, 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	aprBill, total, _, _, _ := billOf(t, f, ids[0], april.From)
	if !total.Equal(dec("515")) {
		t.Fatalf("April total %s", total)
	}
	// Pay 50 more than the bill.
	p := post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: aprBill, Reference: "pay-1", Amount: dec("565"), ReceivedAt: time.Now()})
	if !p.Advance.Equal(dec("50")) || len(p.Bills) != 1 || p.Bills[0].Status != "paid" {
		t.Fatalf("posting = %+v", p)
	}
	again := post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: aprBill, Reference: "pay-1", Amount: dec("565")})
	if !again.Replayed || again.ID != p.ID {
		t.Fatalf("replayed posting = %+v", again)
	}
	if _, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, may, 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	// May: 5 × 31 = 155 kWh → 465 + 40 + 25.25 = 530.25 → 530; advance 50 → 480 payable.
	_, total, arrears, advance, status := billOf(t, f, ids[0], may.From)
	if !total.Equal(dec("480")) || !arrears.IsZero() || !advance.Equal(dec("-50")) || status != "issued" {
		t.Fatalf("May bill total %s arrears %s advance %s status %s", total, arrears, advance, status)
	}
	var advTax, advCollected, mayCollected decimal.Decimal
	if err := pool.QueryRow(ctx, `SELECT dd.tax_amount, dd.collection_amount FROM demand_details dd JOIN demands d ON d.id = dd.demand_id
		WHERE d.connection_id = $1 AND d.period_from = '2024-04-01' AND dd.tax_head = 'advance'`, ids[0]).Scan(&advTax, &advCollected); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT sum(dd.collection_amount) FROM demand_details dd JOIN demands d ON d.id = dd.demand_id
		WHERE d.connection_id = $1 AND d.period_from = '2024-05-01'`, ids[0]).Scan(&mayCollected); err != nil {
		t.Fatal(err)
	}
	if !advTax.Equal(dec("-50")) || !advCollected.Equal(dec("-50")) || !mayCollected.Equal(dec("50")) {
		t.Errorf("TV18: advance %s collected %s; May collected %s", advTax, advCollected, mayCollected)
	}
}

// An unpaid bill is arrears on the next one, with the late-payment
// surcharge; a part payment goes to the oldest period first, surcharge
// before charges.
func TestLedgerArrearsAndPartPayment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	f.days = 61
	store := postgres.NewStore(pool, postgres.Deps{})
	f.publish(store, "lt-domestic")
	ids := f.addConnections([]conn{{plan: "lt-domestic", kwhPerDay: 5}})
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []billing.Period{april, may} {
		if _, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, p, 10).ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	// April is due 20 May; May's bill is issued 5 June: 16 days late,
	// 18% p.a. on 515 → 4.06.
	mayBill, total, arrears, _, _ := billOf(t, f, ids[0], may.From)
	if !arrears.Equal(dec("519.06")) || !total.Equal(dec("1049.06")) {
		t.Fatalf("May bill: arrears %s total %s, want 519.06 and 1049.06", arrears, total)
	}
	p := post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: mayBill, Reference: "part-1", Amount: dec("300")})
	if len(p.Collections) == 0 || p.Collections[0].Head != "late_payment_surcharge" || !p.Collections[0].Amount.Equal(dec("4.06")) {
		t.Fatalf("first collection = %+v, want the surcharge", p.Collections)
	}
	var aprOut decimal.Decimal
	if err := pool.QueryRow(ctx, `SELECT sum(dd.tax_amount - dd.collection_amount) FROM demand_details dd JOIN demands d ON d.id = dd.demand_id
		WHERE d.connection_id = $1 AND d.period_from = '2024-04-01'`, ids[0]).Scan(&aprOut); err != nil {
		t.Fatal(err)
	}
	if !aprOut.Equal(dec("219.06")) {
		t.Errorf("April outstanding after 300 = %s, want 219.06", aprOut)
	}
	states := map[string]string{}
	for _, b := range p.Bills {
		states[b.Number] = b.Status
	}
	if len(states) != 2 || p.Bills[0].Status != "partially_paid" || p.Bills[1].Status != "partially_paid" {
		t.Errorf("bill states = %+v", p.Bills)
	}
	// The rest, exactly: both paid, nothing carried.
	rest := post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: mayBill, Reference: "part-2", Amount: dec("749.06")})
	if !rest.Advance.IsZero() || rest.Bills[0].Status != "paid" || rest.Bills[1].Status != "paid" {
		t.Errorf("after paying the rest: %+v", rest)
	}
	// A reversal re-opens the bills.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		r, err := store.ReverseCollection(ctx, tx, f.tenant, "part-2", "refund-part-2")
		if err != nil {
			return err
		}
		if r.Bills[1].Status != "partially_paid" {
			t.Errorf("after reversal: %+v", r.Bills)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Issued bills, their lines, published tariffs and demand details refuse
// changes.
func TestImmutability(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	f.publish(store, "lt-domestic")
	f.addConnections([]conn{{plan: "lt-domestic", kwhPerDay: 5}})
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, april, 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE bills SET total = total + 1`,
		`UPDATE bills SET due_date = due_date + 1`,
		`DELETE FROM bills`,
		`UPDATE bills SET lines = '[]'`,
		`UPDATE bills SET number = number || 'x'`,
		`UPDATE demand_details SET tax_amount = 0`,
		`UPDATE demand_details SET collection_amount = 1`,
		`DELETE FROM demand_details`,
		`UPDATE tariff_versions SET document = '{}'`,
		`DELETE FROM tariff_versions`,
	} {
		_, err := pool.Exec(ctx, sql)
		if err == nil {
			t.Errorf("%s: allowed", sql)
			continue
		}
		var code string
		if pe := pgErrCode(err); pe != "MD001" {
			code = pe
			t.Errorf("%s: %v (code %s), want MD001", sql, err, code)
		}
	}
	// References are checked per statement: no detail without its demand,
	// no bill of another tenant's demand.
	for _, sql := range []string{
		`INSERT INTO demand_details (demand_id, tax_head, category, tax_amount, source) VALUES (999999, 'x', 'CHARGES', 1, 'calculation')`,
		`INSERT INTO demands (tenant_id, connection_id, service, consumer_code, period_from, period_to, due_date, tariff_plan)
			VALUES (999999, 1, 'electricity', 'x', '2030-01-01', '2030-01-31', '2030-02-15', 'x')`,
		`INSERT INTO bills (tenant_id, connection_id, demand_id, number, financial_year, seq, service, consumer_code, tariff_plan, currency,
			period_from, period_to, issue_date, due_date, current_charges, total, minimum_payable, lines)
			SELECT tenant_id + 1, connection_id, id, 'X/1', 2099, 1, service, consumer_code, tariff_plan, 'INR', period_from, period_to,
			period_to, period_to, 0, 0, 0, '[]' FROM demands WHERE period_from = '2030-03-01'`,
	} {
		if strings.Contains(sql, "2030-03-01") {
			f.exec(`INSERT INTO demands (tenant_id, connection_id, service, consumer_code, period_from, period_to, due_date, tariff_plan)
				SELECT tenant_id, connection_id, service, consumer_code, '2030-03-01', '2030-03-31', '2030-04-15', tariff_plan FROM demands LIMIT 1`)
		}
		if _, err := pool.Exec(ctx, sql); pgErrCode(err) != "23503" {
			t.Errorf("%s: %v, want a reference violation (23503)", strings.Fields(sql)[2], err)
		}
	}
	// Payment state may change.
	if _, err := pool.Exec(ctx, `UPDATE bills SET status = 'overdue', status_changed_at = now()`); err != nil {
		t.Errorf("status change refused: %v", err)
	}
}
