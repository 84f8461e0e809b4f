package meter

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestStepCounter(t *testing.T) {
	const (
		maxPowerW = 10_000 // 10 kW connection
		mod32     = int64(1) << 32
	)
	uint32Wh := CounterSpec{ModulusWh: mod32, StepWh: 1}
	floatKWh := CounterSpec{StepWh: 1, FloatMantissaBits: 24, FloatUnitWh: 1000}
	display := CounterSpec{ModulusWh: 1_000_000_000, StepWh: 1, FloatMantissaBits: 24, FloatUnitWh: 1000}
	tests := []struct {
		name     string
		prev     int64
		cur      int64
		elapsed  time.Duration
		spec     CounterSpec
		prevID   string
		curID    string
		wantKind CounterEventKind
		wantWh   int64
	}{
		{"normal", 1_000_000, 1_000_500, 15 * time.Minute, uint32Wh, "", "", CounterNormal, 500},
		{"stuck meter", 1_000_000, 1_000_000, time.Hour, uint32Wh, "", "", CounterNormal, 0},
		// 10 kW for 15 minutes is 2500 Wh (+1 Wh resolution).
		{"at the plausible limit", 1_000_000, 1_002_501, 15 * time.Minute, uint32Wh, "", "", CounterNormal, 2501},
		{"just past the limit", 1_000_000, 1_002_502, 15 * time.Minute, uint32Wh, "", "", CounterJump, 0},
		{"spike of 15.5 MWh", 1_000_000, 16_500_000, 15 * time.Minute, uint32Wh, "", "", CounterJump, 0},
		{"uint32 rollover", mod32 - 300, 200, 15 * time.Minute, uint32Wh, "", "", CounterRollover, 500},
		{"rollover too large is a reset", mod32 - 2_000_000, 200, 15 * time.Minute, uint32Wh, "", "", CounterReset, 200},
		{"six-digit kWh display rollover", 999_999_000, 1_000, time.Hour, display, "", "", CounterRollover, 2_000},
		{"reset to zero (power loss)", 5_432_100, 0, 5 * time.Minute, uint32Wh, "", "", CounterReset, 0},
		{"reset and counting again", 5_432_100, 120, 5 * time.Minute, uint32Wh, "", "", CounterReset, 120},
		{"drop to implausible value", 5_432_100, 3_000_000, 5 * time.Minute, uint32Wh, "", "", CounterJump, 0},
		{"float noise below resolution", 20_000_000_000, 19_999_999_000, time.Minute, floatKWh, "", "", CounterNormal, 0},
		{"float step at 2^24 kWh is plausible", 16_777_216_000, 16_777_218_000, time.Hour, floatKWh, "", "", CounterNormal, 2_000},
		{"replacement", 5_432_100, 12, time.Hour, uint32Wh, "SN-1", "SN-2", CounterReplacement, 0},
		{"same identity is no replacement", 5_432_100, 5_432_600, time.Hour, uint32Wh, "SN-1", "SN-1", CounterNormal, 500},
		{"identity learned later is no replacement", 5_432_100, 5_432_600, time.Hour, uint32Wh, "", "SN-1", CounterNormal, 500},
		{"same timestamp, same value", 5_000, 5_000, 0, uint32Wh, "", "", CounterNormal, 0},
		{"same timestamp, different value", 5_000, 6_000, 0, uint32Wh, "", "", CounterJump, 0},
		{"long gap allows more", 1_000_000, 1_240_000, 24 * time.Hour, uint32Wh, "", "", CounterNormal, 240_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StepCounter(
				CounterSample{Time: t0, ValueWh: tt.prev, Identity: tt.prevID},
				CounterSample{Time: t0.Add(tt.elapsed), ValueWh: tt.cur, Identity: tt.curID},
				tt.spec, maxPowerW)
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tt.wantKind || got.ConsumptionWh != tt.wantWh {
				t.Errorf("got %v %d Wh (delta %d, plausible %d), want %v %d Wh",
					got.Kind, got.ConsumptionWh, got.DeltaWh, got.MaxPlausibleWh, tt.wantKind, tt.wantWh)
			}
			if got.DeltaWh != tt.cur-tt.prev {
				t.Errorf("DeltaWh = %d, want %d", got.DeltaWh, tt.cur-tt.prev)
			}
		})
	}
}

