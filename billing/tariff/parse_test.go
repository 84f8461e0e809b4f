package tariff_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

// baseDoc is a small valid tariff; tests replace top-level keys of it.
const baseDoc = `{
  "tenant": "t", "plan": "p", "version": "1", "effective_from": "2024-04-01", "currency": "INR",
  "rounding": {"mode": "half_up", "places": 2},
  "energy": {"kind": "telescopic", "slabs": [{"upto_kwh": 100, "rate": "3"}, {"upto_kwh": null, "rate": "5"}]}
}`

// withKeys returns baseDoc with the top-level keys of patch replacing its
// own (a null value removes the key).
func withKeys(t *testing.T, patch string) []byte {
	t.Helper()
	var doc, p map[string]json.RawMessage
	if err := json.Unmarshal([]byte(baseDoc), &doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(patch), &p); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	for k, v := range p {
		if string(v) == "null" {
			delete(doc, k)
		} else {
			doc[k] = v
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseValid(t *testing.T) {
	tf, err := tariff.Parse([]byte(baseDoc))
	if err != nil {
		t.Fatal(err)
	}
	if tf.Energy.Kind != tariff.EnergyTelescopic || len(tf.Energy.Slabs) != 2 || !tf.Energy.Slabs[1].Open {
		t.Errorf("energy compiled to %+v", tf.Energy)
	}
	if tf.Rounding != (billing.Rounding{Mode: billing.RoundHalfUp, Places: 2}) || tf.Energy.Rounding != tf.Rounding {
		t.Errorf("rounding %v / %v, want half_up/2 inherited", tf.Rounding, tf.Energy.Rounding)
	}
}

// TestParseProblems checks that each mistake is reported at the path of
// the field to fix.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name     string
		give     string // top-level keys replacing baseDoc's
		wantPath string
		wantText string
	}{
		{name: "no rounding", give: `{"rounding": null}`, wantPath: "rounding", wantText: "required"},
		{name: "rounding without places", give: `{"rounding": {"mode": "half_up"}}`, wantPath: "rounding.places", wantText: "required"},
		{name: "unknown rounding mode", give: `{"rounding": {"mode": "bankers", "places": 2}}`, wantPath: "rounding.mode", wantText: "unknown rounding mode"},
		{name: "bad currency", give: `{"currency": "rupees"}`, wantPath: "currency", wantText: "ISO 4217"},
		{name: "bad date", give: `{"effective_from": "01/04/2024"}`, wantPath: "effective_from", wantText: "YYYY-MM-DD"},
		{name: "missing tenant", give: `{"tenant": null}`, wantPath: "tenant", wantText: "required"},
		{name: "wrong JSON type", give: `{"tenant": 5}`, wantPath: "tenant", wantText: "want a string"},
		{name: "unknown field", give: `{"energy_charge": {}}`, wantPath: "", wantText: `unknown field "energy_charge"`},
		{name: "no energy", give: `{"energy": null}`, wantPath: "energy", wantText: "required"},
		{name: "unknown energy kind", give: `{"energy": {"kind": "stepped"}}`, wantPath: "energy.kind", wantText: `got "stepped"`},
		{name: "slabs not increasing", give: `{"energy": {"kind": "telescopic", "slabs": [{"upto_kwh": 200, "rate": "3"}, {"upto_kwh": 100, "rate": "4"}, {"upto_kwh": null, "rate": "5"}]}}`,
			wantPath: "energy.slabs[1].upto_kwh", wantText: "greater than the previous bound 200"},
		{name: "last slab closed", give: `{"energy": {"kind": "telescopic", "slabs": [{"upto_kwh": 200, "rate": "3"}, {"upto_kwh": 400, "rate": "4"}]}}`,
			wantPath: "energy.slabs[1].upto_kwh", wantText: "open-ended"},
		{name: "open slab in the middle", give: `{"energy": {"kind": "telescopic", "slabs": [{"upto_kwh": null, "rate": "3"}, {"upto_kwh": null, "rate": "4"}]}}`,
			wantPath: "energy.slabs[0].upto_kwh", wantText: "only the last"},
		{name: "zero bound", give: `{"energy": {"kind": "telescopic", "slabs": [{"upto_kwh": 0, "rate": "3"}, {"upto_kwh": null, "rate": "4"}]}}`,
			wantPath: "energy.slabs[0].upto_kwh", wantText: "greater than 0"},
		{name: "negative rate", give: `{"energy": {"kind": "flat", "rate": "-1"}}`, wantPath: "energy.rate", wantText: "must not be negative"},
		{name: "rate not a number", give: `{"energy": {"kind": "flat", "rate": "three"}}`, wantPath: "energy.rate", wantText: "decimal number"},
		{name: "rate a boolean", give: `{"energy": {"kind": "flat", "rate": true}}`, wantPath: "energy.rate", wantText: "decimal number"},
		{name: "too many places", give: `{"energy": {"kind": "flat", "rate": "0.0000001"}}`, wantPath: "energy.rate", wantText: "decimal places"},
		{name: "too large", give: `{"energy": {"kind": "flat", "rate": "1e15"}}`, wantPath: "energy.rate", wantText: "larger than"},
		{name: "huge exponent", give: `{"energy": {"kind": "flat", "rate": "1e-9999"}}`, wantPath: "energy.rate", wantText: "decimal number"},
		{name: "field of another kind", give: `{"energy": {"kind": "flat", "rate": "3", "slabs": [{"upto_kwh": null, "rate": "3"}]}}`,
			wantPath: "energy.slabs", wantText: `not used by kind "flat"`},
		{name: "group slabs short of the group", give: `{"energy": {"kind": "group_selected", "groups": [
			{"when_total_upto_kwh": 500, "kind": "telescopic", "slabs": [{"upto_kwh": 250, "rate": "5"}, {"upto_kwh": 400, "rate": "6"}]},
			{"when_total_upto_kwh": null, "kind": "flat", "rate": "7"}]}}`,
			wantPath: "energy.groups[0].slabs[1].upto_kwh", wantText: "reach the group's when_total_upto_kwh 500"},
		{name: "nested groups", give: `{"energy": {"kind": "group_selected", "groups": [{"when_total_upto_kwh": null, "kind": "group_selected", "groups": []}]}}`,
			wantPath: "energy.groups[0].kind", wantText: "cannot itself be group_selected"},
		{name: "day not covered", give: `{"energy": {"kind": "time_of_use", "windows": [
			{"name": "day", "from": "06:00", "to": "18:00"}, {"name": "night", "from": "19:00", "to": "06:00"}],
			"rates": {"day": "3", "night": "2"}}}`,
			wantPath: "energy.windows", wantText: "18:00 to 19:00 is in no window"},
		{name: "windows overlap", give: `{"energy": {"kind": "time_of_use", "windows": [
			{"name": "day", "from": "06:00", "to": "18:00"}, {"name": "night", "from": "17:00", "to": "06:00"}],
			"rates": {"day": "3", "night": "2"}}}`,
			wantPath: "energy.windows[1]", wantText: "overlaps windows[0] at 17:00"},
		{name: "window without rate", give: `{"energy": {"kind": "time_of_use", "windows": [
			{"name": "day", "from": "06:00", "to": "18:00"}, {"name": "night", "from": "18:00", "to": "06:00"}],
			"rates": {"day": "3"}}}`,
			wantPath: "energy.rates", wantText: `missing the rate of window "night"`},
		{name: "rate without window", give: `{"energy": {"kind": "time_of_use", "windows": [{"name": "all", "from": "00:00", "to": "24:00"}],
			"rates": {"all": "3", "peak": "4"}}}`,
			wantPath: "energy.rates.peak", wantText: `no window is named "peak"`},
		{name: "bad clock", give: `{"energy": {"kind": "time_of_use", "windows": [{"name": "all", "from": "00:00", "to": "25:00"}], "rates": {"all": "3"}}}`,
			wantPath: "energy.windows[0].to", wantText: "00:00 to 24:00"},
		{name: "load bands not increasing", give: `{"fixed": {"kind": "sanctioned_load_band_whole_load", "bands": [{"upto_kw": "5", "rate": "20"}, {"upto_kw": "2", "rate": "50"}, {"upto_kw": null, "rate": "80"}]}}`,
			wantPath: "fixed.bands[1].upto_kw", wantText: "greater than the previous bound 5"},
		{name: "per-kW without rate", give: `{"fixed": {"kind": "per_kw"}}`, wantPath: "fixed.rate", wantText: "required"},
		{name: "derived load step zero", give: `{"fixed": {"kind": "per_kw", "rate": "10", "load": {"basis": "derived_from_energy", "kwh_per_step": "0", "kw_per_step": "0.5"}}}`,
			wantPath: "fixed.load.kwh_per_step", wantText: "greater than 0"},
		{name: "tax base names a later line", give: `{"taxes": [{"code": "ed", "name": "duty", "rate_pct": "5", "base": ["energy", "fsa"]}], "per_unit_charges": null}`,
			wantPath: "taxes[0].base[1]", wantText: `"fsa" is not a line defined before this one`},
		{name: "tax without base", give: `{"taxes": [{"code": "ed", "name": "duty", "rate_pct": "5"}]}`, wantPath: "taxes[0].base", wantText: "required"},
		{name: "duplicate code", give: `{"per_unit_charges": [{"name": "duty", "rate": "0.1"}, {"code": "duty", "name": "other", "rate": "0.2"}]}`,
			wantPath: "per_unit_charges[1].code", wantText: "used by an earlier line"},
		{name: "built-in code", give: `{"taxes": [{"code": "energy", "name": "x", "rate_pct": "1", "base": ["energy"]}]}`,
			wantPath: "taxes[0].code", wantText: "built-in"},
		{name: "thresholds crossed", give: `{"per_unit_charges": [{"name": "fsa", "rate": "1", "applies_when_total_above_kwh": 500, "applies_when_total_upto_kwh": 100}]}`,
			wantPath: "per_unit_charges[0].applies_when_total_upto_kwh", wantText: "greater than applies_when_total_above_kwh"},
		{name: "subsidy over 100%", give: `{"subsidies": [{"code": "s", "name": "s", "rate_pct": "150", "base": ["energy"]}]}`,
			wantPath: "subsidies[0].rate_pct", wantText: "at most 100 percent"},
		{name: "rebate tiers out of order", give: `{"prompt_payment_rebate": {"tiers": [{"within_days": 14, "rate_pct": "0.5"}, {"within_days": 7, "rate_pct": "1"}]}}`,
			wantPath: "prompt_payment_rebate.tiers[1].within_days", wantText: "greater than 14"},
		{name: "late surcharge accrual", give: `{"late_payment_surcharge": {"rate_pct": "18", "per": "year"}}`,
			wantPath: "late_payment_surcharge.per", wantText: "annum_by_days or month_or_part"},
		{name: "net metering with time of use", give: `{"net_metering": {}, "energy": {"kind": "time_of_use", "windows": [{"name": "all", "from": "00:00", "to": "24:00"}], "rates": {"all": "3"}}}`,
			wantPath: "net_metering", wantText: "not supported with a time_of_use"},
		{name: "round-off mode", give: `{"round_off": {"places": 0, "mode": "nearest"}}`, wantPath: "round_off.mode", wantText: "unknown rounding mode"},
		{name: "proration basis", give: `{"proration": {"fixed_charges": "monthly"}}`, wantPath: "proration.fixed_charges", wantText: "cycle_days"},
		{name: "component rounding places", give: `{"demand": {"rate_per_kva": "144", "rounding": {"mode": "up", "places": 9}}}`,
			wantPath: "demand.rounding.places", wantText: "want 0..6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tariff.Parse(withKeys(t, tt.give))
			var ve *billing.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, billing.ErrInvalidInput) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			for _, f := range ve.Fields {
				if f.Path == tt.wantPath && strings.Contains(f.Problem, tt.wantText) {
					return
				}
			}
			t.Errorf("problems %q, want %q at %q", ve.Fields, tt.wantText, tt.wantPath)
		})
	}
}

