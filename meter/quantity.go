package meter

import (
	"errors"
	"fmt"
	"math"
)

// Quantity names one measured quantity a meter can report: a cumulative
// energy register, or an instantaneous power, voltage, current, frequency or
// power factor, in total or for one phase.
//
// Register maps (meter/regmap) name their registers with these quantities, and
// Values holds decoded values indexed by them. The numeric values are not
// stored anywhere; the String form is what data files and documents use.
type Quantity uint8

// The quantities. Energy quantities are cumulative counters in Wh; the others
// are instantaneous values in W, V, A, Hz or a ratio (power factor).
const (
	QuantityNone Quantity = iota

	QuantityImportEnergy   // active energy imported (consumed), Wh
	QuantityExportEnergy   // active energy exported (fed in), Wh
	QuantityTotalEnergy    // import plus export, Wh (Eastron "Total kWh"); not a net value
	QuantityImportEnergyL1 // per-phase imported energy, Wh
	QuantityImportEnergyL2
	QuantityImportEnergyL3
	QuantityExportEnergyL1 // per-phase exported energy, Wh
	QuantityExportEnergyL2
	QuantityExportEnergyL3

	QuantityPower // total active power, W; positive means import
	QuantityPowerL1
	QuantityPowerL2
	QuantityPowerL3

	QuantityVoltage // phase-to-neutral voltage: the only one on single-phase meters, the average of the phases on others, V
	QuantityVoltageL1
	QuantityVoltageL2
	QuantityVoltageL3

	QuantityCurrent // total current: the only one on single-phase meters, the sum of the phases on others, A
	QuantityCurrentL1
	QuantityCurrentL2
	QuantityCurrentL3

	QuantityFrequency // grid frequency, Hz

	QuantityPowerFactor // total power factor, −1..1
	QuantityPowerFactorL1
	QuantityPowerFactorL2
	QuantityPowerFactorL3

	numQuantities // keep last
)

// Values keeps presence in a uint32 bit set; this fails to compile if the
// quantities outgrow it.
const _ = uint(32 - numQuantities)

// NumQuantities is one more than the largest Quantity, so arrays indexed by a
// Quantity can be declared as [NumQuantities]T.
const NumQuantities = int(numQuantities)

// Dimension is the physical dimension of a quantity, which fixes its
// canonical unit.
type Dimension uint8

// The dimensions, with the canonical unit each is held in.
const (
	DimensionNone      Dimension = iota
	DimensionEnergy              // Wh, integer
	DimensionPower               // W
	DimensionVoltage             // V
	DimensionCurrent             // A
	DimensionFrequency           // Hz
	DimensionRatio               // dimensionless (power factor)
)

func (d Dimension) String() string {
	switch d {
	case DimensionEnergy:
		return "energy"
	case DimensionPower:
		return "power"
	case DimensionVoltage:
		return "voltage"
	case DimensionCurrent:
		return "current"
	case DimensionFrequency:
		return "frequency"
	case DimensionRatio:
		return "ratio"
	}
	return "none"
}

// String returns the quantity's name as used in register-map files, e.g.
// "import_energy" or "voltage_l2".
func (q Quantity) String() string {
	switch q {
	case QuantityImportEnergy:
		return "import_energy"
	case QuantityExportEnergy:
		return "export_energy"
	case QuantityTotalEnergy:
		return "total_energy"
	case QuantityImportEnergyL1:
		return "import_energy_l1"
	case QuantityImportEnergyL2:
		return "import_energy_l2"
	case QuantityImportEnergyL3:
		return "import_energy_l3"
	case QuantityExportEnergyL1:
		return "export_energy_l1"
	case QuantityExportEnergyL2:
		return "export_energy_l2"
	case QuantityExportEnergyL3:
		return "export_energy_l3"
	case QuantityPower:
		return "power"
	case QuantityPowerL1:
		return "power_l1"
	case QuantityPowerL2:
		return "power_l2"
	case QuantityPowerL3:
		return "power_l3"
	case QuantityVoltage:
		return "voltage"
	case QuantityVoltageL1:
		return "voltage_l1"
	case QuantityVoltageL2:
		return "voltage_l2"
	case QuantityVoltageL3:
		return "voltage_l3"
	case QuantityCurrent:
		return "current"
	case QuantityCurrentL1:
		return "current_l1"
	case QuantityCurrentL2:
		return "current_l2"
	case QuantityCurrentL3:
		return "current_l3"
	case QuantityFrequency:
		return "frequency"
	case QuantityPowerFactor:
		return "power_factor"
	case QuantityPowerFactorL1:
		return "power_factor_l1"
	case QuantityPowerFactorL2:
		return "power_factor_l2"
	case QuantityPowerFactorL3:
		return "power_factor_l3"
	case QuantityNone:
		return "none"
	}
	return fmt.Sprintf("quantity(%d)", uint8(q))
}

