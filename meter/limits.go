package meter

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Limits are the plausibility bounds a reading must meet to be accepted. The
// bounds are deliberately wide: they exist to catch garbage (wrong word order,
// wrong scale, wrong unit, clock-less devices), not to judge consumption,
// which is the anomaly detector's job.
//
// Start from DefaultLimits and override; the zero Limits does not validate.
type Limits struct {
	// MaxFutureSkew is how far past the arrival time a source timestamp may
	// lie. Default 5 minutes: NTP-synced devices are within seconds; more
	// means a wrong clock or a wrong time zone.
	MaxFutureSkew time.Duration
	// MaxAge is how far before the arrival time a source timestamp may lie.
	// Default 400 days, enough to backfill a year of history from a meter's
	// memory or the simulator's time-warp mode.
	MaxAge time.Duration

	// MinVoltageV and MaxVoltageV bound a phase-to-neutral voltage. Exactly
	// 0 V is always accepted (a lost phase on a three-phase meter). Defaults
	// 50 V and 500 V: covers 120/230/277 V grids with margin, and rejects the
	// denormal or astronomically large values a word-swapped float gives.
	MinVoltageV, MaxVoltageV float64
	// MinFrequencyHz and MaxFrequencyHz bound the grid frequency. Defaults
	// 40 Hz and 70 Hz (50 and 60 Hz grids with a wide margin).
	MinFrequencyHz, MaxFrequencyHz float64
	// MaxPhaseCurrentA bounds the magnitude of one phase's current; totals
	// may be three times as large. Default 10 000 A (large CT-connected
	// installations).
	MaxPhaseCurrentA float64
	// MaxPhasePowerW bounds the magnitude of one phase's active power;
	// totals may be three times as large. Default 2.5 MW.
	MaxPhasePowerW float64
	// MaxEnergyWh bounds a cumulative energy register. Default 10^13 Wh
	// (10 TWh: thirty years at 7.5 MW).
	MaxEnergyWh int64
}

// Maximum number of phases a total may sum over.
const maxPhases = 3

// minMagnitude is the smallest non-zero magnitude an instantaneous value
// may have. No meter resolves below milli-units, and sums of phases computed
// in float64 stay far above it, but a float32 read with its words swapped
// often lands in the 1e-20..1e-45 range, denormals included.
const minMagnitude = 1e-20

// powerFactorSlack lets |power factor| exceed 1 by rounding: meters that
// compute P/S from rounded P and S report 1.001 now and then.
const powerFactorSlack = 0.002

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxFutureSkew:    5 * time.Minute,
		MaxAge:           400 * 24 * time.Hour,
		MinVoltageV:      50,
		MaxVoltageV:      500,
		MinFrequencyHz:   40,
		MaxFrequencyHz:   70,
		MaxPhaseCurrentA: 10_000,
		MaxPhasePowerW:   2_500_000,
		MaxEnergyWh:      10_000_000_000_000,
	}
}

// ErrInvalidLimits is wrapped by Limits.Validate errors.
var ErrInvalidLimits = errors.New("invalid limits")

// Validate reports whether every bound is set and consistent.
func (l Limits) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidLimits, field, fmt.Sprintf(format, args...)))
	}
	if l.MaxFutureSkew <= 0 {
		bad("MaxFutureSkew", "must be positive, got %v", l.MaxFutureSkew)
	}
	if l.MaxAge <= 0 {
		bad("MaxAge", "must be positive, got %v", l.MaxAge)
	}
	if !(l.MinVoltageV > 0 && l.MinVoltageV < l.MaxVoltageV) {
		bad("MinVoltageV/MaxVoltageV", "need 0 < min < max, got %v..%v", l.MinVoltageV, l.MaxVoltageV)
	}
	if !(l.MinFrequencyHz > 0 && l.MinFrequencyHz < l.MaxFrequencyHz) {
		bad("MinFrequencyHz/MaxFrequencyHz", "need 0 < min < max, got %v..%v", l.MinFrequencyHz, l.MaxFrequencyHz)
	}
	if !(l.MaxPhaseCurrentA > 0) || math.IsInf(l.MaxPhaseCurrentA, 0) {
		bad("MaxPhaseCurrentA", "must be positive and finite, got %v", l.MaxPhaseCurrentA)
	}
	if !(l.MaxPhasePowerW > 0) || math.IsInf(l.MaxPhasePowerW, 0) {
		bad("MaxPhasePowerW", "must be positive and finite, got %v", l.MaxPhasePowerW)
	}
	if l.MaxEnergyWh <= 0 {
		bad("MaxEnergyWh", "must be positive, got %d", l.MaxEnergyWh)
	}
	return errors.Join(errs...)
}

