package billing_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

// The test tariff of billing/billrun as an author would write it in YAML:
// comments, unquoted rates, a date, a null.
const yamlTariff = `# LT domestic, as ordered by the commission
tenant: test-discom
plan: lt-domestic
version: FY2024-25
effective_from: 2024-04-01
currency: INR
order_ref: test tariff order
rounding: {mode: half_up, places: 2}
energy:
  kind: telescopic
  slabs:
    - {upto_kwh: 200, rate: 3.00}
    - {upto_kwh: 400, rate: 4.50}
    - {upto_kwh: null, rate: 6.50}
fixed:
  kind: sanctioned_load_band_whole_load
  bands:
    - {upto_kw: 2, rate: 20}
    - {upto_kw: 5, rate: 50}
    - {upto_kw: ~, rate: 100}
taxes:
  - code: ed
    name: electricity duty
    rate_pct: 5
    base: [energy, fixed]
late_payment_surcharge: {rate_pct: 18, per: annum_by_days}
round_off: {places: 0, mode: half_ceiling}
`

func TestDocumentJSONFromYAML(t *testing.T) {
	js, err := os.ReadFile("billrun/testdata/tariff.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := tariff.Parse(js)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := billing.DocumentJSON([]byte(yamlTariff))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conv), `"rate":3.00`) {
		t.Fatalf("number literals not kept as written: %s", conv)
	}
	got, err := tariff.Parse(conv)
	if err != nil {
		t.Fatalf("the YAML tariff does not parse: %v\n%s", err, conv)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the YAML tariff differs from its JSON twin:\n%+v\n%+v", got, want)
	}
	// JSON passes through untouched.
	if same, err := billing.DocumentJSON(js); err != nil || string(same) != string(js) {
		t.Fatalf("JSON document changed: %v", err)
	}
	// A field error in YAML is reported by the same path as in JSON.
	bad, err := billing.DocumentJSON([]byte(strings.Replace(yamlTariff, "rate: 4.50", "rate: -4.50", 1)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tariff.Parse(bad)
	var ve *billing.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "energy.slabs[1].rate") {
		t.Fatalf("negative rate: %v, want a ValidationError at energy.slabs[1].rate", err)
	}
}

func TestDocumentJSONRefusals(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"syntax", "plan: [unclosed\n", "neither JSON nor YAML"},
		{"empty", "  \n", "is empty"},
		{"hex number", "plan: x\nrate: 0x10\n", "line 2: number \"0x10\""},
		{"repeated key", "plan: a\nplan: b\n", "repeated"},
		{"merge key", "base: &b {rate: 1}\nslab:\n  <<: *b\n", "merge"},
		{"two documents", "plan: a\n---\nplan: b\n", "more than one YAML document"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := billing.DocumentJSON([]byte(tt.doc))
			var ve *billing.ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a ValidationError containing %q", err, tt.want)
			}
		})
	}
}
