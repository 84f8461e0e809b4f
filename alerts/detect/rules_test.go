package detect

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/meter"
)

func TestRobust(t *testing.T) {
	tests := []struct {
		give           []float64
		median, madRaw float64
	}{
		{[]float64{1, 2, 3, 4, 100}, 3, 1},
		{[]float64{5, 5, 5, 5}, 5, 0},
		{[]float64{1, 3}, 2, 1},
	}
	for _, tt := range tests {
		b := Robust(tt.give)
		if b.Median != tt.median || math.Abs(b.MAD-1.4826*tt.madRaw) > 1e-9 || b.N != len(tt.give) {
			t.Errorf("Robust(%v) = %+v", tt.give, b)
		}
	}
	if z := (Baseline{Median: 100, MAD: 0}).Z(150, 0.1, 1); z != 5 {
		t.Errorf("Z with a flat history uses the relative floor: %v", z)
	}
}

// hourAt builds an hour whose four power samples are level (plus an
// optional surge on one of them) and whose energy matches.
func hourAt(b time.Time, levelW, surgeW, exportWh float64) Hour {
	samples := []float64{levelW, levelW * 1.02, levelW * 0.98, levelW + surgeW}
	var sum float64
	mx, mn := math.Inf(-1), math.Inf(1)
	for _, s := range samples {
		sum += s
		mx, mn = math.Max(mx, s), math.Min(mn, s)
	}
	imp := int64(levelW + surgeW/4)
	return Hour{Bucket: b, ImportWh: imp, ExportWh: int64(exportWh), MaxPowerW: mx, MinPowerW: mn, AvgPowerW: sum / 4, PowerSamples: 4, Samples: 4}
}

func TestDeviation(t *testing.T) {
	cfg := DefaultConfig()
	at := time.Date(2026, 5, 4, 14, 30, 0, 0, time.UTC)
	history := func(level, export float64, weeks int) []Hour {
		var h []Hour
		for k := 1; k <= weeks; k++ {
			h = append(h, hourAt(at.AddDate(0, 0, -7*k), level*(1+0.05*float64(k%3-1)), 0, export))
		}
		return h
	}
	tests := []struct {
		name     string
		h        Hour
		history  []Hour
		want     bool
		wantFeat string
	}{
		{"usual hour", hourAt(at, 400, 0, 0), history(400, 0, 8), false, ""},
		{"short surge (one sample at 5×)", hourAt(at, 400, 1600, 0), history(400, 0, 8), true, "power surge"},
		{"an appliance left on (energy 3×)", Hour{Bucket: at, ImportWh: 1200, MaxPowerW: 1220, MinPowerW: 1180, AvgPowerW: 1200, PowerSamples: 4, Samples: 4}, history(400, 0, 8), true, "energy"},
		{"too little history", hourAt(at, 400, 1600, 0), history(400, 0, 3), false, ""},
		{"no readings this hour", Hour{Bucket: at}, history(400, 0, 8), false, ""},
		{"solar hour: cloudy (less export) is not judged", Hour{Bucket: at, ImportWh: 300, ExportWh: 0, MaxPowerW: 310, MinPowerW: 290, AvgPowerW: 300, PowerSamples: 4, Samples: 4}, history(-800, 900, 8), false, ""},
		{"solar hour: a surge is still seen", hourAt(at, -800, 2500, 900), history(-800, 900, 8), true, "power surge"},
		{"a big meter's usual noise", hourAt(at, 100_000*1.15, 0, 0), history(100_000, 0, 8), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := Deviation(cfg, 7, 400, tt.h, tt.history)
			if ok != tt.want {
				e, _ := Evaluate(cfg, 7, 400, tt.h, tt.history)
				t.Fatalf("found %v (%+v), want %v; eval %+v", ok, f, tt.want, e)
			}
			if ok && (f.Evidence["feature"] != tt.wantFeat || f.Kind != alerts.KindUsageDeviation || f.MeterID != 7 || !f.At.Equal(at)) {
				t.Errorf("finding %+v", f)
			}
		})
	}
	// The weather's common mode comes off a solar meter's z.
	e, _ := Evaluate(cfg, 7, 400, hourAt(at, 400, 1600, 0), history(400, 0, 8))
	if _, ok := e.Finding(cfg, nil); !ok {
		t.Fatal("no finding without a common mode")
	}
	if _, ok := e.Finding(cfg, map[string]float64{"energy": 1000, "peak power": 1000, "power surge": 1000}); ok {
		t.Error("a common mode that explains the hour still produced a finding")
	}
	if f, ok := e.Finding(cfg, map[string]float64{"energy": -5}); !ok || f.Evidence["common_mode_z"] != nil {
		t.Error("a negative common mode changed the finding")
	}
}

