package billrun

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/consumption"
	"github.com/meterd/meterd/billing/municipal"
	"github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/billing/tariff"
)

// Biller computes the bills of one run: pure, from the inputs the store
// read in the batch's transaction to the outcomes it writes.
type Biller struct {
	Run       postgres.Run
	Schedules map[string]*tariff.Schedule
	Heads     postgres.Heads
	// Plans and Policy rate water and sewerage runs: the tenant's
	// published municipal masters of the run's service and the
	// calculators' policy in the tenant's zone.
	Plans  municipal.Plans
	Policy municipal.Policy
}

// NewBiller returns the biller of run with the tenant's tariff schedules.
func NewBiller(run postgres.Run, schedules map[string]*tariff.Schedule) *Biller {
	return &Biller{Run: run, Schedules: schedules, Heads: postgres.ServiceHeads(run.Service), Policy: postgres.MunicipalPolicy(run.Location)}
}

// NewMunicipalBiller returns the biller of a water or sewerage run with
// the tenant's published masters of that service.
func NewMunicipalBiller(run postgres.Run, plans municipal.Plans) *Biller {
	b := NewBiller(run, nil)
	b.Plans = plans
	return b
}

// Hourly reports whether connections on plan need hourly data: their
// tariff has time-of-use rates in force at the end of the run's period.
func (b *Biller) Hourly(plan string) bool {
	s, ok := b.Schedules[plan]
	if !ok {
		return false
	}
	t, err := s.At(b.Run.Period.To)
	return err == nil && touEnergy(&t.Energy) != nil
}

// touEnergy returns the energy charge whose windows split the day, if any.
func touEnergy(e *tariff.Energy) *tariff.Energy {
	if e.Kind == tariff.EnergyTimeOfUse {
		return e
	}
	for i := range e.Groups {
		if g := touEnergy(&e.Groups[i].Energy); g != nil {
			return g
		}
	}
	return nil
}

// Bill computes every input's outcome.
func (b *Biller) Bill(inputs []postgres.Input) []postgres.Outcome {
	out := make([]postgres.Outcome, len(inputs))
	for i := range inputs {
		out[i] = b.one(&inputs[i])
		out[i].ConnectionID = inputs[i].Connection.ID
	}
	return out
}

func skip(reason string) postgres.Outcome {
	return postgres.Outcome{Kind: postgres.Skipped, Reason: reason}
}

func fail(format string, args ...any) postgres.Outcome {
	return postgres.Outcome{Kind: postgres.Failed, Reason: fmt.Sprintf(format, args...)}
}

// connectedPart returns the part of the run's period the connection is
// billed for (from its connection day, to its disconnection day), or why
// it is not billed at all: no tariff plan, still pending, connected after
// or disconnected before the period. Every service bills by these rules.
func connectedPart(run postgres.Run, c postgres.Connection) (billing.Period, string) {
	switch {
	case c.TariffPlan == "":
		return billing.Period{}, "no tariff plan assigned"
	case c.Status == "pending":
		return billing.Period{}, "connection pending: not connected yet"
	}
	p := run.Period
	if cd := billing.DateOf(c.ConnectedAt, run.Location); cd.After(p.To) {
		return billing.Period{}, "connected after the period"
	} else if cd.After(p.From) {
		p.From = cd
	}
	if c.DisconnectedAt != nil {
		dd := billing.DateOf(*c.DisconnectedAt, run.Location)
		if dd.Before(p.From) {
			return billing.Period{}, "disconnected before the period"
		}
		if dd.Before(p.To) {
			p.To = dd
		}
	}
	return p, ""
}

