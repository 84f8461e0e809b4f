package billing

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// TaxHead names what a demand detail is for: SW_CHARGE, SW_TIME_PENALTY,
// WS_WATER_CESS, SW_Round_Off … Heads are compared exactly.
type TaxHead string

// Category is a tax head's category from the tax-head master. It decides
// which bucket of a calculation summary an amount feeds.
type Category uint8

// Tax-head categories.
const (
	CategoryCharges Category = iota + 1
	CategoryFee
	CategoryTax
	CategoryPenalty
	CategoryRebate
	CategoryExemption
	CategoryAdvanceCollection
	CategoryFines
)

func (c Category) String() string {
	switch c {
	case CategoryCharges:
		return "CHARGES"
	case CategoryFee:
		return "FEE"
	case CategoryTax:
		return "TAX"
	case CategoryPenalty:
		return "PENALTY"
	case CategoryRebate:
		return "REBATE"
	case CategoryExemption:
		return "EXEMPTION"
	case CategoryAdvanceCollection:
		return "ADVANCE_COLLECTION"
	case CategoryFines:
		return "FINES"
	}
	return fmt.Sprintf("category(%d)", uint8(c))
}

// MarshalText writes the master's category name.
func (c Category) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Estimate is a calculator's amount for one tax head, before it becomes a
// demand detail.
type Estimate struct {
	Head     TaxHead         `json:"tax_head"`
	Category Category        `json:"category"`
	Amount   decimal.Decimal `json:"amount"`
}

// DemandDetail is one append-only row of a demand: an amount owed under a
// tax head and what has been collected against it. A head may have many
// details; its amount is their sum. History is never edited: a
// recalculation appends the difference.
type DemandDetail struct {
	Head             TaxHead         `json:"tax_head"`
	TaxAmount        decimal.Decimal `json:"tax_amount"`
	CollectionAmount decimal.Decimal `json:"collection_amount"`
}

// Outstanding returns what is still owed on the detail (negative for an
// unconsumed credit such as an advance).
func (d DemandDetail) Outstanding() decimal.Decimal { return d.TaxAmount.Sub(d.CollectionAmount) }

// Demand is what a connection (consumer code) owes for one period, as
// details per tax head.
type Demand struct {
	ConsumerCode    string    `json:"consumer_code"`
	BusinessService string    `json:"business_service"`
	From            time.Time `json:"from"` // first instant of the period
	To              time.Time `json:"to"`   // last millisecond of the period
	Due             time.Time `json:"due"`  // end of the due day; penalty and interest count from here
	// MinimumPayable is the least a part payment may be (the whole total
	// when part payment is not allowed).
	MinimumPayable decimal.Decimal `json:"minimum_payable"`
	Details        []DemandDetail  `json:"details"`
}

// OldestUnpaid returns the index of the demand with the earliest period
// that still has something outstanding, and false when all are paid.
// Adhoc amounts go to this demand.
func OldestUnpaid(demands []Demand) (int, bool) {
	best := -1
	for i, d := range demands {
		if !TotalOutstanding(d.Details).IsPositive() {
			continue
		}
		if best < 0 || d.From.Before(demands[best].From) {
			best = i
		}
	}
	return best, best >= 0
}

// HeadTotal returns the sum of tax amounts of head h in details.
func HeadTotal(details []DemandDetail, h TaxHead) decimal.Decimal {
	sum := decimal.Zero
	for _, d := range details {
		if d.Head == h {
			sum = sum.Add(d.TaxAmount)
		}
	}
	return sum
}

// HeadOutstanding returns what is still owed under head h in details.
func HeadOutstanding(details []DemandDetail, h TaxHead) decimal.Decimal {
	sum := decimal.Zero
	for _, d := range details {
		if d.Head == h {
			sum = sum.Add(d.Outstanding())
		}
	}
	return sum
}

// TotalTax returns the sum of all tax amounts in details.
func TotalTax(details []DemandDetail) decimal.Decimal {
	sum := decimal.Zero
	for _, d := range details {
		sum = sum.Add(d.TaxAmount)
	}
	return sum
}

// TotalOutstanding returns the sum of all outstanding amounts in details.
func TotalOutstanding(details []DemandDetail) decimal.Decimal {
	sum := decimal.Zero
	for _, d := range details {
		sum = sum.Add(d.Outstanding())
	}
	return sum
}

// SetHeadTotal returns the detail to append so that head h totals target,
// and false when it already does. It is how penalty, interest and adhoc
// amounts are "set" without editing history; a target of zero clears an
// earlier amount (reference ambiguities A4, A5).
func SetHeadTotal(details []DemandDetail, h TaxHead, target decimal.Decimal) (DemandDetail, bool) {
	delta := target.Sub(HeadTotal(details, h))
	if delta.IsZero() {
		return DemandDetail{}, false
	}
	return DemandDetail{Head: h, TaxAmount: delta, CollectionAmount: decimal.Zero}, true
}

// DeltaDetails returns the details to append to existing so that every head
// a recalculation speaks for totals its new estimate (TV08: 120 collected,
// new estimate 150 → append 30 with nothing collected). owned lists the
// heads the calculator produces: an owned head missing from estimates now
// totals zero, so a fee that no longer applies is reversed (reference bug
// B6). Heads neither owned nor estimated (penalty, interest, adhoc, advance)
// are left alone. Deltas come out in owned order, then in estimate order
// for estimated heads not owned.
func DeltaDetails(existing []DemandDetail, estimates []Estimate, owned []TaxHead) []DemandDetail {
	var out []DemandDetail
	appendDelta := func(h TaxHead) {
		target := decimal.Zero
		for _, e := range estimates {
			if e.Head == h {
				target = target.Add(e.Amount)
			}
		}
		if d, ok := SetHeadTotal(existing, h, target); ok {
			out = append(out, d)
		}
	}
	seen := make(map[TaxHead]bool, len(owned)+len(estimates))
	for _, h := range owned {
		if !seen[h] {
			seen[h] = true
			appendDelta(h)
		}
	}
	for _, e := range estimates {
		if !seen[e.Head] {
			seen[e.Head] = true
			appendDelta(e.Head)
		}
	}
	return out
}

// RebalanceRoundOff returns the round-off detail to append so that the
// demand's total is whole, and false when it already is. The round-off
// head's sum is always RoundOff(T) of the other heads' total T under mode;
// with RoundHalfCeiling it stays in (−0.5, 0.5] however many deltas were
// appended before (one appended row may be larger, as in TV09's +0.76).
func RebalanceRoundOff(details []DemandDetail, roundOffHead TaxHead, mode RoundingMode) (DemandDetail, bool) {
	others, current := decimal.Zero, decimal.Zero
	for _, d := range details {
		if d.Head == roundOffHead {
			current = current.Add(d.TaxAmount)
		} else {
			others = others.Add(d.TaxAmount)
		}
	}
	add := RoundOff(others, 0, mode).Sub(current)
	if add.IsZero() {
		return DemandDetail{}, false
	}
	return DemandDetail{Head: roundOffHead, TaxAmount: add, CollectionAmount: decimal.Zero}, true
}
