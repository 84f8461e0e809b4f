package regmap

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/meterd/meterd/meter"
)

func TestModels(t *testing.T) {
	want := []string{"abb_b23", "cg_em24", "janitza_umg96rm", "sdm120", "sdm630", "sdm72", "sunspec_203"}
	if got := Models(); !slices.Equal(got, want) {
		t.Fatalf("Models() = %v, want %v", got, want)
	}
	maps, err := LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		if m.Name == "" || m.Source == "" {
			t.Errorf("%s: name and source must be documented", m.Model)
		}
	}
}

func TestLoadUnknownModel(t *testing.T) {
	for _, give := range []string{"sdm999", "../maps/sdm630", "sdm630.json", ""} {
		if _, err := Load(give); !errors.Is(err, ErrUnknownModel) {
			t.Errorf("Load(%q) = %v, want ErrUnknownModel", give, err)
		}
	}
}

// TestDocumentedRegisters checks the embedded maps against the addresses in
// ../shared/reference/ingest-anchors.md §2.
func TestDocumentedRegisters(t *testing.T) {
	tests := []struct {
		model string
		q     meter.Quantity
		addr  uint16
		fn    Function
		typ   Type
		wo    WordOrder
		unit  Unit
		scale int
		opt   bool
	}{
		// §2.1 SDM120: FC4 float32 BE.
		{"sdm120", meter.QuantityVoltage, 0x0000, FuncInput, TypeFloat32, HighFirst, UnitV, 0, false},
		{"sdm120", meter.QuantityCurrent, 0x0006, FuncInput, TypeFloat32, HighFirst, UnitA, 0, false},
		{"sdm120", meter.QuantityPower, 0x000C, FuncInput, TypeFloat32, HighFirst, UnitW, 0, false},
		{"sdm120", meter.QuantityPowerFactor, 0x001E, FuncInput, TypeFloat32, HighFirst, UnitRatio, 0, false},
		{"sdm120", meter.QuantityFrequency, 0x0046, FuncInput, TypeFloat32, HighFirst, UnitHz, 0, false},
		{"sdm120", meter.QuantityImportEnergy, 0x0048, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, false},
		{"sdm120", meter.QuantityExportEnergy, 0x004A, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, false},
		{"sdm120", meter.QuantityTotalEnergy, 0x0156, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, false},
		// §2.2 SDM630.
		{"sdm630", meter.QuantityVoltageL1, 0x0000, FuncInput, TypeFloat32, HighFirst, UnitV, 0, false},
		{"sdm630", meter.QuantityVoltageL3, 0x0004, FuncInput, TypeFloat32, HighFirst, UnitV, 0, false},
		{"sdm630", meter.QuantityCurrentL2, 0x0008, FuncInput, TypeFloat32, HighFirst, UnitA, 0, false},
		{"sdm630", meter.QuantityPowerL3, 0x0010, FuncInput, TypeFloat32, HighFirst, UnitW, 0, false},
		{"sdm630", meter.QuantityPower, 0x0034, FuncInput, TypeFloat32, HighFirst, UnitW, 0, false},
		{"sdm630", meter.QuantityPowerFactorL1, 0x001E, FuncInput, TypeFloat32, HighFirst, UnitRatio, 0, false},
		{"sdm630", meter.QuantityPowerFactor, 0x003E, FuncInput, TypeFloat32, HighFirst, UnitRatio, 0, false},
		{"sdm630", meter.QuantityFrequency, 0x0046, FuncInput, TypeFloat32, HighFirst, UnitHz, 0, false},
		{"sdm630", meter.QuantityImportEnergy, 0x0048, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, false},
		{"sdm630", meter.QuantityExportEnergy, 0x004A, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, false},
		{"sdm630", meter.QuantityTotalEnergy, 0x0156, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, false},
		{"sdm630", meter.QuantityImportEnergyL1, 0x015A, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, true},
		{"sdm630", meter.QuantityExportEnergyL3, 0x0164, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, true},
		// §2.3 SDM72 v1: no voltage.
		{"sdm72", meter.QuantityPower, 0x0034, FuncInput, TypeFloat32, HighFirst, UnitW, 0, false},
		{"sdm72", meter.QuantityImportEnergy, 0x0048, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, false},
		{"sdm72", meter.QuantityExportEnergy, 0x004A, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, false},
		{"sdm72", meter.QuantityTotalEnergy, 0x0156, FuncInput, TypeFloat32, HighFirst, UnitKWh, 0, false},
		// §2.4 ABB: FC3 big-endian integers.
		{"abb_b23", meter.QuantityImportEnergy, 0x5000, FuncHolding, TypeUint64, HighFirst, UnitKWh, -2, false},
		{"abb_b23", meter.QuantityExportEnergy, 0x5004, FuncHolding, TypeUint64, HighFirst, UnitKWh, -2, false},
		{"abb_b23", meter.QuantityImportEnergyL2, 0x5464, FuncHolding, TypeUint64, HighFirst, UnitKWh, -2, true},
		{"abb_b23", meter.QuantityExportEnergyL1, 0x546C, FuncHolding, TypeUint64, HighFirst, UnitKWh, -2, true},
		{"abb_b23", meter.QuantityVoltageL1, 0x5B00, FuncHolding, TypeUint32, HighFirst, UnitV, -1, false},
		{"abb_b23", meter.QuantityCurrentL3, 0x5B10, FuncHolding, TypeUint32, HighFirst, UnitA, -2, false},
		{"abb_b23", meter.QuantityPower, 0x5B14, FuncHolding, TypeInt32, HighFirst, UnitW, -2, false},
		{"abb_b23", meter.QuantityPowerL1, 0x5B16, FuncHolding, TypeInt32, HighFirst, UnitW, -2, false},
		{"abb_b23", meter.QuantityFrequency, 0x5B2C, FuncHolding, TypeUint16, HighFirst, UnitHz, -2, false},
		{"abb_b23", meter.QuantityPowerFactor, 0x5B3A, FuncHolding, TypeInt16, HighFirst, UnitRatio, -3, false},
		{"abb_b23", meter.QuantityPowerFactorL3, 0x5B3D, FuncHolding, TypeInt16, HighFirst, UnitRatio, -3, false},
		// §2.5 Janitza UMG 96RM-E: FC3 float32, energy in Wh.
		{"janitza_umg96rm", meter.QuantityVoltageL1, 19000, FuncHolding, TypeFloat32, HighFirst, UnitV, 0, false},
		{"janitza_umg96rm", meter.QuantityCurrentL1, 19012, FuncHolding, TypeFloat32, HighFirst, UnitA, 0, false},
		{"janitza_umg96rm", meter.QuantityCurrent, 19018, FuncHolding, TypeFloat32, HighFirst, UnitA, 0, false},
		{"janitza_umg96rm", meter.QuantityPower, 19026, FuncHolding, TypeFloat32, HighFirst, UnitW, 0, false},
		{"janitza_umg96rm", meter.QuantityFrequency, 19050, FuncHolding, TypeFloat32, HighFirst, UnitHz, 0, false},
		{"janitza_umg96rm", meter.QuantityImportEnergy, 19068, FuncHolding, TypeFloat32, HighFirst, UnitWh, 0, false},
		{"janitza_umg96rm", meter.QuantityExportEnergy, 19076, FuncHolding, TypeFloat32, HighFirst, UnitWh, 0, false},
		// §2.6 Carlo Gavazzi EM24 (RS-485): FC4, INT32 LSW first.
		{"cg_em24", meter.QuantityVoltageL1, 0x00, FuncInput, TypeInt32, LowFirst, UnitV, -1, false},
		{"cg_em24", meter.QuantityCurrentL1, 0x0C, FuncInput, TypeInt32, LowFirst, UnitA, -3, false},
		{"cg_em24", meter.QuantityPowerL2, 0x14, FuncInput, TypeInt32, LowFirst, UnitW, -1, false},
		{"cg_em24", meter.QuantityPower, 0x28, FuncInput, TypeInt32, LowFirst, UnitW, -1, false},
		{"cg_em24", meter.QuantityPowerFactor, 0x35, FuncInput, TypeInt16, LowFirst, UnitRatio, -3, false},
		{"cg_em24", meter.QuantityFrequency, 0x37, FuncInput, TypeInt16, LowFirst, UnitHz, -1, false},
		{"cg_em24", meter.QuantityImportEnergy, 0x42, FuncInput, TypeInt32, LowFirst, UnitKWh, -1, false},
		{"cg_em24", meter.QuantityImportEnergyL3, 0x4A, FuncInput, TypeInt32, LowFirst, UnitKWh, -1, false},
		{"cg_em24", meter.QuantityExportEnergy, 0x5C, FuncInput, TypeInt32, LowFirst, UnitKWh, -1, true},
		// §2.7 SunSpec 203 at the default base 40070 (offset + 40070).
		{"sunspec_203", meter.QuantityCurrent, 40070 + 2, FuncHolding, TypeInt16, HighFirst, UnitA, 0, false},
		{"sunspec_203", meter.QuantityVoltage, 40070 + 7, FuncHolding, TypeInt16, HighFirst, UnitV, 0, false},
		{"sunspec_203", meter.QuantityFrequency, 40070 + 16, FuncHolding, TypeInt16, HighFirst, UnitHz, 0, false},
		{"sunspec_203", meter.QuantityPower, 40070 + 18, FuncHolding, TypeInt16, HighFirst, UnitW, 0, false},
		{"sunspec_203", meter.QuantityPowerFactor, 40070 + 33, FuncHolding, TypeInt16, HighFirst, UnitPercent, 0, false},
		{"sunspec_203", meter.QuantityExportEnergy, 40070 + 38, FuncHolding, TypeAcc32, HighFirst, UnitWh, 0, false},
		{"sunspec_203", meter.QuantityImportEnergy, 40070 + 46, FuncHolding, TypeAcc32, HighFirst, UnitWh, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.model+"/"+tt.q.String(), func(t *testing.T) {
			m, err := Load(tt.model)
			if err != nil {
				t.Fatal(err)
			}
			r, ok := m.Register(tt.q)
			if !ok {
				t.Fatalf("no register for %v", tt.q)
			}
			if r.Address != tt.addr || r.Function != tt.fn || r.Type != tt.typ || r.WordOrder != tt.wo ||
				r.Unit != tt.unit || r.Scale != tt.scale || r.Optional != tt.opt {
				t.Errorf("got addr %#04x fn %v %v %v unit %v scale %d optional %v\nwant addr %#04x fn %v %v %v unit %v scale %d optional %v",
					r.Address, r.Function, r.Type, r.WordOrder, r.Unit, r.Scale, r.Optional,
					tt.addr, tt.fn, tt.typ, tt.wo, tt.unit, tt.scale, tt.opt)
			}
		})
	}
}

