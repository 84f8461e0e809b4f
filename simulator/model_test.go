package simulator

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/meterd/meterd/meter"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday

func mustFleet(t testing.TB, cfg Config) *Fleet {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Same config, same readings — whatever order they are computed in; a
// different seed gives different ones.
func TestSameSeedSameReadings(t *testing.T) {
	cfg := Config{Seed: 77, Meters: 25, Start: t0, TasmotaShare: 0.2, ModbusMeters: 5,
		Faults: Faults{Reset: 0.3, Replacement: 0.2, Spike: 0.5, Stuck: 0.2, Gap: 0.3, Rollover: 0.5}}
	a, b := mustFleet(t, cfg), mustFleet(t, cfg)
	other := mustFleet(t, Config{Seed: 78, Meters: 25, Start: t0})
	ticks := a.Ticks(t0, t0.Add(48*time.Hour))
	differ := 0
	for i := range a.Len() {
		ma, mb := a.Meter(i), b.Meter(i)
		if ma.ExternalID != mb.ExternalID || ma.Serial != mb.Serial || ma.Model != mb.Model || ma.Profile != mb.Profile ||
			ma.SolarKWp != mb.SolarKWp || a.Secret(i) != b.Secret(i) || ma.Rollover != mb.Rollover {
			t.Fatalf("meter %d differs: %+v vs %+v", i, ma, mb)
		}
		sa := a.NewState(i)
		sb := b.NewState(i)
		so := other.NewState(i)
		for k, ts := range ticks {
			// b jumps back and forth, so it recomputes from Start.
			if k%97 == 0 {
				sb.At(ts.Add(5 * time.Hour))
			}
			x, y := sa.At(ts), sb.At(ts)
			if x != y {
				t.Fatalf("meter %d at %v: %+v vs %+v", i, ts, x, y)
			}
			if o := so.At(ts); o.ImportWh != x.ImportWh {
				differ++
			}
		}
	}
	if differ == 0 {
		t.Error("another seed gives the same registers")
	}
}

// Registers never go backwards except across an injected reset,
// replacement or rollover, and each of those shows in the registers.
func TestRegistersMonotonic(t *testing.T) {
	f := mustFleet(t, Config{Seed: 5, Meters: 40, Start: t0, Interval: 5 * time.Minute, Models: []string{"sunspec_203", "sdm630", "sdm120"},
		Residential: 0.3, Commercial: 0.5, Industrial: 0.2,
		Faults: Faults{Reset: 0.2, Replacement: 0.1, Rollover: 0.5, RolloverAfter: 6 * time.Hour}})
	events := map[Kind]int{}
	for i := range f.Len() {
		s := f.NewState(i)
		var prev Sample
		for k, ts := range f.Ticks(t0, t0.Add(7*24*time.Hour)) {
			smp := s.At(ts)
			evs := s.TakeEvents()
			if k == 0 {
				prev = smp
				continue
			}
			excused := map[Kind]bool{}
			for _, e := range evs {
				events[e.Kind]++
				excused[e.Kind] = true
			}
			back := smp.ImportWh < prev.ImportWh || smp.ExportWh < prev.ExportWh
			if back && !excused[KindReset] && !excused[KindReplacement] && !excused[KindRollover] {
				t.Fatalf("%s at %v: registers went back %d/%d → %d/%d with no event", f.Meter(i).ExternalID, ts, prev.ImportWh, prev.ExportWh, smp.ImportWh, smp.ExportWh)
			}
			if excused[KindReplacement] && smp.Serial == prev.Serial {
				t.Errorf("%s at %v: replacement without a new serial", f.Meter(i).ExternalID, ts)
			}
			if (excused[KindReset] || excused[KindReplacement]) && smp.ImportWh > 50_000 && f.Meter(i).Profile == Residential {
				t.Errorf("%s at %v: %d Wh right after a reset or replacement", f.Meter(i).ExternalID, ts, smp.ImportWh)
			}
			if excused[KindRollover] && !back {
				t.Errorf("%s at %v: rollover event but the registers did not wrap", f.Meter(i).ExternalID, ts)
			}
			prev = smp
		}
	}
	for _, k := range []Kind{KindReset, KindReplacement, KindRollover} {
		if events[k] == 0 {
			t.Errorf("no %s in the run", k)
		}
	}
	t.Logf("events %v", events)
}

// The energy registers are the integral of the power the model reports:
// summing power × step over every step of two days gives the register
// difference to within 1 Wh plus 0.5 mWh of rounding per step.
func TestEnergyIsIntegralOfPower(t *testing.T) {
	f := mustFleet(t, Config{Seed: 9, Meters: 12, Start: t0, Interval: time.Minute, Step: 30 * time.Second,
		Faults: Faults{Spike: 1, Stuck: 0.5}})
	step := f.Config().Step
	for i := range f.Len() {
		s := f.NewState(i)
		first := s.At(t0)
		var impWh, expWh float64
		n := 0
		for ts := t0; ts.Before(t0.Add(48 * time.Hour)); ts = ts.Add(step) {
			p := s.At(ts).PowerW
			if p >= 0 {
				impWh += p * step.Hours()
			} else {
				expWh -= p * step.Hours()
			}
			n++
		}
		last := s.At(t0.Add(48 * time.Hour))
		tol := 1 + float64(n)*0.0005
		if d := math.Abs(float64(last.ImportWh-first.ImportWh) - impWh); d > tol {
			t.Errorf("%s: import register moved %d Wh, ∫P = %.1f Wh (off by %.2f, tolerance %.2f)", f.Meter(i).ExternalID, last.ImportWh-first.ImportWh, impWh, d, tol)
		}
		if d := math.Abs(float64(last.ExportWh-first.ExportWh) - expWh); d > tol {
			t.Errorf("%s: export register moved %d Wh, ∫P = %.1f Wh (off by %.2f)", f.Meter(i).ExternalID, last.ExportWh-first.ExportWh, expWh, d)
		}
		// Between step boundaries the registers advance linearly with P.
		mid := s.At(t0.Add(48*time.Hour + step/2))
		if want := float64(last.ImportWh) + math.Max(last.PowerW, 0)*step.Hours()/2; math.Abs(float64(mid.ImportWh)-want) > 1.5 {
			t.Errorf("%s: import at mid-step %d, want about %.1f", f.Meter(i).ExternalID, mid.ImportWh, want)
		}
	}
}

// Voltage, current, frequency and power factor are plausible and
// consistent with the power; every reading passes meter.Limits.
func TestElectricalPlausible(t *testing.T) {
	f := mustFleet(t, Config{Seed: 4, Meters: 60, Start: t0})
	limits := meter.DefaultLimits()
	solarExported := false
	for i := range f.Len() {
		m := f.Meter(i)
		s := f.NewState(i)
		for _, ts := range f.Ticks(t0, t0.Add(7*24*time.Hour)) {
			if ts.Minute()%17 != 0 {
				continue
			}
			smp := s.At(ts)
			r := smp.Reading(m.Phases)
			if err := limits.Check(&r, ts); err != nil {
				t.Fatalf("%s at %v: %v", m.ExternalID, ts, err)
			}
			for p := range m.Phases {
				if v := smp.VoltageV[p]; v < 210 || v > 250 {
					t.Fatalf("%s at %v: %v V", m.ExternalID, ts, v)
				}
				if want := math.Abs(smp.PhasePowerW[p]) / (smp.VoltageV[p] * smp.PowerFactor); math.Abs(smp.CurrentA[p]-want) > 1e-9 {
					t.Fatalf("%s: I = %v, |P|/(V·PF) = %v", m.ExternalID, smp.CurrentA[p], want)
				}
			}
			if smp.FrequencyHz < 49.9 || smp.FrequencyHz > 50.1 || smp.PowerFactor < 0.5 || smp.PowerFactor > 1 {
				t.Fatalf("%s at %v: %v Hz, PF %v", m.ExternalID, ts, smp.FrequencyHz, smp.PowerFactor)
			}
			if smp.PowerW < 0 {
				solarExported = true
				local := ts.In(f.Location()).Hour()
				if local < 6 || local > 18 {
					t.Errorf("%s exports at local hour %d", m.ExternalID, local)
				}
				if m.SolarKWp == 0 {
					t.Errorf("%s exports without solar", m.ExternalID)
				}
			}
		}
	}
	if !solarExported {
		t.Error("no meter exported at midday in a week")
	}
}

// binomialOK reports whether n successes in trials at probability p are
// within 4.5 standard deviations of the expectation. The draws are a fixed
// function of the seed, so this cannot flake; the margin is for changing
// the seed.
func binomialOK(n, trials int, p float64) bool {
	mean := float64(trials) * p
	sd := math.Sqrt(float64(trials) * p * (1 - p))
	return math.Abs(float64(n)-mean) <= 4.5*sd+1
}

// Each fault appears at its configured rate.
func TestFaultRates(t *testing.T) {
	rates := Faults{
		Duplicate: 0.05, OutOfOrder: 0.03, Late: 0.02,
		BrokenJSON: 0.01, WrongType: 0.02, UnknownMeter: 0.005, FutureTime: 0.01, PastTime: 0.015,
		Gap: 0.1, Reset: 0.05, Replacement: 0.02, Spike: 0.2, Stuck: 0.03,
		Rollover: 0.3, WrongWordOrder: 0.1, MissingOptional: 0.2, SlowReply: 0.04,
	}
	f := mustFleet(t, Config{Seed: 2024, Meters: 1000, ModbusMeters: 500, Start: t0, Faults: rates})
	counts := map[Kind]int{}
	trials := map[Kind]int{}
	ticks := f.Ticks(t0, t0.Add(100*time.Minute))
	for i := range f.Len() {
		m := f.Meter(i)
		for _, ts := range ticks {
			for _, k := range []Kind{KindDuplicate, KindOutOfOrder, KindLate} {
				trials[k]++
				if f.DeliveryFault(i, ts, ts) == k {
					counts[k]++
				}
			}
			for k := KindBrokenJSON; k <= KindPastTime; k++ {
				trials[k]++
			}
			for _, k := range f.MalformedFaults(i, ts, ts) {
				counts[k]++
			}
		}
		for _, e := range f.EventsOn(i, t0, t0.Add(60*24*time.Hour)) {
			counts[e.Kind]++
		}
		for k := KindGap; k <= KindStuck; k++ {
			trials[k] += 60
		}
		if m.ModulusWh > 0 {
			trials[KindRollover]++
			if m.Rollover {
				counts[KindRollover]++
			}
		}
		if m.Protocol == Modbus {
			trials[KindWrongWordOrder]++
			if m.WrongWordOrder {
				counts[KindWrongWordOrder]++
			}
			if hasOptional(m.Map) {
				trials[KindMissingOptional]++
				if m.MissingOptional {
					counts[KindMissingOptional]++
				}
			}
			for n := range uint64(200) {
				trials[KindSlowReply]++
				if f.SlowReply(i, n, t0, t0) {
					counts[KindSlowReply]++
				}
			}
		}
	}
	for _, k := range Kinds() {
		r := rates.Rate(k)
		if trials[k] < 100 {
			t.Errorf("%s: only %d trials", k, trials[k])
			continue
		}
		got := float64(counts[k]) / float64(trials[k])
		if !binomialOK(counts[k], trials[k], r) {
			t.Errorf("%s: %d of %d (%.4f), configured %.4f", k, counts[k], trials[k], got, r)
		}
	}
}

// Scheduled faults happen where they are scheduled.
func TestScheduledFaults(t *testing.T) {
	at := t0.Add(3*time.Hour + 10*time.Second)
	tick0 := t0.Add(3*time.Hour + time.Minute)
	f := mustFleet(t, Config{Seed: 1, Meters: 3, Start: t0, Faults: Faults{Schedule: []Scheduled{
		{Kind: KindReset, Meter: 1, At: at},
		{Kind: KindDuplicate, Meter: 2, At: at},
		{Kind: KindBrokenJSON, Meter: 0, At: at},
		{Kind: KindRollover, Meter: 0},
		{Kind: KindSlowReply, Meter: 0, At: tick0},
	}}})
	ev := f.EventsOn(1, t0, t0.Add(24*time.Hour))
	if len(ev) != 1 || ev[0].Kind != KindReset || !ev[0].At.Equal(t0.Add(3*time.Hour+30*time.Second)) {
		t.Errorf("events %+v, want one reset snapped to the step after %v", ev, at)
	}
	tick := f.TickAtOrAfter(at)
	if k := f.DeliveryFault(2, tick, tick); k != KindDuplicate {
		t.Errorf("delivery fault at %v = %v, want duplicate", tick, k)
	}
	if k := f.DeliveryFault(2, tick.Add(time.Minute), tick.Add(time.Minute)); k != KindNone {
		t.Errorf("delivery fault a tick later = %v", k)
	}
	if ks := f.MalformedFaults(0, tick.Add(-time.Minute), tick); len(ks) != 1 || ks[0] != KindBrokenJSON {
		t.Errorf("malformed %v", ks)
	}
	s := f.NewState(1)
	before := s.At(tick.Add(-time.Minute))
	after := s.At(tick)
	if after.ImportWh >= before.ImportWh || after.ImportWh >= 100 {
		t.Errorf("reset: %d → %d Wh", before.ImportWh, after.ImportWh)
	}
	if !f.SlowReply(0, 0, tick.Add(-time.Second), tick) || f.SlowReply(1, 0, tick.Add(-time.Second), tick) {
		t.Error("scheduled slow reply not applied")
	}
	if f.Meter(0).Rollover != (f.Meter(0).ModulusWh > 0) {
		t.Errorf("scheduled rollover on %s (modulus %d): %v", f.Meter(0).Model, f.Meter(0).ModulusWh, f.Meter(0).Rollover)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		give Config
		want bool // valid
	}{
		{"defaults", Config{Start: t0}, true},
		{"no start", Config{}, false},
		{"too many meters", Config{Start: t0, Meters: MaxMeters + 1}, false},
		{"interval not a multiple of step", Config{Start: t0, Interval: time.Minute, Step: 7 * time.Second}, false},
		{"bad tenant", Config{Start: t0, Tenant: "Sim!"}, false},
		{"bad zone", Config{Start: t0, TimeZone: "Mars/Olympus"}, false},
		{"unknown model", Config{Start: t0, Models: []string{"sdm999"}}, false},
		{"model without a profile", Config{Start: t0, Models: []string{"abb_b23"}}, false},
		{"rate above 1", Config{Start: t0, Faults: Faults{Reset: 1.5}}, false},
		{"delivery rates above 1", Config{Start: t0, Faults: Faults{Duplicate: 0.6, Late: 0.6}}, false},
		{"too few gateways", Config{Start: t0, Meters: 30, ModbusMeters: 30, UnitsPerGateway: 10, ModbusGateways: []string{"127.0.0.1:1"}}, false},
		{"gateways by default", Config{Start: t0, Meters: 30, ModbusMeters: 30}, true},
		{"schedule meter out of range", Config{Start: t0, Meters: 2, Faults: Faults{Schedule: []Scheduled{{Kind: KindReset, Meter: 2, At: t0}}}}, false},
		{"schedule without time", Config{Start: t0, Faults: Faults{Schedule: []Scheduled{{Kind: KindReset, Meter: 0}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.WithDefaults().Validate()
			if (err == nil) != tt.want {
				t.Fatalf("Validate() = %v, want valid=%v", err, tt.want)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	f := mustFleet(t, Config{Seed: 1, Meters: 3, Start: t0})
	g := mustFleet(t, Config{Seed: 1, Meters: 3, Start: t0.Add(time.Hour)})
	if f.Secret(0) != g.Secret(0) {
		t.Error("the secret depends on Start")
	}
	if f.Secret(0) == f.Secret(1) || len(f.Secret(0)) != 64 {
		t.Errorf("secrets %q %q", f.Secret(0), f.Secret(1))
	}
	if h := f.SecretHash(0); len(h) != 71 || h[:7] != "sha256:" {
		t.Errorf("hash %q", h)
	}
	if i, ok := f.Lookup("sim-000003"); !ok || i != 2 {
		t.Errorf("Lookup = %d %v", i, ok)
	}
	if _, ok := f.Lookup(f.UnknownMeterRef(0)); ok {
		t.Error("the unknown-meter reference resolves")
	}
}

func BenchmarkStateAdvanceMinute(b *testing.B) {
	f := mustFleet(b, Config{Seed: 1, Meters: 1, Start: t0})
	s := f.NewState(0)
	ts := t0
	for b.Loop() {
		ts = ts.Add(time.Minute)
		s.At(ts)
	}
}
