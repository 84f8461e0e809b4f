package tariff

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Document is a tariff version as authored: the JSON an official writes and
// the storage layer keeps verbatim. Parse validates it and compiles it into
// a Tariff. Amounts and quantities are decimal strings or JSON numbers
// (both are read exactly, never through float64); bounds that may be open
// ("and above") are null.
//
// Evaluation order, which is also the order a tax or subsidy base may refer
// to: energy, minimum, per_unit_charges, fixed, demand, taxes (each may use
// earlier taxes), subsidies, then the round-off line.
type Document struct {
	Tenant        string `json:"tenant"`
	Plan          string `json:"plan"`           // the tariff plan a connection names
	Version       string `json:"version"`        // human label, e.g. "FY2019-20 rev 2"
	EffectiveFrom string `json:"effective_from"` // YYYY-MM-DD, tenant's civil date
	Currency      string `json:"currency"`       // ISO 4217, e.g. "INR"
	OrderRef      string `json:"order_ref,omitempty"`

	// Rounding is the default rounding of every line; a component may
	// declare its own.
	Rounding  *RoundingDoc  `json:"rounding"`
	Proration *ProrationDoc `json:"proration,omitempty"`

	Energy               *EnergyDoc      `json:"energy"`
	MinimumEnergyCharge  Number          `json:"minimum_energy_charge"` // per connection per month, towards energy
	PerUnitCharges       []PerUnitDoc    `json:"per_unit_charges,omitempty"`
	Fixed                *FixedDoc       `json:"fixed,omitempty"`
	Demand               *DemandDoc      `json:"demand,omitempty"`
	Taxes                []TaxDoc        `json:"taxes,omitempty"`
	Subsidies            []SubsidyDoc    `json:"subsidies,omitempty"`
	PromptPaymentRebate  *RebateDoc      `json:"prompt_payment_rebate,omitempty"`
	LatePaymentSurcharge *LateDoc        `json:"late_payment_surcharge,omitempty"`
	NetMetering          *NetMeteringDoc `json:"net_metering,omitempty"`
	RoundOff             *RoundOffDoc    `json:"round_off,omitempty"`
}

// RoundingDoc declares a rounding: mode (half_up, half_even, half_down,
// half_ceiling, up, down, ceiling, floor) and decimal places. Places may be
// left out in a component's override to keep the document's places.
type RoundingDoc struct {
	Mode   string `json:"mode"`
	Places *int   `json:"places,omitempty"`
}

// ProrationDoc names how monthly quantities are scaled for periods that are
// not one whole cycle: "cycle_days" (days billed / days in the cycle, the
// default), "calendar_month" (each day counts 1/days-in-its-month) or
// "days_of_30" (days billed / 30).
type ProrationDoc struct {
	FixedCharges string `json:"fixed_charges,omitempty"` // fixed, demand, minimum charges and caps
	SlabBounds   string `json:"slab_bounds,omitempty"`   // slab and group bounds, thresholds
}

// EnergyDoc is the energy charge. Kind selects the fields that apply:
//   - "flat": rate for every kWh;
//   - "telescopic": slabs, each kWh at its own slab's rate;
//   - "non_telescopic": slabs, every kWh at the rate of the slab the total
//     reaches (or a single rate);
//   - "group_selected": groups; the total picks the first group whose
//     when_total_upto_kwh it does not exceed, and that group is applied;
//   - "time_of_use": windows naming parts of the day and rates per name.
type EnergyDoc struct {
	Kind     string            `json:"kind"`
	Rate     Number            `json:"rate"`
	Slabs    []SlabDoc         `json:"slabs,omitempty"`
	Groups   []GroupDoc        `json:"groups,omitempty"`
	Windows  []WindowDoc       `json:"windows,omitempty"`
	Rates    map[string]Number `json:"rates,omitempty"`
	Rounding *RoundingDoc      `json:"rounding,omitempty"`
}

// SlabDoc is one slab: energy up to upto_kwh (cumulative, inclusive; null
// for the last, open-ended slab) at rate per kWh.
type SlabDoc struct {
	UptoKWh Number `json:"upto_kwh"`
	Rate    Number `json:"rate"`
}

// GroupDoc is one rate set of a group-selected energy charge. It applies
// when the period's total is at most when_total_upto_kwh (null: any total).
type GroupDoc struct {
	WhenTotalUptoKWh Number `json:"when_total_upto_kwh"`
	EnergyDoc
}

// WindowDoc is one part of the day, "HH:MM" to "HH:MM" local time, end
// exclusive; "24:00" ends at midnight and a window may wrap past midnight
// (22:00–06:00). Several windows may share a name (and so a rate).
type WindowDoc struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// PerUnitDoc is a pass-through charge per billed kWh (fuel surcharge,
// per-unit duty). It may apply only when the total is above or at most a
// threshold.
type PerUnitDoc struct {
	Code                     string       `json:"code,omitempty"` // defaults to the name in snake case
	Name                     string       `json:"name"`
	Rate                     Number       `json:"rate"`
	AppliesWhenTotalAboveKWh Number       `json:"applies_when_total_above_kwh"`
	AppliesWhenTotalUptoKWh  Number       `json:"applies_when_total_upto_kwh"`
	Rounding                 *RoundingDoc `json:"rounding,omitempty"`
}

// FixedDoc is the fixed charge, per month. Kind:
//   - "per_connection": amount per connection;
//   - "per_kw": rate per kW of load;
//   - "sanctioned_load_band_whole_load": the whole load at the rate of the
//     band it falls in (≤ upto_kw, first match; not telescopic).
//
// Load is the sanctioned load unless load.basis is "derived_from_energy".
type FixedDoc struct {
	Kind     string       `json:"kind"`
	Name     string       `json:"name,omitempty"` // defaults to "fixed"
	Amount   Number       `json:"amount"`
	Rate     Number       `json:"rate"`
	Bands    []BandDoc    `json:"bands,omitempty"`
	Load     *LoadDoc     `json:"load,omitempty"`
	Rounding *RoundingDoc `json:"rounding,omitempty"`
}

