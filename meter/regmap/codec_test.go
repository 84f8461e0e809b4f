package regmap

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/meterd/meterd/meter"
)

// readPlan reads every block of p from img and decodes it into a fresh
// Values, the way the poller will.
func readPlan(t testing.TB, img *Image, p Plan) (meter.Values, error) {
	t.Helper()
	var v meter.Values
	var errs []error
	var buf []uint16
	for i := range p.Blocks {
		b := &p.Blocks[i]
		words, err := img.Read(b.Function, b.Start, b.Count, buf)
		if err != nil {
			if b.Optional {
				continue
			}
			t.Fatalf("read %v %#04x+%d: %v", b.Function, b.Start, b.Count, err)
		}
		if err := b.Decode(words, &v); err != nil {
			errs = append(errs, err)
		}
		buf = words
	}
	return v, errors.Join(errs...)
}

// decodeWords decodes quantity q of model from the given register contents.
func decodeWords(t *testing.T, model string, q meter.Quantity, words map[uint16]uint16) (meter.Values, error) {
	t.Helper()
	m, err := Load(model)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := m.Register(q)
	if !ok {
		t.Fatalf("%s has no %v", model, q)
	}
	img := NewImage()
	for a, w := range words {
		img.Put(r.Function, a, w)
	}
	p, err := m.Plan(PlanOptions{Quantities: []meter.Quantity{q}})
	if err != nil {
		t.Fatal(err)
	}
	return readPlan(t, img, p)
}

