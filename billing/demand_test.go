package billing_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func detail(head, tax, collected string) billing.DemandDetail {
	return billing.DemandDetail{Head: billing.TaxHead(head), TaxAmount: d(tax), CollectionAmount: d(collected)}
}

func sameDetails(t *testing.T, got, want []billing.DemandDetail) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("details %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Head != want[i].Head || !got[i].TaxAmount.Equal(want[i].TaxAmount) || !got[i].CollectionAmount.Equal(want[i].CollectionAmount) {
			t.Errorf("detail %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestDeltaDetails(t *testing.T) {
	est := func(head, amount string) billing.Estimate {
		return billing.Estimate{Head: billing.TaxHead(head), Amount: d(amount)}
	}
	tests := []struct {
		name         string
		giveExisting []billing.DemandDetail
		giveEst      []billing.Estimate
		giveOwned    []billing.TaxHead
		want         []billing.DemandDetail
	}{
		{
			name:         "increase appends the difference, history untouched (TV08)",
			giveExisting: []billing.DemandDetail{detail("CHARGE", "120", "120")},
			giveEst:      []billing.Estimate{est("CHARGE", "150")},
			want:         []billing.DemandDetail{detail("CHARGE", "30", "0")},
		},
		{
			name:         "decrease appends a negative difference",
			giveExisting: []billing.DemandDetail{detail("CHARGE", "120", "0"), detail("CHARGE", "30", "0")},
			giveEst:      []billing.Estimate{est("CHARGE", "100")},
			want:         []billing.DemandDetail{detail("CHARGE", "-50", "0")},
		},
		{
			name:         "unchanged appends nothing",
			giveExisting: []billing.DemandDetail{detail("CHARGE", "120", "0")},
			giveEst:      []billing.Estimate{est("CHARGE", "120.00")},
		},
		{
			name:         "owned head gone is reversed; others left alone (B6)",
			giveExisting: []billing.DemandDetail{detail("ROAD", "1875", "0"), detail("PENALTY", "10", "0"), detail("FORM", "25", "0")},
			giveEst:      []billing.Estimate{est("FORM", "25")},
			giveOwned:    []billing.TaxHead{"FORM", "ROAD"},
			want:         []billing.DemandDetail{detail("ROAD", "-1875", "0")},
		},
		{
			name:    "new head appended in estimate order",
			giveEst: []billing.Estimate{est("B", "2"), est("A", "1")},
			want:    []billing.DemandDetail{detail("B", "2", "0"), detail("A", "1", "0")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameDetails(t, billing.DeltaDetails(tt.giveExisting, tt.giveEst, tt.giveOwned), tt.want)
		})
	}
}

func TestOldestUnpaid(t *testing.T) {
	may := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	demands := []billing.Demand{
		{From: may.AddDate(0, 1, 0), Details: []billing.DemandDetail{detail("C", "60", "0")}},
		{From: may.AddDate(0, -1, 0), Details: []billing.DemandDetail{detail("C", "60", "60")}}, // paid
		{From: may, Details: []billing.DemandDetail{detail("C", "60", "10")}},
	}
	if i, ok := billing.OldestUnpaid(demands); !ok || i != 2 {
		t.Errorf("OldestUnpaid = %d, %v; want 2", i, ok)
	}
	if _, ok := billing.OldestUnpaid(demands[1:2]); ok {
		t.Error("a paid demand is not unpaid")
	}
}

func TestApportionPayment(t *testing.T) {
	order := billing.HeadOrder{"PENALTY": 0, "CHARGE": 1}
	demands := []billing.Demand{
		{Details: []billing.DemandDetail{detail("CHARGE", "100", "40"), detail("PENALTY", "10", "0"), detail("ROUND", "0.40", "0")}},
		{Details: []billing.DemandDetail{detail("CHARGE", "80", "0"), detail("CREDIT", "-20", "0"), detail("CHARGE", "20", "0")}},
	}
	tests := []struct {
		name        string
		giveAmount  string
		wantPaid    [][]string // collection per detail after the payment
		wantAdvance string
	}{
		{
			// The later demand's credit nets against its own charge even
			// when the payment is used up before it.
			name:       "oldest demand first, penalty before charge, unlisted heads last",
			giveAmount: "65",
			wantPaid:   [][]string{{"95", "10", "0"}, {"0", "-20", "20"}},
		},
		{
			name:       "credits absorbed, then the smaller detail of a head first",
			giveAmount: "100.40",
			wantPaid:   [][]string{{"100", "10", "0.40"}, {"30", "-20", "20"}},
		},
		{
			name:        "overpayment is left as advance",
			giveAmount:  "200",
			wantPaid:    [][]string{{"100", "10", "0.40"}, {"80", "-20", "20"}},
			wantAdvance: "49.60", // 200 + 20 credit − 170.40 owed
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := billing.ApportionPayment(demands, d(tt.giveAmount), order)
			got := billing.Apply(demands, a, "")
			for i, paid := range tt.wantPaid {
				for j, want := range paid {
					if c := got[i].Details[j].CollectionAmount; !c.Equal(d(want)) {
						t.Errorf("demand %d detail %d collected %s, want %s", i, j, c, want)
					}
				}
			}
			wantAdvance := tt.wantAdvance
			if wantAdvance == "" {
				wantAdvance = "0"
			}
			if !a.Advance.Equal(d(wantAdvance)) {
				t.Errorf("advance %s, want %s", a.Advance, wantAdvance)
			}
			// Money is conserved: collected + advance = paid + credits absorbed.
			var collected decimal.Decimal
			for _, c := range a.Collections {
				collected = collected.Add(c.Amount)
			}
			if !collected.Add(a.Advance).Equal(d(tt.giveAmount)) {
				t.Errorf("collections %s + advance %s ≠ payment %s", collected, a.Advance, tt.giveAmount)
			}
			if len(demands[0].Details) != 3 || !demands[0].Details[0].CollectionAmount.Equal(d("40")) {
				t.Error("Apply changed its input")
			}
		})
	}
}

func TestApportionAdvanceLeftover(t *testing.T) {
	demands := []billing.Demand{
		{Details: []billing.DemandDetail{detail("CHARGE", "60", "60"), detail("ADV", "-100", "0")}},
		{Details: []billing.DemandDetail{detail("CHARGE", "60", "0")}},
	}
	a := billing.ApportionAdvance(demands, "ADV", nil)
	if !a.Advance.Equal(d("40")) {
		t.Fatalf("leftover %s, want 40", a.Advance)
	}
	got := billing.Apply(demands, a, "ADV")
	sameDetails(t, got[0].Details, []billing.DemandDetail{detail("CHARGE", "60", "60"), detail("ADV", "-100", "-100")})
	sameDetails(t, got[1].Details, []billing.DemandDetail{detail("CHARGE", "60", "60"), detail("ADV", "-40", "0")})
	// Nothing to pay: the advance stays where it is.
	if a := billing.ApportionAdvance(got[1:], "ADV", nil); len(a.Collections) != 0 || !a.Advance.IsZero() {
		t.Errorf("advance with nothing to pay moved: %+v", a)
	}
}
