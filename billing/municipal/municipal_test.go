package municipal_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/municipal"
)

func num(s string) *decimal.Decimal {
	d := decimal.RequireFromString(s)
	return &d
}

func intp(n int) *int { return &n }

func TestDecodeMastersProblems(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantPath string
		wantText string
	}{
		{name: "gap between bands", give: `{"SCBillingSlab": [{"id": 1, "calculationAttribute": "No. of toilets", "slabs": [{"from": 0, "to": 5, "charge": 1}, {"from": 6, "to": 1000000000, "charge": 2}]}]}`,
			wantPath: "BillingSlab[0].slabs[1].from", wantText: "contiguous"},
		{name: "not open-ended", give: `{"SCBillingSlab": [{"id": "1", "calculationAttribute": "No. of toilets", "slabs": [{"from": 0, "to": 5, "charge": 1}]}]}`,
			wantPath: "BillingSlab[0].slabs[0].to", wantText: "open-ended"},
		{name: "not starting at zero", give: `{"WCBillingSlab": [{"id": "1", "calculationAttribute": "Water consumption", "slabs": [{"from": 1, "to": 1000000000, "charge": 1}]}]}`,
			wantPath: "BillingSlab[0].slabs[0].from", wantText: "want 0"},
		{name: "flat with bands", give: `{"SCBillingSlab": [{"id": "1", "calculationAttribute": "Flat", "minimumCharge": 100, "slabs": [{"from": 0, "to": 1000000000, "charge": 1}]}]}`,
			wantPath: "BillingSlab[0].slabs", wantText: "Flat"},
		{name: "negative charge", give: `{"SCBillingSlab": [{"id": "1", "calculationAttribute": "No. of toilets", "slabs": [{"from": 0, "to": 1000000000, "charge": -1}]}]}`,
			wantPath: "BillingSlab[0].slabs[0].charge", wantText: "negative"},
		{name: "bad financial year", give: `{"Penalty": [{"rate": 10, "fromFY": "2019-21"}]}`, wantPath: "Penalty[0].fromFY", wantText: "consecutive"},
		{name: "bad starting day", give: `{"Interest": [{"rate": 5, "fromFY": "2019-20", "startingDay": "2019-01-01"}]}`, wantPath: "Interest[0].startingDay", wantText: "d/MM/yyyy"},
		{name: "bad ending day", give: `{"Rebate": [{"rate": 5, "fromFY": "2019-20", "endingDay": "31/13"}]}`, wantPath: "Rebate[0].endingDay", wantText: "dd/MM"},
		{name: "plot sizes overlap", give: `{"PlotSizeSlab": [{"from": 0, "to": 600, "unitCost": 1}, {"from": 500, "to": 1000000000, "unitCost": 2}]}`,
			wantPath: "PlotSizeSlab[1].from", wantText: "contiguous"},
		{name: "not JSON", give: `{"SCBillingSlab": [`, wantPath: "", wantText: "unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := municipal.DecodeMasters([]byte(tt.give))
			var ve *billing.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, billing.ErrInvalidInput) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			for _, f := range ve.Fields {
				if f.Path == tt.wantPath && strings.Contains(f.Problem, tt.wantText) {
					return
				}
			}
			t.Errorf("problems %v, want %q at %q", ve.Fields, tt.wantText, tt.wantPath)
		})
	}
}

func TestGraduatedCharge(t *testing.T) {
	band := func(from, to int64, rate string) municipal.Band {
		return municipal.Band{From: decimal.NewFromInt(from), To: decimal.NewFromInt(to), Charge: decimal.RequireFromString(rate)}
	}
	// The reference's TV9 slabs: 0–10 @5, 10–20 @7, 20–∞ @9; it billed 10
	// and 25 wrong.
	bands := []municipal.Band{band(0, 10, "5"), band(10, 20, "7"), band(20, 1_000_000_000, "9")}
	tests := []struct {
		give    string
		want    string
		wantErr bool
	}{
		{give: "0", want: "0"}, {give: "5", want: "25"}, {give: "10", want: "50"}, {give: "15", want: "85"},
		{give: "20", want: "120"}, {give: "25", want: "165"}, {give: "40", want: "300"}, {give: "10.5", want: "53.5"},
		{give: "1000000001", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := municipal.GraduatedCharge(bands, decimal.RequireFromString(tt.give))
			if tt.wantErr {
				if !errors.Is(err, municipal.ErrNoSlabRange) {
					t.Fatalf("err = %v, want ErrNoSlabRange", err)
				}
				return
			}
			if err != nil || !got.Equal(decimal.RequireFromString(tt.want)) {
				t.Errorf("GraduatedCharge(%s) = %s, %v; want %s", tt.give, got, err, tt.want)
			}
		})
	}
	if _, err := municipal.GraduatedCharge([]municipal.Band{band(0, 10, "1"), band(12, 1_000_000_000, "2")}, decimal.NewFromInt(15)); !errors.Is(err, municipal.ErrNoSlabRange) {
		t.Errorf("a gap in the bands: err = %v", err)
	}
}

