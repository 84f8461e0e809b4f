package tariff_test

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

const derc = `"energy": {"kind": "telescopic", "slabs": [{"upto_kwh": 200, "rate": "3.00"}, {"upto_kwh": 400, "rate": "4.50"}, {"upto_kwh": null, "rate": "6.50"}]}`

func TestRateFeatures(t *testing.T) {
	june := billing.Period{From: billing.NewDate(2024, 6, 1), To: billing.NewDate(2024, 6, 30)}
	tests := []struct {
		name      string
		giveDoc   string // top-level keys replacing baseDoc's
		giveUsage tariff.Usage
		want      map[tariff.LineCategory]string // subtotals
		wantTotal string
	}{
		{
			// Connected on 21 June: 10 of the cycle's 30 days. Slab bounds
			// and the fixed charge are a third: 200/3 kWh at 3.00 and the
			// rest at 4.50; 2 kW × 20 × 10/30.
			name:      "partial first period",
			giveDoc:   `{` + derc + `, "fixed": {"kind": "per_kw", "rate": "20"}}`,
			giveUsage: tariff.Usage{Period: billing.Period{From: billing.NewDate(2024, 6, 21), To: june.To}, Cycle: june, ImportWh: 100_000, SanctionedLoadKW: decimal.NewFromInt(2)},
			want:      map[tariff.LineCategory]string{tariff.CategoryEnergy: "350.00", tariff.CategoryFixed: "13.33"},
			wantTotal: "363.33",
		},
		{
			name:      "bi-monthly cycle doubles slabs and monthly charges",
			giveDoc:   `{` + derc + `, "fixed": {"kind": "per_connection", "amount": "50"}}`,
			giveUsage: tariff.Usage{Period: billing.Period{From: june.From, To: billing.NewDate(2024, 7, 31)}, CycleMonths: 2, ImportWh: 500_000},
			want:      map[tariff.LineCategory]string{tariff.CategoryEnergy: "1650.00", tariff.CategoryFixed: "100.00"}, // 400 × 3.00 + 100 × 4.50
			wantTotal: "1750.00",
		},
		{
			name:      "days of 30: a 31-day month counts 31/30",
			giveDoc:   `{` + derc + `, "fixed": {"kind": "per_connection", "amount": "30"}, "proration": {"fixed_charges": "days_of_30"}}`,
			giveUsage: tariff.Usage{Period: billing.Period{From: billing.NewDate(2024, 7, 1), To: billing.NewDate(2024, 7, 31)}, ImportWh: 100_000},
			want:      map[tariff.LineCategory]string{tariff.CategoryEnergy: "300.00", tariff.CategoryFixed: "31.00"},
			wantTotal: "331.00",
		},
		{
			// Delhi: energy free up to 200 kWh, half (at most 800) up to 400.
			name: "subsidies as their own lines",
			giveDoc: `{` + derc + `, "subsidies": [
				{"code": "free", "name": "subsidy up to 200 kWh", "rate_pct": "100", "base": ["energy"], "when_total_upto_kwh": 200},
				{"code": "half", "name": "subsidy 201-400 kWh", "rate_pct": "50", "base": ["energy"], "cap": "800", "when_total_above_kwh": 200, "when_total_upto_kwh": 400}]}`,
			giveUsage: tariff.Usage{Period: june, ImportWh: 350_000},
			want:      map[tariff.LineCategory]string{tariff.CategoryEnergy: "1275.00", tariff.CategorySubsidy: "-637.50"},
			wantTotal: "637.50",
		},
		{
			name:      "non-telescopic: every kWh at the slab reached",
			giveDoc:   `{"energy": {"kind": "non_telescopic", "slabs": [{"upto_kwh": 100, "rate": "3"}, {"upto_kwh": 300, "rate": "4"}, {"upto_kwh": null, "rate": "5"}]}}`,
			giveUsage: tariff.Usage{Period: june, ImportWh: 300_000},
			want:      map[tariff.LineCategory]string{tariff.CategoryEnergy: "1200.00"},
			wantTotal: "1200.00",
		},
		{
			// KSEB: up to 500 kWh telescopic; above, time-of-use rates.
			name: "time-of-use above a threshold, slabs below",
			giveDoc: `{"energy": {"kind": "group_selected", "groups": [
				{"when_total_upto_kwh": 500, "kind": "telescopic", "slabs": [{"upto_kwh": 250, "rate": "5"}, {"upto_kwh": null, "rate": "6"}]},
				{"when_total_upto_kwh": null, "kind": "time_of_use", "windows": [
					{"name": "normal", "from": "06:00", "to": "18:00"}, {"name": "peak", "from": "18:00", "to": "22:00"}, {"name": "off", "from": "22:00", "to": "06:00"}],
				 "rates": {"normal": "7.00", "peak": "8.40", "off": "6.30"}}]}}`,
			giveUsage: tariff.Usage{Period: june, ImportWh: 600_000, WindowWh: map[string]int64{"normal": 300_000, "peak": 200_000, "off": 100_000}},
			want:      map[tariff.LineCategory]string{tariff.CategoryEnergy: "4410.00"}, // 2100 + 1680 + 630
			wantTotal: "4410.00",
		},
		{
			name:      "net-metering credit paid out at year end",
			giveDoc:   `{` + derc + `, "net_metering": {"settlement_rate_per_kwh": "2.50"}}`,
			giveUsage: tariff.Usage{Period: june, ImportWh: 100_000, ExportWh: 150_000, CreditInWh: 20_000, SettleCredit: true},
			want:      map[tariff.LineCategory]string{tariff.CategoryEnergy: "0.00", tariff.CategorySettlement: "-175.00"}, // 70 kWh × 2.50
			wantTotal: "-175.00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf, err := tariff.Parse(withKeys(t, tt.giveDoc))
			if err != nil {
				t.Fatal(err)
			}
			r, err := tariff.Rate(tf, tt.giveUsage)
			if err != nil {
				t.Fatal(err)
			}
			for c, want := range tt.want {
				wantAmount(t, string(c), r.Subtotal(c), want)
			}
			wantAmount(t, "total", r.Total, tt.wantTotal)
		})
	}
}