func day(d int, first, last int64, samples int64) Day {
	b := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d)
	return Day{Bucket: b, FirstTS: b.Add(10 * time.Minute), LastTS: b.Add(23*time.Hour + 50*time.Minute), FirstImport: first, LastImport: last,
		HasImport: true, Samples: samples, MaxPowerW: float64(last-first) / 10, HasPower: true}
}

func kinds(fs []alerts.Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, string(f.Kind)+"@"+f.At.Format("01-02"))
	}
	return strings.Join(s, " ")
}

func clearKinds(cs []alerts.Clear) string {
	var s []string
	for _, c := range cs {
		s = append(s, string(c.Kind))
	}
	return strings.Join(s, " ")
}

func TestDaily(t *testing.T) {
	cfg := DefaultConfig()
	m := Meter{ID: 1, TenantID: 1, Multiplier: 1, Plan: "domestic", SanctionedKW: 2}
	report := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// 5000, 3000 and 6000 Wh.
	normal := []Day{day(0, 1000, 6000, 96), day(1, 6000, 9000, 96), day(2, 9000, 15000, 96)}
	tests := []struct {
		name       string
		days       []Day
		events     []CounterEvent
		th         Thresholds
		m          Meter
		want       string
		wantClears string
	}{
		{name: "normal days", days: normal, m: m, wantClears: "consumption_threshold load_above_sanctioned stuck"},
		{name: "daily threshold", days: normal, th: Thresholds{DailyWh: 4500}, m: m,
			want: "consumption_threshold@03-01 consumption_threshold@03-03", wantClears: "load_above_sanctioned stuck"},
		{name: "monthly threshold crossed on the third day", days: normal, th: Thresholds{MonthlyWh: 12000}, m: m,
			want: "consumption_threshold@03-03", wantClears: "load_above_sanctioned stuck"},
		{name: "multiplier applies to thresholds", days: normal, th: Thresholds{DailyWh: 9000}, m: Meter{ID: 1, Multiplier: 2},
			want: "consumption_threshold@03-01 consumption_threshold@03-03", wantClears: "stuck"},
		{name: "above sanctioned load", days: []Day{day(0, 0, 30000, 96)}, m: m,
			want: "load_above_sanctioned@03-01", wantClears: "consumption_threshold stuck"},
		{name: "stuck for two whole days", days: []Day{day(0, 0, 5000, 96), day(1, 5000, 5000, 96), day(2, 5000, 5000, 96), day(3, 5000, 5000, 96)}, m: m,
			want: "stuck@03-03 stuck@03-04", wantClears: "consumption_threshold load_above_sanctioned"},
		{name: "one frozen day is not stuck", days: []Day{day(0, 0, 5000, 96), day(1, 5000, 5000, 96), day(2, 5000, 9000, 96)}, m: m,
			wantClears: "consumption_threshold load_above_sanctioned stuck"},
		{name: "a day with one reading neither breaks a stuck run nor extends it", days: []Day{day(0, 0, 5000, 96), day(1, 5000, 5000, 96), day(2, 5000, 5000, 1), day(3, 5000, 5000, 96)}, m: m,
			want: "stuck@03-04", wantClears: "consumption_threshold load_above_sanctioned"},
		{name: "register back between days, nothing recorded: tamper", days: []Day{day(0, 10000, 15000, 96), day(1, 2000, 7000, 96)}, m: m,
			want: "tamper@03-02", wantClears: "consumption_threshold load_above_sanctioned stuck"},
		{name: "back within a day, recorded reset: no tamper", days: []Day{day(0, 10000, 300, 96)}, m: m,
			events:     []CounterEvent{{Register: "import_wh", TS: report.Add(5 * time.Hour), Kind: 2, PrevWh: 12000, ValueWh: 10}},
			wantClears: "consumption_threshold load_above_sanctioned stuck"},
		{name: "recorded impossible jump back, masked in the rollup: tamper", days: []Day{day(0, 10000, 95000, 96)}, m: Meter{ID: 1, Multiplier: 1},
			events: []CounterEvent{{Register: "import_wh", TS: report.Add(5 * time.Hour), PrevTS: report.Add(5*time.Hour - 15*time.Minute), Kind: 4, PrevWh: 50000, ValueWh: 30000}},
			want:   "tamper@03-01", wantClears: "consumption_threshold stuck"},
		{name: "rollover recorded: no tamper", days: []Day{day(0, 4294960000, 4294967000, 96), day(1, 500, 4000, 96)}, m: Meter{ID: 1, Multiplier: 1},
			events:     []CounterEvent{{Register: "import_wh", TS: report.Add(24 * time.Hour), Kind: 1, PrevWh: 4294967000, ValueWh: 500}},
			wantClears: "consumption_threshold stuck"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, cs := Daily(cfg, tt.m, tt.days, tt.events, tt.th, report, time.UTC)
			if got := kinds(fs); got != tt.want {
				t.Errorf("findings %q, want %q", got, tt.want)
			}
			if got := clearKinds(cs); got != tt.wantClears {
				t.Errorf("clears %q, want %q", got, tt.wantClears)
			}
		})
	}
	// Days before the report date give context and no findings.
	fs, _ := Daily(cfg, m, normal, nil, Thresholds{DailyWh: 4500}, report.AddDate(0, 0, 2), time.UTC)
	if got := kinds(fs); got != "consumption_threshold@03-03" {
		t.Errorf("context days reported: %q", got)
	}
}