func TestDecodeVectors(t *testing.T) {
	const ss = 40070 // sunspec_203 default base
	tests := []struct {
		name    string
		model   string
		q       meter.Quantity
		words   map[uint16]uint16
		want    float64 // canonical unit; Wh for energy
		absent  bool
		wantErr meter.Reason
	}{
		{"sdm630 import float32 kWh", "sdm630", meter.QuantityImportEnergy, map[uint16]uint16{0x48: 0x4640, 0x49: 0xE6B6}, 12345678, false, ""},
		{"sdm630 total at 0x0156", "sdm630", meter.QuantityTotalEnergy, map[uint16]uint16{0x156: 0x4640, 0x157: 0xE6B6}, 12345678, false, ""},
		{"sdm630 power at 0x0034", "sdm630", meter.QuantityPower, map[uint16]uint16{0x34: 0x449A, 0x35: 0x5000}, 1234.5, false, ""},
		{"sdm120 voltage", "sdm120", meter.QuantityVoltage, map[uint16]uint16{0: 0x4366, 1: 0x199A}, float64(float32(230.1)), false, ""},
		{"sdm120 NaN is absent", "sdm120", meter.QuantityVoltage, map[uint16]uint16{0: 0x7FC0, 1: 0}, 0, true, ""},
		{"sdm120 +Inf is absent", "sdm120", meter.QuantityPower, map[uint16]uint16{0x0C: 0x7F80, 0x0D: 0}, 0, true, ""},
		{"abb import uint64 0.01 kWh", "abb_b23", meter.QuantityImportEnergy, map[uint16]uint16{0x5002: 0x0012, 0x5003: 0xD687}, 12345670, false, ""},
		{"abb import all-FF is absent", "abb_b23", meter.QuantityImportEnergy, map[uint16]uint16{0x5000: 0xFFFF, 0x5001: 0xFFFF, 0x5002: 0xFFFF, 0x5003: 0xFFFF}, 0, true, ""},
		{"abb import beyond int64", "abb_b23", meter.QuantityImportEnergy, map[uint16]uint16{0x5000: 0x8000}, 0, true, meter.ReasonImpossibleValue},
		{"abb voltage uint32 0.1 V", "abb_b23", meter.QuantityVoltageL1, map[uint16]uint16{0x5B01: 2301}, 230.1, false, ""},
		{"abb power int32 negative", "abb_b23", meter.QuantityPower, map[uint16]uint16{0x5B14: 0xFFFE, 0x5B15: 0x1DC0}, -1234.56, false, ""},
		{"abb frequency uint16", "abb_b23", meter.QuantityFrequency, map[uint16]uint16{0x5B2C: 5002}, 50.02, false, ""},
		{"abb power factor int16", "abb_b23", meter.QuantityPowerFactor, map[uint16]uint16{0x5B3A: 0xFC4A}, -0.950, false, ""},
		{"abb power factor 0x7FFF is absent", "abb_b23", meter.QuantityPowerFactor, map[uint16]uint16{0x5B3A: 0x7FFF}, 0, true, ""},
		{"em24 import int32 low word first", "cg_em24", meter.QuantityImportEnergy, map[uint16]uint16{0x42: 0xE240, 0x43: 0x0001}, 12345600, false, ""},
		{"em24 voltage", "cg_em24", meter.QuantityVoltageL2, map[uint16]uint16{0x02: 2301, 0x03: 0}, 230.1, false, ""},
		{"em24 frequency int16", "cg_em24", meter.QuantityFrequency, map[uint16]uint16{0x37: 500}, 50.0, false, ""},
		{"janitza import float32 Wh", "janitza_umg96rm", meter.QuantityImportEnergy, map[uint16]uint16{19068: 0x4640, 19069: 0xE6B6}, 12346, false, ""},
		{"sunspec voltage with V_SF -1", "sunspec_203", meter.QuantityVoltage, map[uint16]uint16{ss + 7: 2301, ss + 15: 0xFFFF}, 230.1, false, ""},
		{"sunspec voltage 0x8000 is absent", "sunspec_203", meter.QuantityVoltage, map[uint16]uint16{ss + 7: 0x8000, ss + 15: 0xFFFF}, 0, true, ""},
		{"sunspec V_SF 0x8000 is absent", "sunspec_203", meter.QuantityVoltage, map[uint16]uint16{ss + 7: 2301, ss + 15: 0x8000}, 0, true, ""},
		{"sunspec V_SF out of range", "sunspec_203", meter.QuantityVoltage, map[uint16]uint16{ss + 7: 2301, ss + 15: 20}, 0, true, meter.ReasonImpossibleValue},
		{"sunspec power negative with W_SF 1", "sunspec_203", meter.QuantityPower, map[uint16]uint16{ss + 18: 0xFF85, ss + 22: 1}, -1230, false, ""},
		{"sunspec PF percent with PF_SF -2", "sunspec_203", meter.QuantityPowerFactor, map[uint16]uint16{ss + 33: 9500, ss + 37: 0xFFFE}, 0.95, false, ""},
		{"sunspec acc32 import with TotWh_SF 1", "sunspec_203", meter.QuantityImportEnergy, map[uint16]uint16{ss + 46: 0x00BC, ss + 47: 0x614E, ss + 54: 1}, 123456780, false, ""},
		{"sunspec acc32 import with TotWh_SF -1 rounds", "sunspec_203", meter.QuantityImportEnergy, map[uint16]uint16{ss + 46: 0, ss + 47: 125, ss + 54: 0xFFFF}, 13, false, ""},
		{"sunspec acc32 0 is absent", "sunspec_203", meter.QuantityImportEnergy, map[uint16]uint16{ss + 54: 0}, 0, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeWords(t, tt.model, tt.q, tt.words)
			reason, _ := meter.ReasonOf(err)
			if reason != tt.wantErr {
				t.Fatalf("err = %v, want reason %q", err, tt.wantErr)
			}
			got, ok := v.Get(tt.q)
			if ok == tt.absent {
				t.Fatalf("present = %v (%v), want %v", ok, got, !tt.absent)
			}
			if ok && got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeLength(t *testing.T) {
	m, _ := Load("sdm120")
	p, _ := m.Plan(PlanOptions{})
	var v meter.Values
	if err := p.Blocks[0].Decode(make([]uint16, p.Blocks[0].Count-1), &v); !errors.Is(err, ErrBlockLength) {
		t.Errorf("short block: err = %v, want ErrBlockLength", err)
	}
}

func TestAssembleSplit(t *testing.T) {
	tests := []struct {
		wo   WordOrder
		bo   ByteOrder
		want []uint16
	}{
		{HighFirst, BigEndian, []uint16{0x0102, 0x0304, 0x0506, 0x0708}},    // ABCD…
		{LowFirst, BigEndian, []uint16{0x0708, 0x0506, 0x0304, 0x0102}},     // …CDAB
		{HighFirst, LittleEndian, []uint16{0x0201, 0x0403, 0x0605, 0x0807}}, // BADC…
		{LowFirst, LittleEndian, []uint16{0x0807, 0x0605, 0x0403, 0x0201}},  // …DCBA
	}
	const u = 0x0102030405060708
	for _, tt := range tests {
		got := make([]uint16, 4)
		split(u, 4, tt.wo, tt.bo, got)
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("split %v %v = %04x, want %04x", tt.wo, tt.bo, got, tt.want)
				break
			}
		}
		if back := assemble(tt.want, tt.wo, tt.bo); back != u {
			t.Errorf("assemble %v %v = %#x, want %#x", tt.wo, tt.bo, back, uint64(u))
		}
	}
}

// sample returns realistic values for every quantity m measures: a
// three-phase load of about 3.6 kW, or the phase-1 share on single-phase
// meters. importWh and powerScale let callers vary the reading.
func sample(m *Map, importWh int64, powerScale float64) meter.Values {
	var v meter.Values
	phV := [3]float64{230.1, 231.4, 229.8}
	phI := [3]float64{5.31, 4.2, 6.07}
	phP := [3]float64{1234.5 * powerScale, 980.2 * powerScale, 1401.3 * powerScale}
	phPF := [3]float64{0.953, 0.912, 0.987}
	exportWh := int64(234_567)
	for _, q := range m.Quantities() {
		ph := q.Phase()
		switch q.Dimension() {
		case meter.DimensionEnergy:
			var wh int64
			switch q {
			case meter.QuantityImportEnergy:
				wh = importWh
			case meter.QuantityExportEnergy:
				wh = exportWh
			case meter.QuantityTotalEnergy:
				wh = importWh + exportWh
			case meter.QuantityImportEnergyL1, meter.QuantityImportEnergyL2, meter.QuantityImportEnergyL3:
				wh = importWh / 3
			default:
				wh = exportWh / 3
			}
			v.SetWh(q, wh)
		case meter.DimensionVoltage:
			if ph == 0 {
				v.Set(q, (phV[0]+phV[1]+phV[2])/3)
			} else {
				v.Set(q, phV[ph-1])
			}
		case meter.DimensionCurrent:
			if ph == 0 {
				v.Set(q, phI[0]+phI[1]+phI[2])
			} else {
				v.Set(q, phI[ph-1])
			}
		case meter.DimensionPower:
			if ph == 0 {
				v.Set(q, phP[0]+phP[1]+phP[2])
			} else {
				v.Set(q, phP[ph-1])
			}
		case meter.DimensionRatio:
			if ph == 0 {
				v.Set(q, 0.95)
			} else {
				v.Set(q, phPF[ph-1])
			}
		case meter.DimensionFrequency:
			v.Set(q, 50.02)
		}
	}
	if m.Phases == 1 {
		v.Set(meter.QuantityVoltage, phV[0])
	}
	return v
}

// tolerance returns how far a decoded value of r may be from the encoded
// one: half the register's resolution for integers, float32 precision (and
// 1 Wh of rounding) for floats.
func tolerance(m *Map, img *Image, r *Register, x float64) float64 {
	exp := r.Scale + r.Unit.Pow10()
	if r.Type.float() {
		tol := math.Abs(x)*1e-7 + 1e-9
		if r.Quantity.Dimension() == meter.DimensionEnergy {
			tol++
		}
		return tol
	}
	if r.ScaleFactor >= 0 {
		sf := m.Registers[r.ScaleFactor]
		exp += int(int16(img.Word(sf.Function, sf.Address)))
	}
	return pow10f(exp)/2 + 1e-9
}

func TestRoundTrip(t *testing.T) {
	maps, err := LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		t.Run(m.Model, func(t *testing.T) {
			for _, importWh := range []int64{0, 1, 999, 12_345_678, 987_654_321} {
				want := sample(m, importWh, 1)
				img := NewImage()
				if err := m.Encode(&want, EncodeOptions{}, img.Put); err != nil {
					t.Fatal(err)
				}
				p, err := m.Plan(PlanOptions{MaxGap: DefaultMaxGap})
				if err != nil {
					t.Fatal(err)
				}
				got, err := readPlan(t, img, p)
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range m.Quantities() {
					r, _ := m.Register(q)
					w, _ := want.Get(q)
					g, ok := got.Get(q)
					if q.Dimension() == meter.DimensionEnergy && w == 0 && r.NotAvailable == NASunSpec {
						// SunSpec acc32 0 means "not accumulated".
						if ok {
							t.Errorf("%v: acc32 0 decoded as %v, want absent", q, g)
						}
						continue
					}
					if !ok {
						t.Errorf("import %d: %v absent after round trip", importWh, q)
						continue
					}
					if tol := tolerance(m, img, r, w); math.Abs(g-w) > tol {
						t.Errorf("import %d: %v = %v, want %v ± %v", importWh, q, g, w, tol)
					}
				}
			}
		})
	}
}

