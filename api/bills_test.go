package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/billrun"
	"github.com/meterd/meterd/billing/pdf"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// testBilling implements api.Billing on billing's store; runs execute at
// once in the request (cmd hands them to River).
type testBilling struct {
	store  *billingpg.Store
	runner *billrun.Runner
}

func (b *testBilling) Bills(ctx context.Context, f billingpg.BillFilter) ([]billingpg.StoredBill, int64, error) {
	return b.store.Bills(ctx, f)
}

func (b *testBilling) Bill(ctx context.Context, tenantID, userID, id int64) (billingpg.StoredBill, error) {
	return b.store.Bill(ctx, tenantID, userID, id)
}

func (b *testBilling) BillPDF(ctx context.Context, tenantID, userID, id int64) ([]byte, billingpg.StoredBill, error) {
	bill, err := b.store.Bill(ctx, tenantID, userID, id)
	if err != nil {
		return nil, bill, err
	}
	doc := &pdf.Bill{TenantName: bill.TenantName, Currency: bill.Currency, Service: bill.Service, Number: bill.Number, Status: bill.Status,
		IssueDate: bill.IssueDate, DueDate: bill.DueDate, Period: bill.Period, ConsumerName: bill.ConsumerName, ConsumerCode: bill.ConsumerCode,
		Lines: bill.Lines, Totals: bill.Totals, ConsumptionWh: bill.ConsumptionWh}
	data, err := pdf.Render(doc, pdf.Payee{VPA: "billing@demo", Name: bill.TenantName})
	return data, bill, err
}

func (b *testBilling) PublishTariff(ctx context.Context, p billingpg.Publish) (billingpg.TariffVersion, error) {
	return b.store.PublishTariff(ctx, p)
}

func (b *testBilling) Tariffs(ctx context.Context, tenantID int64, service, plan string) ([]billingpg.TariffVersion, error) {
	return b.store.Tariffs(ctx, tenantID, service, plan)
}

func (b *testBilling) TriggerRun(ctx context.Context, r api.RunRequest) (billingpg.Run, error) {
	n := billingpg.NewRun{TenantID: r.TenantID, Service: r.Service, Cycle: billing.CycleMonthly, Period: *r.Period, IssueDate: r.Period.To.AddDays(1),
		Trigger: billingpg.TriggerOfficial, BatchSize: 10, Audit: r.Audit}
	if r.IssueDate != nil {
		n.IssueDate = *r.IssueDate
	}
	if r.Rerun {
		n.Trigger = billingpg.TriggerRerun
	}
	run, err := b.store.CreateRun(ctx, n, nil)
	if err != nil {
		return run, err
	}
	return b.runner.Execute(ctx, run.ID, nil)
}

func (b *testBilling) Run(ctx context.Context, tenantID, id int64) (billingpg.Run, error) {
	return b.store.Run(ctx, tenantID, id)
}

func (b *testBilling) Runs(ctx context.Context, tenantID int64, limit int) ([]billingpg.Run, error) {
	return b.store.Runs(ctx, tenantID, limit)
}

func (b *testBilling) DeadLetters(ctx context.Context, tenantID int64, service string, limit int) ([]billingpg.DeadLetter, error) {
	return b.store.DeadLetters(ctx, tenantID, service, true, limit)
}

// billingStack is a stack with the billing routes mounted (without usage).
func billingStack(t *testing.T) *stack {
	t.Helper()
	w := newWiring(t, nil)
	store, runner := w.billing(t, w.decimalPool(t, 0), billingpg.Deps{})
	svc := w.services()
	svc.Billing = &testBilling{store: store, runner: runner}
	return w.serve(t, "127.0.0.1:0", svc)
}

