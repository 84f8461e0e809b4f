package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

// runCLI runs one meterd command to its end.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestBillingQuoteCommand(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "billing", "quote", "--tariff", "../../billing/testdata/tariff-domestic.json", "--usage", "../../billing/testdata/usage-domestic.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden, err := os.ReadFile("../../billing/testdata/quote-domestic.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if err := json.Unmarshal(golden, &want); err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("quote differs from billing/testdata/quote-domestic.golden.json:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"tenant": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, nil, "billing", "quote", "--tariff", bad, "--usage", "../../billing/testdata/usage-domestic.json")
	if code != 1 || !strings.Contains(errOut, "plan") {
		t.Errorf("invalid tariff: exit %d, %q (want the field named)", code, errOut)
	}
}

// TestBillrunCommand publishes a tariff and bills a month through the CLI,
// then lists dead letters and bills the month again (nothing new).
func TestBillrunCommand(t *testing.T) {
	url := schematest.URL(t, schema.ProfilePostgres)
	env := map[string]string{"DATABASE_URL": url}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	setup := []string{
		`INSERT INTO tenants (code, name, time_zone) VALUES ('test-discom', 'Test', 'Asia/Kolkata')`,
		`INSERT INTO users (tenant_id, email, role, password_hash) SELECT id, 'c@t.test', 'consumer', '$argon2id$x' FROM tenants`,
		`INSERT INTO properties (tenant_id, user_id, address_enc) SELECT tenant_id, id, '\x00' FROM users`,
		`INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, tariff_plan, sanctioned_load_kw, connected_at)
			SELECT tenant_id, id, 'electricity', 'E1', 'active', 'lt-domestic', 2, '2024-01-01' FROM properties`,
		`INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, tariff_plan, sanctioned_load_kw, connected_at)
			SELECT tenant_id, id, 'electricity', 'E2', 'active', 'lt-domestic', 2, '2024-01-01' FROM properties`,
		`INSERT INTO meters (tenant_id, external_id, serial, model, protocol, installed_at) SELECT id, 'M1', 'M1', 'sdm120', 'mqtt', '2024-03-01' FROM tenants`,
		`INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at, initial_import_wh)
			SELECT c.tenant_id, c.id, m.id, '2024-03-01T00:00:00+05:30', 0 FROM connections c, meters m WHERE c.consumer_code = 'E1'`,
		`INSERT INTO readings_daily (meter_id, bucket, first_ts, last_ts, first_import_wh, last_import_wh, import_delta_wh, power_samples, samples)
			SELECT m.id, x.d, x.d + interval '1 hour', x.d + interval '23 hours', 1000000 + k * 5000, 1000000 + (k + 1) * 5000, 5000, 1, 1
			FROM meters m CROSS JOIN generate_series(0, 30) k
			CROSS JOIN LATERAL (SELECT ('2024-03-31'::date + k)::timestamp AT TIME ZONE 'Asia/Kolkata' AS d) x`,
	}
	for _, s := range setup {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	code, out, errOut := runCLI(t, env, "billing", "publish", "--tenant", "test-discom", "--plan", "lt-domestic", "--file", "../../billing/billrun/testdata/tariff.json")
	if code != 0 || !strings.Contains(out, "published electricity/lt-domestic") {
		t.Fatalf("publish: exit %d, %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, env, "billing", "settings", "--tenant", "test-discom", "--due-days", "10", "--minimum-pct", "50")
	if code != 0 || !strings.Contains(out, "monthly, generated on day 1, due after 10 days, minimum payable 50%") {
		t.Fatalf("settings: exit %d, %s %s", code, out, errOut)
	}
	code, _, _ = runCLI(t, env, "billing", "settings", "--tenant", "test-discom", "--due-days", "15", "--minimum-pct", "100")
	if code != 0 {
		t.Fatal("settings back")
	}
	start := time.Now()
	code, out, errOut = runCLI(t, env, "billrun", "--tenant", "test-discom", "--period", "2024-04", "--issue-date", "2024-05-05", "--batch-size", "1")
	if code != 0 {
		t.Fatalf("billrun: exit %d, %s %s", code, out, errOut)
	}
	for _, want := range []string{"[##############################] 100%", "2 connections: 1 billed, 0 unchanged, 0 skipped, 1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("billrun output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, env, "billrun", "--tenant", "test-discom", "--dead-letters")
	if code != 0 || !strings.Contains(out, "1 open dead letters") || !strings.Contains(out, "E2") {
		t.Errorf("dead letters: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, env, "billrun", "--tenant", "test-discom", "--period", "2024-04", "--issue-date", "2024-05-05")
	if code != 0 || !strings.Contains(out, "0 billed, 1 unchanged, 0 skipped, 1 failed") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}
	pdfPath := filepath.Join(t.TempDir(), "bill.pdf")
	code, out, errOut = runCLI(t, env, "billing", "pdf", "--tenant", "test-discom", "--bill", "1", "--out", pdfPath)
	if code != 0 || !strings.Contains(out, "total ₹515.00, due 2024-05-20") {
		t.Errorf("pdf: exit %d %s %s", code, out, errOut)
	}
	t.Logf("CLI runs took %v", time.Since(start))
}