// ErrUnknownQuantity is returned by ParseQuantity for a name it does not know.
var ErrUnknownQuantity = errors.New("unknown quantity")

// ParseQuantity returns the quantity named s (the String form). It returns an
// error wrapping ErrUnknownQuantity for any other name.
func ParseQuantity(s string) (Quantity, error) {
	for q := QuantityNone + 1; q < numQuantities; q++ {
		if q.String() == s {
			return q, nil
		}
	}
	return QuantityNone, fmt.Errorf("%w %q", ErrUnknownQuantity, s)
}

// Quantities returns every defined quantity in numeric order, a new slice on
// each call.
func Quantities() []Quantity {
	qs := make([]Quantity, 0, NumQuantities-1)
	for q := QuantityNone + 1; q < numQuantities; q++ {
		qs = append(qs, q)
	}
	return qs
}

// Valid reports whether q is a defined quantity other than QuantityNone.
func (q Quantity) Valid() bool { return q > QuantityNone && q < numQuantities }

// Dimension returns the physical dimension of q.
func (q Quantity) Dimension() Dimension {
	switch {
	case q >= QuantityImportEnergy && q <= QuantityExportEnergyL3:
		return DimensionEnergy
	case q >= QuantityPower && q <= QuantityPowerL3:
		return DimensionPower
	case q >= QuantityVoltage && q <= QuantityVoltageL3:
		return DimensionVoltage
	case q >= QuantityCurrent && q <= QuantityCurrentL3:
		return DimensionCurrent
	case q == QuantityFrequency:
		return DimensionFrequency
	case q >= QuantityPowerFactor && q <= QuantityPowerFactorL3:
		return DimensionRatio
	}
	return DimensionNone
}

// Phase returns 1, 2 or 3 for a per-phase quantity and 0 for a total (or a
// quantity that has no phase, such as frequency).
func (q Quantity) Phase() int {
	switch q {
	case QuantityImportEnergyL1, QuantityExportEnergyL1, QuantityPowerL1, QuantityVoltageL1, QuantityCurrentL1, QuantityPowerFactorL1:
		return 1
	case QuantityImportEnergyL2, QuantityExportEnergyL2, QuantityPowerL2, QuantityVoltageL2, QuantityCurrentL2, QuantityPowerFactorL2:
		return 2
	case QuantityImportEnergyL3, QuantityExportEnergyL3, QuantityPowerL3, QuantityVoltageL3, QuantityCurrentL3, QuantityPowerFactorL3:
		return 3
	}
	return 0
}

// Values holds decoded quantity values in canonical units: energy as integer
// Wh, everything else as float64 in W, V, A, Hz or a ratio. A quantity is
// either present or absent; absent is not zero.
//
// The zero Values is empty and ready to use. Values is a fixed-size value type
// (no allocation), so decoders can reuse one per device.
type Values struct {
	present uint32 // bit q set when quantity q is present
	wh      [NumQuantities]int64
	x       [NumQuantities]float64
}

// Reset makes v empty.
func (v *Values) Reset() { v.present = 0 }

// Has reports whether q is present.
func (v *Values) Has(q Quantity) bool { return q.Valid() && v.present&(1<<q) != 0 }

// Len returns how many quantities are present.
func (v *Values) Len() int {
	n := 0
	for p := v.present; p != 0; p &= p - 1 {
		n++
	}
	return n
}

// Delete makes q absent.
func (v *Values) Delete(q Quantity) {
	if q.Valid() {
		v.present &^= 1 << q
	}
}

// SetWh sets energy quantity q to wh watt-hours. It panics if q is not an
// energy quantity, which is a programming error.
func (v *Values) SetWh(q Quantity, wh int64) {
	if q.Dimension() != DimensionEnergy {
		panic(fmt.Sprintf("meter: SetWh on non-energy quantity %v", q))
	}
	v.wh[q] = wh
	v.present |= 1 << q
}

// Set sets non-energy quantity q to x in its canonical unit. It panics if q
// is an energy quantity (use SetWh) or undefined, which is a programming
// error.
func (v *Values) Set(q Quantity, x float64) {
	if d := q.Dimension(); d == DimensionEnergy || d == DimensionNone {
		panic(fmt.Sprintf("meter: Set on quantity %v", q))
	}
	v.x[q] = x
	v.present |= 1 << q
}

// Wh returns energy quantity q in Wh and whether it is present.
func (v *Values) Wh(q Quantity) (int64, bool) {
	if !v.Has(q) || q.Dimension() != DimensionEnergy {
		return 0, false
	}
	return v.wh[q], true
}

