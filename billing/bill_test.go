package billing

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestComposeBill(t *testing.T) {
	d := decimal.RequireFromString
	heads := BillHeads{Advance: "advance", RoundOff: "round_off"}
	may := Demand{From: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 5, 31, 0, 0, 0, 0, time.UTC)}
	apr := Demand{From: time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 4, 30, 0, 0, 0, 0, time.UTC)}
	line := func(code, amount string) BillLine { return BillLine{Code: code, Amount: d(amount)} }
	tests := []struct {
		name      string
		current   []DemandDetail
		earlier   []Demand
		rated     []BillLine
		want      BillTotals
		wantLines int
	}{
		{
			name:    "TV18: advance consumed on creation shows as adjusted",
			current: []DemandDetail{{Head: "SW_CHARGE", TaxAmount: d("60"), CollectionAmount: d("50")}},
			earlier: []Demand{{From: apr.From, To: apr.To, Details: []DemandDetail{
				{Head: "SW_CHARGE", TaxAmount: d("60"), CollectionAmount: d("60")},
				{Head: "advance", TaxAmount: d("-50"), CollectionAmount: d("-50")}}}},
			rated:     []BillLine{line("SW_CHARGE", "60")},
			want:      BillTotals{Current: d("60"), Arrears: d("0"), Advance: d("-50"), RoundOff: d("0"), Total: d("10"), MinimumPayable: d("10")},
			wantLines: 2,
		},
		{
			name: "arrears of an unpaid month, part payment allowed at 25%",
			current: []DemandDetail{{Head: "energy", TaxAmount: d("1275"), CollectionAmount: d("0")},
				{Head: "round_off", TaxAmount: d("0.32"), CollectionAmount: d("0")}},
			earlier: []Demand{{From: apr.From, To: apr.To, Details: []DemandDetail{
				{Head: "energy", TaxAmount: d("600"), CollectionAmount: d("100")},
				{Head: "late_payment_surcharge", TaxAmount: d("7.40"), CollectionAmount: d("0")}}}},
			rated:     []BillLine{line("energy", "1275"), line("round_off", "0.32")},
			want:      BillTotals{Current: d("1275.32"), Arrears: d("507.40"), Advance: d("0"), RoundOff: d("0.32"), Total: d("1782.72"), MinimumPayable: d("445.68")},
			wantLines: 3,
		},
		{
			name:    "unconsumed advance exceeds the charge",
			current: []DemandDetail{{Head: "energy", TaxAmount: d("40"), CollectionAmount: d("40")}, {Head: "advance", TaxAmount: d("-60"), CollectionAmount: d("0")}},
			rated:   []BillLine{line("energy", "40")},
			want:    BillTotals{Current: d("40"), Arrears: d("0"), Advance: d("-100"), RoundOff: d("0"), Total: d("-60"), MinimumPayable: d("0")},
			// advance line only
			wantLines: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := may
			cur.Details = tt.current
			pct := d("100")
			if tt.name == "arrears of an unpaid month, part payment allowed at 25%" {
				pct = d("25")
			}
			lines, got, err := ComposeBill(cur, tt.earlier, tt.rated, heads, pct, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name      string
				got, want decimal.Decimal
			}{{"current", got.Current, tt.want.Current}, {"arrears", got.Arrears, tt.want.Arrears}, {"advance", got.Advance, tt.want.Advance},
				{"round off", got.RoundOff, tt.want.RoundOff}, {"total", got.Total, tt.want.Total}, {"minimum", got.MinimumPayable, tt.want.MinimumPayable}} {
				if !c.got.Equal(c.want) {
					t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
				}
			}
			if len(lines) != tt.wantLines {
				t.Errorf("lines = %+v, want %d", lines, tt.wantLines)
			}
		})
	}
	t.Run("lines that do not add up", func(t *testing.T) {
		cur := may
		cur.Details = []DemandDetail{{Head: "energy", TaxAmount: d("10"), CollectionAmount: d("0")}}
		if _, _, err := ComposeBill(cur, nil, []BillLine{line("energy", "9")}, heads, d("100"), 2); !errors.Is(err, ErrCalculation) {
			t.Fatalf("err = %v", err)
		}
	})
}
