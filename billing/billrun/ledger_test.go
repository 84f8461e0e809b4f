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

// oneElectricityConnection is a tenant with the lt-domestic plan and one
// connection using 5 kWh a day over April and May 2024, billed for the
// periods given, and the runner.
func oneElectricityConnection(t *testing.T, periods ...billing.Period) (*fixture, *postgres.Store, *Runner, []int64) {
	t.Helper()
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
	for _, p := range periods {
		if _, err := runner.Execute(context.Background(), newRun(t, store, f, postgres.TriggerCLI, p, 10).ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	return f, store, runner, ids
}

// sewerageAprilBills is a tenant with the pb sewerage masters and a
// residential connection with four water closets per code, billed for
// April on 1 May (60 each, due 16 May), and the runner.
func sewerageAprilBills(t *testing.T, codes ...string) (*fixture, *postgres.Store, *Runner, []int64) {
	t.Helper()
	f := newFixture(t, newPool(t))
	store := postgres.NewStore(f.pool, postgres.Deps{})
	f.publishMasters(store, "sewerage", "pb", "v1", billing.NewDate(2024, 4, 1), pbMasters(t, "sewerage", nil))
	ids := make([]int64, len(codes))
	for i, code := range codes {
		ids[i] = f.municipalConnection("sewerage", mconn{code: code, plan: "pb", usage: "RESIDENTIAL", closets: iptr(4)})
	}
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Execute(context.Background(), municipalRun(t, store, f, "sewerage", postgres.TriggerCLI, april, billing.NewDate(2024, 5, 1), 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	return f, store, runner, ids
}

// TV18 on an electricity connection: an overpayment becomes advance, the
// next demand consumes it on creation and its bill shows it.
func TestLedgerAdvanceConsumedByNextDemand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, store, runner, ids := oneElectricityConnection(t, april)
	pool := f.pool
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
	f, store, _, ids := oneElectricityConnection(t, april, may)
	pool := f.pool
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
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
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

// paidOf returns a bill's paid amount and status.
func paidOf(t *testing.T, f *fixture, bill int64) (decimal.Decimal, string) {
	t.Helper()
	var paid decimal.Decimal
	var status string
	if err := f.pool.QueryRow(context.Background(), `SELECT paid_amount, status FROM bills WHERE id = $1`, bill).Scan(&paid, &status); err != nil {
		t.Fatal(err)
	}
	return paid, status
}

// Amounts appended to the demand of an issued bill (the late-payment
// surcharge a later run puts on it) do not lower what the bill shows as
// paid: paid is what was collected against the bill's demands since it
// was issued, whatever heads the payments went to. A reversal takes back
// only what its payment gave.
func TestLedgerPaidAfterSurchargeAppended(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, store, runner, ids := oneElectricityConnection(t, april)
	pool := f.pool
	aprBill, _, _, _, _ := billOf(t, f, ids[0], april.From)
	post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: aprBill, Reference: "part-1", Amount: dec("200")})
	if paid, status := paidOf(t, f, aprBill); !paid.Equal(dec("200")) || status != "partially_paid" {
		t.Fatalf("April after 200: paid %s %s", paid, status)
	}
	// May's run (5 June) puts the surcharge on April's 315 outstanding:
	// 16 days late at 18 % p.a. = 2.49 (rounded 2.48548 → 2.49).
	if _, err := runner.Execute(ctx, newRun(t, store, f, postgres.TriggerCLI, may, 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	mayBill, total, arrears, _, _ := billOf(t, f, ids[0], may.From)
	surcharge := arrears.Sub(dec("315"))
	if !surcharge.IsPositive() {
		t.Fatalf("May arrears %s: no surcharge on April", arrears)
	}
	// 100 paid against May's bill: the surcharge first, then April's charges.
	p := post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: mayBill, Reference: "part-2", Amount: dec("100")})
	want := map[int64]decimal.Decimal{aprBill: dec("300"), mayBill: dec("100")}
	for _, b := range p.Bills {
		if !b.PaidAmount.Equal(want[b.ID]) || b.Status != "partially_paid" {
			t.Errorf("bill %s: paid %s %s, want %s partially_paid", b.Number, b.PaidAmount, b.Status, want[b.ID])
		}
	}
	// April's 515 is fully paid once 215 more reaches its demand (the
	// surcharge took 2.49 of the 100), May's bill then has 315 of it.
	rest := total.Sub(dec("100")).Sub(dec("530"))
	post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: mayBill, Reference: "part-3", Amount: rest})
	if paid, status := paidOf(t, f, aprBill); !paid.Equal(dec("515")) || status != "paid" {
		t.Errorf("April after its demand is settled: paid %s %s, want 515 paid", paid, status)
	}
	if paid, status := paidOf(t, f, mayBill); !paid.Equal(total.Sub(dec("530"))) || status != "partially_paid" {
		t.Errorf("May: paid %s %s, want %s partially_paid", paid, status, total.Sub(dec("530")))
	}
	// Reversing the payment made before May's bill was issued takes it
	// back from April's bill only: May's bill presented what was left.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := store.ReverseCollection(ctx, tx, f.tenant, "part-1", "refund-part-1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if paid, status := paidOf(t, f, aprBill); !paid.Equal(dec("315").Add(surcharge)) || status != "partially_paid" {
		t.Errorf("April after reversing 200: paid %s %s, want %s partially_paid", paid, status, dec("315").Add(surcharge))
	}
	if paid, _ := paidOf(t, f, mayBill); !paid.Equal(total.Sub(dec("530"))) {
		t.Errorf("May after reversing an earlier payment: paid %s, want %s", paid, total.Sub(dec("530")))
	}
}