func TestPeriodicChargeErrors(t *testing.T) {
	m := loadMasters(t, "pb-sewerage.json")
	two := m.BillingSlabs[0]
	two.ID = "dup"
	ambiguous := *m
	ambiguous.BillingSlabs = append(append([]municipal.BillingSlab(nil), m.BillingSlabs...), two)
	water := loadMasters(t, "pb-water.json")
	tests := []struct {
		name     string
		giveSvc  municipal.Service
		giveConn municipal.Connection
		giveProp municipal.Property
		giveM    *municipal.Masters
		wantErr  error
	}{
		{name: "no attribute for the connection type (B17)", giveSvc: sw, giveConn: municipal.Connection{ConnectionType: "Metered"}, giveProp: residential, giveM: m, wantErr: municipal.ErrNoCalculationAttribute},
		{name: "no slab for the building type", giveSvc: sw, giveConn: closets(2), giveProp: municipal.Property{UsageCategory: "INSTITUTIONAL"}, giveM: m, wantErr: municipal.ErrNoBillingSlab},
		{name: "two slabs match", giveSvc: sw, giveConn: closets(2), giveProp: residential, giveM: &ambiguous, wantErr: municipal.ErrAmbiguousBillingSlab},
		{name: "metered water without readings", giveSvc: municipal.Water(), giveConn: municipal.Connection{ConnectionType: "Metered"}, giveProp: residential, giveM: water, wantErr: municipal.ErrReading},
		{name: "meter ran backwards", giveSvc: municipal.Water(), giveConn: municipal.Connection{ConnectionType: "Metered", LastReading: num("135"), CurrentReading: num("100")}, giveProp: residential, giveM: water, wantErr: municipal.ErrReading},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := municipal.PeriodicCharge(tt.giveSvc, tt.giveConn, tt.giveProp, tt.giveM, periodStart, policy())
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, billing.ErrCalculation) {
				t.Errorf("err = %v, want %v (a calculation error)", err, tt.wantErr)
			}
		})
	}
}

func TestWaterCharges(t *testing.T) {
	m := loadMasters(t, "pb-water.json")
	tests := []struct {
		name       string
		giveConn   municipal.Connection
		giveAttr   string
		wantCharge string
		wantCess   string
	}{
		// Metered, below the minimum charge of 100: 5 units × 2 = 10 → 100.
		{name: "metered floor", giveConn: municipal.Connection{ConnectionType: "Metered", LastReading: num("100"), CurrentReading: num("105")}, wantCharge: "100.00", wantCess: "5.00"},
		{name: "metered at a band edge", giveConn: municipal.Connection{ConnectionType: "Metered", LastReading: num("0"), CurrentReading: num("40")}, wantCharge: "245.00", wantCess: "12.25"},
		{name: "pipe size per unit", giveConn: municipal.Connection{ConnectionType: "Non Metered", PipeSize: intp(2)}, wantCharge: "300.00", wantCess: "15.00"},
		{name: "flat", giveConn: municipal.Connection{ConnectionType: "Non Metered"}, giveAttr: municipal.AttrFlat, wantCharge: "250.00", wantCess: "12.50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			masters := *m
			if tt.giveAttr != "" {
				masters.CalculationAttributes = []municipal.CalculationAttribute{{Name: "Non Metered", Attribute: tt.giveAttr, Active: true}}
			}
			calc, err := municipal.PeriodicCharge(water, tt.giveConn, residential, &masters, periodStart, policy())
			if err != nil {
				t.Fatal(err)
			}
			wantAmount(t, "charge", calc.Estimates[0].Amount, tt.wantCharge)
			wantAmount(t, "cess", calc.Estimates[1].Amount, tt.wantCess)
			if !calc.TotalAmount.IsInteger() {
				t.Errorf("total %s is not whole", calc.TotalAmount)
			}
		})
	}
}

