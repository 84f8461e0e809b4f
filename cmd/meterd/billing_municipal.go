package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/municipal"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// municipalConnectionFile is the connection description the municipal
// commands read.
type municipalConnectionFile struct {
	ConnectionType string           `json:"connection_type"`
	UsageCategory  string           `json:"usage_category"`
	WaterClosets   *int             `json:"water_closets"`
	Toilets        *int             `json:"toilets"`
	Taps           *int             `json:"taps"`
	PipeSize       *int             `json:"pipe_size"`
	LastReading    *decimal.Decimal `json:"last_reading"`
	CurrentReading *decimal.Decimal `json:"current_reading"`
	PlotSizeM2     *decimal.Decimal `json:"plot_size_m2"`
	AdhocPenalty   *decimal.Decimal `json:"adhoc_penalty"`
	AdhocRebate    *decimal.Decimal `json:"adhoc_rebate"`
	RoadCutting    []struct {
		RoadType string          `json:"road_type"`
		AreaM2   decimal.Decimal `json:"area_m2"`
	} `json:"road_cutting"`
}

// municipalOutput is what the offline municipal commands print.
type municipalOutput struct {
	Service          string                  `json:"service"`
	Attribute        string                  `json:"calculation_attribute,omitempty"`
	Units            *decimal.Decimal        `json:"units,omitempty"`
	BillingSlabs     []municipal.BillingSlab `json:"billing_slabs,omitempty"`
	TaxHeadEstimates []billing.Estimate      `json:"tax_head_estimates"`
	Charge           decimal.Decimal         `json:"charge"`
	Fee              decimal.Decimal         `json:"fee"`
	TaxAmount        decimal.Decimal         `json:"tax_amount"`
	Penalty          decimal.Decimal         `json:"penalty"`
	Rebate           decimal.Decimal         `json:"rebate"`
	Exemption        decimal.Decimal         `json:"exemption"`
	TotalAmount      decimal.Decimal         `json:"total_amount"`
}

// runMunicipal runs "billing estimate" (one-time fees) and "billing
// calculate" (periodic charge) offline, from a masters file and a
// connection description, for officials checking masters before
// publishing them.
func runMunicipal(e env, name string, args []string) error {
	var mastersPath, connPath, service, start string
	usage := "Usage: meterd billing " + name + " --masters FILE --connection FILE [--service sewerage|water]"
	if name == "estimate" {
		usage += "\n\nEstimates the one-time fees of a connection application (form, scrutiny, meter, other,\nroad cutting, one-time fee, security, tax and cess, adhoc amounts, round-off) under municipal\nmasters and prints the tax-head estimates and totals as JSON."
	} else {
		usage += " [--period-start YYYY-MM-DD]\n\nComputes a connection's periodic charge (the billing slab matched by building type,\nconnection type and calculation attribute; cess; round-off) under municipal masters and\nprints the slab used, the units, the estimates and totals as JSON."
	}
	usage += "\n\nThe connection file is JSON: connection_type, usage_category, water_closets, toilets, taps,\npipe_size, last_reading and current_reading (kL, metered water), road_cutting [{road_type,\narea_m2}], plot_size_m2, adhoc_penalty, adhoc_rebate."
	f := newFlags("billing "+name, usage, e.getenv, e.stderr)
	f.String(&mastersPath, "masters", "", "", "municipal masters (MDMS-shaped JSON)")
	f.String(&connPath, "connection", "", "", "connection description (JSON)")
	f.String(&service, "service", "", "sewerage", "sewerage or water")
	if name == "calculate" {
		f.String(&start, "period-start", "", "", "first day of the demand period (YYYY-MM-DD; default today, UTC): selects cess entries by financial year")
	}
	if err := f.Parse(args); err != nil {
		return err
	}
	if mastersPath == "" || connPath == "" {
		return errors.New("--masters and --connection are required")
	}
	svc, ok := municipal.ForService(service)
	if !ok {
		return fmt.Errorf("--service %q: want sewerage or water", service)
	}
	data, err := os.ReadFile(mastersPath)
	if err != nil {
		return err
	}
	m, err := municipal.DecodeMasters(data)
	if err != nil {
		return err
	}
	data, err = os.ReadFile(connPath)
	if err != nil {
		return err
	}
	var in municipalConnectionFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("connection file: %w", err)
	}
	if in.ConnectionType == "" {
		in.ConnectionType = "Non Metered"
	}
	conn := municipal.Connection{ConnectionType: in.ConnectionType, WaterClosets: in.WaterClosets, Toilets: in.Toilets, Taps: in.Taps, PipeSize: in.PipeSize,
		LastReading: in.LastReading, CurrentReading: in.CurrentReading, AdhocPenalty: in.AdhocPenalty, AdhocRebate: in.AdhocRebate}
	for _, rc := range in.RoadCutting {
		area := rc.AreaM2
		conn.RoadCutting = append(conn.RoadCutting, municipal.RoadCutting{RoadType: rc.RoadType, Area: &area})
	}
	prop := municipal.Property{UsageCategory: in.UsageCategory, LandArea: in.PlotSizeM2}
	pol := billingpg.MunicipalPolicy(time.UTC)
	var calc municipal.Calculation
	if name == "estimate" {
		calc, err = municipal.FeeEstimates(svc, conn, prop, m, pol)
	} else {
		day := billing.DateOf(time.Now(), time.UTC)
		if start != "" {
			if day, err = billing.ParseDate(start); err != nil {
				return fmt.Errorf("--period-start: %w", err)
			}
		}
		calc, err = municipal.PeriodicCharge(svc, conn, prop, m, day, pol)
	}
	if err != nil {
		return err
	}
	out := municipalOutput{Service: service, Attribute: calc.Attribute, BillingSlabs: calc.Slabs, TaxHeadEstimates: calc.Estimates,
		Charge: calc.Charge, Fee: calc.Fee, TaxAmount: calc.TaxAmount, Penalty: calc.Penalty, Rebate: calc.Rebate, Exemption: calc.Exemption, TotalAmount: calc.TotalAmount}
	if name == "calculate" {
		out.Units = &calc.Units
	}
	if out.TaxHeadEstimates == nil {
		out.TaxHeadEstimates = []billing.Estimate{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

// runTimeBased applies the scheduler's time-based pass (interest, penalty,
// rebate on overdue water and sewerage demands) at once.
func runTimeBased(ctx context.Context, e env, args []string) error {
	var db dbConfig
	var at string
	var batch int
	f := newFlags("billing time-based", "Usage: meterd billing time-based [--at RFC3339] [--batch N]\n\nApplies interest, penalty and rebate due now (or at --at) to every overdue water and sewerage\ndemand with something outstanding, as the hourly scheduler does; amounts are set, not added,\nso running it again appends nothing.", e.getenv, e.stderr)
	db.register(f)
	f.String(&at, "at", "", "", "apply as of this time (RFC 3339; default now)")
	f.Int(&batch, "batch", "", 500, "connections per transaction")
	if err := f.Parse(args); err != nil {
		return err
	}
	now := time.Now()
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return fmt.Errorf("--at: %w", err)
		}
		now = t
	}
	return withStore(ctx, db, func(s *billingpg.Store, _ *poolComponent) error {
		res, err := s.ApplyTimeBased(ctx, now, batch)
		fmt.Fprintf(e.stdout, "time-based at %s: %d connections with overdue demands, %d details appended\n", now.UTC().Format(time.RFC3339), res.Connections, res.Appended)
		return err
	})
}
