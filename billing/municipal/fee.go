package municipal

import (
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// FeeEstimates estimates the one-time fees of a connection application:
// form, scrutiny, meter (metered connections), other, road cutting (road
// type's unit cost × area), one-time fee (the property usage type's unit
// cost × area), security (the plot-size slab's amount for the land area),
// tax and cess (the fee slab's percentage of all of those), the adhoc
// penalty and rebate, and the round-off. Only non-zero heads are emitted,
// in that order, each rounded by the policy's fee rounding (adhoc amounts
// by its adhoc rounding).
//
// The meter cost is billed under its own head when it enters the tax base
// (reference bug B13 taxed it without billing it). A road type, usage type
// or land area that no active master prices is an error, not a silent zero.
func FeeEstimates(svc Service, conn Connection, prop Property, m *Masters, p Policy) (Calculation, error) {
	var slab *FeeSlab
	for i := range m.FeeSlabs {
		if active(m.FeeSlabs[i].IsActive) {
			slab = &m.FeeSlabs[i]
			break
		}
	}
	if slab == nil {
		return Calculation{}, ErrNoFeeSlab
	}
	meter := decimal.Zero
	if strings.EqualFold(conn.ConnectionType, "Metered") {
		meter = slab.MeterCost
	}
	road, oneTime := decimal.Zero, decimal.Zero
	for i, rc := range conn.RoadCutting {
		if rc.Area == nil {
			continue
		}
		if rc.Area.IsNegative() {
			return Calculation{}, fmt.Errorf("road cutting %d: negative area %s: %w", i, rc.Area, ErrUnknownMaster)
		}
		if rc.RoadType != "" {
			cost, ok := roadCost(m, rc.RoadType)
			if !ok {
				return Calculation{}, fmt.Errorf("road cutting %d: road type %q: %w", i, rc.RoadType, ErrUnknownMaster)
			}
			road = road.Add(cost.Mul(*rc.Area))
		}
		if !rc.Area.IsZero() {
			cost, ok := usageCost(m, prop.UsageCategory)
			if !ok {
				return Calculation{}, fmt.Errorf("road cutting %d: usage category %q: %w", i, prop.UsageCategory, ErrUnknownMaster)
			}
			oneTime = oneTime.Add(cost.Mul(*rc.Area))
		}
	}
	security := decimal.Zero
	if prop.LandArea != nil {
		cost, ok := plotCost(m, *prop.LandArea)
		if !ok {
			return Calculation{}, fmt.Errorf("land area %s: %w", prop.LandArea, ErrUnknownMaster)
		}
		security = cost
	}
	base := slab.FormFee.Add(slab.ScrutinyFee).Add(meter).Add(slab.Other).Add(road).Add(oneTime).Add(security)
	tax := base.Mul(slab.TaxPercentage).Shift(-2)

	var calc Calculation
	add := func(head billing.TaxHead, amount decimal.Decimal, r billing.Rounding) {
		if amount = r.Apply(amount); !amount.IsZero() {
			calc.Estimates = append(calc.Estimates, billing.Estimate{Head: head, Category: svc.Category(head), Amount: amount})
		}
	}
	add(svc.FormFee, slab.FormFee, p.FeeRounding)
	add(svc.ScrutinyFee, slab.ScrutinyFee, p.FeeRounding)
	add(svc.MeterCharge, meter, p.FeeRounding)
	add(svc.OtherCharge, slab.Other, p.FeeRounding)
	add(svc.RoadCutting, road, p.FeeRounding)
	add(svc.OneTimeFee, oneTime, p.FeeRounding)
	add(svc.SecurityCharge, security, p.FeeRounding)
	add(svc.TaxAndCess, tax, p.FeeRounding)
	if conn.AdhocPenalty != nil {
		add(svc.FeeAdhocPenalty, *conn.AdhocPenalty, p.AdhocRounding)
	}
	if conn.AdhocRebate != nil {
		add(svc.FeeAdhocRebate, conn.AdhocRebate.Neg(), p.AdhocRounding)
	}
	calc.Estimates = withRoundOff(calc.Estimates, svc.FeeRoundOff, svc.Category(svc.FeeRoundOff), p.RoundOffMode)
	calc.BillingSlabIDs = []string{}
	calc.Units = decimal.Zero
	calc.summarize(svc.FeeRoundOff)
	return calc, nil
}

func roadCost(m *Masters, code string) (decimal.Decimal, bool) {
	for _, r := range m.RoadTypes {
		if r.Code == code && active(r.IsActive) {
			return r.UnitCost, true
		}
	}
	return decimal.Zero, false
}

func usageCost(m *Masters, category string) (decimal.Decimal, bool) {
	for _, u := range m.PropertyUsageTypes {
		if u.Code == category && active(u.IsActive) {
			return u.UnitCost, true
		}
	}
	return decimal.Zero, false
}

func plotCost(m *Masters, area decimal.Decimal) (decimal.Decimal, bool) {
	for _, s := range m.PlotSizeSlabs {
		if active(s.IsActive) && !area.LessThan(s.From) && area.LessThan(s.To) {
			return s.UnitCost, true
		}
	}
	return decimal.Zero, false
}

// FeeDemand returns the one-time fee demand for an application, created at
// now: consumer code = application number, the fee business service, a
// period of the policy's fee demand length from now, a real due date at
// the end of the day the policy's due time falls on, and the whole total
// as the minimum payable (fees are not paid in parts). The period length
// is configuration because the reference's fixed five years outran its own
// tax periods (ambiguity A7).
func FeeDemand(svc Service, conn Connection, calc Calculation, now time.Time, p Policy) billing.Demand {
	return billing.Demand{
		ConsumerCode:    conn.ApplicationNo,
		BusinessService: svc.FeeBusinessService,
		From:            now,
		To:              now.Add(p.FeeDemandPeriod),
		Due:             DueDate(now, p.FeeDueAfter, p.Location),
		MinimumPayable:  calc.TotalAmount,
		Details:         NewDetails(calc.Estimates, svc.FeeRoundOff, p),
	}
}

// NewDetails turns a calculation's estimates into a new demand's details,
// nothing collected, with the round-off correction appended if the
// estimates' own round-off left the total fractional.
func NewDetails(est []billing.Estimate, roundOff billing.TaxHead, p Policy) []billing.DemandDetail {
	details := make([]billing.DemandDetail, 0, len(est)+1)
	for _, e := range est {
		details = append(details, billing.DemandDetail{Head: e.Head, TaxAmount: e.Amount, CollectionAmount: decimal.Zero})
	}
	if ro, ok := billing.RebalanceRoundOff(details, roundOff, p.RoundOffMode); ok {
		details = append(details, ro)
	}
	return details
}

// Recalculate returns the details to append to demand d when its
// calculator produces calc again: for each head the calculator owns (owned,
// e.g. svc.PeriodicHeads() or svc.FeeHeads()), the difference between the
// new estimate (zero if gone, fixing bug B6) and the head's total, then the
// round-off correction under roundOff (the service-specific head, bug B9).
// Penalty, interest, adhoc and advance heads are left as they are.
func Recalculate(d billing.Demand, calc Calculation, owned []billing.TaxHead, roundOff billing.TaxHead, p Policy) []billing.DemandDetail {
	out := billing.DeltaDetails(d.Details, calc.Estimates, owned)
	all := append(append([]billing.DemandDetail(nil), d.Details...), out...)
	if ro, ok := billing.RebalanceRoundOff(all, roundOff, p.RoundOffMode); ok {
		out = append(out, ro)
	}
	return out
}

// ApplyAdhoc returns the details to append to demand d (the consumer's
// oldest unpaid periodic demand, billing.OldestUnpaid) for an official's
// adhoc penalty and rebate: each given amount becomes the head's total
// (penalty positive, rebate negative), then the round-off correction. A
// nil amount leaves its head alone; an explicit zero clears it (ambiguity
// A5). Repeating a call appends nothing.
func ApplyAdhoc(svc Service, d billing.Demand, penalty, rebate *decimal.Decimal, p Policy) []billing.DemandDetail {
	details := append([]billing.DemandDetail(nil), d.Details...)
	var out []billing.DemandDetail
	set := func(head billing.TaxHead, amount decimal.Decimal) {
		if add, ok := billing.SetHeadTotal(details, head, p.AdhocRounding.Apply(amount)); ok {
			details = append(details, add)
			out = append(out, add)
		}
	}
	if penalty != nil {
		set(svc.AdhocPenalty, *penalty)
	}
	if rebate != nil {
		set(svc.AdhocRebate, rebate.Neg())
	}
	if ro, ok := billing.RebalanceRoundOff(details, svc.RoundOff, p.RoundOffMode); ok {
		out = append(out, ro)
	}
	return out
}
