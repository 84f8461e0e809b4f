package tariff_test

import (
	"fmt"

	"github.com/meterd/meterd/billing/tariff"
)

// A tariff is a JSON document: here telescopic energy slabs, the DERC
// fixed charge on the sanctioned load's band (whole load at the band's
// rate), a duty on energy and fixed charges and a whole-rupee round-off.
func ExampleQuoteJSON() {
	tariffJSON := []byte(`{
	  "tenant": "demo-discom", "plan": "LT-domestic", "version": "2019-08",
	  "effective_from": "2019-08-01", "currency": "INR",
	  "rounding": {"mode": "half_up", "places": 2},
	  "energy": {"kind": "telescopic", "slabs": [
	    {"upto_kwh": 200, "rate": "3.00"}, {"upto_kwh": 400, "rate": "4.50"}, {"upto_kwh": null, "rate": "6.50"}]},
	  "fixed": {"kind": "sanctioned_load_band_whole_load", "bands": [
	    {"upto_kw": "2", "rate": "20"}, {"upto_kw": "5", "rate": "50"}, {"upto_kw": null, "rate": "100"}]},
	  "taxes": [{"code": "ed", "name": "electricity duty", "rate_pct": "5", "base": ["energy", "fixed"]}],
	  "round_off": {"places": 0, "mode": "half_ceiling"}
	}`)
	usageJSON := []byte(`{"period": {"from": "2019-09-01", "to": "2019-09-30"}, "sanctioned_load_kw": "4", "import_kwh": "350.5"}`)

	q, err := tariff.QuoteJSON(tariffJSON, usageJSON)
	if err != nil {
		fmt.Println(err)
		return
	}
	// 600 + 150.5 × 4.50 + 4 kW × 50 + 5% of 1477.25 = 1551.11.
	for _, l := range q.Result.Lines {
		fmt.Printf("%-22s %10s\n", l.Description, l.Amount.StringFixed(2))
	}
	fmt.Printf("%-22s %10s\n", "total", q.Result.Total.StringFixed(2))
	// Output:
	// energy 0-200               600.00
	// energy 201-350.5           677.25
	// fixed                      200.00
	// electricity duty            73.86
	// round off                   -0.11
	// total                     1551.00
}
