package tariff_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

// FuzzParse feeds arbitrary bytes to the tariff parser. Whatever it gets,
// Parse must not panic and must either return a validation error (never
// another kind) or a tariff that rates without panicking, whose lines add
// up to its total and whose errors are calculation or input errors.
func FuzzParse(f *testing.F) {
	f.Add([]byte(baseDoc))
	for _, name := range []string{"tariff-ci-tou.json"} {
		if b, err := os.ReadFile(filepath.Join("..", "testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"tenant":"t","plan":"p","version":"1","effective_from":"2024-01-01","currency":"INR","rounding":{"mode":"half_even","places":0},
		"energy":{"kind":"group_selected","groups":[{"when_total_upto_kwh":50,"kind":"flat","rate":"1.45"},{"when_total_upto_kwh":null,"kind":"non_telescopic","slabs":[{"upto_kwh":"100.5","rate":2},{"upto_kwh":null,"rate":"3"}]}]},
		"minimum_energy_charge":"40","per_unit_charges":[{"name":"fsa","rate":"1.27","applies_when_total_above_kwh":500}],
		"fixed":{"kind":"per_kw","rate":"10","load":{"basis":"derived_from_energy","kwh_per_step":"75","kw_per_step":"0.5"}},
		"demand":{"rate_per_kva":"144","minimum_kva":"20"},
		"taxes":[{"code":"ed","name":"duty","rate_pct":"5","base":["energy","minimum","fixed"]}],
		"subsidies":[{"code":"s","name":"subsidy","rate_pct":"50","base":["energy"],"cap":"800","when_total_upto_kwh":400}],
		"net_metering":{"settlement_rate_per_kwh":"2.5"},"round_off":{"places":0,"mode":"half_ceiling"}}`))
	f.Add([]byte(`{"energy":{"kind":"time_of_use","windows":[{"name":"a","from":"22:00","to":"06:00"},{"name":"b","from":"06:00","to":"22:00"}],"rates":{"a":"1","b":"2"}}}`))
	f.Add([]byte(`{"energy":{"kind":"flat","rate":"1e-9999"}}`))
	f.Add([]byte(`[{"tenant":"t"},{}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := tariff.Parse(data)
		if err != nil {
			var ve *billing.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("Parse error is not a validation error with problems: %v", err)
			}
			return
		}
		for _, kwh := range []int64{0, 1, 123_456, 2_000_000_000} {
			u := tariff.Usage{
				Period:           billing.Period{From: tf.EffectiveFrom, To: tf.EffectiveFrom.AddDays(29)},
				ImportWh:         kwh,
				SanctionedLoadKW: decimal.NewFromInt(5),
				MaxDemandKVA:     decimal.NewFromInt(12),
			}
			if len(tf.Energy.Windows) > 0 || groupsUseWindows(tf) {
				u.WindowWh = map[string]int64{}
				for i, w := range windowsOf(tf) {
					u.WindowWh[w] = 0
					if i == 0 {
						u.WindowWh[w] = kwh
					}
				}
			}
			r, err := tariff.Rate(tf, u)
			if err != nil {
				if !errors.Is(err, billing.ErrCalculation) && !errors.Is(err, billing.ErrInvalidInput) {
					t.Fatalf("Rate error of an unknown kind: %v", err)
				}
				continue
			}
			sum := decimal.Zero
			for _, l := range r.Lines {
				if l.Category != tariff.CategoryRoundOff {
					sum = sum.Add(l.Amount)
				}
			}
			if !sum.Equal(r.TotalBeforeRoundOff) || !r.TotalBeforeRoundOff.Add(r.RoundOff).Equal(r.Total) {
				t.Fatalf("lines %s, before round-off %s, round-off %s, total %s", sum, r.TotalBeforeRoundOff, r.RoundOff, r.Total)
			}
			if _, err := r.MarshalJSON(); err != nil {
				t.Fatalf("marshal result: %v", err)
			}
		}
	})
}

func groupsUseWindows(tf *tariff.Tariff) bool {
	for _, g := range tf.Energy.Groups {
		if len(g.Energy.Windows) > 0 {
			return true
		}
	}
	return false
}

// windowsOf lists the window names of the charge (or of its first
// time-of-use group).
func windowsOf(tf *tariff.Tariff) []string {
	ws := tf.Energy.Windows
	for _, g := range tf.Energy.Groups {
		if len(ws) == 0 {
			ws = g.Energy.Windows
		}
	}
	var names []string
	seen := map[string]bool{}
	for _, w := range ws {
		if !seen[w.Name] {
			seen[w.Name] = true
			names = append(names, w.Name)
		}
	}
	return names
}

// FuzzQuoteUsage feeds arbitrary usage documents to a quote of the example
// tariff: no panic, and errors are input or calculation errors.
func FuzzQuoteUsage(f *testing.F) {
	tariffJSON, err := os.ReadFile(filepath.Join("..", "testdata", "tariff-domestic.json"))
	if err != nil {
		f.Fatal(err)
	}
	s, err := tariff.ParseSchedule(tariffJSON)
	if err != nil {
		f.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join("..", "testdata", "usage-domestic.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"import_kwh": "12.345", "export_kwh": 3, "payment": {"days_late": 45}}`))
	f.Add([]byte(`{"period": {"from": "2019-04-01", "to": "2020-03-31"}, "cycle_months": 12, "import_kwh": "1e6"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := tariff.DecodeUsage(data)
		if err != nil {
			if !errors.Is(err, billing.ErrInvalidInput) {
				t.Fatalf("DecodeUsage error of an unknown kind: %v", err)
			}
			return
		}
		q, err := s.Quote(doc)
		if err != nil {
			if !errors.Is(err, billing.ErrCalculation) && !errors.Is(err, billing.ErrInvalidInput) {
				t.Fatalf("Quote error of an unknown kind: %v", err)
			}
			return
		}
		if _, err := q.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
	})
}
