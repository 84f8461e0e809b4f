package consumption_test

import (
	"errors"
	"testing"
	"time"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/consumption"
	"github.com/meterd/meterd/billing/tariff"
	"github.com/meterd/meterd/meter"
)

func days(from billing.Date, whs ...int64) []consumption.DailyUsage {
	out := make([]consumption.DailyUsage, len(whs))
	for i, wh := range whs {
		out[i] = consumption.DailyUsage{Date: from.AddDays(i), ImportWh: wh}
	}
	return out
}

func TestAggregate(t *testing.T) {
	start := billing.NewDate(2024, 5, 1)
	week := billing.Period{From: start, To: start.AddDays(6)}
	withGap := days(start, 1000, 2000, 3000, 4000, 5000) // days 6 and 7 missing
	estimatedRow := days(start, 1000, 1000, 1000, 1000, 1000, 1000, 1000)
	estimatedRow[3].Estimated = true
	tests := []struct {
		name          string
		giveDays      []consumption.DailyUsage
		giveHistory   []consumption.DailyUsage
		wantImportWh  int64
		wantEstimated int
		wantErr       error
	}{
		{name: "all days read", giveDays: days(start, 1, 2, 3, 4, 5, 6, 7), wantImportWh: 28},
		{name: "rows outside the period ignored", giveDays: days(start.AddDays(-2), 100, 100, 1, 2, 3, 4, 5, 6, 7), wantImportWh: 28},
		{name: "missing days at the period's average", giveDays: withGap, wantImportWh: 15000 + 2*3000, wantEstimated: 2},
		{name: "no reads: history's average", giveHistory: days(start.AddDays(-30), 500, 700), wantImportWh: 7 * 600, wantEstimated: 7},
		{name: "average rounds half up to a Wh", giveDays: days(start, 1, 2, 2, 2, 2, 2), wantImportWh: 11 + 2, wantEstimated: 1}, // 11/6 = 1.83 → 2
		{name: "estimated rows flag the period", giveDays: estimatedRow, wantImportWh: 7000, wantEstimated: 1},
		{name: "nothing to estimate from", giveDays: nil, wantErr: billing.ErrCalculation},
		{name: "two rows for a day", giveDays: append(days(start, 1), days(start, 2)...), wantErr: billing.ErrInvalidInput},
		{name: "negative energy", giveDays: days(start, -5), wantErr: billing.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := consumption.Aggregate(week, tt.giveDays, tt.giveHistory)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ImportWh != tt.wantImportWh || got.EstimatedDays != tt.wantEstimated || got.Estimated() != (tt.wantEstimated > 0) {
				t.Errorf("got %d Wh, %d estimated days; want %d Wh, %d", got.ImportWh, got.EstimatedDays, tt.wantImportWh, tt.wantEstimated)
			}
			if u := got.Usage(); u.ImportWh != got.ImportWh || u.Estimated != got.Estimated() || u.Period != week {
				t.Errorf("Usage() = %+v", u)
			}
		})
	}
}

func TestWindowEnergy(t *testing.T) {
	doc := &tariff.Document{
		Tenant: "t", Plan: "tou", Version: "1", EffectiveFrom: "2024-01-01", Currency: "INR",
		Rounding: &tariff.RoundingDoc{Mode: "half_up", Places: new(int)},
		Energy: &tariff.EnergyDoc{Kind: "time_of_use",
			Windows: []tariff.WindowDoc{{Name: "off", From: "22:00", To: "06:00"}, {Name: "normal", From: "06:00", To: "18:00"}, {Name: "peak", From: "18:00", To: "22:00"}},
			Rates:   map[string]tariff.Number{"off": tariff.Num("1"), "normal": tariff.Num("2"), "peak": tariff.Num("3")}},
	}
	tf, err := tariff.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	ist := time.FixedZone("IST", 5*3600+1800)
	hour := func(h, m int, wh int64) consumption.HourlyUsage {
		return consumption.HourlyUsage{Start: time.Date(2024, 5, 1, h, m, 0, 0, time.UTC), ImportWh: wh}
	}
	tests := []struct {
		name     string
		giveLoc  *time.Location
		give     []consumption.HourlyUsage
		wantByWh map[string]int64
	}{
		{name: "whole hours in UTC", giveLoc: time.UTC, give: []consumption.HourlyUsage{hour(5, 0, 100), hour(6, 0, 200), hour(18, 0, 300), hour(23, 0, 400)},
			wantByWh: map[string]int64{"off": 500, "normal": 200, "peak": 300}},
		// 12:00Z is 17:30–18:30 IST: half normal, half peak; 1001 Wh leaves
		// one Wh to the window holding more of the hour (a tie: the first).
		{name: "an hour across a boundary in IST", giveLoc: ist, give: []consumption.HourlyUsage{hour(12, 0, 1001)},
			wantByWh: map[string]int64{"off": 0, "normal": 501, "peak": 500}},
		// 16:00Z is 21:30–22:30 IST.
		{name: "into the off-peak window", giveLoc: ist, give: []consumption.HourlyUsage{hour(16, 0, 600)},
			wantByWh: map[string]int64{"off": 300, "normal": 0, "peak": 300}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := consumption.WindowEnergy(tt.give, &tf.Energy, tt.giveLoc)
			var sumGot, sumGive int64
			for _, h := range tt.give {
				sumGive += h.ImportWh
			}
			for name, want := range tt.wantByWh {
				if got[name] != want {
					t.Errorf("%s: %d Wh, want %d", name, got[name], want)
				}
				sumGot += got[name]
			}
			if sumGot != sumGive || len(got) != len(tt.wantByWh) {
				t.Errorf("windows %v do not add up to %d Wh", got, sumGive)
			}
		})
	}
}

