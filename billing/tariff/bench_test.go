package tariff_test

import (
	"encoding/json"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

// benchTariff is a realistic domestic tariff: five telescopic slabs, a
// fixed charge on the sanctioned load's band, a 5% duty on energy and
// fixed charges and a whole-rupee round-off.
const benchTariff = `{
  "tenant": "bench", "plan": "LT-domestic", "version": "2024", "effective_from": "2024-04-01", "currency": "INR",
  "rounding": {"mode": "half_up", "places": 2},
  "energy": {"kind": "telescopic", "slabs": [
    {"upto_kwh": 200, "rate": "3.00"}, {"upto_kwh": 400, "rate": "4.50"}, {"upto_kwh": 800, "rate": "6.50"},
    {"upto_kwh": 1200, "rate": "7.00"}, {"upto_kwh": null, "rate": "8.00"}]},
  "fixed": {"kind": "sanctioned_load_band_whole_load", "bands": [
    {"upto_kw": "2", "rate": "20"}, {"upto_kw": "5", "rate": "50"}, {"upto_kw": "15", "rate": "100"},
    {"upto_kw": "25", "rate": "200"}, {"upto_kw": null, "rate": "250"}]},
  "taxes": [{"code": "ed", "name": "electricity duty", "rate_pct": "5", "base": ["energy", "fixed"]}],
  "round_off": {"places": 0, "mode": "half_ceiling"}
}`

const benchUsage = `{"period": {"from": "2024-05-01", "to": "2024-05-31"}, "sanctioned_load_kw": "4", "import_kwh": "612.345"}`

func benchUsageValue() tariff.Usage {
	return tariff.Usage{
		Period:           billing.Period{From: billing.NewDate(2024, 5, 1), To: billing.NewDate(2024, 5, 31)},
		SanctionedLoadKW: decimal.NewFromInt(4),
		ImportWh:         612_345,
	}
}

func reportQuotes(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "quotes/s")
}

// BenchmarkQuoteRate rates one month of usage against a parsed tariff: the
// work a bill run does per connection (the issue's ≥ 100,000 quotes/s per
// core target).
func BenchmarkQuoteRate(b *testing.B) {
	tf, err := tariff.Parse([]byte(benchTariff))
	if err != nil {
		b.Fatal(err)
	}
	u := benchUsageValue()
	b.ReportAllocs()
	for b.Loop() {
		r, err := tariff.Rate(tf, u)
		if err != nil || r.Total.IsZero() {
			b.Fatal(err)
		}
	}
	reportQuotes(b)
}

// BenchmarkQuoteRateSplit rates a month that spans a tariff change.
func BenchmarkQuoteRateSplit(b *testing.B) {
	v1, err := tariff.Parse([]byte(benchTariff))
	if err != nil {
		b.Fatal(err)
	}
	v2 := *v1
	v2.Version, v2.EffectiveFrom = "2024 rev", billing.NewDate(2024, 5, 17)
	s, err := tariff.NewSchedule(v1, &v2)
	if err != nil {
		b.Fatal(err)
	}
	u := benchUsageValue()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Rate(u); err != nil {
			b.Fatal(err)
		}
	}
	reportQuotes(b)
}

// BenchmarkQuoteJSON is the quote command end to end: parse and validate
// the tariff document, decode the usage, rate, render the JSON.
func BenchmarkQuoteJSON(b *testing.B) {
	tariffJSON, usageJSON := []byte(benchTariff), []byte(benchUsage)
	b.ReportAllocs()
	for b.Loop() {
		q, err := tariff.QuoteJSON(tariffJSON, usageJSON)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(q); err != nil {
			b.Fatal(err)
		}
	}
	reportQuotes(b)
}

// BenchmarkBaselineDecimalChain is the same-run baseline: the bare decimal
// arithmetic of this bill done by hand (five slab products and sums, the
// fixed charge, the duty, per-line half-up rounding and the round-off),
// with none of the engine around it. The engine's cost is reported as a
// multiple of this, which holds across noisy machines better than ns/op.
func BenchmarkBaselineDecimalChain(b *testing.B) {
	qty := []decimal.Decimal{decimal.NewFromInt(200), decimal.NewFromInt(200), decimal.RequireFromString("212.345")}
	rates := []decimal.Decimal{decimal.RequireFromString("3.00"), decimal.RequireFromString("4.50"), decimal.RequireFromString("6.50")}
	load, band, pct := decimal.NewFromInt(4), decimal.NewFromInt(50), decimal.NewFromInt(5)
	b.ReportAllocs()
	for b.Loop() {
		total, base := decimal.Zero, decimal.Zero
		for i := range qty {
			line := qty[i].Mul(rates[i])
			base = base.Add(line)
			total = total.Add(line.Round(2))
		}
		fixed := load.Mul(band)
		base = base.Add(fixed)
		total = total.Add(fixed.Round(2)).Add(base.Mul(pct).Shift(-2).Round(2))
		if billing.RoundOff(total, 0, billing.RoundHalfCeiling).Add(total).IsZero() {
			b.Fatal("zero bill")
		}
	}
}

// BenchmarkBaselineDecodeUsage is a second baseline: decoding the usage
// document with encoding/json, the least a quote from JSON must do.
func BenchmarkBaselineDecodeUsage(b *testing.B) {
	data := []byte(benchUsage)
	b.ReportAllocs()
	for b.Loop() {
		var doc tariff.UsageDoc
		if err := json.Unmarshal(data, &doc); err != nil {
			b.Fatal(err)
		}
	}
}