// Get returns quantity q in its canonical unit and whether it is present.
// Energy is returned as float64 Wh (exact up to 2^53 Wh).
func (v *Values) Get(q Quantity) (float64, bool) {
	if !v.Has(q) {
		return 0, false
	}
	if q.Dimension() == DimensionEnergy {
		return float64(v.wh[q]), true
	}
	return v.x[q], true
}

// Each calls fn for every present quantity in numeric order, with its value
// as Get returns it.
func (v *Values) Each(fn func(q Quantity, x float64)) {
	for q := QuantityNone + 1; q < numQuantities; q++ {
		if x, ok := v.Get(q); ok {
			fn(q, x)
		}
	}
}

// Reading returns the Reading fields v determines, with Time, MeterID,
// ReceivedAt, Source and Quality left zero for the caller to fill.
//
// The mapping is the same for every meter model so that readings compare
// across models:
//   - ImportWh, ExportWh: import_energy, export_energy.
//   - PowerW: power; else the sum of power_l1..l3 when all three are present.
//   - VoltageV: voltage; else the mean of whichever of voltage_l1..l3 are
//     present and non-zero (a three-phase meter wired to one phase reads
//     0 V on the others, and averaging those in would report 77 V).
//   - CurrentA: current; else the sum of current_l1..l3 when all three are present.
//   - FrequencyHz: frequency.
//   - PowerFactor: power_factor (per-phase factors are not combined: that
//     needs apparent power, which the maps do not read).
//
// Per-phase energy and total_energy (import+export) do not feed a Reading.
func (v *Values) Reading() Reading {
	var r Reading
	if wh, ok := v.Wh(QuantityImportEnergy); ok {
		r.ImportWh = wh
		r.Fields |= FieldImport
	}
	if wh, ok := v.Wh(QuantityExportEnergy); ok {
		r.ExportWh = wh
		r.Fields |= FieldExport
	}
	if x, ok := v.total(QuantityPower, QuantityPowerL1, false); ok {
		r.PowerW = float32(x)
		r.Fields |= FieldPower
	}
	if x, ok := v.total(QuantityVoltage, QuantityVoltageL1, true); ok {
		r.VoltageV = float32(x)
		r.Fields |= FieldVoltage
	}
	if x, ok := v.total(QuantityCurrent, QuantityCurrentL1, false); ok {
		r.CurrentA = float32(x)
		r.Fields |= FieldCurrent
	}
	if x, ok := v.Get(QuantityFrequency); ok {
		r.FrequencyHz = float32(x)
		r.Fields |= FieldFrequency
	}
	if x, ok := v.Get(QuantityPowerFactor); ok {
		r.PowerFactor = float32(x)
		r.Fields |= FieldPowerFactor
	}
	return r
}

// total returns the total quantity if present; otherwise the mean (mean=true)
// of the non-zero phases present, or the sum of the phases when all three
// are present.
func (v *Values) total(total, l1 Quantity, mean bool) (float64, bool) {
	if x, ok := v.Get(total); ok {
		return x, true
	}
	var sum float64
	n, nonZero := 0, 0
	for q := l1; q < l1+3; q++ {
		if x, ok := v.Get(q); ok {
			sum += x
			n++
			if x != 0 {
				nonZero++
			}
		}
	}
	switch {
	case mean && nonZero > 0:
		return sum / float64(nonZero), true
	case mean && n > 0:
		return 0, true // every phase present reads 0 V
	case !mean && n == 3:
		return sum, true
	}
	return 0, false
}

// ValuesFromReading returns the Values a Reading carries, as totals
// (import_energy, power, voltage, …), for encoders that work from a Reading.
// NaN and infinite instantaneous values are left absent.
func ValuesFromReading(r Reading) Values {
	var v Values
	if r.Fields.Has(FieldImport) {
		v.SetWh(QuantityImportEnergy, r.ImportWh)
	}
	if r.Fields.Has(FieldExport) {
		v.SetWh(QuantityExportEnergy, r.ExportWh)
	}
	set := func(f Fields, q Quantity, x float32) {
		if r.Fields.Has(f) && !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) {
			v.Set(q, float64(x))
		}
	}
	set(FieldPower, QuantityPower, r.PowerW)
	set(FieldVoltage, QuantityVoltage, r.VoltageV)
	set(FieldCurrent, QuantityCurrent, r.CurrentA)
	set(FieldFrequency, QuantityFrequency, r.FrequencyHz)
	set(FieldPowerFactor, QuantityPowerFactor, r.PowerFactor)
	return v
}
