package detect

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/meter"
)

// Hour is one hourly rollup of a meter (readings_hourly).
type Hour struct {
	Bucket   time.Time
	ImportWh int64 // import_delta_wh: register movement within the hour
	ExportWh int64
	// MaxPowerW, MinPowerW, AvgPowerW: the power samples' extremes and
	// mean; PowerSamples how many there were (0: the readings carried no
	// power).
	MaxPowerW, MinPowerW, AvgPowerW float64
	PowerSamples                    int64
	Samples                         int64
}

// net is the hour's net energy, Wh (import − export).
func (h Hour) net() float64 { return float64(h.ImportWh - h.ExportWh) }

// lift is how far the hour's highest power sample stands above its level:
// max + min − 2·mean, W. A steady hour or a steady ramp (solar rising,
// a shift starting) gives about 0; one sample caught in a short surge
// gives about half the surge. Needs three samples.
func (h Hour) lift() float64 { return h.MaxPowerW + h.MinPowerW - 2*h.AvgPowerW }

func (h Hour) hasLift() bool { return h.PowerSamples >= 3 }

// Baseline is a robust centre and spread of a series.
type Baseline struct {
	N      int
	Median float64
	MAD    float64 // median absolute deviation × 1.4826 (σ of a normal)
}

// Robust returns the median and the scaled MAD of xs.
func Robust(xs []float64) Baseline {
	if len(xs) == 0 {
		return Baseline{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := median(s)
	dev := make([]float64, len(s))
	for i, x := range s {
		dev[i] = math.Abs(x - med)
	}
	slices.Sort(dev)
	return Baseline{N: len(s), Median: med, MAD: 1.4826 * median(dev)}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Z returns how many spreads x lies above the baseline. The spread is at
// least rel × |median| and at least floor, so a flat history (MAD 0) does
// not turn noise into an anomaly.
func (b Baseline) Z(x, rel, floor float64) float64 {
	s := math.Max(b.MAD, math.Max(rel*math.Abs(b.Median), floor))
	return (x - b.Median) / s
}

// Feature is one measure of an hour judged against its baseline.
type Feature struct {
	Name     string // energy | peak power | power surge
	Unit     string
	Observed float64
	Base     Baseline
	Floor    float64 // the least excess over the median that counts
	Z        float64 // spreads above the median
}

// Eval is an hour of a meter judged against the same weekday and hour of
// earlier weeks.
type Eval struct {
	MeterID int64
	// Kind is the meter's: a water meter's energy feature is a volume in
	// litres (the findings say so).
	Kind     meter.Kind
	Bucket   time.Time
	Solar    bool    // the meter exports in this hour now or in its history
	ScaleW   float64 // the meter's scale at that hour
	Features []Feature
	// Weather are the energy and peak features even where they are not
	// judged (solar hours): their z across a tenant's solar meters is
	// the common mode the weather causes.
	Weather []Feature
}

// Evaluate judges one hour of a meter against the same weekday and hour
// of earlier weeks (history), each feature against its own median and MAD:
//
//   - energy: the hour's net energy (a surge lasting a good part of the
//     hour, an appliance left on);
//   - peak power: the highest power sample;
//   - power surge: how far the highest sample stands above the hour's
//     level (a short surge one sample caught; steady ramps give none).
//
// In hours where the meter exports now or did in its history (rooftop
// solar), net energy and peak follow the weather, so only the surge is
// judged there. Each feature's floor is a fraction of the meter's scale:
// its usual import at that hour, or half its mean import (meanImportW,
// from the daily rollups), whichever is larger, at least MinScaleW — so a
// 300 W home and a 100 kW factory are judged alike. ok is false when the
// hour has no data or the history is too short.
func Evaluate(cfg Config, meterID int64, meanImportW float64, h Hour, history []Hour) (Eval, bool) {
	if h.Samples == 0 || len(history) < cfg.MinBaseline {
		return Eval{}, false
	}
	solar := h.ExportWh > 0
	var energy, imports, peak, lift []float64
	for _, x := range history {
		if x.Samples == 0 {
			continue
		}
		solar = solar || x.ExportWh > 0
		energy = append(energy, x.net())
		imports = append(imports, float64(x.ImportWh))
		if x.PowerSamples > 0 {
			peak = append(peak, x.MaxPowerW)
		}
		if x.hasLift() {
			lift = append(lift, x.lift())
		}
	}
	if len(energy) < cfg.MinBaseline {
		return Eval{}, false
	}
	e := Eval{MeterID: meterID, Bucket: h.Bucket, Solar: solar}
	e.ScaleW = math.Max(math.Max(Robust(imports).Median, meanImportW/2), cfg.MinScaleW)
	add := func(name, unit string, observed float64, xs []float64, floor float64) {
		b := Robust(xs)
		e.Features = append(e.Features, Feature{Name: name, Unit: unit, Observed: observed, Base: b, Floor: floor,
			Z: b.Z(observed, cfg.RelativeSpread, cfg.MinSpread*e.ScaleW)})
	}
	add("energy", "Wh", h.net(), energy, cfg.EnergyFloor*e.ScaleW)
	if h.PowerSamples > 0 && len(peak) >= cfg.MinBaseline {
		add("peak power", "W", h.MaxPowerW, peak, cfg.PowerFloor*e.ScaleW)
	}
	if solar {
		e.Weather, e.Features = e.Features, nil
	} else {
		e.Weather = e.Features
	}
	if h.hasLift() && len(lift) >= cfg.MinBaseline {
		add("power surge", "W", h.lift(), lift, cfg.PowerFloor*e.ScaleW)
	}
	return e, true
}

// Candidate reports whether any feature deviates before a common-mode
// correction (which only lowers z).
func (e Eval) Candidate(cfg Config) bool {
	for _, f := range e.Features {
		if f.Z >= cfg.DeviationZ && f.Observed-f.Base.Median >= f.Floor {
			return true
		}
	}
	return false
}

// Finding returns the hour's usage_deviation finding, if a feature is
// DeviationZ spreads above its median and above it by its floor. common,
// when not nil, is the common-mode z of each feature across the tenant's
// solar meters in that hour (the weather): its positive part is taken off
// a solar meter's z first.
func (e Eval) Finding(cfg Config, common map[string]float64) (alerts.Finding, bool) {
	best, bestZ := -1, 0.0
	for i, f := range e.Features {
		z := f.Z
		if cm := common[f.Name]; cm > 0 {
			z -= cm
		}
		if z >= cfg.DeviationZ && f.Observed-f.Base.Median >= f.Floor && z > bestZ {
			best, bestZ = i, z
		}
	}
	if best < 0 {
		return alerts.Finding{}, false
	}
	f := e.Features[best]
	if f.Unit == "Wh" && e.Kind != meter.KindElectricity {
		f.Name, f.Unit = e.Kind.Consumption(), e.Kind.Unit()
	}
	sev := alerts.SeverityWarning
	if bestZ >= 2*cfg.DeviationZ {
		sev = alerts.SeverityCritical
	}
	ev := map[string]any{"feature": f.Name, "z": round(bestZ, 1), "median": round(f.Base.Median, 1), "mad": round(f.Base.MAD, 1),
		"scale_w": round(e.ScaleW, 0), "weeks": f.Base.N, "solar": e.Solar, "hour": e.Bucket.UTC()}
	if cm := common[f.Name]; cm > 0 {
		ev["common_mode_z"] = round(cm, 1)
	}
	return alerts.Finding{MeterID: e.MeterID, Kind: alerts.KindUsageDeviation, Severity: sev, At: e.Bucket,
		Observed: f.Observed, Expected: f.Base.Median, Unit: f.Unit,
		Summary: fmt.Sprintf("%s of %s in the hour from %s, against a usual %s for that weekday and hour",
			f.Name, quantity(f.Observed, f.Unit), e.Bucket.UTC().Format("2006-01-02 15:04 UTC"), quantity(f.Base.Median, f.Unit)),
		Evidence: ev}, true
}

// Deviation is Evaluate and Finding without a common-mode correction.
func Deviation(cfg Config, meterID int64, meanImportW float64, h Hour, history []Hour) (alerts.Finding, bool) {
	e, ok := Evaluate(cfg, meterID, meanImportW, h, history)
	if !ok {
		return alerts.Finding{}, false
	}
	return e.Finding(cfg, nil)
}

// quantity formats Wh as kWh, litres as kL and W as kW above 10 k.
func quantity(v float64, unit string) string {
	if (unit == "Wh" || unit == "L" || unit == "W") && math.Abs(v) >= 10_000 {
		return fmt.Sprintf("%.1f k%s", v/1000, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