// Check returns a *RejectError if r is not plausible at arrival time now
// (normally r.ReceivedAt), and nil otherwise. It checks, in order: that r
// carries at least one quantity (missing_field), that its timestamp is set
// (missing_field), not too far in the future (future_timestamp) or past
// (too_old), and that every present quantity is within bounds
// (impossible_value). Field names in the error are the canonical ones
// ("import_wh", "voltage_v", "ts").
func (l Limits) Check(r *Reading, now time.Time) error {
	if r.Fields&AllFields == 0 {
		return Rejectf(ReasonMissingField, "", "reading carries no quantity")
	}
	if r.Time.IsZero() {
		return Rejectf(ReasonMissingField, "ts", "no timestamp")
	}
	if limit := now.Add(l.MaxFutureSkew); r.Time.After(limit) {
		return Rejectf(ReasonFutureTimestamp, "ts", "%s is %v after arrival at %s",
			r.Time.UTC().Format(time.RFC3339Nano), r.Time.Sub(now).Round(time.Second), now.UTC().Format(time.RFC3339))
	}
	if limit := now.Add(-l.MaxAge); r.Time.Before(limit) {
		return Rejectf(ReasonTooOld, "ts", "%s is more than %v before arrival at %s",
			r.Time.UTC().Format(time.RFC3339Nano), l.MaxAge, now.UTC().Format(time.RFC3339))
	}
	if r.Fields.Has(FieldImport) {
		if err := l.checkEnergy(FieldImport.name(), r.ImportWh); err != nil {
			return err
		}
	}
	if r.Fields.Has(FieldExport) {
		if err := l.checkEnergy(FieldExport.name(), r.ExportWh); err != nil {
			return err
		}
	}
	checks := [...]struct {
		f Fields
		q Quantity
		x float32
	}{
		{FieldPower, QuantityPower, r.PowerW},
		{FieldVoltage, QuantityVoltage, r.VoltageV},
		{FieldCurrent, QuantityCurrent, r.CurrentA},
		{FieldFrequency, QuantityFrequency, r.FrequencyHz},
		{FieldPowerFactor, QuantityPowerFactor, r.PowerFactor},
	}
	for _, c := range checks {
		if !r.Fields.Has(c.f) {
			continue
		}
		if err := l.check(c.f.name(), c.q, float64(c.x)); err != nil {
			return err
		}
	}
	return nil
}

// CheckQuantity returns a *RejectError (impossible_value) if x, in q's
// canonical unit, is outside the bounds for q: per-phase bounds for per-phase
// quantities, three times those for totals. Energy is checked as Wh.
func (l Limits) CheckQuantity(q Quantity, x float64) error {
	if q.Dimension() == DimensionEnergy {
		if math.IsNaN(x) || x < 0 || x > float64(l.MaxEnergyWh) {
			return Rejectf(ReasonImpossibleValue, q.String(), "%v Wh is outside 0..%d Wh", x, l.MaxEnergyWh)
		}
		return nil
	}
	return l.check(q.String(), q, x)
}

// CheckValues applies CheckQuantity to every present quantity in v and
// returns the first failure.
func (l Limits) CheckValues(v *Values) error {
	for q := QuantityNone + 1; q < numQuantities; q++ {
		if x, ok := v.Get(q); ok {
			if err := l.CheckQuantity(q, x); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l Limits) checkEnergy(field string, wh int64) error {
	if wh < 0 || wh > l.MaxEnergyWh {
		return Rejectf(ReasonImpossibleValue, field, "%d Wh is outside 0..%d Wh", wh, l.MaxEnergyWh)
	}
	return nil
}

func (l Limits) check(field string, q Quantity, x float64) error {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return Rejectf(ReasonImpossibleValue, field, "not a finite number")
	}
	if x != 0 && math.Abs(x) < minMagnitude {
		return Rejectf(ReasonImpossibleValue, field, "%g is implausibly small (a float read with its words swapped?)", x)
	}
	phases := float64(maxPhases)
	if q.Phase() != 0 {
		phases = 1
	}
	var lo, hi float64
	var unit string
	switch q.Dimension() {
	case DimensionVoltage:
		if x == 0 {
			return nil
		}
		lo, hi, unit = l.MinVoltageV, l.MaxVoltageV, "V"
	case DimensionFrequency:
		lo, hi, unit = l.MinFrequencyHz, l.MaxFrequencyHz, "Hz"
	case DimensionCurrent:
		hi = l.MaxPhaseCurrentA * phases
		lo, unit = -hi, "A"
	case DimensionPower:
		hi = l.MaxPhasePowerW * phases
		lo, unit = -hi, "W"
	case DimensionRatio:
		lo, hi = -1-powerFactorSlack, 1+powerFactorSlack
	default:
		return Rejectf(ReasonImpossibleValue, field, "quantity %v has no bounds", q)
	}
	if x < lo || x > hi {
		return Rejectf(ReasonImpossibleValue, field, "%v%s is outside %v..%v%s", x, unit, lo, hi, unit)
	}
	return nil
}