// TestRoundTripAbsent checks that a quantity the simulator leaves out is
// written as the map's not-available pattern and decodes as absent.
func TestRoundTripAbsent(t *testing.T) {
	maps, _ := LoadAll()
	for _, m := range maps {
		for _, q := range m.Quantities() {
			r, _ := m.Register(q)
			if !r.Type.float() && r.NotAvailable == NANone {
				continue // every bit pattern is a value: nothing can say "absent"
			}
			v := sample(m, 12_345_678, 1)
			v.Delete(q)
			img := NewImage()
			if err := m.Encode(&v, EncodeOptions{}, img.Put); err != nil {
				t.Fatal(err)
			}
			p, _ := m.Plan(PlanOptions{MaxGap: DefaultMaxGap})
			got, err := readPlan(t, img, p)
			if err != nil {
				t.Fatal(err)
			}
			if x, ok := got.Get(q); ok {
				t.Errorf("%s %v: encoded absent, decoded %v", m.Model, q, x)
			}
		}
	}
}

// TestRoundTripReading checks the Reading the poller builds from a decode.
func TestRoundTripReading(t *testing.T) {
	tests := []struct {
		model string
		want  meter.Fields
	}{
		{"sdm120", meter.AllFields},
		{"sdm630", meter.AllFields},
		{"sdm72", meter.FieldImport | meter.FieldExport | meter.FieldPower},
		{"abb_b23", meter.AllFields},
		{"janitza_umg96rm", meter.FieldImport | meter.FieldExport | meter.FieldPower | meter.FieldVoltage | meter.FieldCurrent | meter.FieldFrequency},
		{"cg_em24", meter.FieldImport | meter.FieldPower | meter.FieldVoltage | meter.FieldCurrent | meter.FieldFrequency | meter.FieldPowerFactor | meter.FieldExport},
		{"sunspec_203", meter.AllFields},
	}
	limits := meter.DefaultLimits()
	for _, tt := range tests {
		m, _ := Load(tt.model)
		want := sample(m, 12_345_678, 1)
		img := NewImage()
		if err := m.Encode(&want, EncodeOptions{}, img.Put); err != nil {
			t.Fatal(err)
		}
		p, _ := m.Plan(PlanOptions{MaxGap: DefaultMaxGap})
		got, err := readPlan(t, img, p)
		if err != nil {
			t.Fatal(err)
		}
		r := got.Reading()
		r.Time = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		if r.Fields != tt.want {
			t.Errorf("%s: fields %v, want %v", tt.model, r.Fields, tt.want)
		}
		if math.Abs(float64(r.ImportWh)-12_345_678) > 100 {
			t.Errorf("%s: import %d Wh, want 12345678 ± 100", tt.model, r.ImportWh)
		}
		if err := limits.Check(&r, r.Time); err != nil {
			t.Errorf("%s: a correct decode fails validation: %v", tt.model, err)
		}
	}
}

