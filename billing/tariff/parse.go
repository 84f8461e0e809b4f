package tariff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// Limits on document numbers. They keep rating cheap and exact for any
// input: a tariff needs neither 10^13 rupees nor nine decimal places.
const (
	maxMagnitude      = 1_000_000_000_000 // largest absolute value of any number
	maxFractionDigits = 6                 // most significant decimal places
	maxPlaces         = 6                 // most decimal places a rounding may keep
	maxDocumentBytes  = 1 << 20
)

// Built-in line codes; per-unit, tax and subsidy codes must differ from them.
const (
	CodeEnergy     = "energy"
	CodeMinimum    = "minimum"
	CodeFixed      = "fixed"
	CodeDemand     = "demand"
	CodeSettlement = "net_metering_settlement"
	CodeRoundOff   = "round_off"
)

func reservedCode(c string) bool {
	switch c {
	case CodeEnergy, CodeMinimum, CodeFixed, CodeDemand, CodeSettlement, CodeRoundOff:
		return true
	}
	return false
}

// Parse decodes and validates one tariff document. Every problem is
// reported, each with the path of its field; the error is a
// *billing.ValidationError (errors.Is(err, billing.ErrInvalidInput)).
func Parse(data []byte) (*Tariff, error) {
	var doc Document
	if err := decodeStrict(data, &doc); err != nil {
		return nil, err
	}
	return Compile(&doc)
}

// ParseSchedule decodes a tariff file holding one document or a JSON array
// of documents (the versions of one plan) and returns them as a Schedule.
func ParseSchedule(data []byte) (*Schedule, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		t, err := Parse(data)
		if err != nil {
			return nil, err
		}
		return NewSchedule(t)
	}
	var docs []Document
	if err := decodeStrict(data, &docs); err != nil {
		return nil, err
	}
	versions := make([]*Tariff, 0, len(docs))
	all := &billing.ValidationError{Subject: "tariff schedule"}
	for i := range docs {
		t, err := Compile(&docs[i])
		var ve *billing.ValidationError
		switch {
		case errors.As(err, &ve):
			for _, f := range ve.Fields {
				all.Add(joinPath(fmt.Sprintf("[%d]", i), f.Path), f.Problem)
			}
		case err != nil:
			return nil, err
		default:
			versions = append(versions, t)
		}
	}
	if err := all.Err(); err != nil {
		return nil, err
	}
	return NewSchedule(versions...)
}

// decodeStrict decodes one JSON value into v, rejecting unknown fields and
// trailing data, and reports decoding problems as a validation error.
func decodeStrict(data []byte, v any) error {
	ve := &billing.ValidationError{Subject: "tariff document"}
	if len(data) > maxDocumentBytes {
		ve.Add("", fmt.Sprintf("document is larger than %d bytes", maxDocumentBytes))
		return ve
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		ve.Add(decodePath(err), decodeProblem(err))
		return ve
	}
	if _, err := dec.Token(); err != io.EOF {
		ve.Add("", "unexpected data after the document")
		return ve
	}
	return nil
}

func decodePath(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	return ""
}

func decodeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("want %s, got JSON %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + rest
	}
	return strings.TrimPrefix(msg, "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int32", "int64":
		return "an integer"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return goKind
}

func joinPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case strings.HasPrefix(b, "["):
		return a + b
	}
	return a + "." + b
}

