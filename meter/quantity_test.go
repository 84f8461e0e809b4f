package meter

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestParseQuantityRoundTrip(t *testing.T) {
	qs := Quantities()
	if len(qs) != NumQuantities-1 {
		t.Fatalf("Quantities() has %d, want %d", len(qs), NumQuantities-1)
	}
	for _, q := range qs {
		got, err := ParseQuantity(q.String())
		if err != nil || got != q {
			t.Errorf("ParseQuantity(%q) = %v, %v", q.String(), got, err)
		}
		if q.Dimension() == DimensionNone {
			t.Errorf("%v has no dimension", q)
		}
	}
	if _, err := ParseQuantity("voltage_l4"); !errors.Is(err, ErrUnknownQuantity) {
		t.Errorf("unknown name: err = %v", err)
	}
	if _, err := ParseQuantity("none"); !errors.Is(err, ErrUnknownQuantity) {
		t.Errorf(`"none" must not parse: err = %v`, err)
	}
}

func TestQuantityPhaseAndDimension(t *testing.T) {
	tests := []struct {
		q     Quantity
		phase int
		dim   Dimension
	}{
		{QuantityImportEnergy, 0, DimensionEnergy},
		{QuantityExportEnergyL3, 3, DimensionEnergy},
		{QuantityTotalEnergy, 0, DimensionEnergy},
		{QuantityPowerL2, 2, DimensionPower},
		{QuantityVoltage, 0, DimensionVoltage},
		{QuantityCurrentL1, 1, DimensionCurrent},
		{QuantityFrequency, 0, DimensionFrequency},
		{QuantityPowerFactorL3, 3, DimensionRatio},
	}
	for _, tt := range tests {
		if tt.q.Phase() != tt.phase || tt.q.Dimension() != tt.dim {
			t.Errorf("%v: phase %d dim %v, want %d %v", tt.q, tt.q.Phase(), tt.q.Dimension(), tt.phase, tt.dim)
		}
	}
}