func TestStepCounterErrors(t *testing.T) {
	spec := CounterSpec{ModulusWh: 1000}
	tests := []struct {
		name      string
		prev, cur CounterSample
		maxPowerW float64
		want      error
	}{
		{"out of order", CounterSample{Time: t0.Add(time.Minute)}, CounterSample{Time: t0}, 1000, ErrCounterOrder},
		{"negative", CounterSample{Time: t0, ValueWh: -1}, CounterSample{Time: t0}, 1000, ErrCounterInput},
		{"at modulus", CounterSample{Time: t0, ValueWh: 1000}, CounterSample{Time: t0}, 1000, ErrCounterInput},
		{"zero power", CounterSample{Time: t0}, CounterSample{Time: t0}, 0, ErrCounterInput},
		{"NaN power", CounterSample{Time: t0}, CounterSample{Time: t0}, math.NaN(), ErrCounterInput},
		{"infinite power", CounterSample{Time: t0}, CounterSample{Time: t0}, math.Inf(1), ErrCounterInput},
	}
	for _, tt := range tests {
		if _, err := StepCounter(tt.prev, tt.cur, spec, tt.maxPowerW); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestResolutionWh(t *testing.T) {
	tests := []struct {
		spec CounterSpec
		give int64
		want int64
	}{
		{CounterSpec{}, 123, 1},
		{CounterSpec{StepWh: 10}, 123, 10},
		// float32 kWh: below 2^14 kWh the ulp is under 1 Wh.
		{CounterSpec{FloatMantissaBits: 24, FloatUnitWh: 1000}, 10_000_000, 1},
		// 100 000 kWh lies in [2^16, 2^17): ulp 2^-7 kWh = 7.8 Wh.
		{CounterSpec{FloatMantissaBits: 24, FloatUnitWh: 1000}, 100_000_000, 8},
		// At 2^24 kWh the ulp is 2 kWh.
		{CounterSpec{FloatMantissaBits: 24, FloatUnitWh: 1000}, 16_777_216_000, 2000},
		// float32 Wh (Janitza) above 2^24 Wh: 2 Wh steps.
		{CounterSpec{FloatMantissaBits: 24, FloatUnitWh: 1}, 20_000_000, 2},
	}
	for _, tt := range tests {
		if got := tt.spec.ResolutionWh(tt.give); got != tt.want {
			t.Errorf("%+v at %d Wh: %d, want %d", tt.spec, tt.give, got, tt.want)
		}
	}
}

// TestStepCounterProperties checks, over random inputs, that consumption is
// never negative and never above the plausible maximum, and that any
// plausible forward step — wrapped or not — is returned exactly.
func TestStepCounterProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specs := []CounterSpec{
		{ModulusWh: 1 << 32, StepWh: 1},
		{ModulusWh: 10 << 32, StepWh: 10},
		{ModulusWh: 1_000_000_000, StepWh: 1, FloatMantissaBits: 24, FloatUnitWh: 1000},
		{StepWh: 100},
		{StepWh: 1, FloatMantissaBits: 24, FloatUnitWh: 1000},
	}
	for i := range 200_000 {
		spec := specs[i%len(specs)]
		maxPowerW := float64(1 + rng.IntN(1_000_000))
		elapsed := time.Duration(rng.Int64N(int64(48 * time.Hour)))
		top := spec.ModulusWh
		if top == 0 {
			top = 1 << 50
		}
		prev := CounterSample{Time: t0, ValueWh: rng.Int64N(top)}
		cur := CounterSample{Time: t0.Add(elapsed), ValueWh: rng.Int64N(top)}
		if rng.IntN(8) == 0 {
			cur.Identity, prev.Identity = "a", "b"
		}
		step, err := StepCounter(prev, cur, spec, maxPowerW)
		if err != nil {
			t.Fatal(err)
		}
		if step.ConsumptionWh < 0 || step.ConsumptionWh > step.MaxPlausibleWh {
			t.Fatalf("prev %+v cur %+v: consumption %d outside 0..%d", prev, cur, step.ConsumptionWh, step.MaxPlausibleWh)
		}
		if (step.Kind == CounterJump || step.Kind == CounterReplacement) && step.ConsumptionWh != 0 {
			t.Fatalf("%v with consumption %d", step.Kind, step.ConsumptionWh)
		}

		// A plausible forward step, wrapped at the modulus when there is one.
		plausible := int64(maxPowerW * elapsed.Hours())
		used := rng.Int64N(plausible + 1)
		next := prev.ValueWh + used
		if spec.ModulusWh > 0 {
			next %= spec.ModulusWh
		} else if next >= top {
			continue
		}
		step, err = StepCounter(prev, CounterSample{Time: cur.Time, ValueWh: next}, spec, maxPowerW)
		if err != nil {
			t.Fatal(err)
		}
		wantKind := CounterNormal
		if next < prev.ValueWh {
			wantKind = CounterRollover
		}
		if step.Kind != wantKind || step.ConsumptionWh != used {
			t.Fatalf("spec %+v prev %d used %d (next %d, %v): got %v %d", spec, prev.ValueWh, used, next, elapsed, step.Kind, step.ConsumptionWh)
		}
	}
}

func TestCounterEventKindString(t *testing.T) {
	for k, want := range map[CounterEventKind]string{
		CounterNormal: "normal", CounterRollover: "rollover", CounterReset: "reset",
		CounterReplacement: "replacement", CounterJump: "jump", 9: "counter_event(9)",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int16(k), got, want)
		}
	}
}