// Compile validates a decoded document and builds the Tariff.
func Compile(doc *Document) (*Tariff, error) {
	c := &checker{ve: billing.ValidationError{Subject: "tariff document"}}
	t := &Tariff{
		Tenant:   c.required("tenant", doc.Tenant),
		Plan:     c.required("plan", doc.Plan),
		Version:  c.required("version", doc.Version),
		OrderRef: doc.OrderRef,
	}
	if doc.EffectiveFrom == "" {
		c.fail("effective_from", "required")
	} else if d, err := billing.ParseDate(doc.EffectiveFrom); err != nil {
		c.fail("effective_from", "want a date YYYY-MM-DD, got %q", doc.EffectiveFrom)
	} else {
		t.EffectiveFrom = d
	}
	t.Currency = doc.Currency
	if !isCurrencyCode(doc.Currency) {
		c.fail("currency", "want a three-letter ISO 4217 code such as INR, got %q", doc.Currency)
	}

	if doc.Rounding == nil {
		c.fail("rounding", "required: the default rounding of every line, e.g. {\"mode\": \"half_up\", \"places\": 2}")
		t.Rounding = billing.Rounding{Mode: billing.RoundHalfUp, Places: 2}
	} else {
		if doc.Rounding.Places == nil {
			c.fail("rounding.places", "required")
		}
		t.Rounding = c.rounding("rounding", doc.Rounding, billing.Rounding{Mode: billing.RoundHalfUp, Places: 2})
	}

	t.FixedBasis, t.SlabBasis = ProrateCycleDays, ProrateCycleDays
	if p := doc.Proration; p != nil {
		t.FixedBasis = c.basis("proration.fixed_charges", p.FixedCharges)
		t.SlabBasis = c.basis("proration.slab_bounds", p.SlabBounds)
	}

	codes := map[string]bool{} // codes defined so far, in evaluation order
	if doc.Energy == nil {
		c.fail("energy", "required")
	} else {
		t.Energy = c.energy("energy", doc.Energy, t.Rounding, true, cover{open: true})
		codes[CodeEnergy] = true
	}
	if doc.MinimumEnergyCharge.IsSet() {
		t.Minimum = &MinimumCharge{
			AmountPerMonth: c.amount("minimum_energy_charge", doc.MinimumEnergyCharge),
			Rounding:       t.Energy.Rounding,
		}
		codes[CodeMinimum] = true
	}
	for i := range doc.PerUnitCharges {
		p := &doc.PerUnitCharges[i]
		path := fmt.Sprintf("per_unit_charges[%d]", i)
		pu := PerUnitCharge{
			Name:       c.required(path+".name", p.Name),
			RatePerKWh: c.amount(path+".rate", p.Rate),
			above:      c.threshold(path+".applies_when_total_above_kwh", p.AppliesWhenTotalAboveKWh),
			upto:       c.threshold(path+".applies_when_total_upto_kwh", p.AppliesWhenTotalUptoKWh),
			Rounding:   c.rounding(path+".rounding", p.Rounding, t.Rounding),
		}
		pu.Code = c.code(path+".code", p.Code, p.Name, codes)
		if pu.above.set && pu.upto.set && !pu.above.kwh.LessThan(pu.upto.kwh) {
			c.fail(path+".applies_when_total_upto_kwh", "must be greater than applies_when_total_above_kwh")
		}
		t.PerUnit = append(t.PerUnit, pu)
	}
	if doc.Fixed != nil {
		t.Fixed = c.fixed("fixed", doc.Fixed, t.Rounding)
		codes[CodeFixed] = true
	}
	if d := doc.Demand; d != nil {
		t.Demand = &DemandCharge{
			Name:               defaultString(d.Name, "demand"),
			RatePerKVAPerMonth: c.amount("demand.rate_per_kva", d.RatePerKVA),
			MinimumKVA:         c.optAmount("demand.minimum_kva", d.MinimumKVA),
			Rounding:           c.rounding("demand.rounding", d.Rounding, t.Rounding),
		}
		codes[CodeDemand] = true
	}
	for i := range doc.Taxes {
		x := &doc.Taxes[i]
		path := fmt.Sprintf("taxes[%d]", i)
		tax := Tax{
			Name:     c.required(path+".name", x.Name),
			RatePct:  c.percent(path+".rate_pct", x.RatePct, 1000),
			Base:     c.base(path+".base", x.Base, codes),
			Rounding: c.rounding(path+".rounding", x.Rounding, t.Rounding),
		}
		tax.Code = c.code(path+".code", x.Code, "", codes)
		t.Taxes = append(t.Taxes, tax)
	}
	for i := range doc.Subsidies {
		x := &doc.Subsidies[i]
		path := fmt.Sprintf("subsidies[%d]", i)
		s := Subsidy{
			Name:     c.required(path+".name", x.Name),
			Payer:    defaultString(x.Payer, "government"),
			RatePct:  c.percent(path+".rate_pct", x.RatePct, 100),
			Base:     c.base(path+".base", x.Base, codes),
			above:    c.threshold(path+".when_total_above_kwh", x.WhenTotalAboveKWh),
			upto:     c.threshold(path+".when_total_upto_kwh", x.WhenTotalUptoKWh),
			Rounding: c.rounding(path+".rounding", x.Rounding, t.Rounding),
		}
		if x.Cap.IsSet() {
			s.Cap, s.HasCap = c.amount(path+".cap", x.Cap), true
		}
		if s.above.set && s.upto.set && !s.above.kwh.LessThan(s.upto.kwh) {
			c.fail(path+".when_total_upto_kwh", "must be greater than when_total_above_kwh")
		}
		s.Code = c.code(path+".code", x.Code, "", codes)
		t.Subsidies = append(t.Subsidies, s)
	}
	if r := doc.PromptPaymentRebate; r != nil {
		t.Rebate = c.rebate("prompt_payment_rebate", r, t.Rounding)
	}
	if l := doc.LatePaymentSurcharge; l != nil {
		t.Late = c.late("late_payment_surcharge", l, t.Rounding)
	}
	if n := doc.NetMetering; n != nil {
		t.NetMetering = &NetMetering{Rounding: c.rounding("net_metering.rounding", n.Rounding, t.Rounding)}
		if n.SettlementRatePerKWh.IsSet() {
			t.NetMetering.SettlementRatePerKWh = c.amount("net_metering.settlement_rate_per_kwh", n.SettlementRatePerKWh)
			t.NetMetering.HasSettlement = true
		}
		if t.Energy.usesTimeOfUse() {
			// Time-of-use consumers net per time block with a bank per
			// block; one kWh bank cannot say which block a credit came from.
			c.fail("net_metering", "not supported with a time_of_use energy charge")
		}
	}
	if r := doc.RoundOff; r != nil {
		t.RoundOff = &RoundOffRule{Places: int32(r.Places), Mode: c.mode("round_off.mode", r.Mode)}
		if r.Places < -6 || r.Places > maxPlaces {
			c.fail("round_off.places", "want -6..%d, got %d", maxPlaces, r.Places)
		}
	}
	if err := c.ve.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// checker accumulates validation problems.
type checker struct {
	ve billing.ValidationError
}

func (c *checker) fail(path, format string, args ...any) {
	c.ve.Add(path, fmt.Sprintf(format, args...))
}

func (c *checker) required(path, s string) string {
	if strings.TrimSpace(s) == "" {
		c.fail(path, "required")
	}
	return s
}

// number parses a set Number and checks its size; ok is false (and a
// problem recorded) when it is malformed.
func (c *checker) number(path string, n Number) (decimal.Decimal, bool) {
	if n.bad {
		c.fail(path, "want a decimal number or a decimal string, got %s", n.text)
		return decimal.Zero, false
	}
	if !withinExponent(n.text) {
		c.fail(path, "want a decimal number, got %q", n.text)
		return decimal.Zero, false
	}
	d, err := decimal.NewFromString(n.text)
	if err != nil {
		c.fail(path, "want a decimal number, got %q", n.text)
		return decimal.Zero, false
	}
	if d.Abs().Cmp(decimal.NewFromInt(maxMagnitude)) > 0 {
		c.fail(path, "%s is larger than %d", n.text, int64(maxMagnitude))
		return decimal.Zero, false
	}
	if fractionDigits(d) > maxFractionDigits {
		c.fail(path, "%s has more than %d decimal places", n.text, maxFractionDigits)
		return decimal.Zero, false
	}
	return d, true
}

// withinExponent rejects text that is long, or has an exponent long
// enough, to make decimal arithmetic itself expensive before the magnitude
// and precision checks run ("1e-9999" would be a 10,000-digit number).
func withinExponent(s string) bool {
	if len(s) > 40 {
		return false
	}
	i := strings.IndexAny(s, "eE")
	return i < 0 || len(s)-i <= 3
}

// fractionDigits counts significant decimal places (trailing zeros do not
// count: "3.00" has none).
func fractionDigits(d decimal.Decimal) int {
	if d.Exponent() >= 0 {
		return 0
	}
	s := strings.TrimRight(d.StringFixed(-d.Exponent()), "0")
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// amount is a required non-negative number.
func (c *checker) amount(path string, n Number) decimal.Decimal {
	if !n.IsSet() {
		c.fail(path, "required")
		return decimal.Zero
	}
	return c.nonNegative(path, n)
}

// optAmount is an optional non-negative number, zero when unset.
func (c *checker) optAmount(path string, n Number) decimal.Decimal {
	if !n.IsSet() {
		return decimal.Zero
	}
	return c.nonNegative(path, n)
}

func (c *checker) nonNegative(path string, n Number) decimal.Decimal {
	d, ok := c.number(path, n)
	if ok && d.IsNegative() {
		c.fail(path, "must not be negative, got %s", n.text)
	}
	return d
}

// percent is a required percentage in [0, limit].
func (c *checker) percent(path string, n Number, limit int64) decimal.Decimal {
	d := c.amount(path, n)
	if d.GreaterThan(decimal.NewFromInt(limit)) {
		c.fail(path, "want at most %d percent, got %s", limit, n.text)
	}
	return d
}

func (c *checker) threshold(path string, n Number) threshold {
	if !n.IsSet() {
		return threshold{}
	}
	return threshold{kwh: c.nonNegative(path, n), set: true}
}

func (c *checker) mode(path, s string) billing.RoundingMode {
	m, err := billing.ParseRoundingMode(s)
	if err != nil {
		c.fail(path, "%v", err)
		return billing.RoundHalfUp
	}
	return m
}

// rounding resolves a component's rounding against the default.
func (c *checker) rounding(path string, r *RoundingDoc, def billing.Rounding) billing.Rounding {
	if r == nil {
		return def
	}
	out := billing.Rounding{Mode: c.mode(path+".mode", r.Mode), Places: def.Places}
	if r.Places != nil {
		if *r.Places < 0 || *r.Places > maxPlaces {
			c.fail(path+".places", "want 0..%d, got %d", maxPlaces, *r.Places)
		} else {
			out.Places = int32(*r.Places)
		}
	}
	return out
}

func (c *checker) basis(path, s string) ProrationBasis {
	switch s {
	case "", "cycle_days":
		return ProrateCycleDays
	case "calendar_month":
		return ProrateCalendarMonth
	case "days_of_30":
		return ProrateDaysOf30
	}
	c.fail(path, "want cycle_days, calendar_month or days_of_30, got %q", s)
	return ProrateCycleDays
}

// code checks a line code (or derives it from name) and records it.
func (c *checker) code(path, code, name string, codes map[string]bool) string {
	if code == "" && name != "" {
		code = snake(name)
	}
	switch {
	case code == "":
		c.fail(path, "required")
	case code != snake(code):
		c.fail(path, "want lower-case letters, digits and underscores, got %q", code)
	case reservedCode(code):
		c.fail(path, "%q is a built-in line code", code)
	case codes[code]:
		c.fail(path, "%q is used by an earlier line", code)
	}
	codes[code] = true
	return code
}

// base checks that a tax or subsidy base names earlier lines.
func (c *checker) base(path string, base []string, codes map[string]bool) []string {
	if len(base) == 0 {
		c.fail(path, "required: the codes of the earlier lines this percentage applies to")
	}
	for i, b := range base {
		if !codes[b] {
			c.fail(fmt.Sprintf("%s[%d]", path, i), "%q is not a line defined before this one", b)
		}
	}
	return append([]string(nil), base...)
}

// snake turns "Fuel surcharge adjustment" into "fuel_surcharge_adjustment".
func snake(s string) string {
	var b strings.Builder
	gap := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if gap && b.Len() > 0 {
				b.WriteByte('_')
			}
			gap = false
			b.WriteRune(r)
		} else {
			gap = true
		}
	}
	return b.String()
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// cover is the largest total a slab list must price: open-ended at the top
// level, a group's when_total_upto_kwh inside a group.
type cover struct {
	kwh  decimal.Decimal
	open bool
}

// energy validates an energy charge; top is false inside a group.
func (c *checker) energy(path string, e *EnergyDoc, def billing.Rounding, top bool, cv cover) Energy {
	out := Energy{Rounding: c.rounding(path+".rounding", e.Rounding, def)}
	unused := func(field string, present bool) {
		if present {
			c.fail(path+"."+field, "not used by kind %q", e.Kind)
		}
	}
	switch e.Kind {
	case "flat":
		out.Kind = EnergyFlat
		out.Slabs = []Slab{{Open: true, RatePerKWh: c.amount(path+".rate", e.Rate)}}
		unused("slabs", len(e.Slabs) > 0)
		unused("groups", len(e.Groups) > 0)
		unused("windows", len(e.Windows) > 0)
		unused("rates", len(e.Rates) > 0)
	case "telescopic", "non_telescopic":
		out.Kind = EnergyTelescopic
		if e.Kind == "non_telescopic" {
			out.Kind = EnergyNonTelescopic
		}
		switch {
		case e.Kind == "non_telescopic" && e.Rate.IsSet() && len(e.Slabs) == 0:
			out.Slabs = []Slab{{Open: true, RatePerKWh: c.amount(path+".rate", e.Rate)}}
		case len(e.Slabs) == 0:
			c.fail(path+".slabs", "required: at least one slab, the last with upto_kwh null")
		default:
			unused("rate", e.Rate.IsSet())
			out.Slabs = c.slabs(path+".slabs", e.Slabs, cv)
		}
		unused("groups", len(e.Groups) > 0)
		unused("windows", len(e.Windows) > 0)
		unused("rates", len(e.Rates) > 0)
	case "group_selected":
		out.Kind = EnergyGroupSelected
		if !top {
			c.fail(path+".kind", "a group cannot itself be group_selected")
			break
		}
		if len(e.Groups) == 0 {
			c.fail(path+".groups", "required: at least one group, the last with when_total_upto_kwh null")
		}
		prev, prevSet := decimal.Zero, false
		for i := range e.Groups {
			g := &e.Groups[i]
			gpath := fmt.Sprintf("%s.groups[%d]", path, i)
			var grp Group
			last := i == len(e.Groups)-1
			grp.UptoKWh, grp.Open = c.bound(gpath+".when_total_upto_kwh", g.WhenTotalUptoKWh, last, prev, prevSet)
			prev, prevSet = grp.UptoKWh, true
			grp.Energy = c.energy(gpath, &g.EnergyDoc, out.Rounding, false, cover{kwh: grp.UptoKWh, open: grp.Open})
			out.Groups = append(out.Groups, grp)
		}
		unused("rate", e.Rate.IsSet())
		unused("slabs", len(e.Slabs) > 0)
		unused("windows", len(e.Windows) > 0)
		unused("rates", len(e.Rates) > 0)
	case "time_of_use":
		out.Kind = EnergyTimeOfUse
		out.Windows = c.windows(path, e.Windows, e.Rates)
		unused("rate", e.Rate.IsSet())
		unused("slabs", len(e.Slabs) > 0)
		unused("groups", len(e.Groups) > 0)
	case "":
		c.fail(path+".kind", "required: flat, telescopic, non_telescopic, group_selected or time_of_use")
	default:
		c.fail(path+".kind", "want flat, telescopic, non_telescopic, group_selected or time_of_use, got %q", e.Kind)
	}
	return out
}

// slabs checks that slabs are contiguous (strictly increasing cumulative
// bounds from zero), cover every total they can be given (the last is
// open-ended, or inside a group reaches the group's bound) and are priced
// at non-negative rates. A last slab that reaches a group's bound is
// compiled as open: the group never gives it more.
func (c *checker) slabs(path string, docs []SlabDoc, cv cover) []Slab {
	out := make([]Slab, 0, len(docs))
	prev, prevSet := decimal.Zero, false
	for i, s := range docs {
		spath := fmt.Sprintf("%s[%d]", path, i)
		slab := Slab{RatePerKWh: c.amount(spath+".rate", s.Rate)}
		last := i == len(docs)-1
		if last && !cv.open && s.UptoKWh.IsSet() {
			d, ok := c.number(spath+".upto_kwh", s.UptoKWh)
			if ok && d.LessThan(cv.kwh) {
				c.fail(spath+".upto_kwh", "the last slab must be open-ended (null) or reach the group's when_total_upto_kwh %s, got %s", cv.kwh, s.UptoKWh)
			}
			if ok && prevSet && !d.GreaterThan(prev) {
				c.fail(spath+".upto_kwh", "must be greater than the previous bound %s, got %s", prev, s.UptoKWh)
			}
			out = append(out, Slab{Open: true, RatePerKWh: slab.RatePerKWh})
			continue
		}
		slab.UptoKWh, slab.Open = c.bound(spath+".upto_kwh", s.UptoKWh, last, prev, prevSet)
		prev, prevSet = slab.UptoKWh, true
		out = append(out, slab)
	}
	labelSlabs(out)
	return out
}

// labelSlabs normalises slab bounds to the Wh scale (three decimal places,
// the scale of metered kWh) when that is exact, so that comparing energy
// with a bound needs no rescaling, and prepares the tier labels.
func labelSlabs(slabs []Slab) {
	from := "0"
	for i := range slabs {
		s := &slabs[i]
		s.fromText = from
		if s.Open {
			break
		}
		if fractionDigits(s.UptoKWh) <= 3 {
			s.UptoKWh = s.UptoKWh.Round(3)
		}
		s.uptoText = s.UptoKWh.String()
		if s.UptoKWh.IsInteger() {
			from = s.UptoKWh.Add(decimal.NewFromInt(1)).String()
		} else {
			from = s.uptoText
		}
	}
}

// bound checks one cumulative upper bound in a list: the last must be null
// (open-ended), the others set and greater than the previous (and than 0).
func (c *checker) bound(path string, n Number, last bool, prev decimal.Decimal, prevSet bool) (decimal.Decimal, bool) {
	if !n.IsSet() {
		if !last {
			c.fail(path, "only the last entry may be open-ended (null)")
		}
		return decimal.Zero, true
	}
	if last {
		c.fail(path, "the last entry must be open-ended: set it to null so every quantity is covered")
	}
	d, ok := c.number(path, n)
	if !ok {
		return d, false
	}
	switch {
	case !d.IsPositive():
		c.fail(path, "must be greater than 0, got %s", n.text)
	case prevSet && !d.GreaterThan(prev):
		c.fail(path, "must be greater than the previous bound %s, got %s", prev, n.text)
	}
	return d, false
}

// windows checks time-of-use windows: valid times, every minute of the day
// in exactly one window, a rate for every window name and no rate without
// a window.
func (c *checker) windows(path string, docs []WindowDoc, rates map[string]Number) []Window {
	if len(docs) == 0 {
		c.fail(path+".windows", "required: windows covering the whole day")
		return nil
	}
	out := make([]Window, 0, len(docs))
	var owner [minutesPerDay]int8 // window index + 1 per minute, 0 when uncovered
	timesOK := true
	for i, w := range docs {
		wpath := fmt.Sprintf("%s.windows[%d]", path, i)
		from, okFrom := c.clock(wpath+".from", w.From)
		to, okTo := c.clock(wpath+".to", w.To)
		if strings.TrimSpace(w.Name) == "" {
			c.fail(wpath+".name", "required")
		}
		if !okFrom || !okTo {
			timesOK = false
			continue
		}
		if from == to || from == minutesPerDay {
			c.fail(wpath, "empty window: from must differ from to and be before 24:00")
			timesOK = false
			continue
		}
		win := Window{Name: w.Name, FromMinute: from, ToMinute: to}
		out = append(out, win)
		if i >= 127 {
			c.fail(path+".windows", "at most 127 windows")
			return out
		}
		for m := range minutesPerDay {
			if !win.contains(m) {
				continue
			}
			if owner[m] != 0 {
				c.fail(wpath, "overlaps windows[%d] at %s", owner[m]-1, clockText(m))
				timesOK = false
				break
			}
			owner[m] = int8(i + 1)
		}
	}
	if timesOK {
		for m := 0; m < minutesPerDay; m++ {
			if owner[m] != 0 {
				continue
			}
			end := m
			for end < minutesPerDay && owner[end] == 0 {
				end++
			}
			c.fail(path+".windows", "%s to %s is in no window; windows must cover the whole day", clockText(m), clockText(end))
			m = end
		}
	}
	names := map[string]bool{}
	for i := range out {
		names[out[i].Name] = true
	}
	resolved := map[string]decimal.Decimal{}
	keys := make([]string, 0, len(rates))
	for k := range rates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rpath := path + ".rates." + k
		if !names[k] {
			c.fail(rpath, "no window is named %q", k)
			continue
		}
		resolved[k] = c.amount(rpath, rates[k])
	}
	for i := range out {
		r, ok := resolved[out[i].Name]
		if !ok {
			if _, named := rates[out[i].Name]; !named {
				c.fail(path+".rates", "missing the rate of window %q", out[i].Name)
				resolved[out[i].Name] = decimal.Zero // report once per name
			}
			continue
		}
		out[i].RatePerKWh = r
	}
	return out
}

