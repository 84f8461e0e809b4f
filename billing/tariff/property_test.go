package tariff_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

// Property tests over seeded random tariffs: each failure prints the seed
// and the document so it can be replayed.

// randomDoc builds a realistic random tariff: an energy charge of the given
// kind with non-negative rates, and — depending on the draw — a per-kW or
// banded fixed charge, a demand charge, a minimum charge, per-unit charges
// with thresholds, taxes on energy and fixed (one compounding on another),
// a capped subsidy on the billed energy (when subsidy is true) and a
// round-off line.
func randomDoc(rng *rand.Rand, kind, effective string, subsidy bool) *tariff.Document {
	two := 2
	money := func(limit int) tariff.Number {
		return tariff.Num(decimal.New(int64(rng.IntN(limit*100+1)), -2).String())
	}
	slabs := func() []tariff.SlabDoc {
		n := 1 + rng.IntN(6)
		out := make([]tariff.SlabDoc, n)
		bound := 0
		for i := range out {
			out[i].Rate = money(12)
			if i < n-1 {
				bound += 1 + rng.IntN(400)
				out[i].UptoKWh = tariff.Num(fmt.Sprint(bound))
			}
		}
		return out
	}
	doc := &tariff.Document{
		Tenant: "prop", Plan: "random", Version: effective, EffectiveFrom: effective, Currency: "INR",
		Rounding: &tariff.RoundingDoc{Mode: []string{"half_up", "half_even", "down", "ceiling"}[rng.IntN(4)], Places: &two},
		Energy:   &tariff.EnergyDoc{Kind: kind},
	}
	switch kind {
	case "telescopic", "non_telescopic":
		doc.Energy.Slabs = slabs()
	case "group_selected":
		n := 1 + rng.IntN(4)
		bound := 0
		for i := range n {
			g := tariff.GroupDoc{EnergyDoc: tariff.EnergyDoc{Kind: "telescopic", Slabs: slabs()}}
			if i < n-1 {
				bound += 1 + rng.IntN(500)
				g.WhenTotalUptoKWh = tariff.Num(fmt.Sprint(bound))
			}
			doc.Energy.Groups = append(doc.Energy.Groups, g)
		}
	}
	base := []string{"energy"}
	if rng.IntN(2) == 0 {
		doc.MinimumEnergyCharge = money(100)
		base = append(base, "minimum")
	}
	if rng.IntN(2) == 0 {
		doc.PerUnitCharges = []tariff.PerUnitDoc{{Name: "fuel surcharge", Rate: money(2), AppliesWhenTotalAboveKWh: tariff.Num(fmt.Sprint(rng.IntN(600)))}}
		base = append(base, "fuel_surcharge")
	}
	switch rng.IntN(3) {
	case 0:
		doc.Fixed = &tariff.FixedDoc{Kind: "per_kw", Rate: money(150)}
		base = append(base, "fixed")
	case 1:
		doc.Fixed = &tariff.FixedDoc{Kind: "sanctioned_load_band_whole_load", Bands: []tariff.BandDoc{
			{UptoKW: tariff.Num("2"), Rate: money(50)}, {UptoKW: tariff.Num("5"), Rate: money(100)}, {Rate: money(250)}}}
		base = append(base, "fixed")
	}
	if rng.IntN(3) == 0 {
		doc.Demand = &tariff.DemandDoc{RatePerKVA: money(200), MinimumKVA: tariff.Num(fmt.Sprint(rng.IntN(30)))}
	}
	if rng.IntN(2) == 0 {
		doc.Taxes = []tariff.TaxDoc{
			{Code: "ppac", Name: "ppac", RatePct: money(12), Base: base},
			{Code: "ed", Name: "duty", RatePct: money(10), Base: append(append([]string(nil), base...), "ppac")},
		}
	}
	if subsidy && rng.IntN(3) == 0 {
		doc.Subsidies = []tariff.SubsidyDoc{{Code: "sub", Name: "state subsidy", RatePct: money(100), Base: base, Cap: money(800)}}
	}
	if rng.IntN(2) == 0 {
		doc.RoundOff = &tariff.RoundOffDoc{Places: 0, Mode: "half_ceiling"}
	}
	return doc
}

func mustCompile(t *testing.T, doc *tariff.Document) *tariff.Tariff {
	t.Helper()
	tf, err := tariff.Compile(doc)
	if err != nil {
		t.Fatalf("random document does not compile: %v\n%+v", err, doc)
	}
	return tf
}

func randomUsage(rng *rand.Rand, p billing.Period) tariff.Usage {
	return tariff.Usage{
		Period:           p,
		ImportWh:         rng.Int64N(2_500_000),
		SanctionedLoadKW: decimal.New(int64(rng.IntN(120)), -1),
		MaxDemandKVA:     decimal.New(int64(rng.IntN(500)), -1),
	}
}

