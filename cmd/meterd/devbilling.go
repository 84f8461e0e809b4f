package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/billrun"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// demoTariff is the demo tenant's electricity plan (the plan the demo
// connection names): DERC-style telescopic energy slabs, fixed charge by
// sanctioned-load band, electricity duty, late-payment surcharge and a
// whole-rupee round-off.
const demoTariff = `{
  "tenant": "demo",
  "plan": "domestic-lt",
  "version": "FY2024-25",
  "effective_from": "2024-04-01",
  "currency": "INR",
  "order_ref": "demo tariff order FY2024-25",
  "rounding": {"mode": "half_up", "places": 2},
  "energy": {"kind": "telescopic", "slabs": [
    {"upto_kwh": 200, "rate": "3.00"}, {"upto_kwh": 400, "rate": "4.50"},
    {"upto_kwh": 800, "rate": "6.50"}, {"upto_kwh": 1200, "rate": "7.00"}, {"upto_kwh": null, "rate": "8.00"}]},
  "fixed": {"kind": "sanctioned_load_band_whole_load", "bands": [
    {"upto_kw": "2", "rate": "20"}, {"upto_kw": "5", "rate": "50"}, {"upto_kw": "15", "rate": "100"},
    {"upto_kw": "25", "rate": "200"}, {"upto_kw": null, "rate": "250"}]},
  "taxes": [{"code": "ed", "name": "electricity duty", "rate_pct": "5", "base": ["energy", "fixed"]}],
  "prompt_payment_rebate": {"tiers": [{"within_days": 7, "rate_pct": "1", "cap": "200"}]},
  "late_payment_surcharge": {"rate_pct": "18", "per": "annum_by_days"},
  "round_off": {"places": 0, "mode": "half_ceiling"}
}`

// seedBillingDemo publishes the demo tariff and billing settings (monthly,
// generated on the 1st, due in 15 days) unless they exist and, when the
// demo meter has readings in the last complete month, bills that month so a
// newcomer finds a bill. It is idempotent: a billed month is not billed
// again.
func seedBillingDemo(ctx context.Context, pools *poolComponent, log *slog.Logger) (string, error) {
	store := billingStore(pools, log)
	tid, err := store.TenantByCode(ctx, demoTenant)
	if err != nil {
		return "", err
	}
	_, err = store.PublishTariff(ctx, billingpg.Publish{TenantID: tid, Service: "electricity", Plan: "domestic-lt", Document: []byte(demoTariff)})
	if err != nil && !errors.Is(err, billing.ErrConflict) {
		return "", fmt.Errorf("demo tariff: %w", err)
	}
	st, err := store.Settings(ctx, tid, "electricity")
	if err != nil {
		return "", err
	}
	if !st.Stored {
		st.MinimumPayablePct = decimal.NewFromInt(100)
		if err := store.PutSettings(ctx, st); err != nil {
			return "", err
		}
	}
	sewerage, err := seedMunicipalDemo(ctx, store, tid)
	if err != nil {
		return "", err
	}
	banner, err := seedElectricityBill(ctx, pools, store, tid, log)
	return sewerage + banner, err
}

// seedElectricityBill bills the last complete month of the demo tenant's
// electricity connections when they have readings in it.
func seedElectricityBill(ctx context.Context, pools *poolComponent, store *billingpg.Store, tid int64, log *slog.Logger) (string, error) {
	_, loc, err := store.TenantLocation(ctx, tid)
	if err != nil {
		return "", err
	}
	p, err := billrun.PreviousPeriod(billing.CycleMonthly, time.Now(), loc)
	if err != nil {
		return "", err
	}
	var readings int
	if err := pools.pool.QueryRow(ctx, `SELECT count(*) FROM readings_daily d JOIN meter_installations mi ON mi.meter_id = d.meter_id
		JOIN connections c ON c.id = mi.connection_id WHERE c.tenant_id = $1 AND c.service = 'electricity' AND d.bucket >= $2 AND d.bucket < $3`,
		tid, p.From.Start(loc), p.To.AddDays(1).Start(loc)).Scan(&readings); err != nil {
		return "", err
	}
	if readings == 0 {
		return fmt.Sprintf("  Billing     tariff domestic-lt published; no readings for %s yet, so no bill (meterd billrun --tenant %s bills it later)\n", p, demoTenant), nil
	}
	if done, err := store.HasRun(ctx, tid, "electricity", p.From); err != nil || done {
		return fmt.Sprintf("  Billing     %s billed; bills at /api/bills\n", p), err
	}
	runner, err := billrun.NewRunner(store, billrun.Config{}, log, nil)
	if err != nil {
		return "", err
	}
	run, err := store.CreateRun(ctx, billingpg.NewRun{TenantID: tid, Service: "electricity", Cycle: billing.CycleMonthly, Period: p,
		IssueDate: billing.DateOf(time.Now(), loc), Trigger: billingpg.TriggerCLI, BatchSize: runner.BatchSize()}, nil)
	if err != nil {
		return "", err
	}
	done, err := runner.Execute(ctx, run.ID, nil)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  Billing     bill run %d for %s: %d billed; bills at /api/bills\n", done.ID, p, done.Billed)
	return b.String(), nil
}
