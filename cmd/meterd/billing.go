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
  pdf      write a bill's PDF to a file`

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
	case "pdf":
		return runBillPDF(ctx, e, args[1:])
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
	f.String(&file, "file", "", "", "the document (JSON)")
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
