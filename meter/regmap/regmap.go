package regmap

import (
	"fmt"
	"slices"

	"github.com/meterd/meterd/meter"
)

// Function is a Modbus read function code.
type Function uint8

// The read function codes register maps use.
const (
	FuncHolding Function = 3 // Read Holding Registers
	FuncInput   Function = 4 // Read Input Registers
)

func (f Function) String() string {
	switch f {
	case FuncHolding:
		return "holding"
	case FuncInput:
		return "input"
	}
	return fmt.Sprintf("function(%d)", uint8(f))
}

// Type is the data type of a register value on the wire.
type Type uint8

// Register data types.
const (
	TypeUint16  Type = iota + 1
	TypeInt16        // two's complement
	TypeUint32       // 2 registers
	TypeInt32        // 2 registers
	TypeUint64       // 4 registers
	TypeInt64        // 4 registers
	TypeFloat32      // IEEE 754 single, 2 registers
	TypeFloat64      // IEEE 754 double, 4 registers
	TypeAcc32        // SunSpec accumulator: uint32 that rolls over at 2^32; 0 means "not accumulated"
	TypeSunSSF       // SunSpec scale factor: int16 power of ten applied to other registers
)

// typeNames are the spellings used in map files.
func (t Type) String() string {
	switch t {
	case TypeUint16:
		return "uint16"
	case TypeInt16:
		return "int16"
	case TypeUint32:
		return "uint32"
	case TypeInt32:
		return "int32"
	case TypeUint64:
		return "uint64"
	case TypeInt64:
		return "int64"
	case TypeFloat32:
		return "float32"
	case TypeFloat64:
		return "float64"
	case TypeAcc32:
		return "acc32"
	case TypeSunSSF:
		return "sunssf"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

func parseType(s string) (Type, bool) {
	for t := TypeUint16; t <= TypeSunSSF; t++ {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

// Words returns how many 16-bit registers a value of type t occupies.
func (t Type) Words() int {
	switch t {
	case TypeUint32, TypeInt32, TypeFloat32, TypeAcc32:
		return 2
	case TypeUint64, TypeInt64, TypeFloat64:
		return 4
	}
	return 1
}

// Bits returns the width of t in bits.
func (t Type) Bits() int { return 16 * t.Words() }

func (t Type) signed() bool {
	return t == TypeInt16 || t == TypeInt32 || t == TypeInt64 || t == TypeSunSSF
}

func (t Type) float() bool { return t == TypeFloat32 || t == TypeFloat64 }

// WordOrder is the order of the 16-bit registers of a multi-register value.
type WordOrder uint8

// Word orders. Telegraf's byte-order names: HighFirst with BigEndian is ABCD,
// LowFirst with BigEndian is CDAB, HighFirst with LittleEndian is BADC,
// LowFirst with LittleEndian is DCBA.
const (
	HighFirst WordOrder = iota + 1 // most significant register at the lowest address (Modbus convention)
	LowFirst                       // least significant register first ("word-swapped", Carlo Gavazzi)
)

func (o WordOrder) String() string {
	switch o {
	case HighFirst:
		return "high_first"
	case LowFirst:
		return "low_first"
	}
	return fmt.Sprintf("word_order(%d)", uint8(o))
}

// ByteOrder is the order of the two bytes within one register.
type ByteOrder uint8

// Byte orders within a register.
const (
	BigEndian    ByteOrder = iota + 1 // high byte first (Modbus convention)
	LittleEndian                      // bytes swapped within each register
)

func (o ByteOrder) String() string {
	switch o {
	case BigEndian:
		return "big"
	case LittleEndian:
		return "little"
	}
	return fmt.Sprintf("byte_order(%d)", uint8(o))
}

// NotAvailable is a device family's convention for raw values that mean "this
// value is not available" rather than a measurement. NaN and infinities in
// float registers always mean "not available", whatever the convention.
type NotAvailable uint8

// Not-available conventions.
const (
	NANone NotAvailable = iota + 1 // every integer value is a measurement
	// NASunSpec: int16 0x8000, uint16 0xFFFF, int32 0x80000000, uint32
	// 0xFFFFFFFF, acc32 0, sunssf 0x8000, int64/uint64 likewise.
	NASunSpec
	// NAABB: unsigned registers all 0xFF bytes, signed registers the
	// largest positive value (0x7FFF…), as mbmd's ABB code treats them.
	NAABB
)

func (n NotAvailable) String() string {
	switch n {
	case NANone:
		return "none"
	case NASunSpec:
		return "sunspec"
	case NAABB:
		return "abb"
	}
	return fmt.Sprintf("not_available(%d)", uint8(n))
}

// Unit is the unit a register's value is in after its fixed Scale and scale
// factor are applied.
type Unit uint8

// Units. Each converts to its dimension's canonical unit by a power of ten.
const (
	UnitRatio   Unit = iota + 1 // dimensionless (power factor −1..1)
	UnitPercent                 // power factor in percent (SunSpec "Pct")
	UnitWh
	UnitKWh
	UnitW
	UnitKW
	UnitV
	UnitA
	UnitHz
)

func (u Unit) String() string {
	switch u {
	case UnitRatio:
		return "ratio"
	case UnitPercent:
		return "%"
	case UnitWh:
		return "Wh"
	case UnitKWh:
		return "kWh"
	case UnitW:
		return "W"
	case UnitKW:
		return "kW"
	case UnitV:
		return "V"
	case UnitA:
		return "A"
	case UnitHz:
		return "Hz"
	}
	return fmt.Sprintf("unit(%d)", uint8(u))
}

func parseUnit(s string) (Unit, bool) {
	for u := UnitRatio; u <= UnitHz; u++ {
		if u.String() == s {
			return u, true
		}
	}
	return 0, false
}

// Dimension returns the physical dimension u measures.
func (u Unit) Dimension() meter.Dimension {
	switch u {
	case UnitRatio, UnitPercent:
		return meter.DimensionRatio
	case UnitWh, UnitKWh:
		return meter.DimensionEnergy
	case UnitW, UnitKW:
		return meter.DimensionPower
	case UnitV:
		return meter.DimensionVoltage
	case UnitA:
		return meter.DimensionCurrent
	case UnitHz:
		return meter.DimensionFrequency
	}
	return meter.DimensionNone
}

// Pow10 returns the power of ten that converts a value in u to its
// dimension's canonical unit (Wh, W, V, A, Hz, ratio): 3 for kWh and kW, −2
// for percent, 0 otherwise.
func (u Unit) Pow10() int {
	switch u {
	case UnitKWh, UnitKW:
		return 3
	case UnitPercent:
		return -2
	}
	return 0
}

// Register is one value in a register map.
type Register struct {
	// Quantity is what the register measures; QuantityNone for a SunSpec
	// scale-factor register.
	Quantity meter.Quantity
	// Name identifies the register within its map (the SunSpec point name
	// for SunSpec maps); scale-factor registers are referenced by it. It
	// defaults to the quantity's name.
	Name string
	// Address is the 0-based protocol address of the first register, with
	// the map's Base already added.
	Address   uint16
	Function  Function
	Type      Type
	WordOrder WordOrder
	ByteOrder ByteOrder
	// Unit is what raw × 10^Scale (× 10^scale factor) is measured in.
	Unit Unit
	// Scale is a fixed power of ten: value in Unit = raw × 10^Scale. ABB
	// counts 0.01 kWh, so its energy registers have Scale −2 and Unit kWh.
	Scale int
	// ScaleFactor is the index in Map.Registers of the SunSpec scale-factor
	// register whose value is a further power of ten, or −1.
	ScaleFactor int
	// Optional registers do not exist on every variant of the model; the
	// planner reads each in its own request so that a Modbus exception on
	// one does not lose the mandatory values.
	Optional bool
	// RolloverUnits is where a counter wraps back to zero, in Unit (1e6 for
	// a six-digit kWh display); 0 means the type's own range (2^32 for
	// uint32 and acc32) or, for float and signed types, never.
	RolloverUnits float64
	NotAvailable  NotAvailable
	// DefaultSF is the scale factor an encoder writes into a scale-factor
	// register; the encoder raises it when a value would not fit.
	DefaultSF int
}

// Words returns how many registers r occupies.
func (r *Register) Words() int { return r.Type.Words() }

// End returns the address one past r's last register, as an int so that a
// register ending at 0xFFFF does not overflow.
func (r *Register) End() int { return int(r.Address) + r.Words() }

// SunSpecModel identifies a SunSpec model.
type SunSpecModel struct {
	ID     uint16 // model ID, the value of the model's first register (203)
	Length uint16 // model length L, the value of its second register (105 for 203)
}

// Map is one meter model's register map.
//
// Map files (maps/<model>.json) are JSON objects:
//
//	{
//	  "model": "sdm630",                 // must equal the file name without .json
//	  "name": "Eastron SDM630",
//	  "source": "where the addresses come from",
//	  "phases": 3,                       // 1 or 3
//	  "sunspec": {"id": 203, "length": 105},  // SunSpec maps only
//	  "base": 40070,                     // added to every address (SunSpec: the model's ID register)
//	  "defaults": {                      // apply to every register unless it overrides them
//	    "function": 4, "type": "float32", "word_order": "high_first",
//	    "byte_order": "big", "not_available": "none"
//	  },
//	  "registers": [
//	    {"quantity": "import_energy", "address": "0x0048", "unit": "kWh"},
//	    {"quantity": "power", "address": 18, "type": "int16", "unit": "W", "scale_factor": "W_SF"},
//	    {"name": "W_SF", "address": 22, "type": "sunssf", "default_sf": 0},
//	    {"quantity": "export_energy", "address": "0x5C", "optional": true, "scale": -1, "unit": "kWh"}
//	  ]
//	}
//
// Register fields: quantity (a meter.Quantity name), name, address (number
// or "0x…" string), function (3 or 4), type (uint16 int16 uint32 int32
// uint64 int64 float32 float64 acc32 sunssf), word_order (high_first,
// low_first), byte_order (big, little), unit (Wh kWh W kW V A Hz % ratio),
// scale (power of ten, default 0), scale_factor (name of a sunssf register),
// optional, rollover (in unit), not_available (none, sunspec, abb),
// default_sf (sunssf registers only). Unknown fields are errors.
type Map struct {
	Model   string        // file name without .json, e.g. "sdm630"
	Name    string        // human name, e.g. "Eastron SDM630"
	Source  string        // where the addresses come from
	Phases  int           // 1 or 3
	SunSpec *SunSpecModel // nil unless this is a SunSpec model
	// Base is the address the file's addresses are relative to, already
	// added to every Register.Address. For SunSpec maps it is the address of
	// the model's ID register, which must be discovered on the device (see
	// DiscoverSunSpec) and applied with WithBase.
	Base      uint16
	Registers []Register

	byQuantity [meter.NumQuantities]int // index+1 into Registers, 0 if absent
}

// Register returns the register that measures q, if the map has one.
func (m *Map) Register(q meter.Quantity) (*Register, bool) {
	if !q.Valid() || m.byQuantity[q] == 0 {
		return nil, false
	}
	return &m.Registers[m.byQuantity[q]-1], true
}

// Quantities returns the quantities the map measures, in numeric order.
func (m *Map) Quantities() []meter.Quantity {
	var qs []meter.Quantity
	for q := range meter.NumQuantities {
		if m.byQuantity[q] != 0 {
			qs = append(qs, meter.Quantity(q))
		}
	}
	return qs
}

// WithBase returns a copy of m whose addresses are relative to base instead
// of m.Base: the poller calls it with the address DiscoverSunSpec found.
func (m *Map) WithBase(base uint16) (*Map, error) {
	c := *m
	c.Registers = slices.Clone(m.Registers)
	shift := int(base) - int(m.Base)
	for i := range c.Registers {
		r := &c.Registers[i]
		a := int(r.Address) + shift
		if a < 0 || a+r.Words() > 1<<16 {
			return nil, fmt.Errorf("regmap: %s: base %d puts %s outside the address space", m.Model, base, r.Name)
		}
		r.Address = uint16(a)
	}
	c.Base = base
	return &c, nil
}

// CounterSpec returns the counter arithmetic of energy quantity q's
// register: its modulus and resolution in Wh. For a register with a SunSpec
// scale factor, sf is the scale factor read from the device (the counter's
// Wh value depends on it); it is ignored otherwise.
func (m *Map) CounterSpec(q meter.Quantity, sf int) (meter.CounterSpec, error) {
	r, ok := m.Register(q)
	if !ok || q.Dimension() != meter.DimensionEnergy {
		return meter.CounterSpec{}, fmt.Errorf("regmap: %s: no energy register for %v", m.Model, q)
	}
	exp := r.Scale + r.Unit.Pow10()
	if r.ScaleFactor >= 0 {
		exp += sf
	}
	var spec meter.CounterSpec
	switch {
	case r.Type.float():
		spec.FloatMantissaBits = 24
		if r.Type == TypeFloat64 {
			spec.FloatMantissaBits = 53
		}
		spec.FloatUnitWh = pow10f(exp)
		spec.StepWh = 1
	default:
		spec.StepWh = max(1, int64(pow10f(exp)))
	}
	// The modulus in raw register units, as a float: exact for 2^32 and for
	// the powers of ten displays use.
	var modRaw float64
	switch {
	case r.RolloverUnits > 0:
		modRaw = r.RolloverUnits / pow10f(r.Scale)
	case r.Type == TypeUint32 || r.Type == TypeAcc32:
		modRaw = 1 << 32
	case r.Type == TypeUint16:
		modRaw = 1 << 16
	}
	if modRaw > 0 {
		modWh := modRaw * pow10f(exp)
		if modWh < 1<<62 {
			spec.ModulusWh = int64(modWh)
		}
	}
	return spec, nil
}

// pow10f returns 10^e as a float64.
func pow10f(e int) float64 {
	x := 1.0
	for ; e > 0; e-- {
		x *= 10
	}
	for ; e < 0; e++ {
		x /= 10
	}
	return x
}
