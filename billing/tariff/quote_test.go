package tariff_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

var update = flag.Bool("update", false, "rewrite the quote golden files in ../testdata")

// TestQuoteExamples quotes the example tariff and usage files and compares
// the JSON with golden files (go test -update rewrites them). The figures
// the goldens hold are checked by hand below, so a rewrite cannot quietly
// bless a wrong bill.
func TestQuoteExamples(t *testing.T) {
	tests := []struct {
		name string
		want map[string]string // hand-computed figures: path in the JSON → value
	}{
		{
			name: "domestic",
			// 300 kWh over 17 Jul–15 Aug 2019 (30 days), 2 kW; fixed charge cut
			// from 125/kW to the 20/kW band on 1 Aug, PPAC 7.25% and duty 5%.
			want: map[string]string{
				"subtotals.energy":        "1050.00", // 200 × 3.00 + 100 × 4.50, split 15/15 days
				"subtotals.fixed":         "145.00",  // 2 × 125 × 15/30 + 2 × 20 × 15/30
				"lines.ppac":              "86.64",   // 7.25% of 1195.00 = 86.6375
				"lines.ed":                "64.08",   // 5% of (1195 + 86.6375) = 64.081875
				"round_off":               "0.28",    // 1345.72 → 1346
				"total":                   "1346.00",
				"payment.rebate":          "13.46",   // 1% of 1345.72 within 7 days
				"payment.payable_rounded": "1333.00", // 1346.00 − 13.46 = 1332.54 → 1333
			},
		},
		{
			name: "ci-tou",
			want: map[string]string{
				"subtotals.demand": "5040.00",  // 35 kVA × 144
				"subtotals.energy": "49800.00", // 28600 + 9900 + 11300
				"total":            "54840.00",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tariffJSON := readTestdata(t, "tariff-"+tt.name+".json")
			usageJSON := readTestdata(t, "usage-"+tt.name+".json")
			q, err := tariff.QuoteJSON(tariffJSON, usageJSON)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(q, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("..", "testdata", "quote-"+tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("quote differs from %s:\n%s", golden, got)
			}
			// The result as demand estimates: one per line code, same total.
			sum := decimal.Zero
			heads := map[billing.TaxHead]bool{}
			for _, e := range q.Result.Estimates() {
				if heads[e.Head] {
					t.Errorf("head %s twice", e.Head)
				}
				heads[e.Head] = true
				sum = sum.Add(e.Amount)
			}
			if !sum.Equal(q.Result.Total) || !heads["energy"] || heads["round_off"] == q.Result.RoundOff.IsZero() {
				t.Errorf("estimates %v sum to %s, want %s", q.Result.Estimates(), sum, q.Result.Total)
			}
			var doc map[string]any
			if err := json.Unmarshal(got, &doc); err != nil {
				t.Fatal(err)
			}
			for path, value := range tt.want {
				if v := lookup(doc, path); v != value {
					t.Errorf("%s = %v, want %s", path, v, value)
				}
			}
		})
	}
}

// lookup finds "a.b" in decoded JSON; "lines.<code>" is the amount of the
// line with that code.
func lookup(doc map[string]any, path string) any {
	var cur any = doc
	for len(path) > 0 {
		key, rest, _ := cut(path)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if key == "lines" {
			for _, l := range m["lines"].([]any) {
				if line := l.(map[string]any); line["code"] == rest {
					return line["amount"]
				}
			}
			return nil
		}
		cur, path = m[key], rest
	}
	return cur
}

func cut(path string) (string, string, bool) {
	for i := range path {
		if path[i] == '.' {
			return path[:i], path[i+1:], true
		}
	}
	return path, "", false
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestQuoteErrors(t *testing.T) {
	tariffJSON := readTestdata(t, "tariff-domestic.json")
	tests := []struct {
		name      string
		giveUsage string
		wantKind  error
		wantPath  string
	}{
		{name: "unknown field", giveUsage: `{"import_kwhs": "1"}`, wantKind: billing.ErrInvalidInput, wantPath: ""},
		{name: "finer than a Wh", giveUsage: `{"import_kwh": "1.0005"}`, wantKind: billing.ErrInvalidInput, wantPath: "import_kwh"},
		{name: "negative energy", giveUsage: `{"import_kwh": "-5"}`, wantKind: billing.ErrInvalidInput, wantPath: "import_kwh"},
		{name: "bad date", giveUsage: `{"period": {"from": "2019-13-01", "to": "2019-12-31"}}`, wantKind: billing.ErrInvalidInput, wantPath: "period.from"},
		{name: "period reversed", giveUsage: `{"period": {"from": "2019-06-01", "to": "2019-05-01"}}`, wantKind: billing.ErrInvalidInput, wantPath: "period.to"},
		{name: "before the first version", giveUsage: `{"period": {"from": "2019-03-01", "to": "2019-03-31"}, "import_kwh": "10"}`, wantKind: billing.ErrCalculation},
		{name: "credit without net metering", giveUsage: `{"import_kwh": "10", "credit_in_kwh": "5"}`, wantKind: billing.ErrCalculation},
		{name: "windows without time-of-use", giveUsage: `{"tou_kwh": {"peak": "5"}, "import_kwh": "6"}`, wantKind: billing.ErrInvalidInput, wantPath: "import_kwh"},
		{name: "cycle not containing period", giveUsage: `{"period": {"from": "2019-05-01", "to": "2019-05-31"}, "cycle": {"from": "2019-05-02", "to": "2019-05-31"}}`, wantKind: billing.ErrInvalidInput, wantPath: "cycle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tariff.QuoteJSON(tariffJSON, []byte(tt.giveUsage))
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			var ve *billing.ValidationError
			if tt.wantKind == billing.ErrInvalidInput {
				if !errors.As(err, &ve) || ve.Fields[0].Path != tt.wantPath {
					t.Errorf("err = %v, want a problem at %q", err, tt.wantPath)
				}
			}
		})
	}
}
