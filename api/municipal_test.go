package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/billing/billrun"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// municipalStack is a stack with the billing and municipal routes mounted
// on billing's store (with the API's outbox and audit log); bill runs
// execute at once in the request.
type municipalStack struct {
	*stack
	store  *billingpg.Store
	runner *billrun.Runner
	bpool  *pgxpool.Pool
}

func newMunicipalStack(t *testing.T) *municipalStack {
	t.Helper()
	w := newWiring(t, nil)
	bpool := w.decimalPool(t, 0)
	store, runner := w.billing(t, bpool, billingpg.Deps{Outbox: e2eOutbox{}, Audit: e2eAudit{}})
	svc := w.services()
	svc.Billing = &testBilling{store: store, runner: runner}
	svc.Municipal = store
	return &municipalStack{stack: w.serve(t, "127.0.0.1:0", svc), store: store, runner: runner, bpool: bpool}
}

func pbSewerage(t *testing.T) json.RawMessage {
	t.Helper()
	doc, err := os.ReadFile("../billing/municipal/testdata/pb-sewerage.json")
	must(t, err)
	return doc
}

// sewerageConnection registers a consumer's property with a non-metered
// sewerage connection through the API (connected on 1 January 2024) and
// returns the connection's id.
func (s *stack) sewerageConnection(owner session, closets int) int64 {
	s.t.Helper()
	r := s.do("POST", "/api/users/properties", owner.Token, map[string]any{"address": map[string]any{"line1": "7 Canal Road", "city": "Ludhiana", "postal_code": "141001"},
		"service": "sewerage", "tariff_plan": "pb-sewerage", "usage_category": "RESIDENTIAL", "water_closets": closets})
	want(s.t, r, 201, "")
	conn := r.JSON(s.t)["connections"].([]any)[0].(map[string]any)
	if conn["service"] != "sewerage" || conn["status"] != "active" {
		s.t.Fatalf("connection = %v", conn)
	}
	id := num(conn["id"])
	_, err := s.pool.Exec(context.Background(), `UPDATE connections SET connected_at = '2024-01-01T00:00:00+05:30' WHERE id = $1`, id)
	must(s.t, err)
	return id
}

func decOf(t testing.TB, v any) decimal.Decimal {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("amount %v (%T) is not a decimal string", v, v)
	}
	return decimal.RequireFromString(s)
}

// heads returns [head, amount] pairs of an estimates or details list.
func heads(t testing.TB, list any, amount string) [][2]string {
	t.Helper()
	var out [][2]string
	for _, x := range list.([]any) {
		m := x.(map[string]any)
		out = append(out, [2]string{m["tax_head"].(string), decOf(t, m[amount]).StringFixed(2)})
	}
	return out
}

