package regmap

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/meterd/meterd/meter"
)

// ErrBlockLength is returned by Block.Decode when the words do not match the
// block's register count.
var ErrBlockLength = errors.New("block length mismatch")

// Decode decodes the words a device returned for b into v, in canonical
// units (energy as integer Wh). Registers holding a not-available sentinel,
// NaN or infinity are left absent. len(words) must equal b.Count.
//
// A value that cannot be represented (an energy beyond the int64 range, a
// scale factor outside ±10) is left absent and reported in the returned
// error as a *meter.RejectError with reason impossible_value, after every
// other value of the block has been decoded; errors.Join collects several.
func (b *Block) Decode(words []uint16, v *meter.Values) error {
	if len(words) != int(b.Count) {
		return fmt.Errorf("regmap: %w: block %v %#04x+%d got %d words", ErrBlockLength, b.Function, b.Start, b.Count, len(words))
	}
	var errs []error
	for i := range b.fields {
		if err := b.fields[i].decode(words, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ScaleFactor returns the SunSpec scale factor that words (this block's
// answer) apply to quantity q, and false if q is not in the block, has no
// scale factor, or the factor is not available. The poller needs it for
// Map.CounterSpec: an acc32 counter with TotWh_SF = sf wraps at 2^32 × 10^sf Wh.
func (b *Block) ScaleFactor(q meter.Quantity, words []uint16) (int, bool) {
	if len(words) != int(b.Count) {
		return 0, false
	}
	for i := range b.fields {
		f := &b.fields[i]
		if f.reg.Quantity != q || f.sfOff < 0 {
			continue
		}
		raw := assemble(words[f.sfOff:f.sfOff+1], f.sf.WordOrder, f.sf.ByteOrder)
		sf := int(int16(raw))
		if notAvailable(TypeSunSSF, f.sf.NotAvailable, raw) || sf < -maxSF || sf > maxSF {
			return 0, false
		}
		return sf, true
	}
	return 0, false
}

func (f *field) decode(words []uint16, v *meter.Values) error {
	r := &f.reg
	q := r.Quantity
	v.Delete(q)
	u := assemble(words[f.off:f.off+r.Words()], r.WordOrder, r.ByteOrder)

	exp := r.Scale + r.Unit.Pow10()
	if f.sfOff >= 0 {
		sfRaw := assemble(words[f.sfOff:f.sfOff+1], f.sf.WordOrder, f.sf.ByteOrder)
		if notAvailable(TypeSunSSF, f.sf.NotAvailable, sfRaw) {
			return nil
		}
		sf := int(int16(sfRaw))
		if sf < -maxSF || sf > maxSF {
			return meter.Rejectf(meter.ReasonImpossibleValue, q.String(), "scale factor %s = %d outside ±%d", f.sf.Name, sf, maxSF)
		}
		exp += sf
	}

	if r.Type.float() {
		x := math.Float64frombits(u)
		if r.Type == TypeFloat32 {
			x = float64(math.Float32frombits(uint32(u)))
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		x = scaleFloat(x, exp)
		if q.Dimension() == meter.DimensionEnergy {
			wh := math.Round(x)
			if math.Abs(wh) >= 1<<62 {
				return meter.Rejectf(meter.ReasonImpossibleValue, q.String(), "%g Wh does not fit an integer", wh)
			}
			v.SetWh(q, int64(wh))
			return nil
		}
		v.Set(q, x)
		return nil
	}

	if notAvailable(r.Type, r.NotAvailable, u) {
		return nil
	}
	var raw int64
	if r.Type.signed() {
		shift := 64 - r.Type.Bits()
		raw = int64(u<<shift) >> shift // sign-extend
	} else {
		if u > math.MaxInt64 {
			return meter.Rejectf(meter.ReasonImpossibleValue, q.String(), "raw value %d does not fit int64", u)
		}
		raw = int64(u)
	}
	if q.Dimension() == meter.DimensionEnergy {
		wh, ok := scaleInt(raw, exp)
		if !ok {
			return meter.Rejectf(meter.ReasonImpossibleValue, q.String(), "raw %d × 10^%d Wh does not fit int64", raw, exp)
		}
		v.SetWh(q, wh)
		return nil
	}
	v.Set(q, scaleFloat(float64(raw), exp))
	return nil
}

// assemble joins the registers of one value into its bit pattern.
func assemble(words []uint16, wo WordOrder, bo ByteOrder) uint64 {
	var u uint64
	n := len(words)
	for i := range n {
		w := words[i]
		if wo == LowFirst {
			w = words[n-1-i]
		}
		if bo == LittleEndian {
			w = bits.ReverseBytes16(w)
		}
		u = u<<16 | uint64(w)
	}
	return u
}

// split is the inverse of assemble: it writes the n registers of bit pattern
// u into dst.
func split(u uint64, n int, wo WordOrder, bo ByteOrder, dst []uint16) {
	for i := range n {
		w := uint16(u >> (16 * (n - 1 - i))) // i-th most significant word
		if bo == LittleEndian {
			w = bits.ReverseBytes16(w)
		}
		if wo == LowFirst {
			dst[n-1-i] = w
		} else {
			dst[i] = w
		}
	}
}

// notAvailable reports whether raw bit pattern u of type t is the "not
// available" sentinel under convention na.
func notAvailable(t Type, na NotAvailable, u uint64) bool {
	w := t.Bits()
	allOnes := uint64(1)<<w - 1
	if w == 64 {
		allOnes = math.MaxUint64
	}
	signBit := uint64(1) << (w - 1)
	switch na {
	case NASunSpec:
		switch {
		case t == TypeAcc32:
			return u == 0
		case t.signed():
			return u == signBit
		default:
			return u == allOnes
		}
	case NAABB:
		if t.signed() {
			return u == signBit-1
		}
		return u == allOnes
	}
	return false
}

// naPattern returns the bit pattern an encoder writes for an absent value.
func naPattern(r *Register) uint64 {
	switch r.Type {
	case TypeFloat32:
		return uint64(math.Float32bits(float32(math.NaN())))
	case TypeFloat64:
		return math.Float64bits(math.NaN())
	}
	w := r.Type.Bits()
	allOnes := uint64(1)<<w - 1
	if w == 64 {
		allOnes = math.MaxUint64
	}
	signBit := uint64(1) << (w - 1)
	switch r.NotAvailable {
	case NASunSpec:
		switch {
		case r.Type == TypeAcc32:
			return 0
		case r.Type.signed():
			return signBit
		}
		return allOnes
	case NAABB:
		if r.Type.signed() {
			return signBit - 1
		}
		return allOnes
	}
	return 0
}

// scaleFloat returns x × 10^exp, dividing for negative exponents so that
// 2301 × 10^-1 is exactly the double nearest 230.1.
func scaleFloat(x float64, exp int) float64 {
	if exp >= 0 {
		return x * pow10f(exp)
	}
	return x / pow10f(-exp)
}

// scaleInt returns raw × 10^exp exactly when exp ≥ 0, rounded half away from
// zero when exp < 0, and false on overflow.
func scaleInt(raw int64, exp int) (int64, bool) {
	if exp >= 0 {
		for ; exp > 0; exp-- {
			if raw > math.MaxInt64/10 || raw < math.MinInt64/10 {
				return 0, false
			}
			raw *= 10
		}
		return raw, true
	}
	if exp < -18 {
		return 0, true
	}
	d := int64(1)
	for ; exp < 0; exp++ {
		d *= 10
	}
	q, rem := raw/d, raw%d
	if rem >= (d+1)/2 {
		q++
	} else if -rem >= (d+1)/2 {
		q--
	}
	return q, true
}

// PutFunc stores one register word; Image.Put is one.
type PutFunc func(fn Function, addr uint16, word uint16)

// EncodeOptions tune Encode.
type EncodeOptions struct {
	// SwapWordOrder writes every multi-register value in the opposite word
	// order from the map's: the simulator's "device with the wrong word
	// order" fault.
	SwapWordOrder bool
}

// ErrEncode is wrapped by Encode errors: a value that does not fit its
// register.
var ErrEncode = errors.New("value does not fit register")

// Encode writes the register words that represent v under m through put: the
// inverse of planning and decoding, for the simulator's Modbus server.
// Quantities absent from v are written as the map's not-available pattern
// (NaN for floats). Energy counters wrap at the register's modulus, as a
// real meter's do (a uint32 Wh register shows Wh mod 2^32); any other value
// that does not fit its register is skipped and reported as an error
// wrapping ErrEncode, after every other register has been written.
//
// SunSpec scale factors are chosen per scale-factor register: the file's
// default_sf, raised (coarser) until every value sharing it fits. Scale
// factors of energy registers stay at the default, since a counter's scale
// must not change under a reader.
func (m *Map) Encode(v *meter.Values, opt EncodeOptions, put PutFunc) error {
	var errs []error
	if m.SunSpec != nil && len(m.Registers) > 0 {
		fn := m.Registers[0].Function
		put(fn, m.Base, m.SunSpec.ID)
		put(fn, m.Base+1, m.SunSpec.Length)
	}
	sfs := make([]int, len(m.Registers))
	for i := range m.Registers {
		if m.Registers[i].Type == TypeSunSSF {
			sfs[i] = m.chooseSF(i, v)
		}
	}
	var buf [4]uint16
	for i := range m.Registers {
		r := &m.Registers[i]
		wo := r.WordOrder
		if opt.SwapWordOrder {
			wo = HighFirst + LowFirst - wo
		}
		var u uint64
		if r.Type == TypeSunSSF {
			u = uint64(uint16(int16(sfs[i])))
		} else {
			sf := 0
			if r.ScaleFactor >= 0 {
				sf = sfs[r.ScaleFactor]
			}
			var err error
			if u, err = encodeValue(r, sf, v); err != nil {
				errs = append(errs, fmt.Errorf("regmap: %s: %s: %w", m.Model, r.Name, err))
				continue
			}
		}
		n := r.Words()
		split(u, n, wo, r.ByteOrder, buf[:n])
		for k := range n {
			put(r.Function, r.Address+uint16(k), buf[k])
		}
	}
	return errors.Join(errs...)
}

// chooseSF picks the scale factor to write into scale-factor register i.
func (m *Map) chooseSF(i int, v *meter.Values) int {
	sf := m.Registers[i].DefaultSF
	for sf < maxSF {
		fits := true
		for k := range m.Registers {
			r := &m.Registers[k]
			if r.ScaleFactor != i {
				continue
			}
			if r.Quantity.Dimension() == meter.DimensionEnergy {
				return sf
			}
			if x, ok := v.Get(r.Quantity); ok {
				if _, err := intRaw(r, x, sf); err != nil {
					fits = false
				}
			}
		}
		if fits {
			break
		}
		sf++
	}
	return sf
}

// encodeValue returns the bit pattern of r's quantity from v with scale
// factor sf.
func encodeValue(r *Register, sf int, v *meter.Values) (uint64, error) {
	q := r.Quantity
	if !v.Has(q) {
		return naPattern(r), nil
	}
	exp := r.Scale + sf + r.Unit.Pow10()
	energy := q.Dimension() == meter.DimensionEnergy

	if r.Type.float() {
		x, _ := v.Get(q)
		y := scaleFloat(x, -exp) // in the register's unit
		if energy && r.RolloverUnits > 0 {
			y = math.Mod(y, r.RolloverUnits)
		}
		if r.Type == TypeFloat32 {
			if math.Abs(y) > math.MaxFloat32 {
				return 0, fmt.Errorf("%w: %g overflows float32", ErrEncode, y)
			}
			return uint64(math.Float32bits(float32(y))), nil
		}
		return math.Float64bits(y), nil
	}

	if !energy {
		x, _ := v.Get(q)
		return intRaw(r, x, sf)
	}
	wh, _ := v.Wh(q)
	// Energy in raw register units, rounded half away from zero.
	raw, ok := scaleInt(wh, -exp)
	if !ok {
		return 0, fmt.Errorf("%w: %d Wh overflows at scale 10^%d", ErrEncode, wh, exp)
	}
	modulus := uint64(0)
	switch {
	case r.RolloverUnits > 0:
		modulus = uint64(scaleFloat(r.RolloverUnits, -r.Scale))
	case !r.Type.signed() && r.Type.Bits() < 64:
		modulus = uint64(1) << r.Type.Bits()
	}
	if modulus > 0 {
		if raw < 0 {
			return 0, fmt.Errorf("%w: negative counter %d Wh", ErrEncode, wh)
		}
		raw = int64(uint64(raw) % modulus)
	}
	return checkRange(r, raw)
}

// intRaw returns the integer bit pattern of instantaneous value x (canonical
// unit) in register r with scale factor sf.
func intRaw(r *Register, x float64, sf int) (uint64, error) {
	y := math.Round(scaleFloat(x, -(r.Scale + sf + r.Unit.Pow10())))
	if math.Abs(y) >= 1<<63 || math.IsNaN(y) {
		return 0, fmt.Errorf("%w: %g", ErrEncode, y)
	}
	return checkRange(r, int64(y))
}

// checkRange returns raw as r's bit pattern if it fits r's type without
// colliding with the not-available sentinel.
func checkRange(r *Register, raw int64) (uint64, error) {
	w := r.Type.Bits()
	var u uint64
	if r.Type.signed() {
		lo, hi := int64(-1)<<(w-1), int64(1)<<(w-1)-1
		if w == 64 {
			lo, hi = math.MinInt64, math.MaxInt64
		}
		if raw < lo || raw > hi {
			return 0, fmt.Errorf("%w: %d outside %v", ErrEncode, raw, r.Type)
		}
		u = uint64(raw)
		if w < 64 {
			u &= uint64(1)<<w - 1
		}
	} else {
		if raw < 0 || (w < 64 && uint64(raw) >= uint64(1)<<w) {
			return 0, fmt.Errorf("%w: %d outside %v", ErrEncode, raw, r.Type)
		}
		u = uint64(raw)
	}
	if notAvailable(r.Type, r.NotAvailable, u) && (r.Type != TypeAcc32 || u != 0) {
		return 0, fmt.Errorf("%w: %d is the %v not-available sentinel", ErrEncode, raw, r.NotAvailable)
	}
	return u, nil
}