func TestPlanRebill(t *testing.T) {
	p := func(from billing.Date, n int) billing.Period {
		return billing.Period{From: from, To: from.AddDays(n - 1)}
	}
	jan := p(billing.NewDate(2024, 1, 1), 31)
	feb := p(billing.NewDate(2024, 2, 1), 29)
	mar := p(billing.NewDate(2024, 3, 1), 31)
	tests := []struct {
		name       string
		givePrior  []consumption.BilledPeriod
		giveActual int64
		wantCancel []string
		wantWh     []int64
		wantErr    error
	}{
		{
			name:       "two estimated months and the current one, split by days",
			givePrior:  []consumption.BilledPeriod{{Period: jan, Estimated: true, BillRef: "J"}, {Period: feb, Estimated: true, BillRef: "F"}},
			giveActual: 910_000, // 10,000 Wh a day over 91 days
			wantCancel: []string{"J", "F"},
			wantWh:     []int64{310_000, 290_000, 310_000},
		},
		{
			name:       "an actual read before the estimates is not reopened",
			givePrior:  []consumption.BilledPeriod{{Period: jan, BillRef: "J"}, {Period: feb, Estimated: true, BillRef: "F"}},
			giveActual: 100,
			wantCancel: []string{"F"},
			wantWh:     []int64{48, 52}, // 100 × 29/60 = 48.33, 100 × 31/60 = 51.67: the larger remainder gets the Wh
		},
		{
			name:       "no estimates: just the current period",
			givePrior:  []consumption.BilledPeriod{{Period: feb, BillRef: "F"}},
			giveActual: 777,
			wantWh:     []int64{777},
		},
		{
			name:      "a gap between periods",
			givePrior: []consumption.BilledPeriod{{Period: jan, Estimated: true}},
			wantErr:   billing.ErrInvalidInput,
		},
		{
			name:       "negative actual",
			givePrior:  []consumption.BilledPeriod{{Period: feb, Estimated: true}},
			giveActual: -1,
			wantErr:    billing.ErrInvalidInput,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := consumption.PlanRebill(tt.givePrior, mar, tt.giveActual)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var refs []string
			for _, c := range plan.Cancel {
				refs = append(refs, c.BillRef)
			}
			if len(refs) != len(tt.wantCancel) || len(plan.Periods) != len(tt.wantWh) {
				t.Fatalf("cancel %v, periods %+v; want cancel %v, %d periods", refs, plan.Periods, tt.wantCancel, len(tt.wantWh))
			}
			for i := range refs {
				if refs[i] != tt.wantCancel[i] {
					t.Errorf("cancel %v, want %v", refs, tt.wantCancel)
				}
			}
			for i, want := range tt.wantWh {
				if plan.Periods[i].ImportWh != want {
					t.Errorf("period %s: %d Wh, want %d", plan.Periods[i].Period, plan.Periods[i].ImportWh, want)
				}
			}
			if plan.Periods[len(plan.Periods)-1].Period != mar {
				t.Errorf("last period %s, want %s", plan.Periods[len(plan.Periods)-1].Period, mar)
			}
		})
	}
}

func TestSpanEnergy(t *testing.T) {
	at := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	sample := func(hours int, wh int64) meter.CounterSample {
		return meter.CounterSample{Time: at.Add(time.Duration(hours) * time.Hour), ValueWh: wh}
	}
	tests := []struct {
		name    string
		give    consumption.Span
		want    int64
		wantErr bool
	}{
		{name: "plain", give: consumption.Span{Start: sample(0, 1000), End: sample(24, 5000), MaxPowerW: 10_000}, want: 4000},
		{name: "CT multiplier", give: consumption.Span{Start: sample(0, 1000), End: sample(24, 1500), MaxPowerW: 10_000, Multiplier: 40}, want: 20_000},
		{name: "rollover", give: consumption.Span{Start: sample(0, 99_990), End: sample(24, 10), MaxPowerW: 10_000, Spec: meter.CounterSpec{ModulusWh: 100_000}}, want: 20},
		{name: "reset cannot be billed from two reads", give: consumption.Span{Start: sample(0, 99_990), End: sample(24, 10), MaxPowerW: 10_000}, wantErr: true},
		{name: "implausible jump", give: consumption.Span{Start: sample(0, 0), End: sample(1, 1_000_000), MaxPowerW: 10_000}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.give.EnergyWh()
			if tt.wantErr {
				if !errors.Is(err, billing.ErrCalculation) {
					t.Fatalf("err = %v, want ErrCalculation", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("EnergyWh = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
