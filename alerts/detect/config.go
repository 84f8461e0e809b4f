package detect

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the detector's parameters. Zero values take the defaults
// given; DefaultConfig returns them.
type Config struct {
	// Baseline (usage_deviation).
	// BaselineWeeks: earlier weeks of the same weekday and hour compared.
	// Default 8.
	BaselineWeeks int
	// MinBaseline: weeks of history needed before an hour is judged.
	// Default 4.
	MinBaseline int
	// DeviationZ: spreads (scaled MAD) above the median that deviate.
	// Default 6.
	DeviationZ float64
	// RelativeSpread and MinSpread floor the spread at a fraction of the
	// median and of the meter's scale (its median hourly net energy as W,
	// at least MinScaleW), so flat histories do not flag noise. Defaults
	// 0.1 and 0.05.
	RelativeSpread, MinSpread float64
	// MinScaleW: the smallest scale a meter is judged at, W. Default 50.
	MinScaleW float64
	// EnergyFloor and PowerFloor: the excess over the median must also be
	// this fraction of the meter's scale (see Deviation): as Wh for the
	// hour's energy, as W for peak power and surge. Defaults 0.3 and 1.0.
	EnergyFloor, PowerFloor float64
	// MinCohort: solar meters needed in a tenant before their common mode
	// (the weather) is taken off their deviations. Default 5.
	MinCohort int
	// MaxHoursPerScan bounds how many hours one hourly scan catches up.
	// Default 48.
	MaxHoursPerScan int

	// StuckDays: whole days with frozen registers (while reporting) that
	// make a meter stuck. Default 2.
	StuckDays int
	// TamperToleranceWh: a register going back by at most this is noise.
	// Default 10.
	TamperToleranceWh int64
	// SanctionedTolerance: power above sanctioned × (1 + this) is
	// flagged. Default 0.1.
	SanctionedTolerance float64
	// SilentFactor × the meter's expected interval, at least SilentMin,
	// without a reading makes it silent. Defaults 4 and 1 h.
	SilentFactor float64
	SilentMin    time.Duration
	// LookbackDays: days the first daily scan of a tenant reads. Default 90.
	LookbackDays int
	// Settle: how long after a bucket ends it is scanned (late readings,
	// rollup refresh). Default 10 min.
	Settle time.Duration
	// DeviationClearAfter: a usage_deviation alert not seen again for this
	// long resolves itself. Default 24 h.
	DeviationClearAfter time.Duration
	// AdjacentGap: days closer than this are adjacent (days of 23–25 h).
	// Default 26 h.
	AdjacentGap time.Duration
	// MeterBatch: meters per query. Default 2000. Parallel: queries at once
	// in the daily scan. Default 2.
	MeterBatch int
	Parallel   int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	def := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	defi := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	defi(&c.BaselineWeeks, 8)
	defi(&c.MinBaseline, 4)
	def(&c.DeviationZ, 6)
	def(&c.RelativeSpread, 0.1)
	def(&c.MinSpread, 0.05)
	def(&c.MinScaleW, 50)
	def(&c.EnergyFloor, 0.3)
	def(&c.PowerFloor, 1.0)
	defi(&c.MinCohort, 5)
	defi(&c.MaxHoursPerScan, 48)
	defi(&c.StuckDays, 2)
	if c.TamperToleranceWh == 0 {
		c.TamperToleranceWh = 10
	}
	def(&c.SanctionedTolerance, 0.1)
	def(&c.SilentFactor, 4)
	defd(&c.SilentMin, time.Hour)
	defi(&c.LookbackDays, 90)
	defd(&c.Settle, 10*time.Minute)
	defd(&c.DeviationClearAfter, 24*time.Hour)
	defd(&c.AdjacentGap, 26*time.Hour)
	defi(&c.MeterBatch, 2000)
	defi(&c.Parallel, 2)
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.BaselineWeeks < 0 || c.MinBaseline < 0 || (c.BaselineWeeks > 0 && c.MinBaseline > c.BaselineWeeks) {
		errs = append(errs, errors.New("detect: min baseline must be at most baseline weeks"))
	}
	for name, v := range map[string]float64{"deviation z": c.DeviationZ, "relative spread": c.RelativeSpread, "min spread": c.MinSpread,
		"energy floor": c.EnergyFloor, "power floor": c.PowerFloor, "sanctioned tolerance": c.SanctionedTolerance, "silent factor": c.SilentFactor, "min scale": c.MinScaleW} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("detect: %s must not be negative", name))
		}
	}
	if c.StuckDays < 0 || c.MinCohort < 0 || c.LookbackDays < 0 || c.MaxHoursPerScan < 0 || c.MeterBatch < 0 || c.Parallel < 0 || c.TamperToleranceWh < 0 {
		errs = append(errs, errors.New("detect: counts must not be negative"))
	}
	return errors.Join(errs...)
}
