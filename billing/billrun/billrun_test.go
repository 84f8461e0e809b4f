package billrun

import (
	"context"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/postgres"
)

var april = billing.Period{From: billing.NewDate(2024, 4, 1), To: billing.NewDate(2024, 4, 30)}

func newRun(t *testing.T, store *postgres.Store, f *fixture, trigger string, p billing.Period, batch int) postgres.Run {
	t.Helper()
	run, err := store.CreateRun(context.Background(), postgres.NewRun{TenantID: f.tenant, Service: "electricity", Cycle: billing.CycleMonthly,
		Period: p, IssueDate: p.To.AddDays(5), Trigger: trigger, BatchSize: batch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// A fleet with injected failures: every good connection is billed, every
// failed one is a dead letter with its reason, and running again creates
// nothing new.
func TestBillRunFleetWithFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	f := newFixture(t, pool)
	out := &memOutbox{}
	store := postgres.NewStore(pool, postgres.Deps{Outbox: out})
	f.publish(store, "lt-domestic")

	var fleet []conn
	for i := 0; i < 30; i++ {
		fleet = append(fleet, conn{plan: "lt-domestic", kwhPerDay: int64(5 + i%10)})
	}
	fleet[3].skipDays = []int{12, 13, 14} // gap bracketed by reads: measured
	fleet[4].skipDays = []int{28, 29, 30} // trailing days without reads: estimated
	fleet[5].loadKW = "4"                 // second load band
	fleet = append(fleet,
		conn{plan: "", kwhPerDay: 5},                             // skipped: no plan
		conn{plan: "", kwhPerDay: 5},                             // skipped: no plan
		conn{plan: "missing-plan", kwhPerDay: 6},                 // failed: plan has no version
		conn{plan: "missing-plan", kwhPerDay: 6},                 // failed
		conn{plan: "lt-domestic", kwhPerDay: 7, backwards: true}, // failed: register reset without event
		conn{plan: "lt-domestic", noMeter: true},                 // failed: nothing to read or estimate
	)
	ids := f.addConnections(fleet)

	runner, err := NewRunner(store, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Batches of 7 so failures land in batches with good connections.
	run := newRun(t, store, f, postgres.TriggerCLI, april, 7)
	var progressed int
	done, err := runner.Execute(ctx, run.ID, func(r postgres.Run) { progressed++ })
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != postgres.RunCompleted || done.Total != 36 || done.Processed != 36 || done.Billed != 30 || done.Skipped != 2 || done.Failed != 4 || done.Unchanged != 0 {
		t.Fatalf("first run = %+v", done)
	}
	if progressed < 6 {
		t.Errorf("progress reported %d times, want one per batch", progressed)
	}
	if n := f.count(`SELECT count(*) FROM bills`); n != 30 {
		t.Fatalf("bills = %d", n)
	}
	if n := f.count(`SELECT count(*) FROM bills WHERE seq BETWEEN 1 AND 30`); n != 30 {
		t.Errorf("bill numbers are not 1..30")
	}
	dead, err := store.DeadLetters(ctx, f.tenant, "electricity", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[int64]string{}
	for _, d := range dead {
		reasons[d.ConnectionID] = d.Reason
	}
	for i, want := range map[int]string{32: `tariff plan "missing-plan" has no published version`, 33: "missing-plan", 34: "register went back", 35: "no reading"} {
		if !strings.Contains(reasons[ids[i]], want) {
			t.Errorf("dead letter of connection %d: %q, want it to mention %q", i, reasons[ids[i]], want)
		}
	}
	if len(dead) != 4 {
		t.Errorf("dead letters = %+v", dead)
	}
	if n := f.count(`SELECT count(*) FROM bill_run_skips WHERE run_id = $1 AND reason = 'no tariff plan assigned'`, run.ID); n != 2 {
		t.Errorf("skips = %d", n)
	}
	if got := out.events(postgres.EventBillIssued); got != 30 {
		t.Errorf("bill.issued notifications = %d", got)
	}
	if got := out.events(postgres.EventRunSummary); got != 1 {
		t.Errorf("run summaries = %d (one official)", got)
	}
	for _, m := range out.msgs {
		if m.Event == postgres.EventRunSummary {
			if fs, _ := m.Payload["failures"].([]map[string]any); len(fs) != 4 || m.Payload["billed"] != 30 {
				t.Errorf("run summary payload = %v", m.Payload)
			}
		}
	}

	// The estimated bill says so; the gap bracketed by reads does not.
	var estimated, gap bool
	if err := pool.QueryRow(ctx, `SELECT (SELECT estimated FROM bills WHERE connection_id = $1), (SELECT estimated FROM bills WHERE connection_id = $2)`, ids[4], ids[3]).Scan(&estimated, &gap); err != nil {
		t.Fatal(err)
	}
	if !estimated || gap {
		t.Errorf("estimated flags: trailing gap %v (want true), bracketed gap %v (want false)", estimated, gap)
	}
	// Connection 0: 5 kWh × 30 days = 150 kWh: 450 energy + 40 fixed + 5% duty 24.50 = 514.50 → 515.
	var total, consumption string
	if err := pool.QueryRow(ctx, `SELECT total::text, consumption_wh::text FROM bills WHERE connection_id = $1`, ids[0]).Scan(&total, &consumption); err != nil {
		t.Fatal(err)
	}
	if d := decimal.RequireFromString(total); !d.Equal(decimal.RequireFromString("515")) || consumption != "150000" {
		t.Errorf("connection 0: total %s consumption %s Wh, want 515 and 150000", total, consumption)
	}

	// Again: nothing new.
	run2 := newRun(t, store, f, postgres.TriggerCLI, april, 7)
	done2, err := runner.Execute(ctx, run2.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done2.Billed != 0 || done2.Unchanged != 30 || done2.Failed != 4 || done2.Skipped != 2 {
		t.Fatalf("second run = %+v", done2)
	}
	if n := f.count(`SELECT count(*) FROM bills`); n != 30 {
		t.Errorf("bills after the second run = %d", n)
	}
	if n := f.count(`SELECT count(*) FROM demands`); n != 30 {
		t.Errorf("demands after the second run = %d", n)
	}
	if n := f.count(`SELECT sum(attempts) FROM billing_dead_letters WHERE resolved_at IS NULL`); n != 8 {
		t.Errorf("dead letter attempts = %d, want 2 each", n)
	}

	// Publishing the missing plan and re-running the dead letters bills them.
	f.publish(store, "missing-plan")
	rerun := newRun(t, store, f, postgres.TriggerRerun, april, 7)
	done3, err := runner.Execute(ctx, rerun.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done3.Total != 4 || done3.Billed != 2 || done3.Failed != 2 {
		t.Fatalf("rerun = %+v", done3)
	}
	if n := f.count(`SELECT count(*) FROM billing_dead_letters WHERE resolved_at IS NULL`); n != 2 {
		t.Errorf("open dead letters after the rerun = %d", n)
	}
	if n := f.count(`SELECT max(seq) FROM bills`); n != 32 {
		t.Errorf("last bill number = %d, want 32 (no gaps)", n)
	}
}
