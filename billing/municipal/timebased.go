package municipal

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// ApplicableMaster picks the Interest, Penalty, Rebate or Cess entry in
// force for financial year fy on day today: among entries whose fromFY is
// not after fy and whose startingDay (if any) is not after today, the one
// with the greatest (fromFY, start), where an entry without startingDay
// starts with its financial year. The choice does not depend on the
// entries' order (reference bug B8). Entries that do not parse never
// apply; Masters.Validate reports them.
func ApplicableMaster(entries []TimeBasedMaster, fy billing.FinancialYear, today billing.Date) (TimeBasedMaster, bool) {
	var best TimeBasedMaster
	var bestFY billing.FinancialYear
	var bestStart billing.Date
	found := false
	for _, e := range entries {
		efy, err := billing.ParseFinancialYear(e.FromFY)
		if err != nil || efy > fy {
			continue
		}
		start := efy.Start()
		if e.StartingDay != "" {
			if start, err = parseDay(e.StartingDay); err != nil || start.After(today) {
				continue
			}
		}
		if !found || efy > bestFY || efy == bestFY && start.After(bestStart) {
			best, bestFY, bestStart, found = e, efy, start, true
		}
	}
	return best, found
}

// TimeBasedAmount is a penalty, interest or rebate on base under master m:
// with a rate, base × rate / 100, capped at maxAmount when that is positive
// and otherwise raised to minAmount when set; without a rate, flatAmount
// when it does not exceed base and nothing when it does. Rounded by r;
// zero for a base that is not positive.
func TimeBasedAmount(base decimal.Decimal, m TimeBasedMaster, r billing.Rounding) decimal.Decimal {
	if !base.IsPositive() {
		return decimal.Zero
	}
	var amount decimal.Decimal
	switch {
	case m.Rate != nil:
		amount = base.Mul(*m.Rate).Shift(-2)
		switch {
		case m.MaxAmount != nil && m.MaxAmount.IsPositive() && amount.GreaterThan(*m.MaxAmount):
			amount = *m.MaxAmount
		case m.MinAmount != nil && amount.LessThan(*m.MinAmount):
			amount = *m.MinAmount
		}
	case m.FlatAmount != nil && !m.FlatAmount.GreaterThan(base):
		amount = *m.FlatAmount
	default:
		return decimal.Zero
	}
	return r.Apply(amount)
}

// Overdue reports whether penalty or interest with applicableAfterDays
// afterDays applies at now to a demand due at due (the end of its due day):
// now is past due and at least max(1, afterDays) whole days have elapsed.
// Due 2024-04-25T10:00Z, 15 days: applies from 2024-05-10T10:00Z, not an
// hour earlier (TV12).
func Overdue(due, now time.Time, afterDays int) bool {
	if !now.After(due) {
		return false
	}
	days := int(now.Sub(due) / (24 * time.Hour))
	return days >= max(1, afterDays)
}

// DueDate returns the end of the day (in loc) that falls after a duration
// from created: demands store a real due date rather than the reference's
// duration-as-timestamp (bug B5).
func DueDate(created time.Time, after time.Duration, loc *time.Location) time.Time {
	d := billing.DateOf(created.Add(after), loc)
	return d.AddDays(1).Start(loc).Add(-time.Millisecond)
}

// ApplyTimeBased returns the details to append to demand d at now: interest
// and penalty on the outstanding charge once the demand is overdue, the
// early-payment rebate while it is still open (when the policy applies
// it), then the round-off correction. Each head is set to its new amount by
// appending the difference, so a repeated call adds nothing, a lower amount
// appends a negative difference and nothing already recorded is edited
// (reference §3.6 mutated the latest row; A4 could never clear it).
//
// The base is what is still owed on the charge (bug B7 charged the gross
// amount and re-opened paid demands); a demand whose charge is paid gets
// nothing. A head is never set below what has already been collected on
// it: paying part of an overdue charge lowers the base, but does not turn
// penalty or interest already paid into a credit (a waiver of collected
// amounts is a refund, not a recalculation). Masters are chosen for the financial year of the demand's
// period (ambiguity A3), the day gate counts whole days after d.Due (bug
// B5). Interest is a one-time percentage, as the reference applies it.
func ApplyTimeBased(svc Service, d billing.Demand, m *Masters, now time.Time, p Policy) []billing.DemandDetail {
	base := billing.HeadOutstanding(d.Details, svc.Charge)
	if !base.IsPositive() {
		return nil
	}
	periodStart := billing.DateOf(d.From, p.Location)
	fy := billing.FinancialYearOf(periodStart)
	today := billing.DateOf(now, p.Location)
	details := append([]billing.DemandDetail(nil), d.Details...)
	var out []billing.DemandDetail
	set := func(head billing.TaxHead, amount decimal.Decimal) {
		collected := decimal.Zero
		for _, det := range details {
			if det.Head == head {
				collected = collected.Add(det.CollectionAmount)
			}
		}
		if collected.IsPositive() && amount.LessThan(collected) {
			amount = collected // interest and penalty: what was paid stays
		}
		if add, ok := billing.SetHeadTotal(details, head, amount); ok {
			details = append(details, add)
			out = append(out, add)
		}
	}
	for _, tb := range []struct {
		head    billing.TaxHead
		entries []TimeBasedMaster
	}{{svc.Interest, m.Interest}, {svc.Penalty, m.Penalty}} {
		entry, ok := ApplicableMaster(tb.entries, fy, today)
		if !ok {
			continue
		}
		after := 0
		if entry.ApplicableAfterDays != nil {
			after = *entry.ApplicableAfterDays
		}
		if Overdue(d.Due, now, after) {
			set(tb.head, TimeBasedAmount(base, entry, p.TimeBasedRounding))
		}
	}
	if p.TimeRebate {
		if entry, ok := ApplicableMaster(m.Rebate, fy, today); ok {
			amount := decimal.Zero
			if day, month, err := parseDayMonth(entry.EndingDay); err == nil && !today.After(rebateEnd(fy, day, month)) {
				amount = TimeBasedAmount(base, entry, p.TimeBasedRounding).Neg()
			}
			set(svc.Rebate, amount)
		}
	}
	if ro, ok := billing.RebalanceRoundOff(details, svc.RoundOff, p.RoundOffMode); ok {
		out = append(out, ro)
	}
	return out
}

// rebateEnd anchors a rebate's "dd/MM" ending day in financial year fy:
// January to March fall in the year after fy starts.
func rebateEnd(fy billing.FinancialYear, day int, month time.Month) billing.Date {
	year := int(fy)
	if month < time.April {
		year++
	}
	return billing.NewDate(year, month, day)
}
