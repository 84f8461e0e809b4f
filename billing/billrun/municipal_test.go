package billrun

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/postgres"
)

// pbMasters returns the pb master data of service ("sewerage" or
// "water"), with edit applied to the decoded document.
func pbMasters(t testing.TB, service string, edit func(doc map[string]any)) []byte {
	t.Helper()
	name := "../municipal/testdata/pb-sewerage.json"
	if service == "water" {
		name = "../municipal/testdata/pb-water.json"
	}
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return data
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// closetSlab is a residential, non-metered slab per water closet at rate.
func closetSlab(id, rate string) map[string]any {
	return map[string]any{"id": id, "buildingType": "RESIDENTIAL", "connectionType": "Non Metered", "calculationAttribute": "No. of water closets",
		"minimumCharge": 0, "slabs": []any{map[string]any{"from": 0, "to": 1000000000, "charge": json.Number(rate)}}}
}

func (f *fixture) publishMasters(store *postgres.Store, service, plan, version string, effective billing.Date, doc []byte) {
	f.t.Helper()
	if _, err := store.PublishTariff(context.Background(), postgres.Publish{TenantID: f.tenant, Service: service, Plan: plan, Document: doc,
		Version: version, EffectiveFrom: effective}); err != nil {
		f.t.Fatal(err)
	}
}

// mconn is a water or sewerage connection to create.
type mconn struct {
	code, plan, connType, usage, status string
	closets, taps, pipe                 *int
}

func iptr(n int) *int { return &n }

func (f *fixture) municipalConnection(service string, c mconn) int64 {
	f.t.Helper()
	ctx := context.Background()
	var prop, id int64
	if err := f.pool.QueryRow(ctx, `INSERT INTO properties (tenant_id, user_id, label, address_enc) VALUES ($1, $2, $3, '\x00') RETURNING id`,
		f.tenant, f.user, c.code).Scan(&prop); err != nil {
		f.t.Fatal(err)
	}
	var plan, usage any
	if c.plan != "" {
		plan = c.plan
	}
	if c.usage != "" {
		usage = c.usage
	}
	if c.connType == "" {
		c.connType = "Non Metered"
	}
	if c.status == "" {
		c.status = "active"
	}
	if err := f.pool.QueryRow(ctx, `INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, tariff_plan, connection_type, usage_category,
			water_closets, connected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '2024-01-01T00:00:00+05:30') RETURNING id`,
		f.tenant, prop, service, c.code, c.status, plan, c.connType, usage, c.closets).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	if c.taps != nil || c.pipe != nil {
		f.exec(`INSERT INTO municipal_attributes (connection_id, tenant_id, taps, pipe_size) VALUES ($1, $2, $3, $4)`, id, f.tenant, c.taps, c.pipe)
	}
	return id
}

// waterMeter installs a meter of model on a connection on 1 March with
// daily rollups from 31 March to 30 April whose register (litres) moves
// by litres over April.
func (f *fixture) waterMeter(conn int64, serial, model string, litres int64) {
	f.t.Helper()
	var meter int64
	if err := f.pool.QueryRow(context.Background(), `INSERT INTO meters (tenant_id, external_id, serial, model, protocol, installed_at) VALUES ($1, $2, $2, $3, 'manual', '2024-03-01') RETURNING id`,
		f.tenant, serial, model).Scan(&meter); err != nil {
		f.t.Fatal(err)
	}
	f.exec(`INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at, initial_import_wh) VALUES ($1, $2, $3, '2024-03-01T00:00:00+05:30', 0)`, f.tenant, conn, meter)
	reg := int64(120_000)
	for d := 0; d <= 30; d++ {
		day := time.Date(2024, 4, d, 0, 0, 0, 0, f.loc)
		first := reg
		if d > 0 {
			reg += litres*int64(d)/30 - litres*int64(d-1)/30
		}
		f.bucket("readings_daily", meter, day, day.Add(15*time.Minute), day.Add(23*time.Hour+45*time.Minute), first, reg)
	}
}

func municipalRun(t *testing.T, store *postgres.Store, f *fixture, service, trigger string, p billing.Period, issue billing.Date, batch int) postgres.Run {
	t.Helper()
	run, err := store.CreateRun(context.Background(), postgres.NewRun{TenantID: f.tenant, Service: service, Cycle: billing.CycleMonthly,
		Period: p, IssueDate: issue, Trigger: trigger, BatchSize: batch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// detailRows returns a demand's details as [head, tax, collected] in
// append order.
func detailRows(t *testing.T, f *fixture, demand int64) [][3]string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT tax_head, tax_amount, collection_amount FROM demand_details WHERE demand_id = $1 ORDER BY id`, demand)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]string, error) {
		var h string
		var tax, col decimal.Decimal
		err := r.Scan(&h, &tax, &col)
		return [3]string{h, tax.StringFixed(2), col.StringFixed(2)}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func demandOf(t *testing.T, f *fixture, conn int64, from billing.Date) int64 {
	t.Helper()
	var id int64
	if err := f.pool.QueryRow(context.Background(), `SELECT id FROM demands WHERE connection_id = $1 AND kind = 'periodic' AND period_from = $2::date`, conn, from.String()).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func wantRows(t *testing.T, what string, got [][3]string, want [][3]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: details %v, want %v", what, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: detail %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// A sewerage fleet with injected failures: every good connection is
// billed from its slab, every connection without a plan, masters or slab
// is skipped with the reason, every failure (an ambiguous slab set, a
// database refusal) is a dead letter with its reason and in the officials'
// run summary; running again creates nothing.
func TestMunicipalSewerageRunWithFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	out := &memOutbox{}
	store := postgres.NewStore(pool, postgres.Deps{Outbox: out})
	f.publishMasters(store, "sewerage", "pb-sewerage", "2024-v1", billing.NewDate(2024, 4, 1), pbMasters(t, "sewerage", nil))
	f.publishMasters(store, "sewerage", "pb-dup", "2024-v1", billing.NewDate(2024, 4, 1), pbMasters(t, "sewerage", func(doc map[string]any) {
		doc["SCBillingSlab"] = []any{closetSlab("a", "15"), closetSlab("b", "16")}
	}))
	f.publishMasters(store, "sewerage", "pb-may", "2024-v1", billing.NewDate(2024, 5, 1), pbMasters(t, "sewerage", nil))

	want := map[int64]string{} // connection → total of its bill
	for i := 0; i < 24; i++ {
		usage, rate := "RESIDENTIAL", 15
		if i%4 == 3 {
			usage, rate = "NONRESIDENTIAL.COMMERCIAL", 30
		}
		n := 1 + i%5
		id := f.municipalConnection("sewerage", mconn{code: fmt.Sprintf("SW/%03d", i), plan: "pb-sewerage", usage: usage, closets: iptr(n)})
		want[id] = decimal.NewFromInt(int64(rate * n)).StringFixed(2)
	}
	skipped := map[int64]string{
		f.municipalConnection("sewerage", mconn{code: "SW/S1", usage: "RESIDENTIAL", closets: iptr(2)}):                                         "no tariff plan assigned",
		f.municipalConnection("sewerage", mconn{code: "SW/S2", plan: "pb-may", usage: "RESIDENTIAL", closets: iptr(2)}):                         `has no sewerage masters in force on 2024-04-01`,
		f.municipalConnection("sewerage", mconn{code: "SW/S3", plan: "pb-sewerage", usage: "INDUSTRIAL", closets: iptr(2)}):                     "no billing slab matches",
		f.municipalConnection("sewerage", mconn{code: "SW/S4", plan: "pb-sewerage", usage: "RESIDENTIAL", closets: iptr(2), status: "pending"}): "pending",
	}
	failed := map[int64]string{
		f.municipalConnection("sewerage", mconn{code: "SW/F1", plan: "pb-dup", usage: "RESIDENTIAL", closets: iptr(2)}):        "more than one billing slab matches",
		f.municipalConnection("sewerage", mconn{code: "FAIL/F2", plan: "pb-sewerage", usage: "RESIDENTIAL", closets: iptr(3)}): "injected refusal",
	}
	// The database refuses FAIL/ demands: the batch holding one rolls back,
	// its connections are billed one by one, and that one is a dead letter.
	f.exec(`CREATE FUNCTION refuse_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
		IF EXISTS (SELECT 1 FROM new_rows WHERE consumer_code LIKE 'FAIL/%') THEN RAISE EXCEPTION 'injected refusal'; END IF; RETURN NULL; END $$`)
	f.exec(`CREATE TRIGGER refuse_fail AFTER INSERT ON demands REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION refuse_fail()`)

	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run := municipalRun(t, store, f, "sewerage", postgres.TriggerCLI, april, billing.NewDate(2024, 5, 2), 5)
	done, err := runner.Execute(ctx, run.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != postgres.RunCompleted || done.Total != 30 || done.Processed != 30 || done.Billed != 24 || done.Skipped != 4 || done.Failed != 2 {
		t.Fatalf("first run = %+v", done)
	}
	for conn, total := range want {
		var got decimal.Decimal
		var lines string
		if err := pool.QueryRow(ctx, `SELECT total, lines::text FROM bills WHERE connection_id = $1 AND status = 'issued'`, conn).Scan(&got, &lines); err != nil {
			t.Fatal(err)
		}
		if got.StringFixed(2) != total || !strings.Contains(lines, `"code":"SW_CHARGE"`) || !strings.Contains(lines, "No. of water closets") {
			t.Errorf("connection %d: total %s, want %s; lines %s", conn, got, total, lines)
		}
	}
	if n := f.count(`SELECT count(*) FROM demand_details dd JOIN demands d ON d.id = dd.demand_id WHERE d.service = 'sewerage' AND dd.tax_head = 'SW_CHARGE' AND dd.source = 'calculation'`); n != 24 {
		t.Errorf("SW_CHARGE details = %d, want 24", n)
	}
	rows, err := pool.Query(ctx, `SELECT connection_id, reason FROM bill_run_skips WHERE run_id = $1`, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	skips, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		Conn   int64
		Reason string
	}])
	if err != nil {
		t.Fatal(err)
	}
	if len(skips) != len(skipped) {
		t.Errorf("skips = %+v", skips)
	}
	for _, s := range skips {
		if !strings.Contains(s.Reason, skipped[s.Conn]) {
			t.Errorf("skip of %d: %q, want it to mention %q", s.Conn, s.Reason, skipped[s.Conn])
		}
	}
	dead, err := store.DeadLetters(ctx, f.tenant, "sewerage", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != len(failed) {
		t.Fatalf("dead letters = %+v", dead)
	}
	for _, d := range dead {
		if !strings.Contains(d.Reason, failed[d.ConnectionID]) {
			t.Errorf("dead letter of %d: %q, want it to mention %q", d.ConnectionID, d.Reason, failed[d.ConnectionID])
		}
	}
	if got := out.events(postgres.EventBillIssued); got != 24 {
		t.Errorf("bill.issued notifications = %d, want one per bill", got)
	}
	var summary map[string]any
	for _, m := range out.msgs {
		if m.Event == postgres.EventRunSummary {
			summary = m.Payload
		}
	}
	fs, _ := summary["failures"].([]map[string]any)
	ss, _ := summary["skips"].([]map[string]any)
	if summary["service"] != "sewerage" || summary["billed"] != 24 || summary["failed"] != 2 || len(fs) != 2 || summary["skipped"] != 4 || len(ss) != 4 {
		t.Errorf("run summary = %v", summary)
	}
	if list, err := store.RunSkips(ctx, f.tenant, run.ID); err != nil || len(list) != 4 {
		t.Errorf("run skips = %v, %v", list, err)
	}

	// Again: nothing new.
	run2 := municipalRun(t, store, f, "sewerage", postgres.TriggerCLI, april, billing.NewDate(2024, 5, 2), 5)
	done2, err := runner.Execute(ctx, run2.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done2.Billed != 0 || done2.Unchanged != 24 || done2.Failed != 2 || done2.Skipped != 4 {
		t.Fatalf("second run = %+v", done2)
	}
	for table, n := range map[string]int{"bills": 24, "demands": 24, "demand_details": 24} {
		if got := f.count(`SELECT count(*) FROM ` + table); got != n {
			t.Errorf("%s after the second run = %d, want %d", table, got, n)
		}
	}
	if got := out.events(postgres.EventRunSummary); got != 2 {
		t.Errorf("run summaries = %d, want one per run", got)
	}
}

// Water: metered connections billed on their water meters' litres,
// graduated (TV17), with cess; non-metered ones by pipe size; a metered
// connection whose meter is an electricity meter, or which has no meter,
// is a dead letter.
func TestMunicipalWaterRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	f.publishMasters(store, "water", "pb-water", "2024-v1", billing.NewDate(2024, 4, 1), pbMasters(t, "water", nil))
	metered := f.municipalConnection("water", mconn{code: "WS/1", plan: "pb-water", connType: "Metered", usage: "RESIDENTIAL"})
	f.waterMeter(metered, "WM-1", "water-litre", 35_000) // 35 kL
	pipe := f.municipalConnection("water", mconn{code: "WS/2", plan: "pb-water", usage: "RESIDENTIAL", pipe: iptr(1)})
	wrongMeter := f.municipalConnection("water", mconn{code: "WS/3", plan: "pb-water", connType: "Metered", usage: "RESIDENTIAL"})
	f.waterMeter(wrongMeter, "EM-3", "sdm120", 10_000)
	noMeter := f.municipalConnection("water", mconn{code: "WS/4", plan: "pb-water", connType: "Metered", usage: "RESIDENTIAL"})

	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done, err := runner.Execute(ctx, municipalRun(t, store, f, "water", postgres.TriggerCLI, april, billing.NewDate(2024, 5, 2), 10).ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.Billed != 2 || done.Failed != 2 {
		t.Fatalf("run = %+v", done)
	}
	// TV17 recommended: 10×2 + 10×2.5 + 10×8 + 5×12 = 185, cess 5% 9.25, round-off −0.25 → 194.
	wantRows(t, "metered", detailRows(t, f, demandOf(t, f, metered, april.From)), [][3]string{
		{"WS_CHARGE", "185.00", "0.00"}, {"WS_WATER_CESS", "9.25", "0.00"}, {"WS_Round_Off", "-0.25", "0.00"}})
	var consumption, prev, cur int64
	var total decimal.Decimal
	if err := pool.QueryRow(ctx, `SELECT consumption_wh, previous_read_wh, current_read_wh, total FROM bills WHERE connection_id = $1`, metered).Scan(&consumption, &prev, &cur, &total); err != nil {
		t.Fatal(err)
	}
	if consumption != 35_000 || cur-prev != 35_000 || !total.Equal(decimal.NewFromInt(194)) {
		t.Errorf("metered bill: %d litres, reads %d..%d, total %s", consumption, prev, cur, total)
	}
	// Pipe size 1 at 150 per unit (slab 6), cess 7.50 → 157.50 → 158.
	wantRows(t, "pipe size", detailRows(t, f, demandOf(t, f, pipe, april.From)), [][3]string{
		{"WS_CHARGE", "150.00", "0.00"}, {"WS_WATER_CESS", "7.50", "0.00"}, {"WS_Round_Off", "0.50", "0.00"}})
	dead, err := store.DeadLetters(ctx, f.tenant, "water", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[int64]string{}
	for _, d := range dead {
		reasons[d.ConnectionID] = d.Reason
	}
	if !strings.Contains(reasons[wrongMeter], "not a water meter") || reasons[noMeter] == "" || len(dead) != 2 {
		t.Errorf("dead letters = %+v", dead)
	}
}

// A recalculation through the database appends only the difference (TV08:
// 120 charged and collected, the new estimate 150 appends 30 with nothing
// collected), never edits a detail, and replaces the bill; a run after
// that changes nothing.
func TestMunicipalRecalculationTV08(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	f.publishMasters(store, "sewerage", "flat30", "2024-v1", billing.NewDate(2024, 4, 1), pbMasters(t, "sewerage", func(doc map[string]any) {
		doc["SCBillingSlab"] = []any{closetSlab("30", "30")}
	}))
	conn := f.municipalConnection("sewerage", mconn{code: "SW/TV08", plan: "flat30", usage: "RESIDENTIAL", closets: iptr(4)})
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	issue := billing.NewDate(2024, 5, 2)
	if _, err := runner.Execute(ctx, municipalRun(t, store, f, "sewerage", postgres.TriggerCLI, april, issue, 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	bill, total, _, _, _ := billOf(t, f, conn, april.From)
	if !total.Equal(dec("120")) {
		t.Fatalf("bill total %s", total)
	}
	post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: bill, Reference: "tv08-pay", Amount: dec("120"), ReceivedAt: issue.Start(f.loc)})

	f.exec(`UPDATE connections SET water_closets = 5 WHERE id = $1`, conn)
	done, err := runner.Execute(ctx, municipalRun(t, store, f, "sewerage", postgres.TriggerOfficial, april, billing.NewDate(2024, 5, 3), 10).ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.Billed != 1 {
		t.Fatalf("recalculation run = %+v", done)
	}
	demand := demandOf(t, f, conn, april.From)
	wantRows(t, "TV08", detailRows(t, f, demand), [][3]string{{"SW_CHARGE", "120.00", "120.00"}, {"SW_CHARGE", "30.00", "0.00"}})
	if n := f.count(`SELECT count(*) FROM demand_details WHERE demand_id = $1 AND source = 'recalculation'`, demand); n != 1 {
		t.Errorf("recalculation details = %d", n)
	}
	var status, reason string
	if err := pool.QueryRow(ctx, `SELECT status, cancel_reason FROM bills WHERE id = $1`, bill).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	newBill, total, _, advance, _ := billOf(t, f, conn, april.From)
	var replaces int64
	if err := pool.QueryRow(ctx, `SELECT replaces_bill_id FROM bills WHERE id = $1`, newBill).Scan(&replaces); err != nil {
		t.Fatal(err)
	}
	if status != "cancelled" || replaces != bill || !total.Equal(dec("30")) || !advance.Equal(dec("-120")) {
		t.Errorf("old bill %s (%s); new bill replaces %d, total %s, advance %s", status, reason, replaces, total, advance)
	}
	// Outstanding is the delta only.
	var outstanding decimal.Decimal
	if err := pool.QueryRow(ctx, `SELECT sum(tax_amount - collection_amount) FROM demand_details WHERE demand_id = $1`, demand).Scan(&outstanding); err != nil {
		t.Fatal(err)
	}
	if !outstanding.Equal(dec("30")) {
		t.Errorf("outstanding %s, want 30", outstanding)
	}
	done, err = runner.Execute(ctx, municipalRun(t, store, f, "sewerage", postgres.TriggerOfficial, april, billing.NewDate(2024, 5, 3), 10).ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.Unchanged != 1 || done.Billed != 0 || f.count(`SELECT count(*) FROM demand_details WHERE demand_id = $1`, demand) != 2 {
		t.Errorf("third run = %+v", done)
	}
}

// TV09 through the database: the run creates the demand (A), the
// scheduler's time-based pass adds interest, penalty and the round-off
// once the due day is past (B, not an hour before the gate), a run after
// a rate and closet change appends the deltas and two round-off rows (C),
// and the next pass re-bases penalty and interest by appending the
// differences (D); every total whole, the round-off sum in (−0.5, 0.5].
func TestMunicipalTimeBasedTV09(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	store := postgres.NewStore(pool, postgres.Deps{})
	// Interest 5 %, penalty 10 % after 15 days (TV12's gate).
	gated := func(rate string) func(map[string]any) {
		return func(doc map[string]any) {
			doc["SCBillingSlab"] = []any{closetSlab("r", rate)}
			for _, k := range []string{"Interest", "Penalty"} {
				doc[k].([]any)[0].(map[string]any)["applicableAfterDays"] = 15
			}
		}
	}
	f.publishMasters(store, "sewerage", "tv09", "v1", billing.NewDate(2024, 4, 1), pbMasters(t, "sewerage", gated("30.1")))
	f.exec(`INSERT INTO billing_settings (tenant_id, service, due_after_days) VALUES ($1, 'sewerage', 14)`, f.tenant)
	conn := f.municipalConnection("sewerage", mconn{code: "SW/TV09", plan: "tv09", usage: "RESIDENTIAL", closets: iptr(4)})
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A: May's demand, issued 1 June, due 15 June (end of day, IST).
	if _, err := runner.Execute(ctx, municipalRun(t, store, f, "sewerage", postgres.TriggerCLI, may, billing.NewDate(2024, 6, 1), 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	demand := demandOf(t, f, conn, may.From)
	a := [][3]string{{"SW_CHARGE", "120.40", "0.00"}, {"SW_Round_Off", "-0.40", "0.00"}}
	wantRows(t, "A", detailRows(t, f, demand), a)

	endOfDue := billing.NewDate(2024, 6, 16).Start(f.loc).Add(-time.Millisecond)
	gate := endOfDue.Add(15 * 24 * time.Hour)
	pass := func(now time.Time) int {
		t.Helper()
		res, err := store.ApplyTimeBased(ctx, now, 100)
		if err != nil {
			t.Fatal(err)
		}
		return res.Appended
	}
	// B: 14 days and 23 hours after the due day: nothing; at 15 days: interest and penalty.
	if n := pass(gate.Add(-time.Hour)); n != 0 {
		t.Fatalf("an hour before the gate appended %d", n)
	}
	pass(gate)
	b := append(a, [3]string{"SW_TIME_INTEREST", "6.02", "0.00"}, [3]string{"SW_TIME_PENALTY", "12.04", "0.00"}, [3]string{"SW_Round_Off", "-0.06", "0.00"})
	wantRows(t, "B", detailRows(t, f, demand), b)
	if n := pass(gate.Add(time.Hour)); n != 0 {
		t.Errorf("a second pass appended %d", n)
	}

	// C: a new version (30.14 per closet) and a fifth closet; re-running May appends the deltas.
	f.publishMasters(store, "sewerage", "tv09", "v2", billing.NewDate(2024, 5, 1), pbMasters(t, "sewerage", gated("30.14")))
	f.exec(`UPDATE connections SET water_closets = 5 WHERE id = $1`, conn)
	done, err := runner.Execute(ctx, municipalRun(t, store, f, "sewerage", postgres.TriggerOfficial, may, billing.NewDate(2024, 7, 2), 10).ID, nil)
	if err != nil || done.Billed != 1 {
		t.Fatalf("recalculation run = %+v, %v", done, err)
	}
	c := append(b, [3]string{"SW_CHARGE", "30.30", "0.00"}, [3]string{"SW_Round_Off", "0.76", "0.00"}, [3]string{"SW_Round_Off", "-0.06", "0.00"})
	wantRows(t, "C", detailRows(t, f, demand), c)

	// D: the next pass re-bases penalty and interest on 150.70.
	pass(gate.Add(24 * time.Hour))
	d := append(c, [3]string{"SW_TIME_INTEREST", "1.52", "0.00"}, [3]string{"SW_TIME_PENALTY", "3.03", "0.00"}, [3]string{"SW_Round_Off", "-0.55", "0.00"})
	wantRows(t, "D", detailRows(t, f, demand), d)
	var total, roundOff decimal.Decimal
	if err := pool.QueryRow(ctx, `SELECT sum(tax_amount), sum(tax_amount) FILTER (WHERE tax_head = 'SW_Round_Off') FROM demand_details WHERE demand_id = $1`, demand).Scan(&total, &roundOff); err != nil {
		t.Fatal(err)
	}
	if !total.Equal(dec("173")) || !roundOff.Equal(dec("-0.31")) {
		t.Errorf("total %s, round-off sum %s; want 173 and -0.31", total, roundOff)
	}
}

// Time-based amounts are applied before a payment is spread, and before a
// bill presents a demand as arrears; a paid demand gets none (bug B7).
func TestMunicipalTimeBasedBeforePaymentAndBill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, store, runner, ids := sewerageAprilBills(t, "SW/P", "SW/L", "SW/A")
	paid, late, arrears := ids[0], ids[1], ids[2]
	// Due 16 May. SW/P pays on time; SW/L pays 60 on 20 May: penalty 6 and
	// interest 3 are due first and take 9 of it.
	bill, _, _, _, _ := billOf(t, f, paid, april.From)
	post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: bill, Reference: "p-1", Amount: dec("60"), ReceivedAt: time.Date(2024, 5, 10, 12, 0, 0, 0, f.loc)})
	bill, _, _, _, _ = billOf(t, f, late, april.From)
	p := post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: bill, Reference: "l-1", Amount: dec("60"), ReceivedAt: time.Date(2024, 5, 20, 12, 0, 0, 0, f.loc)})
	heads := map[billing.TaxHead]decimal.Decimal{}
	for _, c := range p.Collections {
		heads[c.Head] = heads[c.Head].Add(c.Amount)
	}
	if !heads["SW_TIME_PENALTY"].Equal(dec("6")) || !heads["SW_TIME_INTEREST"].Equal(dec("3")) || !heads["SW_CHARGE"].Equal(dec("51")) {
		t.Errorf("late payment collections %v", p.Collections)
	}
	// May's run on 1 June: SW/A's unpaid April gets penalty and interest
	// and its bill shows them as arrears; paid April gets nothing.
	if _, err := runner.Execute(ctx, municipalRun(t, store, f, "sewerage", postgres.TriggerCLI, may, billing.NewDate(2024, 6, 1), 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	_, total, arr, _, _ := billOf(t, f, arrears, may.From)
	if !arr.Equal(dec("69")) || !total.Equal(dec("129")) {
		t.Errorf("arrears bill: arrears %s total %s, want 69 and 129", arr, total)
	}
	wantRows(t, "paid April", detailRows(t, f, demandOf(t, f, paid, april.From)), [][3]string{{"SW_CHARGE", "60.00", "60.00"}})
	if n := f.count(`SELECT count(*) FROM demand_details WHERE source = 'late_surcharge' AND bill_run_id IS NOT NULL`); n != 2 {
		t.Errorf("time-based details written by the run = %d, want interest and penalty of SW/A", n)
	}
}

// Adhoc penalty and rebate (TV14) and the one-time fee demand (TV10,
// TV10b) through the database.
func TestMunicipalAdhocAndFeeDemand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	out := &memOutbox{}
	audit := &memAudit{}
	store := postgres.NewStore(pool, postgres.Deps{Outbox: out, Audit: audit})
	f.publishMasters(store, "sewerage", "pb", "v1", billing.NewDate(2024, 4, 1), pbMasters(t, "sewerage", nil))
	conn := f.municipalConnection("sewerage", mconn{code: "SW/107/000123", plan: "pb", usage: "RESIDENTIAL", closets: iptr(4)})
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Execute(ctx, municipalRun(t, store, f, "sewerage", postgres.TriggerCLI, april, billing.NewDate(2024, 5, 1), 10).ID, nil); err != nil {
		t.Fatal(err)
	}
	who := &postgres.AuditContext{ActorUserID: f.user, ActorRole: "official"}
	pen, reb := dec("25.555"), dec("10")
	res, err := store.ApplyAdhoc(ctx, postgres.Adhoc{TenantID: f.tenant, ConnectionID: conn, Penalty: &pen, Rebate: &reb, Reason: "TV14", Audit: who})
	if err != nil {
		t.Fatal(err)
	}
	demand := demandOf(t, f, conn, april.From)
	wantRows(t, "TV14", detailRows(t, f, demand), [][3]string{{"SW_CHARGE", "60.00", "0.00"},
		{"SW_TIME_ADHOC_PENALTY", "25.56", "0.00"}, {"SW_TIME_ADHOC_REBATE", "-10.00", "0.00"}, {"SW_Round_Off", "0.44", "0.00"}})
	if res.DemandID != demand || !res.Total.Equal(dec("76")) || len(audit.entries) != 1 || audit.entries[0].Action != "demand.adhoc" {
		t.Errorf("adhoc = %+v, audit %+v", res, audit.entries)
	}
	if res, err = store.ApplyAdhoc(ctx, postgres.Adhoc{TenantID: f.tenant, ConnectionID: conn, Penalty: &pen, Rebate: &reb, Audit: who}); err != nil || len(res.Appended) != 0 {
		t.Errorf("repeated adhoc appended %v, %v", res.Appended, err)
	}
	zero := decimal.Zero
	if res, err = store.ApplyAdhoc(ctx, postgres.Adhoc{TenantID: f.tenant, ConnectionID: conn, Penalty: &zero, Audit: who}); err != nil || len(res.Appended) != 2 || !res.Total.Equal(dec("50")) {
		t.Errorf("clearing the adhoc penalty: %+v, %v", res, err)
	}

	// TV10: approving the application's fees.
	f.exec(`UPDATE connections SET road_cutting = '[{"road_type": "CCROAD", "area_m2": "10"}, {"road_type": "BRICKPAVING", "area_m2": "2.5"}]', plot_size_m2 = 500 WHERE id = $1`, conn)
	approved := time.UnixMilli(1715335200000)
	fee, err := store.IssueFeeDemand(ctx, postgres.FeeRequest{TenantID: f.tenant, ConnectionID: conn, ApplicationNo: "SW_AP/107/2024-25/000123", Now: approved, Audit: who})
	if err != nil {
		t.Fatal(err)
	}
	wantRows(t, "TV10", detailRows(t, f, fee.Demand.ID), [][3]string{
		{"SW_FORM_FEE", "25.00", "0.00"}, {"SW_SCRUTINY_FEE", "250.00", "0.00"}, {"SW_OTHER_CHARGE", "325.00", "0.00"},
		{"SW_ROAD_CUTTING_CHARGE", "1875.00", "0.00"}, {"SW_ONE_TIME_FEE", "250.00", "0.00"}, {"SW_SECURITY_CHARGE", "2500.00", "0.00"},
		{"SW_TAX_AND_CESS", "261.25", "0.00"}, {"SW_FEE_ROUND_OFF", "-0.25", "0.00"}})
	var total, minimum decimal.Decimal
	var code, kind string
	if err := pool.QueryRow(ctx, `SELECT b.total, b.minimum_payable, b.consumer_code, d.kind FROM bills b JOIN demands d ON d.id = b.demand_id WHERE b.id = $1`, fee.BillID).Scan(&total, &minimum, &code, &kind); err != nil {
		t.Fatal(err)
	}
	if !fee.Created || !total.Equal(dec("5486")) || !minimum.Equal(total) || code != "SW_AP/107/2024-25/000123" || kind != "fee" || fee.Demand.Period.From != billing.NewDate(2024, 5, 10) {
		t.Errorf("fee demand %+v: bill total %s minimum %s code %s kind %s", fee.Demand, total, minimum, code, kind)
	}
	again, err := store.IssueFeeDemand(ctx, postgres.FeeRequest{TenantID: f.tenant, ConnectionID: conn, Now: approved.Add(time.Hour), Audit: who})
	if err != nil || again.Changed || again.BillID != fee.BillID {
		t.Fatalf("approving again: %+v, %v", again, err)
	}
	// TV10b: the road cutting is dropped; re-approval reverses what no longer applies.
	f.exec(`UPDATE connections SET road_cutting = '[]' WHERE id = $1`, conn)
	re, err := store.IssueFeeDemand(ctx, postgres.FeeRequest{TenantID: f.tenant, ConnectionID: conn, Now: approved.Add(2 * time.Hour), Audit: who})
	if err != nil {
		t.Fatal(err)
	}
	got := detailRows(t, f, fee.Demand.ID)
	wantRows(t, "TV10b", got[8:], [][3]string{{"SW_ROAD_CUTTING_CHARGE", "-1875.00", "0.00"}, {"SW_ONE_TIME_FEE", "-250.00", "0.00"},
		{"SW_TAX_AND_CESS", "-106.25", "0.00"}, {"SW_FEE_ROUND_OFF", "0.25", "0.00"}})
	if err := pool.QueryRow(ctx, `SELECT total FROM bills WHERE id = $1`, re.BillID).Scan(&total); err != nil {
		t.Fatal(err)
	}
	var oldStatus string
	if err := pool.QueryRow(ctx, `SELECT status FROM bills WHERE id = $1`, fee.BillID).Scan(&oldStatus); err != nil {
		t.Fatal(err)
	}
	if !total.Equal(dec("3255")) || oldStatus != "cancelled" || re.BillID == fee.BillID {
		t.Errorf("recalculated fee bill %d total %s; old bill %s", re.BillID, total, oldStatus)
	}
	// Paying the fee bill pays the fee demand only, not April's charge.
	p := post(t, f, store, postgres.Payment{TenantID: f.tenant, BillID: re.BillID, Reference: "fee-1", Amount: dec("3255"), ReceivedAt: approved.Add(3 * time.Hour)})
	for _, c := range p.Collections {
		if c.DemandID != fee.Demand.ID {
			t.Errorf("fee payment went to demand %d", c.DemandID)
		}
	}
	if !p.Advance.IsZero() || len(p.Bills) == 0 {
		t.Errorf("fee posting %+v", p)
	}
	var status string
	if err := pool.QueryRow(ctx, `SELECT status FROM bills WHERE id = $1`, re.BillID).Scan(&status); err != nil || status != "paid" {
		t.Errorf("fee bill status %q, %v", status, err)
	}
	if got := out.events(postgres.EventBillIssued); got != 3 {
		t.Errorf("bill.issued = %d, want April's and two fee bills", got)
	}
	actions := map[string]int{}
	for _, e := range audit.entries {
		actions[e.Action]++
	}
	if actions["fee_demand.issue"] != 2 || actions["demand.adhoc"] != 3 {
		t.Errorf("audit actions %v", actions)
	}
}

// memAudit records audit entries.
type memAudit struct{ entries []postgres.AuditEntry }

func (m *memAudit) Write(_ context.Context, _ pgx.Tx, e postgres.AuditEntry) error {
	m.entries = append(m.entries, e)
	return nil
}

// The scheduler starts sewerage runs by the tenant's settings: quarterly
// on the configured day of January, April, July and October only (TV16,
// recommended), billing the quarter that just ended, once.
func TestMunicipalSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	out := &memOutbox{}
	store := postgres.NewStore(pool, postgres.Deps{Outbox: out})
	f.publishMasters(store, "sewerage", "pb", "v1", billing.NewDate(2024, 1, 1), pbMasters(t, "sewerage", nil))
	f.exec(`INSERT INTO billing_settings (tenant_id, service, cycle, generation_day) VALUES ($1, 'sewerage', 'quarterly', 4)`, f.tenant)
	conn := f.municipalConnection("sewerage", mconn{code: "SW/Q", plan: "pb", usage: "RESIDENTIAL", closets: iptr(4)})
	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 10, 0, 0, 0, f.loc) }
	for _, now := range []time.Time{at(2024, 5, 4), at(2024, 4, 5), at(2024, 3, 4)} {
		if runs, err := runner.Schedule(ctx, now, nil); err != nil || len(runs) != 0 {
			t.Fatalf("schedule on %s: %v, %v", now.Format(time.DateOnly), runs, err)
		}
	}
	runs, err := runner.Schedule(ctx, at(2024, 4, 4), nil)
	if err != nil || len(runs) != 1 {
		t.Fatalf("schedule on 4 April: %v, %v", runs, err)
	}
	q1 := billing.Period{From: billing.NewDate(2024, 1, 1), To: billing.NewDate(2024, 3, 31)}
	if r := runs[0]; r.Service != "sewerage" || r.Cycle != "quarterly" || r.Period != q1 || r.Trigger != postgres.TriggerSchedule {
		t.Fatalf("scheduled run = %+v", r)
	}
	done, err := runner.Execute(ctx, runs[0].ID, nil)
	if err != nil || done.Billed != 1 {
		t.Fatalf("run = %+v, %v", done, err)
	}
	// No proration by the period's length (reference §2.10): a quarter bills the slab charge.
	wantRows(t, "Q1", detailRows(t, f, demandOf(t, f, conn, q1.From)), [][3]string{{"SW_CHARGE", "60.00", "0.00"}})
	if runs, err := runner.Schedule(ctx, at(2024, 4, 4).Add(time.Hour), nil); err != nil || len(runs) != 0 {
		t.Errorf("scheduling again: %v, %v", runs, err)
	}
	if out.events(postgres.EventRunSummary) != 1 || out.events(postgres.EventBillIssued) != 1 {
		t.Errorf("notifications %v", out.msgs)
	}
}