const minutesPerDay = 24 * 60

// clock parses "HH:MM" (00:00 to 24:00) into minutes after midnight.
func (c *checker) clock(path, s string) (int, bool) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		c.fail(path, "want HH:MM, got %q", s)
		return 0, false
	}
	for i, ch := range []byte(s) {
		if i == 2 {
			continue
		}
		if ch < '0' || ch > '9' {
			c.fail(path, "want HH:MM, got %q", s)
			return 0, false
		}
	}
	h = int(s[0]-'0')*10 + int(s[1]-'0')
	m = int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || h == 24 && m != 0 {
		c.fail(path, "want a time from 00:00 to 24:00, got %q", s)
		return 0, false
	}
	return h*60 + m, true
}

func clockText(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

func (c *checker) fixed(path string, f *FixedDoc, def billing.Rounding) *FixedCharge {
	out := &FixedCharge{Name: defaultString(f.Name, "fixed"), Rounding: c.rounding(path+".rounding", f.Rounding, def)}
	unused := func(field string, present bool) {
		if present {
			c.fail(path+"."+field, "not used by kind %q", f.Kind)
		}
	}
	switch f.Kind {
	case "per_connection":
		out.Kind = FixedPerConnection
		out.AmountPerMonth = c.amount(path+".amount", f.Amount)
		unused("rate", f.Rate.IsSet())
		unused("bands", len(f.Bands) > 0)
		unused("load", f.Load != nil)
	case "per_kw":
		out.Kind = FixedPerKW
		out.RatePerKWPerMonth = c.amount(path+".rate", f.Rate)
		unused("amount", f.Amount.IsSet())
		unused("bands", len(f.Bands) > 0)
	case "sanctioned_load_band_whole_load":
		out.Kind = FixedLoadBand
		if len(f.Bands) == 0 {
			c.fail(path+".bands", "required: at least one band, the last with upto_kw null")
		}
		prev, prevSet := decimal.Zero, false
		for i, b := range f.Bands {
			bpath := fmt.Sprintf("%s.bands[%d]", path, i)
			band := LoadBand{RatePerKWPerMonth: c.amount(bpath+".rate", b.Rate)}
			band.UptoKW, band.Open = c.bound(bpath+".upto_kw", b.UptoKW, i == len(f.Bands)-1, prev, prevSet)
			prev, prevSet = band.UptoKW, true
			out.Bands = append(out.Bands, band)
		}
		unused("amount", f.Amount.IsSet())
		unused("rate", f.Rate.IsSet())
	case "":
		c.fail(path+".kind", "required: per_connection, per_kw or sanctioned_load_band_whole_load")
	default:
		c.fail(path+".kind", "want per_connection, per_kw or sanctioned_load_band_whole_load, got %q", f.Kind)
	}
	if l := f.Load; l != nil && out.Kind != FixedPerConnection {
		switch l.Basis {
		case "", "sanctioned":
			if l.KWhPerStep.IsSet() || l.KWPerStep.IsSet() {
				c.fail(path+".load", "kwh_per_step and kw_per_step apply only to basis derived_from_energy")
			}
		case "derived_from_energy":
			out.DerivedLoad = &DerivedLoad{
				KWhPerStep: c.amount(path+".load.kwh_per_step", l.KWhPerStep),
				KWPerStep:  c.amount(path+".load.kw_per_step", l.KWPerStep),
			}
			if l.KWhPerStep.IsSet() && out.DerivedLoad.KWhPerStep.IsZero() {
				c.fail(path+".load.kwh_per_step", "must be greater than 0")
			}
		default:
			c.fail(path+".load.basis", "want sanctioned or derived_from_energy, got %q", l.Basis)
		}
	}
	return out
}

func (c *checker) rebate(path string, r *RebateDoc, def billing.Rounding) *Rebate {
	out := &Rebate{AllowPartial: r.AllowPartial, Rounding: c.rounding(path+".rounding", r.Rounding, def)}
	if len(r.Tiers) == 0 {
		c.fail(path+".tiers", "required: at least one tier")
	}
	prev := 0
	for i, tier := range r.Tiers {
		tpath := fmt.Sprintf("%s.tiers[%d]", path, i)
		rt := RebateTier{WithinDays: tier.WithinDays, RatePct: c.percent(tpath+".rate_pct", tier.RatePct, 100)}
		if tier.WithinDays <= prev {
			c.fail(tpath+".within_days", "must be greater than %d", prev)
		}
		prev = tier.WithinDays
		if tier.Cap.IsSet() {
			rt.Cap, rt.HasCap = c.amount(tpath+".cap", tier.Cap), true
		}
		out.Tiers = append(out.Tiers, rt)
	}
	return out
}

func (c *checker) late(path string, l *LateDoc, def billing.Rounding) *LateSurcharge {
	out := &LateSurcharge{
		RatePct:    c.percent(path+".rate_pct", l.RatePct, 100),
		DaysInYear: l.DaysInYear,
		Rounding:   c.rounding(path+".rounding", l.Rounding, def),
	}
	switch l.Per {
	case "annum_by_days":
		out.Per = LatePerAnnumByDays
		if out.DaysInYear == 0 {
			out.DaysInYear = 365
		}
		if out.DaysInYear < 360 || out.DaysInYear > 366 {
			c.fail(path+".days_in_year", "want 360..366, got %d", l.DaysInYear)
		}
	case "month_or_part":
		out.Per = LatePerMonthOrPart
		if l.DaysInYear != 0 {
			c.fail(path+".days_in_year", "not used with per %q", l.Per)
		}
	default:
		c.fail(path+".per", "want annum_by_days or month_or_part, got %q", l.Per)
	}
	return out
}