func TestRateErrors(t *testing.T) {
	june := billing.Period{From: billing.NewDate(2024, 6, 1), To: billing.NewDate(2024, 6, 30)}
	tou := `{"energy": {"kind": "time_of_use", "windows": [{"name": "all", "from": "00:00", "to": "24:00"}], "rates": {"all": "3"}}}`
	tests := []struct {
		name      string
		giveDoc   string
		giveUsage tariff.Usage
		wantErr   error
	}{
		{name: "time-of-use without windows", giveDoc: tou, giveUsage: tariff.Usage{Period: june, ImportWh: 5}, wantErr: billing.ErrCalculation},
		{name: "energy in an unknown window", giveDoc: tou, giveUsage: tariff.Usage{Period: june, ImportWh: 5, WindowWh: map[string]int64{"peak": 5}}, wantErr: billing.ErrCalculation},
		{name: "windows not adding up", giveDoc: tou, giveUsage: tariff.Usage{Period: june, ImportWh: 6, WindowWh: map[string]int64{"all": 5}}, wantErr: billing.ErrInvalidInput},
		{name: "settlement without a rate", giveDoc: `{"net_metering": {}}`, giveUsage: tariff.Usage{Period: june, ExportWh: 5, SettleCredit: true}, wantErr: billing.ErrCalculation},
		{name: "negative import", giveDoc: `{}`, giveUsage: tariff.Usage{Period: june, ImportWh: -1}, wantErr: billing.ErrInvalidInput},
		{name: "period before the tariff", giveDoc: `{}`, giveUsage: tariff.Usage{Period: billing.Period{From: billing.NewDate(2024, 3, 1), To: billing.NewDate(2024, 3, 31)}}, wantErr: billing.ErrCalculation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf, err := tariff.Parse(withKeys(t, tt.giveDoc))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tariff.Rate(tf, tt.giveUsage); !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
