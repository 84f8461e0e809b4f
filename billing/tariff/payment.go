package tariff

import (
	"github.com/shopspring/decimal"
)

// PromptPaymentRebate returns the rebate on current charges (arrears
// excluded) for a payment made paidOnDay days after the bill date: the
// first tier whose window the day falls in, at most its cap, rounded by
// the rebate's rounding. A partial payment earns nothing unless the tariff
// allows it; a tariff without a rebate gives zero. E08: 1315.00 paid on day
// 5 under 1% (cap 200) within 7 days → 13.15; on day 10 under 0.5% within
// 14 days → 6.58.
func (t *Tariff) PromptPaymentRebate(current decimal.Decimal, paidOnDay int, partial bool) decimal.Decimal {
	r := t.Rebate
	if r == nil || !current.IsPositive() || partial && !r.AllowPartial || paidOnDay < 0 {
		return decimal.Zero
	}
	for _, tier := range r.Tiers {
		if paidOnDay > tier.WithinDays {
			continue
		}
		amount := current.Mul(tier.RatePct).Shift(-2)
		if tier.HasCap {
			amount = decimal.Min(amount, tier.Cap)
		}
		return r.Rounding.Apply(amount)
	}
	return decimal.Zero
}

// LatePaymentSurcharge returns the surcharge on an amount left unpaid
// daysLate days after the due date: rate per annum × days / days in year,
// or rate per month for every 30 days or part thereof. E08: 1315.00, 45
// days late, 18% p.a. → 29.18; 1.5% per month or part → 2 months → 39.45.
func (t *Tariff) LatePaymentSurcharge(unpaid decimal.Decimal, daysLate int) decimal.Decimal {
	l := t.Late
	if l == nil || !unpaid.IsPositive() || daysLate <= 0 {
		return decimal.Zero
	}
	amount := unpaid.Mul(l.RatePct).Shift(-2)
	switch l.Per {
	case LatePerMonthOrPart:
		months := (daysLate + 29) / 30
		amount = amount.Mul(decimal.NewFromInt(int64(months)))
	default:
		amount = amount.Mul(decimal.NewFromInt(int64(daysLate))).DivRound(decimal.NewFromInt(int64(l.DaysInYear)), divPlaces)
	}
	return l.Rounding.Apply(amount)
}