// TestBillingRoutes publishes a tariff, runs a bill run and reads the bill
// as its consumer, another consumer, staff and another tenant, through the
// permission table (every response is checked against the OpenAPI
// document by stack.do).
func TestBillingRoutes(t *testing.T) {
	s := billingStack(t)
	tariffDoc := demoTariff(t)

	consumer := s.register("demo", "asha@demo.example.com", "Asha")
	peer := s.register("demo", "peer@demo.example.com", "Peer")
	metering := s.staffUser("demo", "meter@demo.example.com", account.RoleOfficial, account.DepartmentMetering)
	biller := s.staffUser("demo", "bill@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
	support := s.staffUser("demo", "desk@demo.example.com", account.RoleSupport, "")
	foreign := s.staffUser("other", "bill@other.example.com", account.RoleOfficial, account.DepartmentBilling)

	// A consumer with a metered connection on plan lt-domestic.
	r := s.do("POST", "/api/meters", metering.Token, map[string]any{"external_id": "b-1", "serial": "B-1", "model": "sdm120", "protocol": "mqtt"})
	want(t, r, 201, "")
	meter := num(r.JSON(t)["meter"].(map[string]any)["id"])
	r = s.do("POST", "/api/users/properties", consumer.Token, map[string]any{"address": map[string]any{"line1": "1 Test Road", "city": "Pune", "postal_code": "411001"},
		"meter_number": "B-1", "tariff_plan": "lt-domestic", "sanctioned_load_kw": "2"})
	want(t, r, 201, "")
	s.readings(meter, time.Now().UTC().Add(-3*time.Hour), 8, 15*time.Minute, 1_000_000, 250)

	// Tariffs: only the billing department publishes; errors name the field.
	want(t, s.do("POST", "/api/billing/tariffs", metering.Token, map[string]any{"plan": "lt-domestic", "document": tariffDoc}), 403, "UnauthorizedAccess")
	want(t, s.do("POST", "/api/billing/tariffs", consumer.Token, map[string]any{"plan": "lt-domestic", "document": tariffDoc}), 403, "UnauthorizedAccess")
	bad := s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"plan": "lt-domestic", "document": map[string]any{"tenant": "demo", "plan": "lt-domestic"}})
	want(t, bad, 400, "InvalidInput")
	if !strings.Contains(string(bad.Body), `"field":"version"`) {
		t.Errorf("invalid tariff problem does not name the field: %s", bad.Body)
	}
	r = s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"plan": "lt-domestic", "document": tariffDoc})
	want(t, r, 201, "")
	want(t, s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"plan": "lt-domestic", "document": tariffDoc}), 409, "Conflict")
	r = s.do("GET", "/api/billing/tariffs", support.Token, nil)
	want(t, r, 200, "")
	if items := r.JSON(t)["items"].([]any); len(items) != 1 {
		t.Errorf("tariffs = %v", items)
	}
	// A tariff authored in YAML (a JSON string holding it) is stored as the
	// equivalent JSON; YAML that is not valid is refused by field.
	yamlDoc := "tenant: demo\nplan: lt-yaml\nversion: FY2024-25\neffective_from: 2024-04-01\ncurrency: INR\n" +
		"rounding: {mode: half_up, places: 2}\nenergy:\n  kind: flat\n  rate: 5.25  # per kWh\nround_off: {places: 0, mode: half_ceiling}\n"
	r = s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"plan": "lt-yaml", "document": yamlDoc})
	want(t, r, 201, "")
	if v := r.JSON(t); v["version"] != "FY2024-25" || v["effective_from"] != "2024-04-01" {
		t.Errorf("YAML tariff published as %v", v)
	}
	var stored string
	must(t, s.pool.QueryRow(t.Context(), `SELECT document FROM tariff_versions WHERE plan = 'lt-yaml'`).Scan(&stored))
	if !json.Valid([]byte(stored)) || !strings.Contains(stored, `"rate":5.25`) {
		t.Errorf("YAML tariff stored as %s", stored)
	}
	bad = s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"plan": "lt-yaml", "document": "plan: [unclosed\n"})
	want(t, bad, 400, "InvalidInput")
	if !strings.Contains(string(bad.Body), `"field":"document"`) {
		t.Errorf("bad YAML problem does not name the document: %s", bad.Body)
	}

	// Quote.
	r = s.do("POST", "/api/billing/quote", support.Token, map[string]any{"tariff": tariffDoc,
		"usage": map[string]any{"period": map[string]any{"from": "2024-05-01", "to": "2024-05-31"}, "import_kwh": "150", "sanctioned_load_kw": "2"}})
	want(t, r, 200, "")
	if total := r.JSON(t)["total"]; total != "515.00" {
		t.Errorf("quote total = %v, want 515.00", total)
	}

	// A bill run for this month so far.
	loc, _ := time.LoadLocation("Asia/Kolkata")
	today := billing.DateOf(time.Now(), loc)
	period := fmt.Sprintf("%s..%s", billing.NewDate(today.Year(), today.Month(), 1), today)
	want(t, s.do("POST", "/api/billing/runs", metering.Token, map[string]any{"period": period}), 403, "UnauthorizedAccess")
	r = s.do("POST", "/api/billing/runs", biller.Token, map[string]any{"period": period, "issue_date": today.String()})
	want(t, r, 202, "")
	run := r.JSON(t)
	if run["billed"].(float64) != 1 {
		t.Fatalf("run = %v", run)
	}
	r = s.do("GET", fmt.Sprintf("/api/billing/runs/%d", num(run["id"])), biller.Token, nil)
	want(t, r, 200, "")
	want(t, s.do("GET", fmt.Sprintf("/api/billing/runs/%d", num(run["id"])), foreign.Token, nil), 404, "NotFound")
	want(t, s.do("GET", "/api/billing/dead-letters", biller.Token, nil), 200, "")

	// The consumer sees the bill; a peer and another tenant do not.
	r = s.do("GET", "/api/bills", consumer.Token, nil)
	want(t, r, 200, "")
	items := r.JSON(t)["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("consumer's bills = %v", items)
	}
	bill := num(items[0].(map[string]any)["id"])
	r = s.do("GET", fmt.Sprintf("/api/bills/%d", bill), consumer.Token, nil)
	want(t, r, 200, "")
	detail := r.JSON(t)
	if lines := detail["lines"].([]any); len(lines) < 3 || detail["total"] == nil {
		t.Errorf("bill = %v", detail)
	}
	r = s.do("GET", fmt.Sprintf("/api/bills/%d/pdf", bill), consumer.Token, nil)
	want(t, r, 200, "")
	if r.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(r.Body, []byte("%PDF")) {
		t.Errorf("pdf: %s, %q", r.Header.Get("Content-Type"), r.Body[:min(8, len(r.Body))])
	}
	want(t, s.do("GET", fmt.Sprintf("/api/bills/%d", bill), peer.Token, nil), 404, "BillNotFound")
	want(t, s.do("GET", fmt.Sprintf("/api/bills/%d/pdf", bill), peer.Token, nil), 404, "BillNotFound")
	want(t, s.do("GET", fmt.Sprintf("/api/bills/%d", bill), foreign.Token, nil), 404, "BillNotFound")
	want(t, s.do("GET", "/api/bills/999999", biller.Token, nil), 404, "BillNotFound")
	r = s.do("GET", "/api/bills", peer.Token, nil)
	want(t, r, 200, "")
	if items := r.JSON(t)["items"].([]any); len(items) != 0 {
		t.Errorf("peer sees %v", items)
	}
	r = s.do("GET", "/api/bills?status=issued&limit=5", support.Token, nil)
	want(t, r, 200, "")
	if items := r.JSON(t)["items"].([]any); len(items) != 1 {
		t.Errorf("staff see %v", items)
	}
	want(t, s.do("GET", "/api/bills?status=nonsense", support.Token, nil), 400, "InvalidInput")
	want(t, s.do("GET", "/api/bills", "", nil), 401, "Unauthenticated")
}