func (b *Biller) one(in *postgres.Input) postgres.Outcome {
	run, c := b.Run, in.Connection
	if run.Service != "electricity" {
		return b.municipalOne(in)
	}
	p, reason := connectedPart(run, c)
	if reason != "" {
		return skip(reason)
	}
	// The period's demand, if an earlier run created it.
	var existing *postgres.LedgerDemand
	var earlier []postgres.LedgerDemand
	for i := range in.Demands {
		d := &in.Demands[i]
		switch {
		case !d.Period.To.Before(run.Period.From) && !d.Period.From.After(run.Period.To):
			existing = d
		case d.Period.To.Before(run.Period.From):
			earlier = append(earlier, *d)
		}
	}
	if existing != nil && existing.LiveBillID != 0 && !existing.Estimated {
		return postgres.Outcome{Kind: postgres.Unchanged, Repeat: existing.LiveBillRun == run.ID}
	}
	sch, ok := b.Schedules[c.TariffPlan]
	if !ok {
		return fail("tariff plan %q has no published version", c.TariffPlan)
	}

	// Consumption from the meters' daily buckets.
	start, end := p.From.Start(run.RollupLocation), p.To.AddDays(1).Start(run.RollupLocation)
	usage, reads, serial, err := b.consumption(in, p)
	if err != nil {
		return fail("%v", err)
	}
	if existing != nil && existing.LiveBillID != 0 && (usage.Estimated() || existing.LiveBillRun == run.ID) {
		// Still estimated: the bill stands until an actual read arrives.
		return postgres.Outcome{Kind: postgres.Unchanged, Repeat: existing.LiveBillRun == run.ID}
	}
	u := usage.Usage()
	u.SanctionedLoadKW = c.SanctionedLoadKW
	if p != run.Period {
		u.Cycle = run.Period
	}
	last, err := sch.At(p.To)
	if err != nil {
		return fail("%v", err)
	}
	if e := touEnergy(&last.Energy); e != nil {
		windows, err := b.windows(in, e, start, end, u.ImportWh)
		if err != nil {
			return fail("time of use: %v", err)
		}
		u.WindowWh = windows
	}
	res, err := sch.Rate(u)
	if err != nil {
		return fail("rate %s: %v", p, err)
	}

	issue := &postgres.Issue{Demand: postgres.DemandHeader{
		Period: p, Due: run.IssueDate.AddDays(run.DueAfterDays), Plan: c.TariffPlan,
		ImportWh: usage.ImportWh, ExportWh: usage.ExportWh, Estimated: usage.Estimated(),
		MeasuredDays: usage.MeasuredDays, EstimatedDays: usage.EstimatedDays, MeterSerial: serial,
	}}
	if len(reads) > 0 {
		if r := reads[0]; r.Known {
			v := r.Previous
			issue.Demand.PreviousReadWh = &v
		}
		if r := reads[len(reads)-1]; r.Known {
			v := r.Current
			issue.Demand.CurrentReadWh = &v
		}
	}
	estimates := res.Estimates()
	current := billing.Demand{From: p.From.Start(time.UTC), To: p.To.Start(time.UTC)}
	var currentIDs []int64 // detail ids of the period's demand; 0 for new ones
	var currentNew []int   // index into issue.Appends for new ones
	if existing == nil {
		for _, e := range estimates {
			issue.Appends = append(issue.Appends, postgres.Append{Head: e.Head, Category: e.Category, Amount: e.Amount, Source: postgres.SourceCalculation})
		}
	} else {
		issue.DemandID = existing.ID
		current.Details = append(current.Details, existing.Demand.Details...)
		currentIDs = append(currentIDs, existing.DetailIDs...)
		currentNew = make([]int, len(existing.DetailIDs))
		var owned []billing.TaxHead
		for _, d := range existing.Demand.Details {
			if d.Head != b.Heads.Advance && d.Head != b.Heads.LateSurcharge && d.Head != b.Heads.AdvanceReversal {
				owned = append(owned, d.Head)
			}
		}
		for _, d := range billing.DeltaDetails(existing.Demand.Details, estimates, owned) {
			issue.Appends = append(issue.Appends, postgres.Append{Head: d.Head, Category: categoryOf(estimates, d.Head), Amount: d.TaxAmount, Source: postgres.SourceRecalculation})
		}
		if existing.LiveBillID != 0 {
			issue.CancelBillIDs = []int64{existing.LiveBillID}
			issue.CancelReason = "rebilled on actual reads after an estimated bill"
			issue.Bill.ReplacesBillID = existing.LiveBillID
		}
	}
	for i, a := range issue.Appends {
		current.Details = append(current.Details, billing.DemandDetail{Head: a.Head, TaxAmount: a.Amount, CollectionAmount: decimal.Zero})
		currentIDs = append(currentIDs, 0)
		currentNew = append(currentNew, i)
	}

	// Earlier periods billed on estimates are rebilled once actual reads
	// cover them (E12): the gap's energy is spread over its days, so each
	// period gets its day-average share; their estimated bills are
	// cancelled and the corrections show as their arrears here. Then the
	// late-payment surcharge on earlier demands past their due date.
	plain := make([]billing.Demand, 0, len(earlier)+1)
	var earlierIDs [][]int64
	for _, d := range earlier {
		dem := d.Demand
		dem.Details = append([]billing.DemandDetail(nil), dem.Details...)
		ids := append([]int64(nil), d.DetailIDs...)
		if d.Estimated && d.LiveBillID != 0 {
			if re, ok := b.rebill(in, &d, sch); ok {
				issue.Rebilled = append(issue.Rebilled, postgres.DemandUpdate{DemandID: d.ID, Header: re.header})
				issue.CancelBillIDs = append(issue.CancelBillIDs, d.LiveBillID)
				issue.CancelReason = "rebilled on actual reads after an estimated bill"
				for _, det := range re.deltas {
					issue.Appends = append(issue.Appends, postgres.Append{DemandID: d.ID, Head: det.Head, Category: categoryOf(re.estimates, det.Head), Amount: det.TaxAmount, Source: postgres.SourceRecalculation})
					dem.Details = append(dem.Details, det)
					ids = append(ids, -int64(len(issue.Appends)-1)-1)
				}
			}
		}
		if b.Heads.LateSurcharge != "" && d.Due.Before(run.IssueDate) {
			base := decimal.Zero
			for _, det := range dem.Details {
				if det.Head != b.Heads.LateSurcharge && det.Head != b.Heads.Advance {
					base = base.Add(det.Outstanding()) // corrections lower it
				}
			}
			if tv, err := sch.At(d.Period.To); err == nil {
				amount := tv.LatePaymentSurcharge(base, d.Due.DaysUntil(run.IssueDate))
				if add, ok := billing.SetHeadTotal(dem.Details, b.Heads.LateSurcharge, amount); ok {
					issue.Appends = append(issue.Appends, postgres.Append{DemandID: d.ID, Head: add.Head, Category: billing.CategoryPenalty, Amount: add.TaxAmount, Source: postgres.SourceLateSurcharge})
					dem.Details = append(dem.Details, add)
					ids = append(ids, -int64(len(issue.Appends)-1)-1)
				}
			}
		}
		plain = append(plain, dem)
		earlierIDs = append(earlierIDs, ids)
	}
	plain = append(plain, current)

	// Advance carried from earlier payments pays the new charges (TV18).
	a := billing.ApportionAdvance(plain, b.Heads.Advance, b.Heads.Order)
	for _, col := range a.Collections {
		var ref postgres.DetailRef
		if col.Demand == len(plain)-1 {
			if id := currentIDs[col.Detail]; id != 0 {
				ref.ID = id
			} else {
				ref.New = currentNew[col.Detail]
			}
		} else {
			id := earlierIDs[col.Demand][col.Detail]
			if id < 0 {
				ref.New = int(-id - 1)
			} else {
				ref.ID = id
			}
		}
		issue.Collects = append(issue.Collects, postgres.Collect{Detail: ref, Amount: col.Amount})
	}
	plain = billing.Apply(plain, a, b.Heads.Advance)
	if a.Advance.IsPositive() {
		issue.Appends = append(issue.Appends, postgres.Append{Head: b.Heads.Advance, Category: billing.CategoryAdvanceCollection, Amount: a.Advance.Neg(), Source: postgres.SourceAdvance})
	}

	lines := make([]billing.BillLine, 0, len(res.Lines))
	for _, l := range res.Lines {
		bl := billing.BillLine{Code: l.Code, Description: l.Description, Unit: l.Unit, Amount: l.Amount}
		if l.Unit != "" {
			bl.HasQuantity, bl.Quantity, bl.Rate = true, l.Quantity, l.Rate
		}
		lines = append(lines, bl)
	}
	billLines, totals, err := billing.ComposeBill(plain[len(plain)-1], plain[:len(plain)-1], lines,
		billing.BillHeads{Advance: b.Heads.Advance, RoundOff: b.Heads.RoundOff}, run.MinimumPayablePct, 2)
	if err != nil {
		return fail("compose bill: %v", err)
	}
	version := ""
	if n := len(res.Versions); n > 0 {
		version = res.Versions[n-1].Version
	}
	issue.Bill = postgres.BillDraft{
		Lines: billLines, Totals: totals, TariffVersion: version,
		IssueDate: run.IssueDate, DueDate: issue.Demand.Due,
		ConsumptionWh: usage.ImportWh, Estimated: usage.Estimated(),
		UsageHistory:   append(append([]postgres.UsagePoint(nil), in.History...), postgres.UsagePoint{From: p.From, To: p.To, KWh: decimal.New(usage.ImportWh, -3).String(), Estimated: usage.Estimated()}),
		ReplacesBillID: issue.Bill.ReplacesBillID,
	}
	return postgres.Outcome{Kind: postgres.Billed, Issue: issue}
}

