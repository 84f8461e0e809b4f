package municipal

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// Connection is what the calculators read from a sewerage or water
// connection. Counts left nil are zero.
type Connection struct {
	ConnectionNo   string
	ApplicationNo  string
	ConnectionType string // "Non Metered", "Metered"
	WaterClosets   *int
	Toilets        *int
	Taps           *int
	PipeSize       *int
	// LastReading and CurrentReading give metered water consumption.
	LastReading    *decimal.Decimal
	CurrentReading *decimal.Decimal
	RoadCutting    []RoadCutting
	// AdhocPenalty and AdhocRebate are an official's one-time-fee
	// adjustments (the connection's additionalDetails).
	AdhocPenalty *decimal.Decimal
	AdhocRebate  *decimal.Decimal
}

// RoadCutting is one stretch of road cut for the connection.
type RoadCutting struct {
	RoadType string           // RoadType code, e.g. "CCROAD"
	Area     *decimal.Decimal // square metres
}

// Property is what the calculators read from the property.
type Property struct {
	UsageCategory string           // "RESIDENTIAL", "NONRESIDENTIAL.COMMERCIAL"
	LandArea      *decimal.Decimal // square metres (plot size)
}

// Calculation is a calculator's output: estimates per tax head and the
// summary buckets of the reference's Calculation.
type Calculation struct {
	Estimates      []billing.Estimate
	BillingSlabIDs []string
	// Slabs are the billing slabs the charge came from, and Attribute what
	// they count (periodic charges only).
	Slabs       []BillingSlab
	Attribute   string
	Units       decimal.Decimal // what the slab counted
	Charge      decimal.Decimal // CHARGES
	Fee         decimal.Decimal // FEE
	TaxAmount   decimal.Decimal // TAX and anything else, positive round-off
	Penalty     decimal.Decimal // PENALTY
	Rebate      decimal.Decimal // REBATE, negative round-off
	Exemption   decimal.Decimal // EXEMPTION
	TotalAmount decimal.Decimal
}

// PeriodicCharge computes a connection's periodic charge for the demand
// whose period starts on periodStart: the charge from the one matching
// billing slab, the cess when the masters carry one (the entry applicable
// on periodStart, in its financial year, not today's: reference bug B12
// and ambiguity A3) and the round-off that makes the total whole.
//
// The slab is the one whose building type (the usage category's first
// segment), connection type and the connection type's calculation
// attribute all match, case-insensitively. A Flat slab charges its minimum
// charge (bug B1 charged 0). Metered water is graduated: each band's units
// at that band's rate (bug B4 mis-billed at and above the second band).
// Anything else is per-unit: all units at the rate of the band they fall
// in, never less than the minimum charge; zero units follow the policy;
// units in no band are an error (bug B2 billed 0). Arithmetic is exact.
func PeriodicCharge(svc Service, conn Connection, prop Property, m *Masters, periodStart billing.Date, p Policy) (Calculation, error) {
	attr, err := m.attribute(conn.ConnectionType)
	if err != nil {
		return Calculation{}, err
	}
	slab, err := m.slab(BuildingType(prop.UsageCategory), conn.ConnectionType, attr)
	if err != nil {
		return Calculation{}, err
	}
	calc := Calculation{BillingSlabIDs: []string{string(slab.ID)}, Slabs: []BillingSlab{*slab}, Attribute: attr, Units: decimal.Zero}
	var charge decimal.Decimal
	switch {
	case strings.EqualFold(attr, AttrFlat):
		charge = slab.MinimumCharge
	case strings.EqualFold(attr, AttrWaterConsumption):
		units, err := meteredUnits(conn)
		if err != nil {
			return Calculation{}, err
		}
		calc.Units = units
		graduated, err := GraduatedCharge(slab.Bands, units)
		if err != nil {
			return Calculation{}, fmt.Errorf("slab %s: %w", slab.ID, err)
		}
		charge = decimal.Max(graduated, slab.MinimumCharge)
	default:
		units, err := countUnits(conn, attr)
		if err != nil {
			return Calculation{}, err
		}
		calc.Units = units
		charge, err = perUnitCharge(slab, units, p.ZeroUnits)
		if err != nil {
			return Calculation{}, err
		}
	}
	charge = p.ChargeRounding.Apply(charge)
	calc.Estimates = append(calc.Estimates, billing.Estimate{Head: svc.Charge, Category: svc.Category(svc.Charge), Amount: charge})
	if cessMaster, ok := ApplicableMaster(m.Cess, billing.FinancialYearOf(periodStart), periodStart); ok {
		if cess := p.ChargeRounding.Apply(cessAmount(charge, cessMaster)); !cess.IsZero() {
			calc.Estimates = append(calc.Estimates, billing.Estimate{Head: svc.Cess, Category: svc.Category(svc.Cess), Amount: cess})
		}
	}
	calc.Estimates = withRoundOff(calc.Estimates, svc.RoundOff, svc.Category(svc.RoundOff), p.RoundOffMode)
	calc.summarize(svc.RoundOff)
	return calc, nil
}

// countUnits reads the attribute a non-metered slab counts.
func countUnits(conn Connection, attr string) (decimal.Decimal, error) {
	var n *int
	switch {
	case strings.EqualFold(attr, AttrWaterClosets):
		n = conn.WaterClosets
	case strings.EqualFold(attr, AttrToilets):
		n = conn.Toilets
	case strings.EqualFold(attr, AttrTaps):
		n = conn.Taps
	case strings.EqualFold(attr, AttrPipeSize):
		n = conn.PipeSize
	default:
		return decimal.Zero, fmt.Errorf("calculation attribute %q: %w", attr, ErrNoCalculationAttribute)
	}
	if n == nil {
		return decimal.Zero, nil
	}
	if *n < 0 {
		return decimal.Zero, fmt.Errorf("%s is %d: %w", attr, *n, ErrReading)
	}
	return decimal.NewFromInt(int64(*n)), nil
}

