package billing

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// BillSection is the part of a bill a line belongs to.
type BillSection string

// Bill sections, in print order.
const (
	SectionCurrent BillSection = "current" // the period's charges
	SectionArrears BillSection = "arrears" // outstanding of earlier periods
	SectionAdvance BillSection = "advance" // advance and payments already adjusted (negative)
)

// BillLine is one printed line of a bill. Quantity and Rate are zero when
// the line has none (HasQuantity false): tax lines carry their base and
// percentage, arrears and advance lines only an amount.
type BillLine struct {
	Section     BillSection     `json:"section"`
	Code        string          `json:"code"`
	Description string          `json:"description"`
	HasQuantity bool            `json:"-"`
	Quantity    decimal.Decimal `json:"quantity"`
	Unit        string          `json:"unit,omitempty"`
	Rate        decimal.Decimal `json:"rate"`
	Amount      decimal.Decimal `json:"amount"`
}

// BillTotals are a bill's amounts. Total = Current + Arrears + Advance is
// what is payable; it equals the outstanding of every open demand of the
// connection when the bill is issued.
type BillTotals struct {
	Current        decimal.Decimal `json:"current_charges"`
	Arrears        decimal.Decimal `json:"arrears"`
	Advance        decimal.Decimal `json:"advance"` // ≤ 0
	RoundOff       decimal.Decimal `json:"round_off"`
	Total          decimal.Decimal `json:"total"`
	MinimumPayable decimal.Decimal `json:"minimum_payable"`
}

// BillHeads names the heads a bill treats specially.
type BillHeads struct {
	Advance  TaxHead // credits carried forward (negative details)
	RoundOff TaxHead // the whole-currency round-off
}

// ComposeBill builds the lines and totals of the bill for demand current,
// given the connection's earlier demands (any order; paid ones add
// nothing) and current's rated lines (section current, summing to the
// demand's non-advance tax amount). Current charges are the demand's gross
// non-advance amount; arrears one line per earlier demand with something
// outstanding (its credits excepted); advance the unconsumed credits of all
// demands plus what was already collected against current (an advance
// consumed when the demand was created, a payment before a rebill). The
// minimum payable is minimumPct percent of a positive total, rounded half
// up to places, never more than the total. It fails with ErrCalculation
// when the rated lines do not add up to the demand.
func ComposeBill(current Demand, earlier []Demand, rated []BillLine, heads BillHeads, minimumPct decimal.Decimal, places int32) ([]BillLine, BillTotals, error) {
	t := BillTotals{Current: decimal.Zero, Arrears: decimal.Zero, Advance: decimal.Zero, RoundOff: decimal.Zero}
	collected := decimal.Zero
	for _, d := range current.Details {
		switch d.Head {
		case heads.Advance:
			if out := d.Outstanding(); out.IsNegative() {
				t.Advance = t.Advance.Add(out)
			}
		default:
			t.Current = t.Current.Add(d.TaxAmount)
			collected = collected.Add(d.CollectionAmount)
			if d.Head == heads.RoundOff {
				t.RoundOff = t.RoundOff.Add(d.TaxAmount)
			}
		}
	}
	lines := make([]BillLine, 0, len(rated)+len(earlier)+1)
	ratedSum := decimal.Zero
	for _, l := range rated {
		l.Section = SectionCurrent
		ratedSum = ratedSum.Add(l.Amount)
		lines = append(lines, l)
	}
	if !ratedSum.Equal(t.Current) {
		return nil, BillTotals{}, fmt.Errorf("%w: bill lines add up to %s but demand %s..%s holds %s",
			ErrCalculation, ratedSum, current.From.Format("2006-01-02"), current.To.Format("2006-01-02"), t.Current)
	}
	for _, d := range earlier {
		owed := decimal.Zero
		for _, det := range d.Details {
			out := det.Outstanding()
			switch {
			case det.Head == heads.Advance:
				if out.IsNegative() {
					t.Advance = t.Advance.Add(out)
				}
			case out.IsPositive():
				owed = owed.Add(out)
			case out.IsNegative(): // a credit other than advance: lowers that period's arrears
				owed = owed.Add(out)
			}
		}
		if owed.IsZero() {
			continue
		}
		t.Arrears = t.Arrears.Add(owed)
		lines = append(lines, BillLine{
			Section: SectionArrears, Code: "arrears",
			Description: "arrears " + d.From.Format("2006-01-02") + " to " + d.To.Format("2006-01-02"),
			Amount:      owed,
		})
	}
	t.Advance = t.Advance.Sub(collected)
	if !t.Advance.IsZero() {
		lines = append(lines, BillLine{Section: SectionAdvance, Code: "advance", Description: "advance and payments adjusted", Amount: t.Advance})
	}
	t.Total = t.Current.Add(t.Arrears).Add(t.Advance)
	t.MinimumPayable = decimal.Zero
	if t.Total.IsPositive() {
		t.MinimumPayable = decimal.Min(t.Total, t.Total.Mul(minimumPct).Shift(-2).Round(places))
	}
	return lines, t, nil
}