// TestWrongWordOrderIsDetectable encodes two consecutive readings one
// minute apart with every multi-register value word-swapped (the simulator's
// wrong-word-order fault) and decodes them with the map: the result must be
// caught, either by Limits.Check or by the counter arithmetic seeing a
// step no meter can make.
func TestWrongWordOrderIsDetectable(t *testing.T) {
	maps, _ := LoadAll()
	limits := meter.DefaultLimits()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, m := range maps {
		t.Run(m.Model, func(t *testing.T) {
			var readings [2]meter.Reading
			var caught []string
			for i := range readings {
				// 3.6 kW for one minute is 60 Wh.
				v := sample(m, 12_345_678+int64(i)*60, 1)
				img := NewImage()
				if err := m.Encode(&v, EncodeOptions{SwapWordOrder: true}, img.Put); err != nil {
					t.Fatal(err)
				}
				p, _ := m.Plan(PlanOptions{MaxGap: DefaultMaxGap})
				got, err := readPlan(t, img, p)
				if err != nil {
					caught = append(caught, "decode: "+err.Error())
				}
				readings[i] = got.Reading()
				readings[i].Time = t0.Add(time.Duration(i) * time.Minute)
			}
			for i := range readings {
				if err := limits.Check(&readings[i], readings[i].Time); err != nil {
					caught = append(caught, err.Error())
				}
			}
			if readings[0].Fields.Has(meter.FieldImport) && readings[1].Fields.Has(meter.FieldImport) &&
				readings[0].ImportWh >= 0 && readings[1].ImportWh >= 0 {
				spec, _ := m.CounterSpec(meter.QuantityImportEnergy, 0)
				spec.ModulusWh = 0 // a swapped value can exceed the true modulus
				step, err := meter.StepCounter(
					meter.CounterSample{Time: readings[0].Time, ValueWh: readings[0].ImportWh},
					meter.CounterSample{Time: readings[1].Time, ValueWh: readings[1].ImportWh},
					spec, 3*limits.MaxPhasePowerW)
				if err != nil {
					t.Fatal(err)
				}
				if step.Kind != meter.CounterNormal {
					caught = append(caught, "counter "+step.Kind.String())
				}
			}
			if len(caught) == 0 {
				t.Fatalf("word-swapped readings pass every check: %+v", readings)
			}
			t.Logf("caught by: %v", caught)
		})
	}
}