func TestApplicableMasterByFinancialYear(t *testing.T) {
	entries := []municipal.TimeBasedMaster{
		{ID: "old", FromFY: "2019-20"},
		{ID: "new", FromFY: "2024-25", StartingDay: "1/06/2024"},
		{ID: "future", FromFY: "2025-26"},
	}
	tests := []struct {
		giveFY    billing.FinancialYear
		giveToday billing.Date
		want      string
	}{
		{giveFY: 2024, giveToday: billing.NewDate(2024, 5, 10), want: "old"}, // "new" starts in June
		{giveFY: 2024, giveToday: billing.NewDate(2024, 6, 1), want: "new"},
		{giveFY: 2023, giveToday: billing.NewDate(2024, 6, 1), want: "old"}, // arrears of 2023-24 use 2023-24's entry (A3)
		{giveFY: 2025, giveToday: billing.NewDate(2025, 4, 1), want: "future"},
		{giveFY: 2018, giveToday: billing.NewDate(2018, 6, 1), want: ""},
	}
	for _, tt := range tests {
		got, ok := municipal.ApplicableMaster(entries, tt.giveFY, tt.giveToday)
		if (tt.want == "") == ok || ok && got.ID != tt.want {
			t.Errorf("FY %s on %s: %q (%v), want %q", tt.giveFY, tt.giveToday, got.ID, ok, tt.want)
		}
	}
}