// TestTelescopicMonotone: within a telescopic tariff, more energy never
// costs less — neither the energy charge nor the bill. Subsidies are left
// out: a subsidy is its own negative line, rounded on its own, so a little
// more energy can move the subsidy up a paisa while the charge it is a
// share of stays put.
func TestTelescopicMonotone(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	period := billing.Period{From: billing.NewDate(2024, 5, 1), To: billing.NewDate(2024, 5, 31)}
	for i := range 300 {
		doc := randomDoc(rng, "telescopic", "2024-04-01", false)
		tf := mustCompile(t, doc)
		u := randomUsage(rng, period)
		prevTotal, prevEnergy, prevWh := decimal.Zero, decimal.Zero, int64(0)
		for step := range 25 {
			u.ImportWh = prevWh + rng.Int64N(150_000)
			r, err := tariff.Rate(tf, u)
			if err != nil {
				t.Fatal(err)
			}
			energy := r.Subtotal(tariff.CategoryEnergy).Add(r.Subtotal(tariff.CategoryMinimum))
			if step > 0 && (r.Total.LessThan(prevTotal) || energy.LessThan(prevEnergy)) {
				t.Fatalf("tariff %d: %d Wh costs %s (energy %s) but %d Wh cost %s (energy %s)\n%+v",
					i, u.ImportWh, r.Total, energy, prevWh, prevTotal, prevEnergy, doc.Energy)
			}
			prevTotal, prevEnergy, prevWh = r.Total, energy, u.ImportWh
		}
	}
}

// TestSplitEqualsUnsplit: a period split by a new version whose rates are
// unchanged bills exactly what the unsplit period bills, line category by
// line category, after rounding. Whole cycles cover every energy kind;
// partial periods (a first or last bill shorter than its cycle) use
// telescopic energy.
func TestSplitEqualsUnsplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	kinds := []string{"telescopic", "non_telescopic", "group_selected"}
	for i := range 400 {
		cycleStart := billing.NewDate(2024, 1, 1).AddDays(rng.IntN(365))
		cycle := billing.Period{From: cycleStart, To: cycleStart.AddDays(27 + rng.IntN(9))}
		period, kind := cycle, kinds[rng.IntN(len(kinds))]
		if rng.IntN(3) == 0 { // a partial first or last period
			kind = "telescopic"
			if rng.IntN(2) == 0 {
				period.From = period.From.AddDays(1 + rng.IntN(cycle.Days()-2))
			} else {
				period.To = period.To.AddDays(-1 - rng.IntN(cycle.Days()-2))
			}
		}
		change := period.From.AddDays(1 + rng.IntN(period.Days()-1))
		v1 := randomDoc(rng, kind, "2023-01-01", true)
		v2 := *v1
		v2.Version, v2.EffectiveFrom = "2", change.String()
		one := mustCompile(t, v1)
		s, err := tariff.NewSchedule(one, mustCompile(t, &v2))
		if err != nil {
			t.Fatal(err)
		}
		u := randomUsage(rng, period)
		u.Cycle = cycle
		split, err := s.Rate(u)
		if err != nil {
			t.Fatal(err)
		}
		unsplit, err := tariff.Rate(one, u)
		if err != nil {
			t.Fatal(err)
		}
		if len(split.Versions) != 2 {
			t.Fatalf("case %d: period %s not split at %s", i, period, change)
		}
		for _, c := range []tariff.LineCategory{tariff.CategoryEnergy, tariff.CategoryMinimum, tariff.CategoryPassThrough,
			tariff.CategoryFixed, tariff.CategoryDemand, tariff.CategoryTax, tariff.CategorySubsidy, tariff.CategoryRoundOff} {
			if a, b := split.Subtotal(c), unsplit.Subtotal(c); !a.Equal(b) {
				t.Errorf("case %d (%s, period %s of cycle %s, change %s, %d Wh): %s split %s, unsplit %s",
					i, kind, period, cycle, change, u.ImportWh, c, a, b)
			}
		}
		if !split.Total.Equal(unsplit.Total) {
			t.Fatalf("case %d: total split %s, unsplit %s\nsplit %v\nunsplit %v", i, split.Total, unsplit.Total, describe(split), describe(unsplit))
		}
	}
}

// TestRoundOffLineWithinHalf: a half_ceiling whole-currency round-off line
// lies in (−0.5, 0.5] and makes the total whole, whatever the usage.
func TestRoundOffLineWithinHalf(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	period := billing.Period{From: billing.NewDate(2024, 5, 1), To: billing.NewDate(2024, 5, 31)}
	half := decimal.New(5, -1)
	for range 500 {
		doc := randomDoc(rng, "telescopic", "2024-04-01", true)
		doc.RoundOff = &tariff.RoundOffDoc{Places: 0, Mode: "half_ceiling"}
		r, err := tariff.Rate(mustCompile(t, doc), randomUsage(rng, period))
		if err != nil {
			t.Fatal(err)
		}
		if r.RoundOff.LessThanOrEqual(half.Neg()) || r.RoundOff.GreaterThan(half) || !r.Total.IsInteger() {
			t.Fatalf("round-off %s, total %s", r.RoundOff, r.Total)
		}
	}
}