// TestParseReportsEveryProblem: an official sees all mistakes at once.
func TestParseReportsEveryProblem(t *testing.T) {
	_, err := tariff.Parse(withKeys(t, `{"currency": "x", "tenant": "", "energy": {"kind": "flat", "rate": "-2"}}`))
	var ve *billing.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	paths := map[string]bool{}
	for _, f := range ve.Fields {
		paths[f.Path] = true
	}
	for _, want := range []string{"currency", "tenant", "energy.rate"} {
		if !paths[want] {
			t.Errorf("no problem reported at %q in %v", want, ve)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantPath string // "" for success
	}{
		{name: "one document", give: baseDoc},
		{name: "array of versions", give: `[` + baseDoc + `,` + strings.Replace(baseDoc, "2024-04-01", "2024-10-01", 1) + `]`},
		{name: "same effective date twice", give: `[` + baseDoc + `,` + baseDoc + `]`, wantPath: "effective_from"},
		{name: "different plans", give: `[` + baseDoc + `,` + strings.Replace(strings.Replace(baseDoc, `"p"`, `"q"`, 1), "2024-04-01", "2024-10-01", 1) + `]`, wantPath: "[1].plan"},
		{name: "bad second version", give: `[` + baseDoc + `,` + strings.Replace(baseDoc, `"INR"`, `"inr"`, 1) + `]`, wantPath: "[1].currency"},
		{name: "empty array", give: `[]`, wantPath: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tariff.ParseSchedule([]byte(tt.give))
			if tt.wantPath == "" && tt.name != "empty array" {
				if err != nil {
					t.Fatal(err)
				}
				if len(s.Versions()) == 0 {
					t.Fatal("no versions")
				}
				return
			}
			var ve *billing.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			if ve.Fields[0].Path != tt.wantPath {
				t.Errorf("problem at %q (%v), want %q", ve.Fields[0].Path, ve, tt.wantPath)
			}
		})
	}
}