func wantHeads(t testing.TB, what string, got [][2]string, want [][2]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// The estimate route against TV10 and TV11 inputs (recommended
// behaviour), for an applicant describing a connection and for an
// existing connection; invalid requests name the field.
func TestMunicipalEstimateRoute(t *testing.T) {
	s := newMunicipalStack(t)
	biller := s.staffUser("demo", "bill@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
	applicant := s.register("demo", "applicant@demo.example.com", "Applicant")
	want(t, s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"service": "sewerage", "plan": "pb-sewerage", "version": "2024-25",
		"effective_from": "2024-04-01", "document": pbSewerage(t)}), 201, "")

	// TV10: RESIDENTIAL, land 500, CC road 10 m² and brick paving 2.5 m².
	r := s.do("POST", "/api/municipal/estimate", applicant.Token, map[string]any{"service": "sewerage", "plan": "pb-sewerage", "date": "2024-05-10",
		"usage_category": "RESIDENTIAL", "plot_size_m2": "500",
		"road_cutting": []any{map[string]any{"road_type": "CCROAD", "area_m2": "10"}, map[string]any{"road_type": "BRICKPAVING", "area_m2": "2.5"}}})
	want(t, r, 200, "")
	m := r.JSON(t)
	wantHeads(t, "TV10", heads(t, m["tax_head_estimates"], "amount"), [][2]string{{"SW_FORM_FEE", "25.00"}, {"SW_SCRUTINY_FEE", "250.00"},
		{"SW_OTHER_CHARGE", "325.00"}, {"SW_ROAD_CUTTING_CHARGE", "1875.00"}, {"SW_ONE_TIME_FEE", "250.00"}, {"SW_SECURITY_CHARGE", "2500.00"},
		{"SW_TAX_AND_CESS", "261.25"}, {"SW_FEE_ROUND_OFF", "-0.25"}})
	for k, v := range map[string]string{"fee": "525", "charge": "4700", "tax_amount": "261.25", "rebate": "-0.25", "total_amount": "5486"} {
		if !decOf(t, m[k]).Equal(decimal.RequireFromString(v)) {
			t.Errorf("TV10 %s = %v, want %s", k, m[k], v)
		}
	}
	if m["version"] != "2024-25" || m["plan"] != "pb-sewerage" {
		t.Errorf("TV10 masters %v %v", m["plan"], m["version"])
	}
	// TV11 (recommended): metered, no road cutting, no land area: the meter is billed.
	r = s.do("POST", "/api/municipal/estimate", biller.Token, map[string]any{"service": "sewerage", "plan": "pb-sewerage", "date": "2024-05-10",
		"connection_type": "Metered", "usage_category": "RESIDENTIAL"})
	want(t, r, 200, "")
	m = r.JSON(t)
	wantHeads(t, "TV11", heads(t, m["tax_head_estimates"], "amount"), [][2]string{{"SW_FORM_FEE", "25.00"}, {"SW_SCRUTINY_FEE", "250.00"},
		{"SW_METER_CHARGE", "850.00"}, {"SW_OTHER_CHARGE", "325.00"}, {"SW_TAX_AND_CESS", "72.50"}, {"SW_FEE_ROUND_OFF", "0.50"}})
	if !decOf(t, m["total_amount"]).Equal(decimal.NewFromInt(1523)) {
		t.Errorf("TV11 total %v", m["total_amount"])
	}

	// An existing connection: its attributes and plan; the owner may ask,
	// another consumer may not.
	conn := s.sewerageConnection(applicant, 4)
	want(t, s.do("PATCH", fmt.Sprintf("/api/connections/%d", conn), biller.Token, map[string]any{"plot_size_m2": "500",
		"road_cutting": []any{map[string]any{"road_type": "CCROAD", "area_m2": "10"}, map[string]any{"road_type": "BRICKPAVING", "area_m2": "2.5"}}}), 200, "")
	r = s.do("POST", "/api/municipal/estimate", applicant.Token, map[string]any{"connection_id": conn, "date": "2024-05-10"})
	want(t, r, 200, "")
	if m = r.JSON(t); !decOf(t, m["total_amount"]).Equal(decimal.NewFromInt(5486)) {
		t.Errorf("estimate of the connection: %v", m)
	}
	peer := s.register("demo", "peer@demo.example.com", "Peer")
	want(t, s.do("POST", "/api/municipal/estimate", peer.Token, map[string]any{"connection_id": conn}), 404, "NotFound")

	// Problems name the field.
	for _, c := range []struct {
		body        map[string]any
		status      int
		code, field string
	}{
		{map[string]any{"service": "sewerage"}, 400, "InvalidInput", "plan"},
		{map[string]any{"service": "gas", "plan": "pb-sewerage"}, 400, "InvalidInput", "service"},
		{map[string]any{"service": "sewerage", "plan": "unknown-plan"}, 400, "InvalidInput", "plan"},
		{map[string]any{"service": "sewerage", "plan": "pb-sewerage", "date": "2024-03-31"}, 400, "InvalidInput", "plan"},
		{map[string]any{"service": "sewerage", "plan": "pb-sewerage", "road_cutting": []any{map[string]any{"road_type": "CCROAD", "area_m2": "-1"}}}, 400, "InvalidInput", "road_cutting[0].area_m2"},
		{map[string]any{"service": "sewerage", "plan": "pb-sewerage", "road_cutting": []any{map[string]any{"road_type": "MARBLE", "area_m2": "1"}}}, 422, "BillingCalculation", ""},
		{map[string]any{"service": "sewerage", "plan": "pb-sewerage", "surprise": 1}, 400, "InvalidInput", "surprise"},
	} {
		r := s.do("POST", "/api/municipal/estimate", applicant.Token, c.body)
		want(t, r, c.status, c.code)
		if c.field != "" && !strings.Contains(string(r.Body), fmt.Sprintf(`"field":%q`, c.field)) {
			t.Errorf("%v: problem does not name %s: %s", c.body, c.field, r.Body)
		}
	}
}