func TestBlockScaleFactor(t *testing.T) {
	m, _ := Load("sunspec_203")
	var v meter.Values
	v.SetWh(meter.QuantityImportEnergy, 5000)
	img := NewImage()
	if err := m.Encode(&v, EncodeOptions{}, img.Put); err != nil {
		t.Fatal(err)
	}
	img.Put(FuncHolding, 40070+54, 1) // TotWh_SF = 1
	p, _ := m.Plan(PlanOptions{MaxGap: DefaultMaxGap})
	if len(p.Blocks) != 1 {
		t.Fatalf("sunspec_203 plan has %d blocks, want 1", len(p.Blocks))
	}
	b := &p.Blocks[0]
	words, _ := img.Read(b.Function, b.Start, b.Count, nil)
	sf, ok := b.ScaleFactor(meter.QuantityImportEnergy, words)
	if !ok || sf != 1 {
		t.Fatalf("ScaleFactor = %d, %v; want 1", sf, ok)
	}
	spec, _ := m.CounterSpec(meter.QuantityImportEnergy, sf)
	if spec.ModulusWh != 10<<32 {
		t.Errorf("modulus %d, want 10 × 2^32", spec.ModulusWh)
	}
	if _, ok := b.ScaleFactor(meter.QuantityTotalEnergy, words); ok {
		t.Error("ScaleFactor for a quantity not in the block")
	}
	sdm, _ := Load("sdm630")
	sp, _ := sdm.Plan(PlanOptions{})
	if _, ok := sp.Blocks[0].ScaleFactor(meter.QuantityImportEnergy, make([]uint16, sp.Blocks[0].Count)); ok {
		t.Error("ScaleFactor for a register without one")
	}
}

