package billing

import (
	"math"
	"sort"

	"github.com/shopspring/decimal"
)

// HeadOrder is the apportionment priority of tax heads: money goes to lower
// numbers first (LPS before arrears before current charges, as a tenant
// configures). Heads missing from the map come after all listed ones.
type HeadOrder map[TaxHead]int

func (o HeadOrder) rank(h TaxHead) int {
	if r, ok := o[h]; ok {
		return r
	}
	return math.MaxInt
}

// Collection is an amount recorded against one demand detail, addressed by
// its index in the demands slice given to the apportioner and its index in
// that demand's Details. A negative amount consumes a credit (an advance).
type Collection struct {
	Demand int             `json:"demand"`
	Detail int             `json:"detail"`
	Amount decimal.Decimal `json:"amount"`
}

// Apportionment is how money was spread over demand details.
type Apportionment struct {
	Collections []Collection `json:"collections"`
	// Advance is what is left over (≥ 0). The caller carries it forward as a
	// negative detail of the advance head on the newest demand, or refuses
	// the payment when the business service allows no advance.
	Advance decimal.Decimal `json:"advance"`
}

// ApportionPayment spreads a payment of amount over the outstanding details
// of demands, which must be ordered oldest period first. Within a demand,
// unconsumed credits are absorbed first (they add to what can be paid),
// then heads are paid by order, ties broken by the smaller outstanding
// amount, and details of one head by ascending tax amount, each up to its
// outstanding amount. This is DIGIT's apportionment with the priority made
// explicit.
func ApportionPayment(demands []Demand, amount decimal.Decimal, order HeadOrder) Apportionment {
	a := apportioner{pool: amount}
	for i := range demands {
		a.absorbCredits(demands, i, func(DemandDetail) bool { return true })
		a.fill(demands, i, order)
	}
	return Apportionment{Collections: a.cols, Advance: a.pool}
}

// ApportionAdvance consumes the unconsumed advance in demands (details of
// advanceHead with a negative outstanding amount, ordered oldest period
// first) against their positive outstanding amounts, oldest demand first,
// as happens when a new demand is created (TV18: an advance of 50 pays 50
// of the new 60 charge). The advance details are marked consumed in full;
// what could not be used comes back as Advance, which the caller appends to
// the newest demand as a fresh negative advance detail. Nothing happens
// when there is no advance or nothing to pay.
func ApportionAdvance(demands []Demand, advanceHead TaxHead, order HeadOrder) Apportionment {
	a := apportioner{pool: decimal.Zero}
	for i := range demands {
		a.absorbCredits(demands, i, func(d DemandDetail) bool { return d.Head == advanceHead })
	}
	if a.pool.IsZero() {
		return Apportionment{Advance: decimal.Zero}
	}
	consumedFrom := len(a.cols)
	for i := range demands {
		a.fill(demands, i, order)
	}
	if len(a.cols) == consumedFrom {
		return Apportionment{Advance: decimal.Zero} // nothing to pay: leave the advance where it is
	}
	return Apportionment{Collections: a.cols, Advance: a.pool}
}

// Apply returns copies of demands with the apportionment's collections
// added and, when advanceHead is not empty and a.Advance is positive, the
// leftover appended to the newest demand as a negative advance detail.
func Apply(demands []Demand, a Apportionment, advanceHead TaxHead) []Demand {
	out := make([]Demand, len(demands))
	for i, d := range demands {
		out[i] = d
		out[i].Details = append([]DemandDetail(nil), d.Details...)
	}
	for _, c := range a.Collections {
		det := &out[c.Demand].Details[c.Detail]
		det.CollectionAmount = det.CollectionAmount.Add(c.Amount)
	}
	if advanceHead != "" && a.Advance.IsPositive() && len(out) > 0 {
		last := &out[len(out)-1]
		last.Details = append(last.Details, DemandDetail{Head: advanceHead, TaxAmount: a.Advance.Neg(), CollectionAmount: decimal.Zero})
	}
	return out
}

type apportioner struct {
	pool decimal.Decimal
	cols []Collection
}

// absorbCredits moves every unconsumed credit of demand i that matches into
// the pool.
func (a *apportioner) absorbCredits(demands []Demand, i int, match func(DemandDetail) bool) {
	for j, d := range demands[i].Details {
		if out := d.Outstanding(); out.IsNegative() && match(d) {
			a.pool = a.pool.Sub(out)
			a.cols = append(a.cols, Collection{Demand: i, Detail: j, Amount: out})
		}
	}
}

// fill pays the positive outstanding details of demand i from the pool.
func (a *apportioner) fill(demands []Demand, i int, order HeadOrder) {
	if !a.pool.IsPositive() {
		return
	}
	type bucket struct {
		head        TaxHead
		outstanding decimal.Decimal
		details     []int
	}
	var buckets []bucket
	index := map[TaxHead]int{}
	for j, d := range demands[i].Details {
		if !d.Outstanding().IsPositive() {
			continue
		}
		k, ok := index[d.Head]
		if !ok {
			k = len(buckets)
			index[d.Head] = k
			buckets = append(buckets, bucket{head: d.Head, outstanding: decimal.Zero})
		}
		buckets[k].outstanding = buckets[k].outstanding.Add(d.Outstanding())
		buckets[k].details = append(buckets[k].details, j)
	}
	sort.SliceStable(buckets, func(x, y int) bool {
		rx, ry := order.rank(buckets[x].head), order.rank(buckets[y].head)
		if rx != ry {
			return rx < ry
		}
		return buckets[x].outstanding.LessThan(buckets[y].outstanding)
	})
	for _, b := range buckets {
		dets := b.details
		sort.SliceStable(dets, func(x, y int) bool {
			return demands[i].Details[dets[x]].TaxAmount.LessThan(demands[i].Details[dets[y]].TaxAmount)
		})
		for _, j := range dets {
			if !a.pool.IsPositive() {
				return
			}
			pay := decimal.Min(a.pool, demands[i].Details[j].Outstanding())
			a.pool = a.pool.Sub(pay)
			a.cols = append(a.cols, Collection{Demand: i, Detail: j, Amount: pay})
		}
	}
}
