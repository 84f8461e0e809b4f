package meter

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// CounterSpec describes the arithmetic of one cumulative energy register:
// where it wraps and how finely it resolves. Register maps derive it from
// the register's type, scale and unit (regmap.Map.CounterSpec); a zero
// CounterSpec means "integer Wh, never wraps".
type CounterSpec struct {
	// ModulusWh is the value at which the register wraps back to zero, in
	// Wh: 2^32 Wh for a uint32 (or SunSpec acc32) Wh register, 10^9 Wh for a
	// kWh register with a six-digit display. 0 means it does not wrap within
	// the int64 range.
	ModulusWh int64
	// StepWh is the resolution of an integer register in Wh (10 for a
	// register counting 0.01 kWh). Values below 1 mean 1.
	StepWh int64
	// FloatMantissaBits is 24 for a float32 register and 53 for float64; 0
	// for integer registers. A float register loses resolution as it grows:
	// a float32 kWh register above 2^24 kWh can only count whole kWh (and
	// 2 kWh steps above 2^25), which would otherwise look like noise or a
	// reset.
	FloatMantissaBits int
	// FloatUnitWh is the number of Wh in one unit of a float register (1000
	// for kWh, 1 for Wh).
	FloatUnitWh float64
}

// ResolutionWh returns the smallest change, in Wh, the register can show
// when it holds valueWh; at least 1.
func (s CounterSpec) ResolutionWh(valueWh int64) int64 {
	res := max(s.StepWh, 1)
	if s.FloatMantissaBits > 0 && s.FloatUnitWh > 0 && valueWh > 0 {
		u := float64(valueWh) / s.FloatUnitWh
		_, exp := math.Frexp(u) // u = frac × 2^exp, frac in [0.5, 1)
		ulp := math.Ldexp(1, exp-s.FloatMantissaBits) * s.FloatUnitWh
		if r := int64(math.Ceil(ulp)); r > res {
			res = r
		}
	}
	return res
}

// CounterSample is one observation of an energy register.
type CounterSample struct {
	Time    time.Time // source timestamp
	ValueWh int64     // register value in Wh, as decoded
	// Identity is what identifies the physical meter behind the register
	// (serial number, SunSpec common-model serial, …). A change between two
	// samples means the meter was replaced. Empty means unknown, which never
	// counts as a change.
	Identity string
}

// CounterEventKind classifies the step between two samples of an energy
// register. The numeric values may be stored (counter events table), so they
// must never be renumbered; the String forms are stable too.
type CounterEventKind int16

// Counter event kinds.
const (
	// CounterNormal: the register moved forward by a plausible amount (or
	// stood still, or moved back by less than its resolution). No event.
	CounterNormal CounterEventKind = 0
	// CounterRollover: the register wrapped past its modulus. Consumption
	// is modulus − prev + cur.
	CounterRollover CounterEventKind = 1
	// CounterReset: the register went back towards zero and not by wrapping
	// (power loss on Tasmota/Shelly, "EnergyTotal 0", a meter reset).
	// Consumption is cur: what it has counted since starting again from
	// zero. Energy used between the previous sample and the reset is lost.
	CounterReset CounterEventKind = 2
	// CounterReplacement: the meter identity changed. Consumption is 0: the
	// old meter's last value and the new one's first value are both kept,
	// and the energy between them belongs to the replacement record, not to
	// counter arithmetic.
	CounterReplacement CounterEventKind = 3
	// CounterJump: a step no meter can make, forward or back: more energy
	// than MaxPowerW × elapsed time, or a drop to a value that neither a
	// rollover nor a reset explains (wrong word order, wrong scale, a
	// swapped meter whose identity is unknown). Consumption is 0; the raw
	// value is kept and the next step is measured from it.
	CounterJump CounterEventKind = 4
)

func (k CounterEventKind) String() string {
	switch k {
	case CounterNormal:
		return "normal"
	case CounterRollover:
		return "rollover"
	case CounterReset:
		return "reset"
	case CounterReplacement:
		return "replacement"
	case CounterJump:
		return "jump"
	}
	return fmt.Sprintf("counter_event(%d)", int16(k))
}

// CounterStep is the result of StepCounter.
type CounterStep struct {
	Kind CounterEventKind
	// ConsumptionWh is the energy to attribute to the interval between the
	// two samples; never negative.
	ConsumptionWh int64
	// DeltaWh is cur − prev as read, which is negative for rollovers and
	// resets; record it with the event.
	DeltaWh int64
	// MaxPlausibleWh is the most energy the interval could hold (MaxPowerW ×
	// elapsed, plus the register's resolution) that the classification used.
	MaxPlausibleWh int64
}

