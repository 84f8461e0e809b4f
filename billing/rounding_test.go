package billing_test

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

func TestRoundingModes(t *testing.T) {
	tests := []struct {
		give       string
		wantByMode map[billing.RoundingMode]string
	}{
		{give: "6.565", wantByMode: map[billing.RoundingMode]string{
			billing.RoundHalfUp: "6.57", billing.RoundHalfEven: "6.56", billing.RoundHalfDown: "6.56", billing.RoundHalfCeiling: "6.57",
			billing.RoundUp: "6.57", billing.RoundDown: "6.56", billing.RoundCeiling: "6.57", billing.RoundFloor: "6.56"}},
		{give: "-6.565", wantByMode: map[billing.RoundingMode]string{
			billing.RoundHalfUp: "-6.57", billing.RoundHalfEven: "-6.56", billing.RoundHalfDown: "-6.56", billing.RoundHalfCeiling: "-6.56",
			billing.RoundUp: "-6.57", billing.RoundDown: "-6.56", billing.RoundCeiling: "-6.56", billing.RoundFloor: "-6.57"}},
		{give: "6.575", wantByMode: map[billing.RoundingMode]string{
			billing.RoundHalfUp: "6.58", billing.RoundHalfEven: "6.58", billing.RoundHalfDown: "6.57", billing.RoundHalfCeiling: "6.58"}},
		{give: "3.333", wantByMode: map[billing.RoundingMode]string{
			billing.RoundHalfUp: "3.33", billing.RoundHalfDown: "3.33", billing.RoundCeiling: "3.34", billing.RoundUp: "3.34", billing.RoundFloor: "3.33"}},
		{give: "-3.337", wantByMode: map[billing.RoundingMode]string{
			billing.RoundHalfUp: "-3.34", billing.RoundHalfDown: "-3.34", billing.RoundHalfCeiling: "-3.34", billing.RoundDown: "-3.33", billing.RoundCeiling: "-3.33"}},
		{give: "1.005", wantByMode: map[billing.RoundingMode]string{billing.RoundHalfUp: "1.01"}}, // E08: never float64
		{give: "2.5", wantByMode: map[billing.RoundingMode]string{billing.RoundHalfEven: "2.5"}},  // already at 2 places
	}
	for _, tt := range tests {
		for mode, want := range tt.wantByMode {
			t.Run(tt.give+"/"+mode.String(), func(t *testing.T) {
				got := mode.Round(decimal.RequireFromString(tt.give), 2)
				if !got.Equal(decimal.RequireFromString(want)) {
					t.Errorf("%s %s = %s, want %s", mode, tt.give, got, want)
				}
			})
		}
	}
}

func TestParseRoundingMode(t *testing.T) {
	for m := billing.RoundHalfUp; m <= billing.RoundFloor; m++ {
		text, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back billing.RoundingMode
		if err := back.UnmarshalText(text); err != nil || back != m {
			t.Errorf("%s round-trips to %v (%v)", text, back, err)
		}
	}
	if _, err := billing.ParseRoundingMode("HALF_UP"); err == nil {
		t.Error("mode names are exact")
	}
	if billing.RoundingMode(0).Valid() || billing.RoundingMode(99).Valid() {
		t.Error("zero and out-of-range modes are not valid")
	}
}

func TestRoundOff(t *testing.T) {
	tests := []struct {
		give     string
		giveMode billing.RoundingMode
		want     string
	}{
		{give: "1301.85", giveMode: billing.RoundHalfCeiling, want: "0.15"}, // E08
		{give: "12.36", giveMode: billing.RoundHalfCeiling, want: "-0.36"},  // E08
		{give: "10.50", giveMode: billing.RoundHalfCeiling, want: "0.50"},   // TV15: exactly +0.50
		{give: "-12.50", giveMode: billing.RoundHalfCeiling, want: "0.50"},  // stays in (−0.5, 0.5]
		{give: "-12.64", giveMode: billing.RoundHalfCeiling, want: "-0.36"}, // TV15 recommended
		{give: "-12.50", giveMode: billing.RoundHalfUp, want: "-0.50"},      // half-up leaves the interval for negative ties
		{give: "7", giveMode: billing.RoundHalfCeiling, want: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.give+"/"+tt.giveMode.String(), func(t *testing.T) {
			got := billing.RoundOff(decimal.RequireFromString(tt.give), 0, tt.giveMode)
			if !got.Equal(decimal.RequireFromString(tt.want)) {
				t.Errorf("RoundOff(%s) = %s, want %s", tt.give, got, tt.want)
			}
		})
	}
}

// TestRoundOffSumWithinHalf: however a demand is recalculated, re-priced
// and adjusted, with the round-off rebalanced after each change the sum of
// its round-off details stays in (−0.5, 0.5] and the demand total is whole.
func TestRoundOffSumWithinHalf(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const roundOff = billing.TaxHead("SW_Round_Off")
	heads := []billing.TaxHead{"SW_CHARGE", "SW_TIME_PENALTY", "SW_TIME_INTEREST", "SW_TIME_ADHOC_REBATE", "SW_ADVANCE_CARRYFORWARD"}
	half := decimal.New(5, -1)
	for demand := range 500 {
		var details []billing.DemandDetail
		for step := range 1 + rng.IntN(12) {
			// Any change: a new amount for a head (positive or negative, to
			// the paisa), then the rebalance the calculators run.
			head := heads[rng.IntN(len(heads))]
			target := decimal.New(rng.Int64N(2_000_000)-500_000, -2)
			if d, ok := billing.SetHeadTotal(details, head, target); ok {
				details = append(details, d)
			}
			if d, ok := billing.RebalanceRoundOff(details, roundOff, billing.RoundHalfCeiling); ok {
				details = append(details, d)
			}
			sum := billing.HeadTotal(details, roundOff)
			if sum.LessThanOrEqual(half.Neg()) || sum.GreaterThan(half) || !billing.TotalTax(details).IsInteger() {
				t.Fatalf("demand %d step %d: round-off sum %s, total %s\n%v", demand, step, sum, billing.TotalTax(details), details)
			}
		}
	}
}