// windows splits the period's import into time-of-use windows from the
// meters' hourly buckets, scaled to the period's total (estimated days
// included).
func (b *Biller) windows(in *postgres.Input, e *tariff.Energy, start, end time.Time, totalWh int64) (map[string]int64, error) {
	nextHour := func(t time.Time) time.Time { return t.Add(time.Hour) }
	var series [][]consumption.BucketWh
	for _, m := range in.Meters {
		if m.Hourly == nil {
			continue
		}
		s, _, err := m.Hourly.Energy(start, end, nextHour)
		if err != nil {
			return nil, fmt.Errorf("meter %s: %w", m.Serial, err)
		}
		series = append(series, s)
	}
	w := consumption.WindowEnergy(consumption.Hours(series...), e, b.Run.Location)
	return consumption.ScaleWindows(w, totalWh)
}

func categoryOf(est []billing.Estimate, h billing.TaxHead) billing.Category {
	for _, e := range est {
		if e.Head == h {
			return e.Category
		}
	}
	return billing.CategoryCharges
}

// consumption returns a connection's usage over p from the meters
// installed during it, the register reads that bound it and the serial of
// the last meter.
func (b *Biller) consumption(in *postgres.Input, p billing.Period) (consumption.PeriodUsage, []consumption.Reads, string, error) {
	loc := b.Run.RollupLocation
	start, end := p.From.Start(loc), p.To.AddDays(1).Start(loc)
	nextDay := func(t time.Time) time.Time { return t.In(loc).AddDate(0, 0, 1) }
	var series [][]consumption.BucketWh
	var reads []consumption.Reads
	serial := ""
	for _, m := range in.Meters {
		if !m.Daily.Installed.Before(end) || (!m.Daily.Removed.IsZero() && !m.Daily.Removed.After(start)) {
			continue // installed after, or removed before, this period
		}
		s, r, err := m.Daily.Energy(start, end, nextDay)
		if err != nil {
			return consumption.PeriodUsage{}, nil, "", fmt.Errorf("meter %s: %w", m.Serial, err)
		}
		series = append(series, s)
		reads = append(reads, r)
		serial = m.Serial
	}
	usage, err := consumption.Aggregate(p, consumption.Days(loc, series...), in.HistoryDays)
	if err != nil {
		return consumption.PeriodUsage{}, nil, "", fmt.Errorf("consumption %s: %w", p, err)
	}
	return usage, reads, serial, nil
}

