package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

// 'meterd billing estimate' and 'calculate' against the pb sewerage
// masters: TV10's fees and TV01's charge; errors name the problem.
func TestBillingMunicipalCommands(t *testing.T) {
	dir := t.TempDir()
	conn := filepath.Join(dir, "conn.json")
	if err := os.WriteFile(conn, []byte(`{"usage_category": "RESIDENTIAL", "plot_size_m2": "500", "water_closets": 4, "toilets": 2,
		"road_cutting": [{"road_type": "CCROAD", "area_m2": "10"}, {"road_type": "BRICKPAVING", "area_m2": "2.5"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	masters := "../../billing/municipal/testdata/pb-sewerage.json"
	var out struct {
		Units            *decimal.Decimal `json:"units"`
		TaxHeadEstimates []struct {
			TaxHead string          `json:"tax_head"`
			Amount  decimal.Decimal `json:"amount"`
		} `json:"tax_head_estimates"`
		BillingSlabs []struct {
			ID string `json:"id"`
		} `json:"billing_slabs"`
		TotalAmount decimal.Decimal `json:"total_amount"`
	}
	code, stdout, stderr := runCLI(t, nil, "billing", "estimate", "--masters", masters, "--connection", conn)
	if code != 0 {
		t.Fatalf("estimate: exit %d: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if !out.TotalAmount.Equal(decimal.NewFromInt(5486)) || len(out.TaxHeadEstimates) != 8 || out.TaxHeadEstimates[3].TaxHead != "SW_ROAD_CUTTING_CHARGE" {
		t.Errorf("estimate (TV10) = %s", stdout)
	}
	out.TaxHeadEstimates, out.BillingSlabs = nil, nil
	code, stdout, stderr = runCLI(t, nil, "billing", "calculate", "--masters", masters, "--connection", conn, "--period-start", "2024-05-01")
	if code != 0 {
		t.Fatalf("calculate: exit %d: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if !out.TotalAmount.Equal(decimal.NewFromInt(60)) || out.Units == nil || !out.Units.Equal(decimal.NewFromInt(4)) || len(out.BillingSlabs) != 1 || out.BillingSlabs[0].ID != "1" {
		t.Errorf("calculate (TV01) = %s", stdout)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"usage_category": "RESIDENTIAL", "road_cutting": [{"road_type": "MARBLE", "area_m2": "1"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = runCLI(t, nil, "billing", "estimate", "--masters", masters, "--connection", bad); code != 1 || !strings.Contains(stderr, "MARBLE") {
		t.Errorf("unknown road type: exit %d, %q", code, stderr)
	}
	badMasters := filepath.Join(dir, "masters.json")
	if err := os.WriteFile(badMasters, []byte(`{"SCBillingSlab": [{"id": "1", "buildingType": "RESIDENTIAL", "connectionType": "Non Metered",
		"calculationAttribute": "No. of water closets", "slabs": [{"from": 0, "to": 5, "charge": 15}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = runCLI(t, nil, "billing", "calculate", "--masters", badMasters, "--connection", conn); code != 1 || !strings.Contains(stderr, "BillingSlab[0].slabs[0].to") {
		t.Errorf("masters with a closed last band: exit %d, %q", code, stderr)
	}
}

// 'meterd billing time-based' applies penalty and interest to an overdue
// sewerage demand once.
func TestBillingTimeBasedCommand(t *testing.T) {
	url := schematest.URL(t, schema.ProfilePostgres)
	env := map[string]string{"DATABASE_URL": url}
	ctx := context.Background()
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(ctx) }()
	for _, s := range []string{
		`INSERT INTO tenants (code, name, time_zone) VALUES ('pb', 'Punjab ULB', 'Asia/Kolkata')`,
		`INSERT INTO users (tenant_id, email, role, password_hash) SELECT id, 'c@pb.test', 'consumer', '$argon2id$x' FROM tenants`,
		`INSERT INTO properties (tenant_id, user_id, address_enc) SELECT tenant_id, id, '\x00' FROM users`,
		`INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, tariff_plan, connection_type, usage_category, water_closets, connected_at)
			SELECT tenant_id, id, 'sewerage', 'SW/1', 'active', 'pb-sewerage', 'Non Metered', 'RESIDENTIAL', 4, '2024-01-01' FROM properties`,
		`INSERT INTO demands (tenant_id, connection_id, service, consumer_code, period_from, period_to, due_date, tariff_plan)
			SELECT tenant_id, id, 'sewerage', 'SW/1', '2024-04-01', '2024-04-30', '2024-05-16', 'pb-sewerage' FROM connections`,
		`INSERT INTO demand_details (demand_id, tax_head, category, tax_amount, source) SELECT id, 'SW_CHARGE', 'CHARGES', 60, 'calculation' FROM demands`,
	} {
		if _, err := db.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	code, out, errOut := runCLI(t, env, "billing", "publish", "--tenant", "pb", "--service", "sewerage", "--plan", "pb-sewerage", "--version", "2024-25",
		"--effective-from", "2024-04-01", "--file", "../../billing/municipal/testdata/pb-sewerage.json")
	if code != 0 {
		t.Fatalf("publish: exit %d, %s %s", code, out, errOut)
	}
	for i, want := range []string{"1 connections with overdue demands, 2 details appended", "1 connections with overdue demands, 0 details appended"} {
		code, out, errOut = runCLI(t, env, "billing", "time-based", "--at", "2024-05-20T10:00:00+05:30")
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("pass %d: exit %d, %q %s (want %q)", i+1, code, out, errOut, want)
		}
	}
	// A sewerage run for May through the CLI: the connection is billed,
	// one without a plan is reported as skipped with the reason.
	if _, err := db.Exec(ctx, `INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, connection_type, usage_category, water_closets, connected_at)
		SELECT tenant_id, id, 'sewerage', 'SW/2', 'active', 'Non Metered', 'RESIDENTIAL', 2, '2024-01-01' FROM properties`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, env, "billrun", "--tenant", "pb", "--service", "sewerage", "--period", "2024-05", "--issue-date", "2024-06-01")
	for _, want := range []string{"2 connections: 1 billed, 0 unchanged, 1 skipped, 0 failed", "skipped 1 (e.g. SW/2): no tariff plan assigned"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("billrun: exit %d, output lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	var interest, penalty string
	if err := db.QueryRow(ctx, `SELECT (sum(tax_amount) FILTER (WHERE tax_head = 'SW_TIME_INTEREST'))::numeric(10,2)::text,
		(sum(tax_amount) FILTER (WHERE tax_head = 'SW_TIME_PENALTY'))::numeric(10,2)::text FROM demand_details`).Scan(&interest, &penalty); err != nil {
		t.Fatal(err)
	}
	if interest != "3.00" || penalty != "6.00" {
		t.Errorf("interest %s, penalty %s; want 3 and 6", interest, penalty)
	}
}