// The sewerage requirement end to end, through the API where it has a
// route: an official publishes slabs; a consumer registers a sewerage
// connection; a bill run generates its demand (officials get the run
// summary, the consumer the bill); a change of water closets is
// calculated and recalculated as a delta with the bill replaced; the
// scheduled job applies penalty and interest after the due date; an
// official grants an adhoc rebate (audited); a payment through the ledger
// overpays and the advance is carried into the next period's demand; the
// application's fee demand is approved and billed.
func TestMunicipalSewerageEndToEnd(t *testing.T) {
	s := newMunicipalStack(t)
	ctx := context.Background()
	biller := s.staffUser("demo", "bill@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
	support := s.staffUser("demo", "desk@demo.example.com", account.RoleSupport, "")
	admin := s.staffUser("demo", "admin@demo.example.com", account.RoleAdmin, "")
	owner := s.register("demo", "owner@demo.example.com", "Owner")

	// 1. Slabs.
	want(t, s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"service": "sewerage", "plan": "pb-sewerage", "version": "2024-25",
		"effective_from": "2024-04-01", "document": pbSewerage(t)}), 201, "")
	// 2. A sewerage connection with 4 water closets.
	conn := s.sewerageConnection(owner, 4)
	// 3. Demand generation for April, issued 1 May (due 16 May).
	r := s.do("POST", "/api/billing/runs", biller.Token, map[string]any{"service": "sewerage", "period": "2024-04", "issue_date": "2024-05-01"})
	want(t, r, 202, "")
	if run := r.JSON(t); run["billed"].(float64) != 1 || run["service"] != "sewerage" || run["status"] != "completed" {
		t.Fatalf("run = %v", run)
	}
	var summaries, issued int
	must(t, s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE event = 'billing.run_summary'), count(*) FILTER (WHERE event = 'bill.issued' AND user_id = $1)
		FROM notification_outbox`, owner.ID).Scan(&summaries, &issued))
	if summaries != 2 || issued != 1 { // two officials (billing official and admin)
		t.Errorf("outbox: %d run summaries, %d bill notifications", summaries, issued)
	}
	demands := func() []any {
		t.Helper()
		r := s.do("GET", fmt.Sprintf("/api/municipal/connections/%d/demands", conn), owner.Token, nil)
		want(t, r, 200, "")
		return r.JSON(t)["items"].([]any)
	}
	april := demands()[0].(map[string]any)
	wantHeads(t, "April demand", heads(t, april["details"], "tax_amount"), [][2]string{{"SW_CHARGE", "60.00"}})
	bills := func() map[string]any {
		t.Helper()
		r := s.do("GET", "/api/bills?status=issued", owner.Token, nil)
		want(t, r, 200, "")
		items := r.JSON(t)["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("issued bills = %v", items)
		}
		return items[0].(map[string]any)
	}
	if b := bills(); !decOf(t, b["total"]).Equal(decimal.NewFromInt(60)) || b["service"] != "sewerage" {
		t.Errorf("April bill = %v", b)
	}

	// 4. A fifth water closet: the calculation shows the slab and the delta; a re-run appends it.
	want(t, s.do("PATCH", fmt.Sprintf("/api/connections/%d", conn), biller.Token, map[string]any{"water_closets": 5}), 200, "")
	r = s.do("POST", "/api/municipal/calculate", support.Token, map[string]any{"connection_id": conn, "period": "2024-04"})
	want(t, r, 200, "")
	calc := r.JSON(t)
	slab := calc["slabs"].([]any)[0].(map[string]any)
	if calc["calculation_attribute"] != "No. of water closets" || !decOf(t, calc["units"]).Equal(decimal.NewFromInt(5)) || slab["id"] != "1" ||
		!decOf(t, calc["charge"]).Equal(decimal.NewFromInt(75)) {
		t.Errorf("calculation = %v", calc)
	}
	wantHeads(t, "deltas", heads(t, calc["deltas"], "tax_amount"), [][2]string{{"SW_CHARGE", "15.00"}})
	want(t, s.do("POST", "/api/billing/runs", biller.Token, map[string]any{"service": "sewerage", "period": "2024-04", "issue_date": "2024-05-01"}), 202, "")
	april = demands()[0].(map[string]any)
	wantHeads(t, "recalculated April", heads(t, april["details"], "tax_amount"), [][2]string{{"SW_CHARGE", "60.00"}, {"SW_CHARGE", "15.00"}})
	b := bills()
	if !decOf(t, b["total"]).Equal(decimal.NewFromInt(75)) || b["replaces_bill_id"] == nil {
		t.Errorf("replacing bill = %v", b)
	}
	aprilBill := num(b["id"])

	// 5. The scheduled job after the due date (16 May): penalty 10 % and interest 5 % of 75.
	if _, err := s.runner.Schedule(ctx, time.Date(2024, 5, 20, 9, 0, 0, 0, time.UTC), nil); err != nil {
		t.Fatal(err)
	}
	april = demands()[0].(map[string]any)
	wantHeads(t, "penalty", heads(t, april["details"], "tax_amount"), [][2]string{{"SW_CHARGE", "60.00"}, {"SW_CHARGE", "15.00"},
		{"SW_TIME_INTEREST", "3.75"}, {"SW_TIME_PENALTY", "7.50"}, {"SW_Round_Off", "-0.25"}})
	if !decOf(t, april["total"]).Equal(decimal.NewFromInt(86)) {
		t.Errorf("April total %v", april["total"])
	}
	r = s.do("GET", "/api/bills", owner.Token, nil)
	want(t, r, 200, "")

	// 6. An adhoc rebate of 6 by the billing official (audited); the consumer may not.
	want(t, s.do("POST", fmt.Sprintf("/api/municipal/connections/%d/adhoc", conn), owner.Token, map[string]any{"rebate": "6", "reason": "please"}), 403, "UnauthorizedAccess")
	r = s.do("POST", fmt.Sprintf("/api/municipal/connections/%d/adhoc", conn), biller.Token, map[string]any{"rebate": "6", "reason": "sewer blocked for a week"})
	want(t, r, 200, "")
	if a := r.JSON(t); !decOf(t, a["total"]).Equal(decimal.NewFromInt(80)) {
		t.Errorf("adhoc = %v", a)
	}
	r = s.do("GET", "/api/admin/audit?limit=50", admin.Token, nil)
	want(t, r, 200, "")
	if !strings.Contains(string(r.Body), `"demand.adhoc"`) || !strings.Contains(string(r.Body), "sewer blocked for a week") {
		t.Errorf("audit log lacks the adhoc rebate: %s", r.Body)
	}

	// 7. Payment of 100 through the ledger on 21 May: 80 owed, 20 advance.
	var posting billingpg.Posting
	must(t, pgx.BeginFunc(ctx, s.bpool, func(tx pgx.Tx) error {
		var err error
		posting, err = s.store.PostCollection(ctx, tx, billingpg.Payment{TenantID: tenantOf(t, s, "demo"), BillID: aprilBill, Reference: "rcpt-e2e-1",
			Amount: decimal.NewFromInt(100), ReceivedAt: time.Date(2024, 5, 21, 11, 0, 0, 0, time.UTC)})
		return err
	}))
	if !posting.Advance.Equal(decimal.NewFromInt(20)) || len(posting.Bills) != 1 || posting.Bills[0].Status != "paid" {
		t.Fatalf("posting = %+v", posting)
	}

	// 8. May's run consumes the advance: charge 75, 20 already paid.
	want(t, s.do("POST", "/api/billing/runs", biller.Token, map[string]any{"service": "sewerage", "period": "2024-05", "issue_date": "2024-06-01"}), 202, "")
	list := demands()
	may, april := list[0].(map[string]any), list[1].(map[string]any)
	wantHeads(t, "April collected", heads(t, april["details"], "collection_amount"), [][2]string{{"SW_CHARGE", "60.00"}, {"SW_CHARGE", "15.00"},
		{"SW_TIME_INTEREST", "3.75"}, {"SW_TIME_PENALTY", "7.50"}, {"SW_Round_Off", "-0.25"}, {"SW_TIME_ADHOC_REBATE", "-6.00"}, {"SW_ADVANCE_CARRYFORWARD", "-20.00"}})
	wantHeads(t, "May collected", heads(t, may["details"], "collection_amount"), [][2]string{{"SW_CHARGE", "20.00"}})
	if !decOf(t, may["outstanding"]).Equal(decimal.NewFromInt(55)) || !decOf(t, april["outstanding"]).IsZero() {
		t.Errorf("outstanding: May %v, April %v", may["outstanding"], april["outstanding"])
	}
	b = bills()
	if !decOf(t, b["total"]).Equal(decimal.NewFromInt(55)) || !decOf(t, b["advance"]).Equal(decimal.NewFromInt(-20)) || b["period"].(map[string]any)["from"] != "2024-05-01" {
		t.Errorf("May bill = %v", b)
	}

	// 9. The application's one-time fees, approved by the billing official.
	want(t, s.do("POST", fmt.Sprintf("/api/municipal/connections/%d/fee-demand", conn), support.Token, map[string]any{}), 403, "UnauthorizedAccess")
	r = s.do("POST", fmt.Sprintf("/api/municipal/connections/%d/fee-demand", conn), biller.Token, map[string]any{"application_no": "SW_AP/2024/0001"})
	want(t, r, 201, "")
	fee := r.JSON(t)
	if fee["demand"].(map[string]any)["kind"] != "fee" || fee["demand"].(map[string]any)["consumer_code"] != "SW_AP/2024/0001" || fee["bill_number"] == "" {
		t.Errorf("fee demand = %v", fee)
	}
	r = s.do("POST", fmt.Sprintf("/api/municipal/connections/%d/fee-demand", conn), biller.Token, map[string]any{})
	want(t, r, 200, "")
	if again := r.JSON(t); again["changed"] != false || again["bill_id"] != fee["bill_id"] {
		t.Errorf("approving again = %v", again)
	}
	r = s.do("GET", fmt.Sprintf("/api/bills/%d", num(fee["bill_id"])), owner.Token, nil)
	want(t, r, 200, "")
	if fb := r.JSON(t); fb["consumer_code"] != "SW_AP/2024/0001" || !decOf(t, fb["total"]).Equal(decOf(t, fb["minimum_payable"])) {
		t.Errorf("fee bill = %v", fb)
	}
}

func tenantOf(t *testing.T, s *municipalStack, code string) int64 {
	t.Helper()
	id, err := s.store.TenantByCode(context.Background(), code)
	must(t, err)
	return id
}