func TestSunSpecScaleFactors(t *testing.T) {
	m, err := Load("sunspec_203")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give meter.Quantity
		want string
		addr uint16
	}{
		{meter.QuantityCurrent, "A_SF", 40070 + 6},
		{meter.QuantityVoltageL2, "V_SF", 40070 + 15},
		{meter.QuantityFrequency, "Hz_SF", 40070 + 17},
		{meter.QuantityPowerL3, "W_SF", 40070 + 22},
		{meter.QuantityPowerFactor, "PF_SF", 40070 + 37},
		{meter.QuantityImportEnergy, "TotWh_SF", 40070 + 54},
	}
	for _, tt := range tests {
		r, _ := m.Register(tt.give)
		if r.ScaleFactor < 0 {
			t.Errorf("%v: no scale factor", tt.give)
			continue
		}
		sf := m.Registers[r.ScaleFactor]
		if sf.Name != tt.want || sf.Address != tt.addr || sf.Type != TypeSunSSF {
			t.Errorf("%v: scale factor %s at %d (%v), want %s at %d", tt.give, sf.Name, sf.Address, sf.Type, tt.want, tt.addr)
		}
	}
	if m.SunSpec == nil || m.SunSpec.ID != 203 || m.SunSpec.Length != 105 {
		t.Errorf("SunSpec = %+v, want id 203 length 105", m.SunSpec)
	}
}