// Errors returned by StepCounter for inputs it cannot classify.
var (
	ErrCounterOrder = errors.New("counter samples out of order")
	ErrCounterInput = errors.New("invalid counter input")
)

// StepCounter classifies the step of an energy register from prev to cur
// and returns the consumption to use for the interval. maxPowerW is the most
// power the metered connection can plausibly carry, in W (for example the
// sanctioned load with a margin, or three times Limits.MaxPhasePowerW when
// nothing better is known).
//
// The rules, in order:
//  1. Both identities known and different: CounterReplacement.
//  2. cur ≥ prev: CounterNormal with consumption cur − prev if that is at
//     most the plausible maximum, else CounterJump.
//  3. cur < prev by no more than the register's resolution: CounterNormal
//     with consumption 0 (float noise).
//  4. The register wraps and modulus − prev + cur is plausible:
//     CounterRollover.
//  5. cur itself is plausible (the register restarted from zero within the
//     interval): CounterReset with consumption cur.
//  6. Otherwise: CounterJump.
//
// It returns an error wrapping ErrCounterOrder if cur is earlier than prev
// (the caller must feed samples in source-time order; late readings are
// stored but do not move the counter), and one wrapping ErrCounterInput for
// negative values, values at or beyond the modulus, or a maxPowerW that is
// not a positive finite number.
func StepCounter(prev, cur CounterSample, spec CounterSpec, maxPowerW float64) (CounterStep, error) {
	if cur.Time.Before(prev.Time) {
		return CounterStep{}, fmt.Errorf("%w: %s before %s", ErrCounterOrder,
			cur.Time.UTC().Format(time.RFC3339Nano), prev.Time.UTC().Format(time.RFC3339Nano))
	}
	if !(maxPowerW > 0) || math.IsInf(maxPowerW, 0) {
		return CounterStep{}, fmt.Errorf("%w: max power %v W", ErrCounterInput, maxPowerW)
	}
	if prev.ValueWh < 0 || cur.ValueWh < 0 {
		return CounterStep{}, fmt.Errorf("%w: negative value (%d, %d Wh)", ErrCounterInput, prev.ValueWh, cur.ValueWh)
	}
	if spec.ModulusWh < 0 || (spec.ModulusWh > 0 && (prev.ValueWh >= spec.ModulusWh || cur.ValueWh >= spec.ModulusWh)) {
		return CounterStep{}, fmt.Errorf("%w: value (%d, %d Wh) outside modulus %d Wh", ErrCounterInput, prev.ValueWh, cur.ValueWh, spec.ModulusWh)
	}

	resWh := spec.ResolutionWh(max(prev.ValueWh, cur.ValueWh))
	step := CounterStep{
		DeltaWh:        cur.ValueWh - prev.ValueWh,
		MaxPlausibleWh: plausibleWh(maxPowerW, cur.Time.Sub(prev.Time), resWh),
	}

	switch {
	case prev.Identity != "" && cur.Identity != "" && prev.Identity != cur.Identity:
		step.Kind = CounterReplacement
	case step.DeltaWh >= 0:
		if step.DeltaWh <= step.MaxPlausibleWh {
			step.Kind, step.ConsumptionWh = CounterNormal, step.DeltaWh
		} else {
			step.Kind = CounterJump
		}
	case -step.DeltaWh <= resWh:
		step.Kind = CounterNormal
	case spec.ModulusWh > 0 && spec.ModulusWh-prev.ValueWh <= step.MaxPlausibleWh-cur.ValueWh:
		// Written so it cannot overflow: prev < modulus and plausible is
		// capped far below the int64 limit.
		step.Kind, step.ConsumptionWh = CounterRollover, spec.ModulusWh-prev.ValueWh+cur.ValueWh
	case cur.ValueWh <= step.MaxPlausibleWh:
		step.Kind, step.ConsumptionWh = CounterReset, cur.ValueWh
	default:
		step.Kind = CounterJump
	}
	return step, nil
}

// plausibleWh returns ⌈maxPowerW × elapsed⌉ + resWh, saturating well below
// the int64 limit so sums with it cannot overflow.
func plausibleWh(maxPowerW float64, elapsed time.Duration, resWh int64) int64 {
	const ceiling = math.MaxInt64 / 4
	wh := math.Ceil(maxPowerW * elapsed.Hours())
	if wh >= ceiling {
		return ceiling
	}
	return min(int64(wh)+resWh, ceiling)
}