func TestEncodeWrapsCounters(t *testing.T) {
	m, _ := Load("sunspec_203")
	var v meter.Values
	v.SetWh(meter.QuantityImportEnergy, 1<<32+500)
	img := NewImage()
	if err := m.Encode(&v, EncodeOptions{}, img.Put); err != nil {
		t.Fatal(err)
	}
	p, _ := m.Plan(PlanOptions{Quantities: []meter.Quantity{meter.QuantityImportEnergy}})
	got, _ := readPlan(t, img, p)
	if wh, _ := got.Wh(meter.QuantityImportEnergy); wh != 500 {
		t.Errorf("acc32 holding 2^32+500 Wh reads %d, want 500 (rolled over)", wh)
	}
}

func TestEncodeRaisesScaleFactor(t *testing.T) {
	m, _ := Load("sunspec_203")
	var v meter.Values
	v.SetWh(meter.QuantityImportEnergy, 1000)
	v.Set(meter.QuantityPower, 45_678) // W_SF 0 cannot hold it in int16
	img := NewImage()
	if err := m.Encode(&v, EncodeOptions{}, img.Put); err != nil {
		t.Fatal(err)
	}
	if sf := int16(img.Word(FuncHolding, 40070+22)); sf != 1 {
		t.Errorf("W_SF = %d, want 1", sf)
	}
	p, _ := m.Plan(PlanOptions{Quantities: []meter.Quantity{meter.QuantityPower}})
	got, _ := readPlan(t, img, p)
	if w, _ := got.Get(meter.QuantityPower); w != 45_680 {
		t.Errorf("power %v W, want 45680 (10 W resolution)", w)
	}
}

func TestEncodeRangeError(t *testing.T) {
	m, _ := Load("abb_b23")
	var v meter.Values
	v.SetWh(meter.QuantityImportEnergy, 1)
	v.Set(meter.QuantityFrequency, 700) // uint16 in 0.01 Hz holds at most 655.34
	img := NewImage()
	err := m.Encode(&v, EncodeOptions{}, img.Put)
	if !errors.Is(err, ErrEncode) {
		t.Fatalf("err = %v, want ErrEncode", err)
	}
	if img.Word(FuncHolding, 0x5003) != 0 || img.Word(FuncHolding, 0x5002) != 0 {
		t.Error("1 Wh is 0.1 of ABB's 0.01 kWh unit and must round to 0")
	}
}