type rebilled struct {
	header    postgres.DemandHeader
	estimates []billing.Estimate
	deltas    []billing.DemandDetail
}

// rebill recomputes an estimated earlier demand from the reads now
// available; ok is false while the period still has estimated days or
// cannot be rated (it stays as billed).
func (b *Biller) rebill(in *postgres.Input, d *postgres.LedgerDemand, sch *tariff.Schedule) (rebilled, bool) {
	usage, reads, serial, err := b.consumption(in, d.Period)
	if err != nil || usage.Estimated() {
		return rebilled{}, false
	}
	u := usage.Usage()
	u.SanctionedLoadKW = in.Connection.SanctionedLoadKW
	res, err := sch.Rate(u)
	if err != nil {
		return rebilled{}, false
	}
	est := res.Estimates()
	var owned []billing.TaxHead
	for _, det := range d.Demand.Details {
		if det.Head != b.Heads.Advance && det.Head != b.Heads.LateSurcharge && det.Head != b.Heads.AdvanceReversal {
			owned = append(owned, det.Head)
		}
	}
	h := postgres.DemandHeader{Period: d.Period, Due: d.Due, Plan: d.Plan, ImportWh: usage.ImportWh, ExportWh: usage.ExportWh,
		MeasuredDays: usage.MeasuredDays, EstimatedDays: usage.EstimatedDays, MeterSerial: serial}
	if len(reads) > 0 {
		if r := reads[0]; r.Known {
			h.PreviousReadWh = &r.Previous
		}
		if r := reads[len(reads)-1]; r.Known {
			h.CurrentReadWh = &r.Current
		}
	}
	return rebilled{header: h, estimates: est, deltas: billing.DeltaDetails(d.Demand.Details, est, owned)}, true
}
