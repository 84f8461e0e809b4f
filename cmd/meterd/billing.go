package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/pdf"
	billingpg "github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/billing/tariff"
)

const billingUsage = `Usage: meterd billing <subcommand> [flags]

Subcommands:
  quote    rate a usage description against a tariff file and print lines and totals as JSON
  publish  validate and publish a tariff version for a tenant (immutable once published)
  tariffs  list a tenant's published tariff versions
  settings show or change a tenant's billing cycle, generation day, due days and minimum payable
  pdf      write a bill's PDF to a file
  estimate estimate a water or sewerage connection's one-time fees from a masters file (JSON out)
  calculate compute a water or sewerage connection's periodic charge from a masters file (JSON out)
  time-based apply interest, penalty and rebate due now to overdue water and sewerage demands`

func runBilling(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stderr, billingUsage)
		if len(args) == 0 {
			return errors.New("a subcommand is required")
		}
		return nil
	}
	switch args[0] {
	case "quote":
		return runQuote(e, args[1:])
	case "publish":
		return runPublish(ctx, e, args[1:])
	case "tariffs":
		return runTariffs(ctx, e, args[1:])
	case "settings":
		return runSettings(ctx, e, args[1:])
	case "pdf":
		return runBillPDF(ctx, e, args[1:])
	case "estimate", "calculate":
		return runMunicipal(e, args[0], args[1:])
	case "time-based":
		return runTimeBased(ctx, e, args[1:])
	}
	fmt.Fprintln(e.stderr, billingUsage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func runQuote(e env, args []string) error {
	var tariffPath, usagePath string
	f := newFlags("billing quote", "Usage: meterd billing quote --tariff FILE --usage FILE\n\nRates a usage description (JSON: period, import_kwh, tou_kwh, sanctioned_load_kw, …)\nagainst a tariff file (one version or an array of versions) and prints the lines and\ntotals as JSON. Invalid documents are reported with the path of every bad field.", e.getenv, e.stderr)
	f.String(&tariffPath, "tariff", "", "", "tariff document (JSON)")
	f.String(&usagePath, "usage", "", "", "usage description (JSON)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if tariffPath == "" || usagePath == "" {
		return errors.New("--tariff and --usage are required")
	}
	t, err := os.ReadFile(tariffPath)
	if err != nil {
		return err
	}
	u, err := os.ReadFile(usagePath)
	if err != nil {
		return err
	}
	q, err := tariff.QuoteJSON(t, u)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(q, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}

// withStore opens a pool on the configured database and calls fn with
// billing's store.
func withStore(ctx context.Context, db dbConfig, fn func(*billingpg.Store, *poolComponent) error) error {
	if err := db.Validate(); err != nil {
		return err
	}
	pools := &poolComponent{url: db.url, maxConns: db.maxConns}
	if err := pools.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = pools.Stop(context.WithoutCancel(ctx)) }()
	return fn(billingStore(pools, nil), pools)
}

func runPublish(ctx context.Context, e env, args []string) error {
	var db dbConfig
	var tenant, service, plan, file, version, effective string
	f := newFlags("billing publish", "Usage: meterd billing publish --tenant CODE --plan NAME --file FILE [--service electricity]\n\nValidates and publishes a tariff version. Electricity tariffs are billing/tariff documents\n(version and effective date inside); water and sewerage take municipal masters with\n--version and --effective-from.", e.getenv, e.stderr)
	db.register(f)
	f.String(&tenant, "tenant", "METERD_TENANT", "", "tenant code")
	f.String(&service, "service", "", "electricity", "electricity, water or sewerage")
	f.String(&plan, "plan", "", "", "tariff plan name connections refer to")
	f.String(&file, "file", "", "", "the document (JSON or YAML)")
	f.String(&version, "version", "", "", "version label (municipal masters only)")
	f.String(&effective, "effective-from", "", "", "YYYY-MM-DD (municipal masters only)")
	if err := f.Parse(args); err != nil {
		return err
	}
	doc, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	p := billingpg.Publish{Service: service, Plan: plan, Document: doc, Version: version}
	if effective != "" {
		if p.EffectiveFrom, err = billing.ParseDate(effective); err != nil {
			return err
		}
	}
	return withStore(ctx, db, func(s *billingpg.Store, _ *poolComponent) error {
		if p.TenantID, err = s.TenantByCode(ctx, tenant); err != nil {
			return err
		}
		v, err := s.PublishTariff(ctx, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "published %s/%s version %q effective %s (id %d, sha256 %s)\n", v.Service, v.Plan, v.Version, v.EffectiveFrom, v.ID, v.SHA256)
		return nil
	})
}

func runTariffs(ctx context.Context, e env, args []string) error {
	var db dbConfig
	var tenant string
	f := newFlags("billing tariffs", "Usage: meterd billing tariffs --tenant CODE", e.getenv, e.stderr)
	db.register(f)
	f.String(&tenant, "tenant", "METERD_TENANT", "", "tenant code")
	if err := f.Parse(args); err != nil {
		return err
	}
	return withStore(ctx, db, func(s *billingpg.Store, _ *poolComponent) error {
		id, err := s.TenantByCode(ctx, tenant)
		if err != nil {
			return err
		}
		list, err := s.Tariffs(ctx, id, "", "")
		if err != nil {
			return err
		}
		for _, v := range list {
			fmt.Fprintf(e.stdout, "%-12s %-20s %-12s %-30s %s\n", v.Service, v.Plan, v.EffectiveFrom, v.Version, v.PublishedAt.Format(time.RFC3339))
		}
		return nil
	})
}

func runBillPDF(ctx context.Context, e env, args []string) error {
	var db dbConfig
	var tenant, out, vpa string
	var id int
	f := newFlags("billing pdf", "Usage: meterd billing pdf --tenant CODE --bill ID --out FILE", e.getenv, e.stderr)
	db.register(f)
	f.String(&tenant, "tenant", "METERD_TENANT", "", "tenant code")
	f.Int(&id, "bill", "", 0, "bill id")
	f.String(&out, "out", "", "bill.pdf", "output file")
	f.String(&vpa, "upi-vpa", "METERD_UPI_VPA", "", "UPI address printed as a QR code (default billing@<tenant>)")
	if err := f.Parse(args); err != nil {
		return err
	}
	return withStore(ctx, db, func(s *billingpg.Store, _ *poolComponent) error {
		tid, err := s.TenantByCode(ctx, tenant)
		if err != nil {
			return err
		}
		b, err := s.Bill(ctx, tid, 0, int64(id))
		if err != nil {
			return err
		}
		data, err := pdf.Render(billDocument(&b), payeeFor(vpa, tenant, b.TenantName))
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s (%d bytes): bill %s, total %s, due %s\n", out, len(data), b.Number, pdf.Money(b.Currency, b.Totals.Total), b.DueDate)
		return nil
	})
}

// payeeFor is the UPI payee of a tenant's bills.
func payeeFor(vpa, tenantCode, tenantName string) pdf.Payee {
	if vpa == "" {
		vpa = "billing@" + tenantCode
	}
	return pdf.Payee{VPA: vpa, Name: tenantName}
}

// billDocument maps a stored bill to what the PDF prints.
func billDocument(b *billingpg.StoredBill) *pdf.Bill {
	doc := &pdf.Bill{
		TenantName: b.TenantName, Currency: b.Currency, Service: b.Service, Number: b.Number, Status: b.Status,
		IssueDate: b.IssueDate, DueDate: b.DueDate, Period: b.Period, ConsumerName: b.ConsumerName, ConsumerCode: b.ConsumerCode,
		PropertyLabel: b.PropertyLabel, MeterSerial: b.MeterSerial, TariffPlan: b.TariffPlan, TariffVersion: b.TariffVersion,
		PreviousReadWh: b.PreviousReadWh, CurrentReadWh: b.CurrentReadWh, ConsumptionWh: b.ConsumptionWh, Estimated: b.Estimated,
		Lines: b.Lines, Totals: b.Totals, ReplacesNumber: b.ReplacesNumber,
	}
	for _, h := range b.UsageHistory {
		kwh, err := decimal.NewFromString(h.KWh)
		if err != nil {
			continue
		}
		doc.History = append(doc.History, pdf.UsageBar{Label: h.From.Start(time.UTC).Format("Jan 06"), KWh: kwh, Estimated: h.Estimated})
	}
	return doc
}

func runSettings(ctx context.Context, e env, args []string) error {
	var db dbConfig
	var tenant, service, cycle, scheduled string
	var day, due int
	var minPct string
	f := newFlags("billing settings", "Usage: meterd billing settings --tenant CODE [--cycle monthly|quarterly] [--day N] [--due-days N] [--minimum-pct P] [--scheduled true|false]\n\nShows a tenant's billing rules for a service; any rule given is changed first.", e.getenv, e.stderr)
	db.register(f)
	f.String(&tenant, "tenant", "METERD_TENANT", "", "tenant code")
	f.String(&service, "service", "", "electricity", "electricity, water or sewerage")
	f.String(&cycle, "cycle", "", "", "monthly or quarterly")
	f.Int(&day, "day", "", 0, "generation day of the month, 1..28 (quarterly: in Jan, Apr, Jul, Oct)")
	f.Int(&due, "due-days", "", -1, "days from issue to due date")
	f.String(&minPct, "minimum-pct", "", "", "least part payment, percent of the total (100: none)")
	f.String(&scheduled, "scheduled", "", "", "true or false: whether serve starts runs on the generation day")
	if err := f.Parse(args); err != nil {
		return err
	}
	return withStore(ctx, db, func(s *billingpg.Store, _ *poolComponent) error {
		tid, err := s.TenantByCode(ctx, tenant)
		if err != nil {
			return err
		}
		st, err := s.Settings(ctx, tid, service)
		if err != nil {
			return err
		}
		changed := false
		if cycle != "" {
			if st.Cycle, err = billing.ParseCycle(cycle); err != nil {
				return err
			}
			changed = true
		}
		if day != 0 {
			st.GenerationDay, changed = day, true
		}
		if due >= 0 {
			st.DueAfterDays, changed = due, true
		}
		if minPct != "" {
			if st.MinimumPayablePct, err = decimal.NewFromString(minPct); err != nil {
				return fmt.Errorf("minimum-pct: %w", err)
			}
			changed = true
		}
		if scheduled != "" {
			st.Scheduled, changed = scheduled == "true", true
		}
		if changed {
			if err := s.PutSettings(ctx, st); err != nil {
				return err
			}
		}
		fmt.Fprintf(e.stdout, "%s %s: %s, generated on day %d, due after %d days, minimum payable %s%%, scheduled %v\n",
			tenant, service, st.Cycle, st.GenerationDay, st.DueAfterDays, st.MinimumPayablePct, st.Scheduled)
		return nil
	})
}