// TestBillRequirementCases walks the requirement's test cases 11 and 12
// through the API: a bill computed from the meter's readings and the
// published tariff (amounts worked by hand from the tariff document), then
// viewed and downloaded as a PDF whose text carries the same figures.
func TestBillRequirementCases(t *testing.T) {
	s := billingStack(t)
	tariffDoc := demoTariff(t)
	consumer := s.register("demo", "meena@demo.example.com", "Meena Iyer")
	metering := s.staffUser("demo", "meter@demo.example.com", account.RoleOfficial, account.DepartmentMetering)
	biller := s.staffUser("demo", "bill@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
	want(t, s.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"plan": "lt-domestic", "document": tariffDoc}), 201, "")
	r := s.do("POST", "/api/meters", metering.Token, map[string]any{"external_id": "tc11", "serial": "TC-11", "model": "sdm120", "protocol": "mqtt"})
	want(t, r, 201, "")
	meter := num(r.JSON(t)["meter"].(map[string]any)["id"])
	r = s.do("POST", "/api/users/properties", consumer.Token, map[string]any{"address": map[string]any{"line1": "4 Lake Road", "city": "Pune", "postal_code": "411001"},
		"meter_number": "TC-11", "tariff_plan": "lt-domestic", "sanctioned_load_kw": "2"})
	want(t, r, 201, "")
	conn := num(r.JSON(t)["connections"].([]any)[0].(map[string]any)["id"])
	// Connected, with its meter, since April 2024.
	_, err := s.pool.Exec(t.Context(), `UPDATE meter_installations SET installed_at = '2024-04-01T00:00:00+05:30' WHERE connection_id = $1`, conn)
	must(t, err)
	_, err = s.pool.Exec(t.Context(), `UPDATE connections SET connected_at = '2024-04-01T00:00:00+05:30' WHERE id = $1`, conn)
	must(t, err)
	// Hourly readings from the last hour of April to the last hour of May
	// 2024 in Asia/Kolkata: May's consumption is the last read in May less
	// the last read before it, 744 steps of 375 Wh = 279 kWh.
	s.readings(meter, time.Date(2024, 4, 30, 17, 30, 0, 0, time.UTC), 745, time.Hour, 4_000_000, 375)

	t.Run("TC11 bills are generated accurately from usage and tariff rates", func(t *testing.T) {
		s.t = t
		r := s.do("POST", "/api/billing/runs", biller.Token, map[string]any{"period": "2024-05-01..2024-05-31", "issue_date": "2024-06-01"})
		want(t, r, 202, "")
		if billed := num(r.JSON(t)["billed"]); billed != 1 {
			t.Fatalf("run = %s", r.Body)
		}
		r = s.do("GET", "/api/bills", consumer.Token, nil)
		want(t, r, 200, "")
		items := r.JSON(t)["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("bills = %v", items)
		}
		r = s.do("GET", fmt.Sprintf("/api/bills/%d", num(items[0].(map[string]any)["id"])), consumer.Token, nil)
		want(t, r, 200, "")
		bill := r.JSON(t)
		// Telescopic: 200 kWh × 3.00 + 79 kWh × 4.50 = 955.50; fixed 2 kW ×
		// 20 = 40.00; duty 5 % of 995.50 = 49.775 → 49.78 (half up); 1,045.28
		// rounds off by −0.28 to 1,045.00.
		if got := fmt.Sprint(bill["consumption_wh"]); got != "279000" {
			t.Errorf("consumption_wh = %s, want 279000", got)
		}
		type line struct{ code, quantity, amount string }
		var got []line
		for _, l := range bill["lines"].([]any) {
			l := l.(map[string]any)
			q := ""
			if l["quantity"] != nil {
				q = decOf(t, l["quantity"]).String()
			}
			got = append(got, line{fmt.Sprint(l["code"]), q, decOf(t, l["amount"]).StringFixed(2)})
		}
		wantLines := []line{{"energy", "200", "600.00"}, {"energy", "79", "355.50"}, {"fixed", "2", "40.00"}, {"ed", "995.5", "49.78"}, {"round_off", "", "-0.28"}}
		if !slices.Equal(got, wantLines) {
			t.Errorf("lines = %v, want %v", got, wantLines)
		}
		if total := decOf(t, bill["total"]).StringFixed(2); total != "1045.00" || bill["previous_read_wh"] != float64(4_000_000) || bill["current_read_wh"] != float64(4_279_000) {
			t.Errorf("total %s, reads %v..%v; want 1045.00 from 4000000..4279000", total, bill["previous_read_wh"], bill["current_read_wh"])
		}
	})

	t.Run("TC12 users can view and download their bills as PDF", func(t *testing.T) {
		s.t = t
		r := s.do("GET", "/api/bills", consumer.Token, nil)
		want(t, r, 200, "")
		id := num(r.JSON(t)["items"].([]any)[0].(map[string]any)["id"])
		r = s.do("GET", fmt.Sprintf("/api/bills/%d/pdf", id), consumer.Token, nil)
		want(t, r, 200, "")
		if ct, cd := r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"); ct != "application/pdf" || !strings.Contains(cd, ".pdf") {
			t.Errorf("Content-Type %q, Content-Disposition %q", ct, cd)
		}
		if _, err := exec.LookPath("pdftotext"); err != nil {
			t.Skip("pdftotext (poppler-utils) not installed: .ci/install-deps test installs it")
		}
		cmd := exec.CommandContext(t.Context(), "pdftotext", "-layout", "-", "-")
		cmd.Stdin = bytes.NewReader(r.Body)
		text, err := cmd.Output()
		must(t, err)
		for _, w := range []string{"DEMO/2024-25/000001", "Meena Iyer", "279", "1,045.00"} {
			if !strings.Contains(string(text), w) {
				t.Errorf("the PDF's text lacks %q:\n%s", w, text)
			}
		}
	})
}

// demoTariff is billing's test tariff (plan lt-domestic, FY2024-25) as
// tenant demo's document.
func demoTariff(t testing.TB) json.RawMessage {
	t.Helper()
	doc, err := os.ReadFile("../billing/billrun/testdata/tariff.json")
	must(t, err)
	return bytes.ReplaceAll(doc, []byte(`"test-discom"`), []byte(`"demo"`))
}
