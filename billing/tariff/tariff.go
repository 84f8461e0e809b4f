package tariff

import (
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// Tariff is one validated, compiled tariff version. Parse builds it from a
// Document; its fields are read-only afterwards and it is safe to share
// between goroutines.
type Tariff struct {
	Tenant        string
	Plan          string
	Version       string
	EffectiveFrom billing.Date
	Currency      string
	OrderRef      string

	Rounding   billing.Rounding // default line rounding
	FixedBasis ProrationBasis   // fixed, demand and minimum charges, subsidy caps
	SlabBasis  ProrationBasis   // slab bounds, group bounds, thresholds

	Energy      Energy
	Minimum     *MinimumCharge
	PerUnit     []PerUnitCharge
	Fixed       *FixedCharge
	Demand      *DemandCharge
	Taxes       []Tax
	Subsidies   []Subsidy
	Rebate      *Rebate
	Late        *LateSurcharge
	NetMetering *NetMetering
	RoundOff    *RoundOffRule
}

// ProrationBasis is how a monthly quantity is scaled to a part of a cycle.
type ProrationBasis uint8

// Proration bases.
const (
	// ProrateCycleDays scales by days billed / days in the billing cycle
	// (times the cycle's months), so one whole cycle is always one month.
	ProrateCycleDays ProrationBasis = iota + 1
	// ProrateCalendarMonth counts each day as 1/days-in-its-month.
	ProrateCalendarMonth
	// ProrateDaysOf30 scales by days billed / 30.
	ProrateDaysOf30
)

func (b ProrationBasis) String() string {
	switch b {
	case ProrateCycleDays:
		return "cycle_days"
	case ProrateCalendarMonth:
		return "calendar_month"
	case ProrateDaysOf30:
		return "days_of_30"
	}
	return "proration(?)"
}

// EnergyKind is the structure of an energy charge.
type EnergyKind uint8

// Energy charge structures.
const (
	EnergyFlat EnergyKind = iota + 1
	EnergyTelescopic
	EnergyNonTelescopic
	EnergyGroupSelected
	EnergyTimeOfUse
)

func (k EnergyKind) String() string {
	switch k {
	case EnergyFlat:
		return "flat"
	case EnergyTelescopic:
		return "telescopic"
	case EnergyNonTelescopic:
		return "non_telescopic"
	case EnergyGroupSelected:
		return "group_selected"
	case EnergyTimeOfUse:
		return "time_of_use"
	}
	return "energy(?)"
}

// Energy is a compiled energy charge. A flat rate is one open slab.
type Energy struct {
	Kind     EnergyKind
	Slabs    []Slab   // flat, telescopic, non-telescopic; the last is open
	Groups   []Group  // group-selected; the last is open
	Windows  []Window // time-of-use, covering the day exactly once
	Rounding billing.Rounding
}

// usesTimeOfUse reports whether rating e may need energy per window.
func (e *Energy) usesTimeOfUse() bool {
	if e.Kind == EnergyTimeOfUse {
		return true
	}
	for i := range e.Groups {
		if e.Groups[i].Energy.Kind == EnergyTimeOfUse {
			return true
		}
	}
	return false
}

// Slab is energy up to UptoKWh (cumulative, inclusive) at RatePerKWh; the
// last slab is Open.
type Slab struct {
	UptoKWh    decimal.Decimal
	Open       bool
	RatePerKWh decimal.Decimal

	// fromText and uptoText label an unprorated tier ("201", "400"):
	// formatting decimals per bill line would cost more than rating it.
	fromText, uptoText string
}

// Group is a rate set that applies when the total is at most UptoKWh
// (any total when Open).
type Group struct {
	UptoKWh decimal.Decimal
	Open    bool
	Energy  Energy
}

// Window is a part of the day in minutes after local midnight, end
// exclusive (ToMinute 1440 is midnight); ToMinute < FromMinute means the
// window wraps past midnight.
type Window struct {
	Name       string
	FromMinute int
	ToMinute   int
	RatePerKWh decimal.Decimal
}

// WindowAt returns the name of the window containing minute m of the day.
func (e *Energy) WindowAt(m int) string {
	for _, w := range e.Windows {
		if w.contains(m) {
			return w.Name
		}
	}
	return ""
}

func (w Window) contains(m int) bool {
	if w.FromMinute < w.ToMinute {
		return m >= w.FromMinute && m < w.ToMinute
	}
	return m >= w.FromMinute || m < w.ToMinute
}

// MinimumCharge tops the energy charge up to AmountPerMonth.
type MinimumCharge struct {
	AmountPerMonth decimal.Decimal
	Rounding       billing.Rounding
}

// threshold is an optional kWh bound.
type threshold struct {
	kwh decimal.Decimal
	set bool
}

// PerUnitCharge is a pass-through charge per billed kWh.
type PerUnitCharge struct {
	Code, Name string
	RatePerKWh decimal.Decimal
	above      threshold // applies only when total > above
	upto       threshold // applies only when total ≤ upto
	Rounding   billing.Rounding
}

// FixedKind is how a fixed charge is computed.
type FixedKind uint8

// Fixed charge kinds.
const (
	FixedPerConnection FixedKind = iota + 1
	FixedPerKW
	FixedLoadBand
)

// FixedCharge is a monthly fixed charge.
type FixedCharge struct {
	Kind              FixedKind
	Name              string
	AmountPerMonth    decimal.Decimal // per connection
	RatePerKWPerMonth decimal.Decimal // per kW
	Bands             []LoadBand      // whole load at its band's rate
	DerivedLoad       *DerivedLoad    // nil: sanctioned load
	Rounding          billing.Rounding
}

// LoadBand is load up to UptoKW at RatePerKWPerMonth; the last is Open.
type LoadBand struct {
	UptoKW            decimal.Decimal
	Open              bool
	RatePerKWPerMonth decimal.Decimal
}

// DerivedLoad is an authorised load derived from energy use: KWPerStep for
// every KWhPerStep per month or part thereof.
type DerivedLoad struct {
	KWhPerStep decimal.Decimal
	KWPerStep  decimal.Decimal
}

// DemandCharge is charged per kVA of maximum demand per month, never on
// less than MinimumKVA.
type DemandCharge struct {
	Name               string
	RatePerKVAPerMonth decimal.Decimal
	MinimumKVA         decimal.Decimal
	Rounding           billing.Rounding
}

// Tax is a percentage of the unrounded amounts of the lines named in Base.
type Tax struct {
	Code, Name string
	RatePct    decimal.Decimal
	Base       []string
	Rounding   billing.Rounding
}

// Subsidy is a negative line: RatePct of Base, at most Cap per month.
type Subsidy struct {
	Code, Name, Payer string
	RatePct           decimal.Decimal
	Base              []string
	Cap               decimal.Decimal
	HasCap            bool
	above, upto       threshold
	Rounding          billing.Rounding
}

// Rebate is the prompt-payment rebate.
type Rebate struct {
	Tiers        []RebateTier
	AllowPartial bool
	Rounding     billing.Rounding
}

// RebateTier gives RatePct (at most Cap, when HasCap) for payment within
// WithinDays days of the bill.
type RebateTier struct {
	WithinDays int
	RatePct    decimal.Decimal
	Cap        decimal.Decimal
	HasCap     bool
}

// LatePer is how the late-payment surcharge accrues.
type LatePer uint8

// Late-payment surcharge accrual.
const (
	LatePerAnnumByDays LatePer = iota + 1 // rate per annum × days late / days in year
	LatePerMonthOrPart                    // rate per month for every 30 days late or part thereof
)

// LateSurcharge is the late-payment surcharge.
type LateSurcharge struct {
	RatePct    decimal.Decimal
	Per        LatePer
	DaysInYear int
	Rounding   billing.Rounding
}

// NetMetering is present when exports offset imports.
type NetMetering struct {
	SettlementRatePerKWh decimal.Decimal
	HasSettlement        bool
	Rounding             billing.Rounding
}

// RoundOffRule brings the total to a multiple of 10^-Places.
type RoundOffRule struct {
	Places int32
	Mode   billing.RoundingMode
}