// meteredUnits is current minus last reading.
func meteredUnits(conn Connection) (decimal.Decimal, error) {
	if conn.LastReading == nil || conn.CurrentReading == nil {
		return decimal.Zero, fmt.Errorf("connection %s: metered charge needs last and current readings: %w", conn.ConnectionNo, ErrReading)
	}
	units := conn.CurrentReading.Sub(*conn.LastReading)
	if units.IsNegative() {
		return decimal.Zero, fmt.Errorf("connection %s: current reading %s is below last reading %s: %w",
			conn.ConnectionNo, conn.CurrentReading, conn.LastReading, ErrReading)
	}
	return units, nil
}

// perUnitCharge prices all units at the rate of the band they fall in
// (From ≤ units < To), with the minimum charge as a floor.
func perUnitCharge(slab *BillingSlab, units decimal.Decimal, zero ZeroUnits) (decimal.Decimal, error) {
	if units.IsZero() {
		if zero == ZeroUnitsMinimum {
			return slab.MinimumCharge, nil
		}
		return decimal.Zero, nil
	}
	for _, b := range slab.Bands {
		if !units.LessThan(b.From) && units.LessThan(b.To) {
			return decimal.Max(units.Mul(b.Charge), slab.MinimumCharge), nil
		}
	}
	return decimal.Zero, fmt.Errorf("slab %s, %s units: %w", slab.ID, units, ErrNoSlabRange)
}

// GraduatedCharge prices units telescopically over bands [From, To): the
// sum over bands of (min(units, To) − From)⁺ × Charge. TV17: 35 units over
// 0–10 @2, 10–20 @2.5, 20–30 @8, 30–40 @12 → 20 + 25 + 80 + 60 = 185. It
// fails with ErrNoSlabRange when the bands do not reach the units.
func GraduatedCharge(bands []Band, units decimal.Decimal) (decimal.Decimal, error) {
	sum := decimal.Zero
	covered := decimal.Zero
	for _, b := range bands {
		if !b.From.Equal(covered) {
			return decimal.Zero, fmt.Errorf("band from %s leaves a gap after %s: %w", b.From, covered, ErrNoSlabRange)
		}
		covered = b.To
		if units.GreaterThan(b.From) {
			sum = sum.Add(decimal.Min(units, b.To).Sub(b.From).Mul(b.Charge))
		}
	}
	if units.GreaterThan(covered) {
		return decimal.Zero, fmt.Errorf("%s units beyond the last band's %s: %w", units, covered, ErrNoSlabRange)
	}
	return sum, nil
}

// cessAmount is rate% of the charge, or the flat amount capped at the
// charge.
func cessAmount(charge decimal.Decimal, m TimeBasedMaster) decimal.Decimal {
	switch {
	case !charge.IsPositive():
		return decimal.Zero
	case m.Rate != nil:
		return charge.Mul(*m.Rate).Shift(-2)
	case m.FlatAmount != nil:
		return decimal.Min(*m.FlatAmount, charge)
	}
	return decimal.Zero
}

// withRoundOff appends the round-off estimate of the estimates' total.
func withRoundOff(est []billing.Estimate, head billing.TaxHead, cat billing.Category, mode billing.RoundingMode) []billing.Estimate {
	total := decimal.Zero
	for _, e := range est {
		total = total.Add(e.Amount)
	}
	if r, ok := RoundOffEstimate(head, total, mode); ok {
		r.Category = cat
		est = append(est, r)
	}
	return est
}

// RoundOffEstimate returns the calculation-time round-off that makes total
// whole under mode (10.50 → +0.50 with RoundHalfCeiling), and false when
// total is whole already or negative: a credit gets no estimate, as in the
// reference (TV15), and the demand-level pass, billing.RebalanceRoundOff,
// rounds the demand as a whole.
func RoundOffEstimate(head billing.TaxHead, total decimal.Decimal, mode billing.RoundingMode) (billing.Estimate, bool) {
	if total.IsNegative() {
		return billing.Estimate{}, false
	}
	r := billing.RoundOff(total, 0, mode)
	if r.IsZero() {
		return billing.Estimate{}, false
	}
	return billing.Estimate{Head: head, Category: billing.CategoryTax, Amount: r}, true
}

// summarize fills the summary buckets from the estimates: by category, a
// positive round-off counting as tax and a negative one as rebate.
func (c *Calculation) summarize(roundOff billing.TaxHead) {
	c.Charge, c.Fee, c.TaxAmount, c.Penalty, c.Rebate, c.Exemption = decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero
	for _, e := range c.Estimates {
		switch {
		case e.Head == roundOff && e.Amount.IsNegative():
			c.Rebate = c.Rebate.Add(e.Amount)
		case e.Category == billing.CategoryCharges:
			c.Charge = c.Charge.Add(e.Amount)
		case e.Category == billing.CategoryFee:
			c.Fee = c.Fee.Add(e.Amount)
		case e.Category == billing.CategoryPenalty:
			c.Penalty = c.Penalty.Add(e.Amount)
		case e.Category == billing.CategoryRebate:
			c.Rebate = c.Rebate.Add(e.Amount)
		case e.Category == billing.CategoryExemption:
			c.Exemption = c.Exemption.Add(e.Amount)
		default:
			c.TaxAmount = c.TaxAmount.Add(e.Amount)
		}
	}
	c.TotalAmount = c.Charge.Add(c.Fee).Add(c.TaxAmount).Add(c.Penalty).Add(c.Rebate).Add(c.Exemption)
}