func TestParseErrors(t *testing.T) {
	const head = `"model": "x", "name": "X", "source": "test", "phases": 1,
		"defaults": {"function": 4, "type": "float32"},`
	tests := []struct {
		name      string
		give      string
		wantErr   error
		wantField string
	}{
		{"not json", `{`, ErrSyntax, ""},
		{"unknown field", `{` + head + `"colour": "red", "registers": []}`, ErrSyntax, ""},
		{"trailing data", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "unit": "kWh"}]} {}`, ErrSyntax, ""},
		{"model mismatch", `{"model": "y", "name": "X", "phases": 1, "registers": []}`, ErrBadValue, "model"},
		{"no name", `{"model": "x", "phases": 1, "registers": []}`, ErrMissing, "name"},
		{"bad phases", `{"model": "x", "name": "X", "phases": 2, "registers": []}`, ErrBadValue, "phases"},
		{"no registers", `{` + head + `"registers": []}`, ErrMissing, "registers"},
		{"unknown type", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "type": "flaot32", "unit": "kWh"}]}`, ErrUnknownType, "registers[0].type"},
		{"unknown quantity", `{` + head + `"registers": [{"quantity": "import_energgy", "address": 0, "unit": "kWh"}]}`, ErrUnknownQuantity, "registers[0].quantity"},
		{"unknown unit", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "unit": "MWh"}]}`, ErrUnknownUnit, "registers[0].unit"},
		{"unit mismatch", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "unit": "V"}]}`, ErrUnitMismatch, "registers[0].unit"},
		{"missing unit", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0}]}`, ErrMissing, "registers[0].unit"},
		{"missing address", `{` + head + `"registers": [{"quantity": "import_energy", "unit": "kWh"}]}`, ErrMissing, "registers[0].address"},
		{"bad address", `{` + head + `"registers": [{"quantity": "import_energy", "address": "0xZZ", "unit": "kWh"}]}`, ErrSyntax, ""},
		{"address past end", `{` + head + `"registers": [{"quantity": "import_energy", "address": 65535, "unit": "kWh"}]}`, ErrBadValue, "registers[0].address"},
		{"bad function", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "function": 6, "unit": "kWh"}]}`, ErrBadValue, "registers[0].function"},
		{"bad word order", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "word_order": "CDAB", "unit": "kWh"}]}`, ErrBadValue, "registers[0].word_order"},
		{"bad scale", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "scale": 40, "unit": "kWh"}]}`, ErrBadValue, "registers[0].scale"},
		{"rollover on power", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "unit": "kWh"}, {"quantity": "power", "address": 2, "unit": "W", "rollover": 1000}]}`, ErrBadValue, "registers[1].rollover"},
		{"duplicate quantity", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "unit": "kWh"}, {"quantity": "import_energy", "address": 2, "unit": "kWh"}]}`, ErrDuplicate, "registers[1].quantity"},
		{"overlap", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "unit": "kWh"}, {"quantity": "power", "address": 1, "unit": "W"}]}`, ErrOverlap, "registers[1].address"},
		{"no energy", `{` + head + `"registers": [{"quantity": "power", "address": 0, "unit": "W"}]}`, ErrNoEnergy, "registers"},
		{"optional energy", `{` + head + `"registers": [{"quantity": "import_energy", "address": 0, "unit": "kWh", "optional": true}]}`, ErrNoEnergy, "registers"},
		{"scale factor not found", `{"model": "x", "name": "X", "phases": 1, "defaults": {"function": 3, "type": "int16", "not_available": "sunspec"}, "registers": [{"quantity": "import_energy", "address": 0, "type": "acc32", "unit": "Wh", "scale_factor": "TotWh_SF"}]}`, ErrScaleFactor, "registers[0].scale_factor"},
		{"scale factor wrong type", `{"model": "x", "name": "X", "phases": 1, "defaults": {"function": 3, "type": "int16", "not_available": "sunspec"}, "registers": [{"quantity": "import_energy", "address": 0, "type": "acc32", "unit": "Wh", "scale_factor": "power"}, {"quantity": "power", "address": 2, "unit": "W"}]}`, ErrScaleFactor, "registers[0].scale_factor"},
		{"scale factor too far", `{"model": "x", "name": "X", "phases": 1, "defaults": {"function": 3, "type": "int16", "not_available": "sunspec"}, "registers": [{"quantity": "import_energy", "address": 0, "type": "acc32", "unit": "Wh", "scale_factor": "SF"}, {"name": "SF", "address": 300, "type": "sunssf"}]}`, ErrScaleFactor, "registers[0].scale_factor"},
		{"unused scale factor", `{"model": "x", "name": "X", "phases": 1, "defaults": {"function": 3, "type": "int16", "not_available": "sunspec"}, "registers": [{"quantity": "import_energy", "address": 0, "type": "acc32", "unit": "Wh"}, {"name": "SF", "address": 3, "type": "sunssf"}]}`, ErrScaleFactor, "registers[1]"},
		{"sunssf with quantity", `{"model": "x", "name": "X", "phases": 1, "defaults": {"function": 3, "type": "int16"}, "registers": [{"quantity": "import_energy", "address": 0, "type": "sunssf"}]}`, ErrBadValue, "registers[0].quantity"},
		{"scale factor without sunspec sentinels", `{"model": "x", "name": "X", "phases": 1, "defaults": {"function": 3, "type": "int16"}, "registers": [{"quantity": "import_energy", "address": 0, "type": "acc32", "unit": "Wh", "scale_factor": "SF"}, {"name": "SF", "address": 3, "type": "sunssf"}]}`, ErrBadValue, "registers[0].not_available"},
		{"defaults with address", `{` + `"model": "x", "name": "X", "phases": 1, "defaults": {"address": 3}, "registers": [{"quantity": "import_energy", "address": 0, "type": "float32", "function": 4, "unit": "kWh"}]}`, ErrBadValue, "defaults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			give := tt.give
			_, err := Parse("x.json", []byte(give))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			me, ok := errors.AsType[*MapError](err)
			if !ok {
				t.Fatalf("err = %T, want *MapError", err)
			}
			if me.File != "x.json" || me.Field != tt.wantField {
				t.Errorf("file %q field %q, want x.json %q (%v)", me.File, me.Field, tt.wantField, err)
			}
			if !strings.Contains(err.Error(), "x.json") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestCounterSpec(t *testing.T) {
	tests := []struct {
		model string
		q     meter.Quantity
		sf    int
		want  meter.CounterSpec
	}{
		{"sdm630", meter.QuantityImportEnergy, 0, meter.CounterSpec{StepWh: 1, FloatMantissaBits: 24, FloatUnitWh: 1000}},
		{"janitza_umg96rm", meter.QuantityExportEnergy, 0, meter.CounterSpec{StepWh: 1, FloatMantissaBits: 24, FloatUnitWh: 1}},
		{"abb_b23", meter.QuantityImportEnergy, 0, meter.CounterSpec{StepWh: 10}},
		{"cg_em24", meter.QuantityImportEnergy, 0, meter.CounterSpec{StepWh: 100}},
		{"sunspec_203", meter.QuantityImportEnergy, 0, meter.CounterSpec{StepWh: 1, ModulusWh: 1 << 32}},
		{"sunspec_203", meter.QuantityExportEnergy, 1, meter.CounterSpec{StepWh: 10, ModulusWh: 10 << 32}},
	}
	for _, tt := range tests {
		m, err := Load(tt.model)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.CounterSpec(tt.q, tt.sf)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s %v sf %d: got %+v, want %+v", tt.model, tt.q, tt.sf, got, tt.want)
		}
	}
	m, _ := Load("sdm72")
	if _, err := m.CounterSpec(meter.QuantityVoltage, 0); err == nil {
		t.Error("CounterSpec for a missing register: want an error")
	}
	if _, err := m.CounterSpec(meter.QuantityPower, 0); err == nil {
		t.Error("CounterSpec for power: want an error")
	}
}

func TestCounterSpecRollover(t *testing.T) {
	data := `{"model": "x", "name": "X", "phases": 1, "registers": [
		{"quantity": "import_energy", "address": 0, "function": 4, "type": "float32", "unit": "kWh", "rollover": 1000000},
		{"quantity": "export_energy", "address": 2, "function": 4, "type": "uint32", "unit": "kWh", "scale": -1, "rollover": 100000}]}`
	m, err := Parse("x.json", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	imp, _ := m.CounterSpec(meter.QuantityImportEnergy, 0)
	if imp.ModulusWh != 1_000_000_000 {
		t.Errorf("six-digit kWh display: modulus %d Wh, want 1e9", imp.ModulusWh)
	}
	exp, _ := m.CounterSpec(meter.QuantityExportEnergy, 0)
	if exp.ModulusWh != 100_000_000 || exp.StepWh != 100 {
		t.Errorf("0.1 kWh register rolling at 100000 kWh: %+v, want modulus 1e8 Wh step 100 Wh", exp)
	}
}

func TestWithBase(t *testing.T) {
	m, _ := Load("sunspec_203")
	moved, err := m.WithBase(50002)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := moved.Register(meter.QuantityImportEnergy)
	if r.Address != 50002+46 || moved.Base != 50002 {
		t.Errorf("import at %d base %d, want %d base 50002", r.Address, moved.Base, 50002+46)
	}
	orig, _ := m.Register(meter.QuantityImportEnergy)
	if orig.Address != 40070+46 {
		t.Errorf("WithBase changed the original map: %d", orig.Address)
	}
	if _, err := m.WithBase(65500); err == nil {
		t.Error("WithBase past the address space: want an error")
	}
}