func TestSilent(t *testing.T) {
	cfg := DefaultConfig()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	m := Meter{ID: 1, ExpectedInterval: 15 * time.Minute, InstalledAt: now.Add(-48 * time.Hour)}
	tests := []struct {
		name      string
		last      time.Time
		seen      bool
		m         Meter
		wantFind  bool
		wantClear bool
	}{
		{"reporting", now.Add(-20 * time.Minute), true, m, false, true},
		{"silent for 2 h (allowed 1 h)", now.Add(-2 * time.Hour), true, m, true, false},
		{"hourly meter silent for 2 h (allowed 4 h)", now.Add(-2 * time.Hour), true, Meter{ID: 1, ExpectedInterval: time.Hour}, false, true},
		{"never heard from since installed two days ago", time.Time{}, false, m, true, false},
		{"installed minutes ago", time.Time{}, false, Meter{ID: 1, ExpectedInterval: 15 * time.Minute, InstalledAt: now.Add(-10 * time.Minute)}, false, false},
	}
	for _, tt := range tests {
		f, c := Silent(cfg, now, tt.m, tt.last, tt.seen)
		if (f.Kind == alerts.KindSilent) != tt.wantFind || (c != nil) != tt.wantClear {
			t.Errorf("%s: finding %+v clear %+v", tt.name, f, c)
		}
	}
}

// A water meter's findings speak litres and kilolitres: the threshold, the
// register going back and an hour's unusual volume.
func TestFindingsFollowMeterKind(t *testing.T) {
	cfg := DefaultConfig()
	report := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		kind   meter.Kind
		unit   string
		want   []string
		reject string
	}{
		{"water", meter.KindWater, "kL", []string{"5.0 kL used on 1 Mar 2026", "threshold of 4.5 kL", "went back by 8.0 kL (15000 → 7000 L)"}, "Wh"},
		{"electricity", meter.KindElectricity, "kWh", []string{"5.0 kWh used on 1 Mar 2026", "threshold of 4.5 kWh", "went back by 8.0 kWh (15000 → 7000 Wh)"}, " L"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Meter{ID: 1, TenantID: 1, Multiplier: 1, Plan: "domestic", Kind: tt.kind}
			fs, _ := Daily(cfg, m, []Day{day(0, 10000, 15000, 96), day(1, 7000, 7500, 96)}, nil, Thresholds{DailyWh: 4500}, report, time.UTC)
			var all []string
			for _, f := range fs {
				if f.Unit != tt.unit {
					t.Errorf("%s: unit %q, want %q", f.Kind, f.Unit, tt.unit)
				}
				all = append(all, f.Summary)
			}
			text := strings.Join(all, "\n")
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in\n%s", w, text)
				}
			}
			if strings.Contains(text, tt.reject) {
				t.Errorf("has %q in\n%s", tt.reject, text)
			}
		})
	}
	// An hour of unusual volume on a water meter.
	at := time.Date(2026, 5, 4, 14, 0, 0, 0, time.UTC)
	var history []Hour
	for k := 1; k <= 8; k++ {
		history = append(history, Hour{Bucket: at.AddDate(0, 0, -7*k), ImportWh: int64(400 + 20*(k%3)), Samples: 4})
	}
	e, ok := Evaluate(cfg, 7, 400, Hour{Bucket: at, ImportWh: 20_000, Samples: 4}, history)
	if !ok {
		t.Fatal("no evaluation")
	}
	e.Kind = meter.KindWater
	f, ok := e.Finding(cfg, nil)
	if !ok || f.Unit != "L" || !strings.HasPrefix(f.Summary, "volume of 20.0 kL in the hour") || !strings.Contains(f.Summary, "usual 420 L") {
		t.Errorf("water hour: %v %+v", ok, f)
	}
}
