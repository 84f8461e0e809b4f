package billrun

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/municipal"
	"github.com/meterd/meterd/billing/postgres"
)

// municipalOne bills one water or sewerage connection: the period's
// demand from the municipal calculators (the billing slab matched by
// building type, connection type and the type's calculation attribute;
// metered water graduated over the kilolitres its water meters counted),
// created, or recalculated by appending only the differences (TV08);
// interest, penalty and rebate due on the issue date on earlier demands;
// advance consumed; the bill. A connection whose period already has a live
// bill and to which nothing is appended is unchanged, so a second run
// creates nothing; when a recalculation or a time-based amount changes
// anything, the live bill is cancelled and a new one replaces it.
//
// The charge is not prorated for a partial period (reference §2.10): a
// connection connected or disconnected within the period is billed the
// period's charge for the days it was connected.
func (b *Biller) municipalOne(in *postgres.Input) postgres.Outcome {
	run, c := b.Run, in.Connection
	svc, ok := municipal.ForService(run.Service)
	if !ok {
		return fail("service %q has no municipal calculator", run.Service)
	}
	p, reason := connectedPart(run, c)
	if reason != "" {
		return skip(reason)
	}
	version, ok := b.Plans.At(c.TariffPlan, p.From)
	if !ok {
		return skip(fmt.Sprintf("tariff plan %q has no %s masters in force on %s", c.TariffPlan, run.Service, p.From))
	}
	var existing *postgres.LedgerDemand
	var earlier []postgres.LedgerDemand
	for i := range in.Demands {
		d := &in.Demands[i]
		switch {
		case d.Kind != postgres.KindPeriodic: // the application's fee demand has its own bill
		case !d.Period.To.Before(run.Period.From) && !d.Period.From.After(run.Period.To):
			existing = d
		case d.Period.To.Before(run.Period.From):
			earlier = append(earlier, *d)
		}
	}

	conn := municipal.Connection{ConnectionNo: c.ConsumerCode, ConnectionType: c.ConnectionType,
		WaterClosets: c.WaterClosets, Toilets: c.Toilets, Taps: c.Taps, PipeSize: c.PipeSize}
	header := postgres.DemandHeader{Period: p, Due: run.IssueDate.AddDays(run.DueAfterDays), Plan: c.TariffPlan}
	if existing != nil {
		header.Due = existing.Due // a recalculation does not move the due date
	}
	metered := run.Service == "water" && strings.EqualFold(c.ConnectionType, "Metered")
	if metered {
		for _, m := range in.Meters {
			if !municipal.IsWaterMeter(m.Model) {
				return fail("meter %s (model %q) is not a water meter: its register does not count litres", m.Serial, m.Model)
			}
		}
		usage, reads, serial, err := b.consumption(in, p)
		if err != nil {
			return fail("%v", err)
		}
		last := decimal.Zero
		if len(reads) > 0 && reads[0].Known {
			last = municipal.Kilolitres(reads[0].Previous)
			v := reads[0].Previous
			header.PreviousReadWh = &v
		}
		if len(reads) > 0 && reads[len(reads)-1].Known {
			v := reads[len(reads)-1].Current
			header.CurrentReadWh = &v
		}
		current := last.Add(municipal.Kilolitres(usage.ImportWh))
		conn.LastReading, conn.CurrentReading = &last, &current
		header.ImportWh, header.Estimated, header.MeasuredDays, header.EstimatedDays, header.MeterSerial =
			usage.ImportWh, usage.Estimated(), usage.MeasuredDays, usage.EstimatedDays, serial
	}
	calc, err := municipal.PeriodicCharge(svc, conn, municipal.Property{UsageCategory: c.UsageCategory}, version.Masters, p.From, b.Policy)
	switch {
	case errors.Is(err, municipal.ErrNoCalculationAttribute), errors.Is(err, municipal.ErrNoBillingSlab):
		return skip(fmt.Sprintf("tariff plan %q version %s: %v", c.TariffPlan, version.Version, err))
	case err != nil:
		return fail("tariff plan %q version %s: %v", c.TariffPlan, version.Version, err)
	}

	issue := &postgres.Issue{Demand: header}
	current := billing.Demand{}
	var currentIDs []int64 // detail ids of the period's demand; 0 for new ones
	var currentNew []int   // index into issue.Appends for new ones
	if existing == nil {
		for _, d := range municipal.NewDetails(calc.Estimates, svc.RoundOff, b.Policy) {
			issue.Appends = append(issue.Appends, postgres.Append{Head: d.Head, Category: svc.Category(d.Head), Amount: d.TaxAmount, Source: postgres.SourceCalculation})
		}
	} else {
		issue.DemandID = existing.ID
		current.Details = append(current.Details, existing.Demand.Details...)
		currentIDs = append(currentIDs, existing.DetailIDs...)
		currentNew = make([]int, len(existing.DetailIDs))
		for _, d := range municipal.Recalculate(existing.InZone(run.Location, svc.Advance), calc, svc.PeriodicHeads(), svc.RoundOff, b.Policy) {
			issue.Appends = append(issue.Appends, postgres.Append{Head: d.Head, Category: svc.Category(d.Head), Amount: d.TaxAmount, Source: postgres.SourceRecalculation})
		}
	}
	for i, a := range issue.Appends {
		current.Details = append(current.Details, billing.DemandDetail{Head: a.Head, TaxAmount: a.Amount, CollectionAmount: decimal.Zero})
		currentIDs = append(currentIDs, 0)
		currentNew = append(currentNew, i)
	}

	// Interest, penalty and rebate on earlier demands as of the end of the
	// issue day, before the bill presents them as arrears.
	asOf := run.IssueDate.AddDays(1).Start(run.Location).Add(-time.Millisecond)
	plain := make([]billing.Demand, 0, len(earlier)+1)
	var earlierIDs [][]int64
	for _, d := range earlier {
		dem := d.Demand
		dem.Details = append([]billing.DemandDetail(nil), dem.Details...)
		ids := append([]int64(nil), d.DetailIDs...)
		for _, add := range postgres.TimeBased(svc, b.Plans, d, asOf, b.Policy) {
			issue.Appends = append(issue.Appends, postgres.Append{DemandID: d.ID, Head: add.Head, Category: svc.Category(add.Head), Amount: add.TaxAmount, Source: postgres.SourceLateSurcharge})
			dem.Details = append(dem.Details, add)
			ids = append(ids, -int64(len(issue.Appends)-1)-1)
		}
		plain = append(plain, dem)
		earlierIDs = append(earlierIDs, ids)
	}
	plain = append(plain, current)

	// Advance carried from earlier payments pays the new charges (TV18).
	a := billing.ApportionAdvance(plain, svc.Advance, b.Heads.Order)
	for _, col := range a.Collections {
		var ref postgres.DetailRef
		if col.Demand == len(plain)-1 {
			if id := currentIDs[col.Detail]; id != 0 {
				ref.ID = id
			} else {
				ref.New = currentNew[col.Detail]
			}
		} else if id := earlierIDs[col.Demand][col.Detail]; id < 0 {
			ref.New = int(-id - 1)
		} else {
			ref.ID = id
		}
		issue.Collects = append(issue.Collects, postgres.Collect{Detail: ref, Amount: col.Amount})
	}
	if existing != nil && existing.LiveBillID != 0 {
		if len(issue.Appends) == 0 && len(issue.Collects) == 0 {
			return postgres.Outcome{Kind: postgres.Unchanged, Repeat: existing.LiveBillRun == run.ID}
		}
		issue.CancelBillIDs = []int64{existing.LiveBillID}
		issue.CancelReason = "recalculated: " + svc.Name() + " demand changed"
		issue.Bill.ReplacesBillID = existing.LiveBillID
	}
	plain = billing.Apply(plain, a, svc.Advance)
	if a.Advance.IsPositive() {
		issue.Appends = append(issue.Appends, postgres.Append{Head: svc.Advance, Category: billing.CategoryAdvanceCollection, Amount: a.Advance.Neg(), Source: postgres.SourceAdvance})
	}

	lines := svc.Lines(plain[len(plain)-1].Details, svc.Advance)
	for i := range lines {
		if lines[i].Code == string(svc.Charge) {
			lines[i].Description = chargeDescription(svc, calc)
		}
	}
	billLines, totals, err := billing.ComposeBill(plain[len(plain)-1], plain[:len(plain)-1], lines,
		billing.BillHeads{Advance: svc.Advance, RoundOff: svc.RoundOff}, run.MinimumPayablePct, 2)
	if err != nil {
		return fail("compose bill: %v", err)
	}
	issue.Bill = postgres.BillDraft{
		Lines: billLines, Totals: totals, TariffVersion: version.Version,
		IssueDate: run.IssueDate, DueDate: header.Due,
		ConsumptionWh: header.ImportWh, Estimated: header.Estimated,
		ReplacesBillID: issue.Bill.ReplacesBillID,
	}
	if metered {
		issue.Bill.UsageHistory = append(append([]postgres.UsagePoint(nil), in.History...),
			postgres.UsagePoint{From: p.From, To: p.To, KWh: municipal.Kilolitres(header.ImportWh).String(), Estimated: header.Estimated})
	}
	return postgres.Outcome{Kind: postgres.Billed, Issue: issue}
}

// chargeDescription says what the charge counted: "Sewerage charge: 4 ×
// No. of water closets (slab 1)".
func chargeDescription(svc municipal.Service, calc municipal.Calculation) string {
	slab := strings.Join(calc.BillingSlabIDs, ", ")
	switch {
	case strings.EqualFold(calc.Attribute, municipal.AttrFlat):
		return fmt.Sprintf("%s: flat (slab %s)", svc.Describe(svc.Charge), slab)
	case strings.EqualFold(calc.Attribute, municipal.AttrWaterConsumption):
		return fmt.Sprintf("%s: %s kL graduated (slab %s)", svc.Describe(svc.Charge), calc.Units, slab)
	}
	return fmt.Sprintf("%s: %s × %s (slab %s)", svc.Describe(svc.Charge), calc.Units, calc.Attribute, slab)
}