// Interest, penalty and adhoc amounts appended to the demand of an issued
// sewerage bill (at payment, by the scheduled pass, by an official) do not
// lower its paid amount: a late payment of the bill's total pays the bill
// even though the penalty it first settled leaves part of the charge for
// the next bill's arrears.
func TestLedgerPaidAfterTimeBasedAndAdhoc(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, store, _, ids := sewerageAprilBills(t, "SW/L", "SW/Q", "SW/H")
	late, part, adhoc := ids[0], ids[1], ids[2]
	check := func(what string, bill int64, wantPaid, wantStatus string) {
		t.Helper()
		if paid, status := paidOf(t, f, bill); !paid.Equal(dec(wantPaid)) || status != wantStatus {
			t.Errorf("%s: paid %s %s, want %s %s", what, paid, status, wantPaid, wantStatus)
		}
	}
	// Due 16 May; paid on 20 May: penalty 6 and interest 3 are applied
	// first and take 9 of the payment.
	at := time.Date(2024, 5, 20, 12, 0, 0, 0, f.loc)
	bill, total, _, _, _ := billOf(t, f, late, april.From)
	if !total.Equal(dec("60")) {
		t.Fatalf("April total %s, want 60", total)
	}
	post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: bill, Reference: "l-1", Amount: dec("60"), ReceivedAt: at})
	check("the bill's total paid late", bill, "60", "paid")
	wantRows(t, "late", detailRows(t, f, demandOf(t, f, late, april.From)), [][3]string{
		{"SW_CHARGE", "60.00", "51.00"}, {"SW_TIME_INTEREST", "3.00", "3.00"}, {"SW_TIME_PENALTY", "6.00", "6.00"}})

	partBill, _, _, _, _ := billOf(t, f, part, april.From)
	post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: partBill, Reference: "q-1", Amount: dec("20"), ReceivedAt: at})
	check("20 paid late", partBill, "20", "partially_paid")
	// The scheduled pass a month on re-bases the interest; a payment after
	// it adds exactly what was paid.
	if _, err := store.ApplyTimeBased(ctx, time.Date(2024, 6, 20, 12, 0, 0, 0, f.loc), 100); err != nil {
		t.Fatal(err)
	}
	post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: partBill, Reference: "q-2", Amount: dec("15"), ReceivedAt: time.Date(2024, 6, 20, 13, 0, 0, 0, f.loc)})
	check("20 and 15 paid late", partBill, "35", "partially_paid")

	// An official's adhoc penalty on the bill's demand; the bill's 60 paid on time.
	adhocBill, _, _, _, _ := billOf(t, f, adhoc, april.From)
	pen := dec("16")
	if _, err := store.ApplyAdhoc(ctx, postgres.Adhoc{TenantID: f.tenant, ConnectionID: adhoc, Penalty: &pen, Reason: "unauthorised connection"}); err != nil {
		t.Fatal(err)
	}
	post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: adhocBill, Reference: "h-1", Amount: dec("30"), ReceivedAt: time.Date(2024, 5, 10, 12, 0, 0, 0, f.loc)})
	check("30 paid after an adhoc penalty", adhocBill, "30", "partially_paid")
	post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: adhocBill, Reference: "h-2", Amount: dec("30"), ReceivedAt: time.Date(2024, 5, 11, 12, 0, 0, 0, f.loc)})
	check("60 paid after an adhoc penalty", adhocBill, "60", "paid")
}
