package consumption

import (
	"fmt"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

// BilledPeriod is a period already billed to a connection.
type BilledPeriod struct {
	Period    billing.Period
	EnergyWh  int64
	Estimated bool
	BillRef   string // the bill to cancel if the period is rebilled
}

// Rebill is what to do when an actual read follows estimated bills:
// cancel the estimated bills (credit notes referring to them) and bill
// every period since the last actual read again on the averaged actual use.
type Rebill struct {
	Cancel  []BilledPeriod
	Periods []PeriodUsage // the cancelled periods and the current one, oldest first
}

// PlanRebill spreads actualWh, the energy measured between the last actual
// read and the current one, over the trailing estimated periods of prior
// (oldest first) and the current period, by days: average daily use times
// each period's days, in whole Wh that add up to actualWh exactly. E12: 350
// kWh estimated for month 1, then 420 kWh read over months 1 and 2 → both
// months are billed 210 kWh and the estimated bill is cancelled.
//
// Nothing is ever billed a negative quantity: when the actual is below
// the estimate, the estimated bill is reversed by its cancellation rather
// than by negative consumption in the current period. Periods must be
// contiguous; prior periods billed on actual reads are left alone (the
// plan starts after the last of them). Invalid input wraps
// billing.ErrInvalidInput.
func PlanRebill(prior []BilledPeriod, current billing.Period, actualWh int64) (Rebill, error) {
	if actualWh < 0 {
		return Rebill{}, fmt.Errorf("%w: actual consumption %d Wh is negative", billing.ErrInvalidInput, actualWh)
	}
	first := len(prior)
	for first > 0 && prior[first-1].Estimated {
		first--
	}
	var plan Rebill
	plan.Cancel = append(plan.Cancel, prior[first:]...)
	periods := make([]billing.Period, 0, len(plan.Cancel)+1)
	for _, b := range plan.Cancel {
		periods = append(periods, b.Period)
	}
	periods = append(periods, current)
	totalDays := 0
	for i, p := range periods {
		if !p.Valid() {
			return Rebill{}, fmt.Errorf("%w: period %s ends before it starts", billing.ErrInvalidInput, p)
		}
		if i > 0 && periods[i-1].To.AddDays(1) != p.From {
			return Rebill{}, fmt.Errorf("%w: period %s does not follow %s", billing.ErrInvalidInput, p, periods[i-1])
		}
		totalDays += p.Days()
	}
	// Largest-remainder split: floor shares, then the leftover Wh one by
	// one to the periods with the largest remainders (earliest on ties).
	shares := make([]int64, len(periods))
	rems := make([]int64, len(periods))
	var given int64
	for i, p := range periods {
		num := actualWh * int64(p.Days())
		shares[i], rems[i] = num/int64(totalDays), num%int64(totalDays)
		given += shares[i]
	}
	for left := actualWh - given; left > 0; left-- {
		best := 0
		for i := range rems {
			if rems[i] > rems[best] {
				best = i
			}
		}
		shares[best]++
		rems[best] = -1
	}
	for i, p := range periods {
		plan.Periods = append(plan.Periods, PeriodUsage{Period: p, ImportWh: shares[i], MeasuredDays: p.Days()})
	}
	return plan, nil
}

// RateRebill rates each period of the plan against s, taking everything
// but period, energy and estimate flag from base (load, demand, cycle
// months). The caller issues credit notes for plan.Cancel and bills for the
// results.
func RateRebill(s *tariff.Schedule, plan Rebill, base tariff.Usage) ([]*tariff.Result, error) {
	out := make([]*tariff.Result, 0, len(plan.Periods))
	for _, p := range plan.Periods {
		u := base
		u.Period, u.Cycle, u.ImportWh, u.Estimated, u.WindowWh = p.Period, billing.Period{}, p.ImportWh, false, nil
		r, err := s.Rate(u)
		if err != nil {
			return nil, fmt.Errorf("rebill %s: %w", p.Period, err)
		}
		out = append(out, r)
	}
	return out, nil
}