func TestImageRemove(t *testing.T) {
	m, _ := Load("cg_em24")
	v := sample(m, 12_345_678, 1)
	img := NewImage()
	if err := m.Encode(&v, EncodeOptions{}, img.Put); err != nil {
		t.Fatal(err)
	}
	r, _ := m.Register(meter.QuantityExportEnergy)
	img.Remove(r.Function, r.Address, r.Words())
	p, _ := m.Plan(PlanOptions{MaxGap: DefaultMaxGap})
	got, err := readPlan(t, img, p) // skips the failing optional block
	if err != nil {
		t.Fatal(err)
	}
	if got.Has(meter.QuantityExportEnergy) {
		t.Error("export decoded from a removed register")
	}
	if !got.Has(meter.QuantityImportEnergy) || !got.Has(meter.QuantityVoltageL1) {
		t.Error("a missing optional register lost mandatory values")
	}
	if _, err := img.Read(r.Function, r.Address-2, 4, nil); !errors.Is(err, ErrIllegalAddress) {
		t.Errorf("read over a removed register: err = %v, want ErrIllegalAddress", err)
	}
	if _, err := img.Read(FuncInput, 0xFFFF, 2, nil); !errors.Is(err, ErrIllegalAddress) {
		t.Errorf("read past 0xFFFF: err = %v, want ErrIllegalAddress", err)
	}
}

func TestDiscoverSunSpec(t *testing.T) {
	m, _ := Load("sunspec_203")
	other, err := Parse("sunspec_201.json", []byte(`{"model": "sunspec_201", "name": "test single-phase", "phases": 1,
		"sunspec": {"id": 201, "length": 105}, "base": 40070,
		"defaults": {"function": 3, "type": "int16", "not_available": "sunspec"},
		"registers": [{"quantity": "import_energy", "name": "TotWhImp", "address": 46, "type": "acc32", "unit": "Wh"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	img := NewImage()
	placed, err := LayoutSunSpec(img.Put, other, m)
	if err != nil {
		t.Fatal(err)
	}
	read := func(start, count uint16) ([]uint16, error) { return img.Read(FuncHolding, start, count, nil) }
	for _, tt := range []struct {
		id   uint16
		want uint16
	}{{201, 40070}, {203, 40070 + 107}} {
		got, err := DiscoverSunSpec(read, tt.id)
		if err != nil || got != tt.want {
			t.Errorf("model %d: %d, %v; want %d", tt.id, got, err, tt.want)
		}
	}
	if placed[1].Base != 40070+107 {
		t.Errorf("LayoutSunSpec placed 203 at %d, want %d", placed[1].Base, 40070+107)
	}
	if _, err := DiscoverSunSpec(read, 213); !errors.Is(err, ErrSunSpecNoModel) {
		t.Errorf("absent model: err = %v, want ErrSunSpecNoModel", err)
	}
	empty := NewImage()
	if _, err := DiscoverSunSpec(func(s, c uint16) ([]uint16, error) { return empty.Read(FuncHolding, s, c, nil) }, 203); !errors.Is(err, ErrNoSunSpec) {
		t.Errorf("no marker: err = %v, want ErrNoSunSpec", err)
	}
	// A device with its marker at 50000 and an exception at 40000.
	moved := NewImage()
	moved.Remove(FuncHolding, 40000, 2)
	moved.Put(FuncHolding, 50000, 0x5375)
	moved.Put(FuncHolding, 50001, 0x6E53)
	moved.Put(FuncHolding, 50002, 203)
	moved.Put(FuncHolding, 50003, 105)
	got, err := DiscoverSunSpec(func(s, c uint16) ([]uint16, error) { return moved.Read(FuncHolding, s, c, nil) }, 203)
	if err != nil || got != 50002 {
		t.Errorf("marker at 50000: %d, %v; want 50002", got, err)
	}
	// Round trip through the discovered base.
	v := sample(m, 12_345_678, 1)
	if err := placed[1].Encode(&v, EncodeOptions{}, img.Put); err != nil {
		t.Fatal(err)
	}
	base, _ := DiscoverSunSpec(read, 203)
	found, err := m.WithBase(base)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := found.Plan(PlanOptions{MaxGap: DefaultMaxGap})
	dec, err := readPlan(t, img, p)
	if err != nil {
		t.Fatal(err)
	}
	if wh, _ := dec.Wh(meter.QuantityImportEnergy); wh != 12_345_678 {
		t.Errorf("import via discovered base: %d, want 12345678", wh)
	}
}