func TestOverdue(t *testing.T) {
	due := time.Date(2024, 5, 14, 23, 59, 59, 999_000_000, time.UTC)
	tests := []struct {
		name      string
		giveNow   time.Time
		giveAfter int
		want      bool
	}{
		{name: "before due", giveNow: due.Add(-time.Hour), want: false},
		{name: "same day after due needs a whole day", giveNow: due.Add(time.Hour), want: false},
		{name: "one whole day", giveNow: due.Add(24 * time.Hour), want: true},
		{name: "threshold not reached", giveNow: due.Add(14 * 24 * time.Hour), giveAfter: 15, want: false},
		{name: "threshold reached", giveNow: due.Add(15 * 24 * time.Hour), giveAfter: 15, want: true},
	}
	for _, tt := range tests {
		if got := municipal.Overdue(due, tt.giveNow, tt.giveAfter); got != tt.want {
			t.Errorf("%s: Overdue = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestApplyTimeBased(t *testing.T) {
	m := loadMasters(t, "pb-sewerage.json") // penalty 10%, interest 5%, rebate 10% until 25/09
	p := policy()
	from := time.Date(2024, 5, 1, 0, 0, 0, 0, ist)
	due := municipal.DueDate(from, 14*24*time.Hour, ist)
	demand := func(tax, collected string) billing.Demand {
		return billing.Demand{From: from, Due: due, Details: []billing.DemandDetail{
			{Head: sw.Charge, TaxAmount: decimal.RequireFromString(tax), CollectionAmount: decimal.RequireFromString(collected)}}}
	}
	t.Run("base is what is still owed (B7)", func(t *testing.T) {
		added := municipal.ApplyTimeBased(sw, demand("120", "20"), m, due.Add(48*time.Hour), p)
		checkDetails(t, added, [][2]string{{"SW_TIME_INTEREST", "5.00"}, {"SW_TIME_PENALTY", "10.00"}})
	})
	t.Run("paid demand untouched", func(t *testing.T) {
		if added := municipal.ApplyTimeBased(sw, demand("120", "120"), m, due.Add(48*time.Hour), p); len(added) != 0 {
			t.Errorf("appended %v to a paid demand", added)
		}
	})
	t.Run("not yet overdue", func(t *testing.T) {
		if added := municipal.ApplyTimeBased(sw, demand("120", "0"), m, due.Add(time.Hour), p); len(added) != 0 {
			t.Errorf("appended %v before a whole day passed", added)
		}
	})
	t.Run("lower amount appends a negative difference (A4)", func(t *testing.T) {
		d := demand("120", "0")
		d.Details = append(d.Details, municipal.ApplyTimeBased(sw, d, m, due.Add(48*time.Hour), p)...)
		d.Details = append(d.Details, billing.DemandDetail{Head: sw.Charge, TaxAmount: decimal.NewFromInt(-60), CollectionAmount: decimal.Zero})
		added := municipal.ApplyTimeBased(sw, d, m, due.Add(72*time.Hour), p)
		checkDetails(t, added, [][2]string{{"SW_TIME_INTEREST", "-3.00"}, {"SW_TIME_PENALTY", "-6.00"}})
	})
	t.Run("early-payment rebate until the ending day", func(t *testing.T) {
		p := p
		p.TimeRebate = true
		d := demand("120", "0")
		before := municipal.ApplyTimeBased(sw, d, m, time.Date(2024, 5, 2, 12, 0, 0, 0, ist), p)
		checkDetails(t, before, [][2]string{{"SW_TIME_REBATE", "-12.00"}})
		d.Details = append(d.Details, before...)
		after := municipal.ApplyTimeBased(sw, d, m, time.Date(2024, 9, 26, 12, 0, 0, 0, ist), p)
		checkDetails(t, after, [][2]string{{"SW_TIME_INTEREST", "6.00"}, {"SW_TIME_PENALTY", "12.00"}, {"SW_TIME_REBATE", "12.00"}})
	})
}

func TestFeeEstimatesUnknownMasters(t *testing.T) {
	m := loadMasters(t, "pb-sewerage.json")
	tests := []struct {
		name     string
		giveConn municipal.Connection
		giveProp municipal.Property
	}{
		{name: "road type", giveConn: municipal.Connection{RoadCutting: []municipal.RoadCutting{{RoadType: "GRAVEL", Area: num("2")}}}, giveProp: residential},
		{name: "usage type", giveConn: municipal.Connection{RoadCutting: []municipal.RoadCutting{{RoadType: "CCROAD", Area: num("2")}}}, giveProp: municipal.Property{UsageCategory: "MIXED"}},
		{name: "negative land area", giveProp: municipal.Property{UsageCategory: "RESIDENTIAL", LandArea: num("-1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := municipal.FeeEstimates(sw, tt.giveConn, tt.giveProp, m, policy()); !errors.Is(err, municipal.ErrUnknownMaster) {
				t.Errorf("err = %v, want ErrUnknownMaster", err)
			}
		})
	}
	noFee := *m
	noFee.FeeSlabs = nil
	if _, err := municipal.FeeEstimates(sw, municipal.Connection{}, residential, &noFee, policy()); !errors.Is(err, municipal.ErrNoFeeSlab) {
		t.Errorf("no fee slab: err = %v", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := policy().Validate(); err != nil {
		t.Fatalf("recommended policy: %v", err)
	}
	p := policy()
	p.Location, p.ZeroUnits = nil, 0
	err := p.Validate()
	if err == nil || !strings.Contains(err.Error(), "location") || !strings.Contains(err.Error(), "zero-units") {
		t.Errorf("Validate = %v, want location and zero-units problems", err)
	}
}

// Paying part of an overdue charge lowers the base of penalty and
// interest, but what was already collected on them stays: the heads are
// not set below their collections.
func TestApplyTimeBasedKeepsCollected(t *testing.T) {
	m := loadMasters(t, "pb-sewerage.json")
	p := policy()
	d := billing.Demand{
		From: time.Date(2024, 4, 1, 0, 0, 0, 0, ist), To: time.Date(2024, 5, 1, 0, 0, 0, 0, ist).Add(-time.Millisecond),
		Due: time.Date(2024, 5, 16, 0, 0, 0, 0, ist).Add(-time.Millisecond),
		Details: []billing.DemandDetail{
			{Head: sw.Charge, TaxAmount: dec(t, "60"), CollectionAmount: dec(t, "51")},
			{Head: sw.Interest, TaxAmount: dec(t, "3"), CollectionAmount: dec(t, "3")},
			{Head: sw.Penalty, TaxAmount: dec(t, "6"), CollectionAmount: dec(t, "2")},
		},
	}
	// Base 9: interest 0.45 < 3 collected stays 3; penalty 0.90 < 2 collected goes to 2.
	got := municipal.ApplyTimeBased(sw, d, m, time.Date(2024, 6, 1, 12, 0, 0, 0, ist), p)
	want := []billing.DemandDetail{{Head: sw.Penalty, TaxAmount: dec(t, "-4")}}
	if len(got) != len(want) || got[0].Head != want[0].Head || !got[0].TaxAmount.Equal(want[0].TaxAmount) {
		t.Errorf("appended %v, want %v", got, want)
	}
}
