package meter

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestLimitsCheck(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	good := Reading{
		Time: now.Add(-time.Minute), ImportWh: 12_345_678, ExportWh: 0,
		PowerW: 1234.5, VoltageV: 230.1, CurrentA: 5.3, FrequencyHz: 50.01, PowerFactor: 0.97,
		Fields: AllFields,
	}
	with := func(f func(*Reading)) Reading {
		r := good
		f(&r)
		return r
	}
	tests := []struct {
		name       string
		give       Reading
		wantReason Reason
		wantField  string
	}{
		{"good", good, "", ""},
		{"no quantities", with(func(r *Reading) { r.Fields = 0 }), ReasonMissingField, ""},
		{"unknown bits only", with(func(r *Reading) { r.Fields = 1 << 12 }), ReasonMissingField, ""},
		{"no time", with(func(r *Reading) { r.Time = time.Time{} }), ReasonMissingField, "ts"},
		{"4 minutes ahead is skew", with(func(r *Reading) { r.Time = now.Add(4 * time.Minute) }), "", ""},
		{"6 minutes ahead", with(func(r *Reading) { r.Time = now.Add(6 * time.Minute) }), ReasonFutureTimestamp, "ts"},
		{"year 2099", with(func(r *Reading) { r.Time = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC) }), ReasonFutureTimestamp, "ts"},
		{"a year ago is backfill", with(func(r *Reading) { r.Time = now.AddDate(-1, 0, 0) }), "", ""},
		{"unsynced clock 1970", with(func(r *Reading) { r.Time = time.Unix(5, 0) }), ReasonTooOld, "ts"},
		{"negative import", with(func(r *Reading) { r.ImportWh = -1 }), ReasonImpossibleValue, "import_wh"},
		{"negative import not present", with(func(r *Reading) { r.ImportWh = -1; r.Fields &^= FieldImport }), "", ""},
		{"huge export", with(func(r *Reading) { r.ExportWh = 1 << 60 }), ReasonImpossibleValue, "export_wh"},
		{"5 kV", with(func(r *Reading) { r.VoltageV = 5000 }), ReasonImpossibleValue, "voltage_v"},
		{"denormal voltage", with(func(r *Reading) { r.VoltageV = 2.4e-41 }), ReasonImpossibleValue, "voltage_v"},
		{"zero voltage is a dead phase", with(func(r *Reading) { r.VoltageV = 0 }), "", ""},
		{"120 V grid", with(func(r *Reading) { r.VoltageV = 120 }), "", ""},
		{"frequency 0", with(func(r *Reading) { r.FrequencyHz = 0 }), ReasonImpossibleValue, "frequency_hz"},
		{"60 Hz grid", with(func(r *Reading) { r.FrequencyHz = 59.98 }), "", ""},
		{"PF 3", with(func(r *Reading) { r.PowerFactor = 3 }), ReasonImpossibleValue, "power_factor"},
		{"PF -1", with(func(r *Reading) { r.PowerFactor = -1 }), "", ""},
		{"PF 1.001 rounding", with(func(r *Reading) { r.PowerFactor = 1.001 }), "", ""},
		{"export power", with(func(r *Reading) { r.PowerW = -4500 }), "", ""},
		{"8.6 GW", with(func(r *Reading) { r.PowerW = 8.6e9 }), ReasonImpossibleValue, "power_w"},
		{"NaN power", with(func(r *Reading) { r.PowerW = float32(math.NaN()) }), ReasonImpossibleValue, "power_w"},
		{"Inf current", with(func(r *Reading) { r.CurrentA = float32(math.Inf(-1)) }), ReasonImpossibleValue, "current_a"},
		{"absent bad value is ignored", with(func(r *Reading) { r.CurrentA = float32(math.NaN()); r.Fields &^= FieldCurrent }), "", ""},
	}
	l := DefaultLimits()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Check(&tt.give, now)
			reason, _ := ReasonOf(err)
			if reason != tt.wantReason {
				t.Fatalf("err = %v, want reason %q", err, tt.wantReason)
			}
			if err != nil {
				re, _ := errors.AsType[*RejectError](err)
				if re.Field != tt.wantField {
					t.Errorf("field %q, want %q", re.Field, tt.wantField)
				}
			}
		})
	}
}