// BandDoc is one sanctioned-load band: load up to upto_kw (null: above the
// previous band) priced at rate per kW per month.
type BandDoc struct {
	UptoKW Number `json:"upto_kw"`
	Rate   Number `json:"rate"`
}

// LoadDoc says which load a per-kW charge uses: "sanctioned" (default) or
// "derived_from_energy", the authorised load of kw_per_step for every
// kwh_per_step of monthly energy or part thereof (MPERC: 0.5 kW per 75 kWh).
type LoadDoc struct {
	Basis      string `json:"basis"`
	KWhPerStep Number `json:"kwh_per_step"`
	KWPerStep  Number `json:"kw_per_step"`
}

// DemandDoc is the demand charge: rate_per_kva per month on the recorded
// maximum demand, never on less than minimum_kva.
type DemandDoc struct {
	Name       string       `json:"name,omitempty"` // defaults to "demand"
	RatePerKVA Number       `json:"rate_per_kva"`
	MinimumKVA Number       `json:"minimum_kva"`
	Rounding   *RoundingDoc `json:"rounding,omitempty"`
}

// TaxDoc is a percentage tax, duty or percentage pass-through (PPAC) on a
// declared base: the codes of earlier lines ("energy", "minimum", "fixed",
// "demand", per-unit, tax or subsidy codes). The base is the lines'
// unrounded amounts; the tax line is rounded once.
type TaxDoc struct {
	Code     string       `json:"code"`
	Name     string       `json:"name"`
	RatePct  Number       `json:"rate_pct"`
	Base     []string     `json:"base"`
	Rounding *RoundingDoc `json:"rounding,omitempty"`
}

// SubsidyDoc is a subsidy shown as its own negative line, paid by someone
// other than the consumer: rate_pct of a base, at most cap per month, when
// the total is within the thresholds (Delhi: 100% of energy up to 200 kWh).
type SubsidyDoc struct {
	Code              string       `json:"code"`
	Name              string       `json:"name"`
	Payer             string       `json:"payer,omitempty"` // defaults to "government"
	RatePct           Number       `json:"rate_pct"`
	Base              []string     `json:"base"`
	Cap               Number       `json:"cap"`
	WhenTotalAboveKWh Number       `json:"when_total_above_kwh"`
	WhenTotalUptoKWh  Number       `json:"when_total_upto_kwh"`
	Rounding          *RoundingDoc `json:"rounding,omitempty"`
}

// RebateDoc is the prompt-payment rebate: the first tier whose within_days
// the payment day does not exceed gives rate_pct of the current charges
// (arrears excluded), at most cap. A partial payment earns nothing unless
// allow_partial is true.
type RebateDoc struct {
	Tiers        []RebateTierDoc `json:"tiers"`
	AllowPartial bool            `json:"allow_partial,omitempty"`
	Rounding     *RoundingDoc    `json:"rounding,omitempty"`
}

// RebateTierDoc is one rebate tier.
type RebateTierDoc struct {
	WithinDays int    `json:"within_days"`
	RatePct    Number `json:"rate_pct"`
	Cap        Number `json:"cap"`
}

// LateDoc is the late-payment surcharge on the unpaid amount: rate_pct per
// annum by days late ("per": "annum_by_days", over days_in_year, default
// 365) or per month or part thereof ("per": "month_or_part", a month being
// 30 days late).
type LateDoc struct {
	RatePct    Number       `json:"rate_pct"`
	Per        string       `json:"per"`
	DaysInYear int          `json:"days_in_year,omitempty"`
	Rounding   *RoundingDoc `json:"rounding,omitempty"`
}

// NetMeteringDoc turns on net metering: exports offset imports in the same
// period, surplus export is carried forward as kWh credit and used first in
// later periods; fixed charges are never netted. settlement_rate_per_kwh
// (APPC) pays out the credit at financial-year end.
type NetMeteringDoc struct {
	SettlementRatePerKWh Number       `json:"settlement_rate_per_kwh"`
	Rounding             *RoundingDoc `json:"rounding,omitempty"`
}

// RoundOffDoc adds a round-off line bringing the total to a multiple of
// 10^-places (0: whole currency) under mode.
type RoundOffDoc struct {
	Places int    `json:"places"`
	Mode   string `json:"mode"`
}

// Number is a decimal as written in a document: a JSON string ("3.00") or
// number (3.00), or null / absent. It keeps the text, so that a malformed
// value is reported by validation with its field path rather than as a bare
// decoding error.
type Number struct {
	text string
	set  bool // present and not null
	bad  bool // neither a string, a number nor null
}

// Num returns a Number holding s, for building documents in code.
func Num(s string) Number { return Number{text: s, set: true} }

// IsSet reports whether the field was present and not null.
func (n Number) IsSet() bool { return n.set }

// String returns the text as written ("" when unset).
func (n Number) String() string { return n.text }

// UnmarshalJSON keeps the token's text; it never fails, validation does.
func (n *Number) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*n = Number{}
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			*n = Number{text: string(b), set: true, bad: true}
			return nil
		}
		*n = Number{text: s, set: true}
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*n = Number{text: string(b), set: true}
	default:
		*n = Number{text: string(b), set: true, bad: true}
	}
	return nil
}

// MarshalJSON writes the text as a JSON string, or null when unset.
func (n Number) MarshalJSON() ([]byte, error) {
	if !n.set {
		return []byte("null"), nil
	}
	return []byte(strconv.Quote(n.text)), nil
}