func TestValuesReading(t *testing.T) {
	tests := []struct {
		name string
		give func(*Values)
		want Reading
	}{
		{"empty", func(v *Values) {}, Reading{}},
		{"single-phase totals", func(v *Values) {
			v.SetWh(QuantityImportEnergy, 1000)
			v.Set(QuantityVoltage, 230)
			v.Set(QuantityCurrent, 5)
			v.Set(QuantityPower, 1100)
			v.Set(QuantityPowerFactor, 0.95)
			v.Set(QuantityFrequency, 50)
		}, Reading{ImportWh: 1000, VoltageV: 230, CurrentA: 5, PowerW: 1100, PowerFactor: 0.95, FrequencyHz: 50,
			Fields: FieldImport | FieldVoltage | FieldCurrent | FieldPower | FieldPowerFactor | FieldFrequency}},
		{"phases only: mean voltage, summed current and power", func(v *Values) {
			v.Set(QuantityVoltageL1, 230)
			v.Set(QuantityVoltageL2, 232)
			v.Set(QuantityVoltageL3, 234)
			v.Set(QuantityCurrentL1, 1)
			v.Set(QuantityCurrentL2, 2)
			v.Set(QuantityCurrentL3, 3)
			v.Set(QuantityPowerL1, 100)
			v.Set(QuantityPowerL2, -50)
			v.Set(QuantityPowerL3, 25)
		}, Reading{VoltageV: 232, CurrentA: 6, PowerW: 75, Fields: FieldVoltage | FieldCurrent | FieldPower}},
		{"a missing phase: voltage is still a mean, current and power are not summed", func(v *Values) {
			v.Set(QuantityVoltageL1, 230)
			v.Set(QuantityVoltageL3, 234)
			v.Set(QuantityCurrentL1, 1)
			v.Set(QuantityPowerL1, 100)
		}, Reading{VoltageV: 232, Fields: FieldVoltage}},
		{"dead phases do not drag the mean voltage down", func(v *Values) {
			v.Set(QuantityVoltageL1, 230)
			v.Set(QuantityVoltageL2, 0)
			v.Set(QuantityVoltageL3, 0)
		}, Reading{VoltageV: 230, Fields: FieldVoltage}},
		{"all phases dead", func(v *Values) {
			v.Set(QuantityVoltageL1, 0)
			v.Set(QuantityVoltageL2, 0)
		}, Reading{VoltageV: 0, Fields: FieldVoltage}},
		{"totals win over phases", func(v *Values) {
			v.Set(QuantityPower, 999)
			v.Set(QuantityPowerL1, 1)
			v.Set(QuantityPowerL2, 1)
			v.Set(QuantityPowerL3, 1)
		}, Reading{PowerW: 999, Fields: FieldPower}},
		{"per-phase energy and total_energy do not feed a reading", func(v *Values) {
			v.SetWh(QuantityImportEnergyL1, 5)
			v.SetWh(QuantityTotalEnergy, 7)
			v.SetWh(QuantityExportEnergy, 2)
		}, Reading{ExportWh: 2, Fields: FieldExport}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Values
			tt.give(&v)
			if got := v.Reading(); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestValuesBasics(t *testing.T) {
	var v Values
	v.SetWh(QuantityImportEnergy, 5)
	v.Set(QuantityVoltageL2, 230)
	if v.Len() != 2 || !v.Has(QuantityImportEnergy) || v.Has(QuantityExportEnergy) {
		t.Fatalf("Len %d", v.Len())
	}
	if _, ok := v.Wh(QuantityVoltageL2); ok {
		t.Error("Wh of a voltage reported present")
	}
	v.Delete(QuantityImportEnergy)
	if v.Has(QuantityImportEnergy) {
		t.Error("Delete did not remove")
	}
	var seen []Quantity
	v.Each(func(q Quantity, x float64) { seen = append(seen, q) })
	if len(seen) != 1 || seen[0] != QuantityVoltageL2 {
		t.Errorf("Each saw %v", seen)
	}
	v.Reset()
	if v.Len() != 0 {
		t.Error("Reset left values")
	}
	defer func() {
		if recover() == nil {
			t.Error("Set on an energy quantity did not panic")
		}
	}()
	v.Set(QuantityImportEnergy, 1)
}

func TestValuesFromReading(t *testing.T) {
	r := Reading{ImportWh: 10, PowerW: float32(math.NaN()), VoltageV: 230, Fields: FieldImport | FieldPower | FieldVoltage}
	v := ValuesFromReading(r)
	if wh, _ := v.Wh(QuantityImportEnergy); wh != 10 || v.Has(QuantityPower) || !v.Has(QuantityVoltage) {
		t.Errorf("ValuesFromReading(%+v) wrong: %d power=%v", r, wh, v.Has(QuantityPower))
	}
	back := v.Reading()
	if back.ImportWh != 10 || back.VoltageV != 230 || back.Fields != FieldImport|FieldVoltage {
		t.Errorf("round trip: %+v", back)
	}
}

func TestFieldsString(t *testing.T) {
	tests := []struct {
		give Fields
		want string
	}{
		{0, "none"},
		{FieldImport, "import_wh"},
		{FieldVoltage | FieldPowerFactor, "voltage_v|power_factor"},
		{AllFields, "import_wh|export_wh|power_w|voltage_v|current_a|frequency_hz|power_factor"},
		{1 << 10, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("%d: %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestNormalizeTime(t *testing.T) {
	in := time.Date(2026, 3, 1, 13, 0, 0, 123_456_789, time.FixedZone("IST", 5*3600+1800))
	got := NormalizeTime(in)
	if got.Location() != time.UTC || got.Nanosecond() != 123_456_000 || !got.Equal(in.Truncate(time.Microsecond)) {
		t.Errorf("NormalizeTime = %v", got)
	}
}