func TestLimitsCheckQuantity(t *testing.T) {
	l := DefaultLimits()
	tests := []struct {
		q    Quantity
		x    float64
		want bool // accepted
	}{
		{QuantityPowerL1, 2_400_000, true},
		{QuantityPowerL1, 2_600_000, false}, // over one phase's bound
		{QuantityPower, 2_600_000, true},    // the total may be three phases
		{QuantityCurrentL2, -9_000, true},
		{QuantityCurrentL2, 10_001, false},
		{QuantityVoltageL3, 0, true},
		{QuantityVoltageL3, 12, false},
		{QuantityPowerFactorL1, -0.5, true},
		{QuantityImportEnergyL1, 5, true},
		{QuantityImportEnergyL1, -5, false},
		{QuantityTotalEnergy, math.NaN(), false},
		{QuantityNone, 1, false},
	}
	for _, tt := range tests {
		if err := l.CheckQuantity(tt.q, tt.x); (err == nil) != tt.want {
			t.Errorf("CheckQuantity(%v, %v) = %v, want accepted=%v", tt.q, tt.x, err, tt.want)
		}
	}
	var v Values
	v.Set(QuantityVoltageL1, 230)
	v.Set(QuantityVoltageL2, 4e12)
	if err := l.CheckValues(&v); err == nil || !strings.Contains(err.Error(), "voltage_l2") {
		t.Errorf("CheckValues = %v, want a voltage_l2 reject", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if err := (Limits{}).Validate(); !errors.Is(err, ErrInvalidLimits) {
		t.Errorf("zero limits: err = %v, want ErrInvalidLimits", err)
	}
	tests := []func(*Limits){
		func(l *Limits) { l.MaxFutureSkew = -time.Second },
		func(l *Limits) { l.MaxAge = 0 },
		func(l *Limits) { l.MinVoltageV = 600 },
		func(l *Limits) { l.MinFrequencyHz = 0 },
		func(l *Limits) { l.MaxPhaseCurrentA = math.NaN() },
		func(l *Limits) { l.MaxPhasePowerW = math.Inf(1) },
		func(l *Limits) { l.MaxEnergyWh = 0 },
	}
	for i, f := range tests {
		l := DefaultLimits()
		f(&l)
		if err := l.Validate(); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("case %d: err = %v, want ErrInvalidLimits", i, err)
		}
	}
}

func TestReasons(t *testing.T) {
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		if seen[r] || r == "" || strings.ToLower(string(r)) != string(r) || strings.ContainsAny(string(r), " -") {
			t.Errorf("reason %q is duplicated or not snake_case", r)
		}
		seen[r] = true
	}
	for _, r := range []Reason{ReasonBadJSON, ReasonUnknownMeter, ReasonFutureTimestamp, ReasonTooOld, ReasonWrongUnit} {
		if !seen[r] {
			t.Errorf("Reasons() lacks %q", r)
		}
	}
}

func TestRejectError(t *testing.T) {
	cause := errors.New("want integer, got 12.5")
	err := error(Reject(ReasonWrongType, "readings.import_wh", cause))
	wrapped := errors.Join(errors.New("other"), err)
	if r, ok := ReasonOf(wrapped); !ok || r != ReasonWrongType {
		t.Errorf("ReasonOf = %q, %v", r, ok)
	}
	if !errors.Is(err, cause) {
		t.Error("RejectError does not unwrap to its cause")
	}
	if got, want := err.Error(), "reject wrong_type: readings.import_wh: want integer, got 12.5"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := Rejectf(ReasonBadJSON, "", "x %d", 1).Error(); got != "reject bad_json: x 1" {
		t.Errorf("Error() = %q", got)
	}
	if _, ok := ReasonOf(errors.New("plain")); ok {
		t.Error("ReasonOf(plain error) reported a reason")
	}
}
