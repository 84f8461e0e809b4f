package detect

import (
	"fmt"
	"math"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/meter"
)

// Day is one daily rollup of a meter (readings_daily). Registers are raw
// counts as the meter shows them (Wh, or litres on a water meter); Has*
// say whether the day's readings carried the register.
type Day struct {
	Bucket                  time.Time // the day's start in the rollup zone
	FirstTS, LastTS         time.Time
	FirstImport, LastImport int64
	FirstExport, LastExport int64
	HasImport, HasExport    bool
	MaxPowerW               float64
	HasPower                bool
	Samples                 int64
}

// CounterEvent is a register step the gateway recorded (counter_events):
// kinds 1 rollover, 2 reset, 3 replacement explain a register going back;
// 4 (an impossible jump) does not.
type CounterEvent struct {
	Register string // import_wh | export_wh
	TS       time.Time
	PrevTS   time.Time
	Kind     int16
	PrevWh   int64
	ValueWh  int64
}

// backJump reports whether the event is a step back the gateway could not
// explain: a tamper seen at the reading itself.
func (e CounterEvent) backJump() bool { return e.Kind == 4 && e.ValueWh < e.PrevWh }

// explains reports whether the event accounts for a register going back.
func (e CounterEvent) explains() bool { return e.Kind >= 1 && e.Kind <= 3 }

// Meter is what the rules need to know about a meter.
type Meter struct {
	ID               int64
	TenantID         int64
	Ref              string     // external id
	Kind             meter.Kind // what the registers count: Wh, or litres
	Multiplier       float64
	ExpectedInterval time.Duration
	InstalledAt      time.Time
	// The connection the meter is installed on now (0: none).
	ConnectionID int64
	Service      string
	Plan         string
	SanctionedKW float64 // 0: unknown
	UserID       int64
}

// Thresholds are a plan's consumption thresholds in register units (Wh,
// or litres for a water plan; 0: none).
type Thresholds struct {
	DailyWh, MonthlyWh int64
}

// Daily applies the day rules to a meter's days (ascending, with context
// days before report): consumption above the plan's thresholds, power
// above the sanctioned load, registers frozen for StuckDays, and a
// register going back without a recorded reset, rollover or replacement
// (tamper). Findings are reported for days from report on; clears say
// which conditions no longer hold on the latest day.
func Daily(cfg Config, m Meter, days []Day, events []CounterEvent, th Thresholds, report time.Time, loc *time.Location) ([]alerts.Finding, []alerts.Clear) {
	var out []alerts.Finding
	var clears []alerts.Clear
	kilo := m.Kind.KiloUnit()
	mult := m.Multiplier
	if mult <= 0 {
		mult = 1
	}
	frozenRun := 0
	var month string
	var monthWh float64
	monthReported := false
	for i, d := range days {
		var prev *Day
		if i > 0 {
			prev = &days[i-1]
		}
		consumed := float64(consumption(d, prev, cfg.AdjacentGap)) * mult
		if k := d.Bucket.In(loc).Format("2006-01"); k != month {
			month, monthWh, monthReported = k, 0, false
		}
		monthWh += consumed
		// A day with too few readings to tell neither extends nor breaks a
		// run of frozen days, unless the register moved.
		frozen := isFrozen(d, prev, cfg.AdjacentGap)
		switch {
		case frozen:
			frozenRun++
		case moved(d, prev, cfg.AdjacentGap):
			frozenRun = 0
		}
		last := i == len(days)-1
		reporting := !d.Bucket.Before(report)
		date := d.Bucket.In(loc).Format("2 Jan 2006")

		// Consumption above the tariff plan's threshold (AbnormalUsage).
		switch {
		case th.DailyWh > 0 && consumed > float64(th.DailyWh):
			if reporting {
				out = append(out, finding(m, alerts.KindConsumptionThreshold, alerts.SeverityWarning, d.Bucket, consumed/1000, float64(th.DailyWh)/1000, kilo,
					fmt.Sprintf("%.1f %s used on %s, above the %s plan's daily threshold of %.1f %s", consumed/1000, kilo, date, m.Plan, float64(th.DailyWh)/1000, kilo),
					map[string]any{"span": "day", "day": d.Bucket.In(loc).Format(time.DateOnly), "plan": m.Plan}))
			}
		case th.MonthlyWh > 0 && monthWh > float64(th.MonthlyWh) && !monthReported:
			monthReported = true
			if reporting {
				out = append(out, finding(m, alerts.KindConsumptionThreshold, alerts.SeverityWarning, d.Bucket, monthWh/1000, float64(th.MonthlyWh)/1000, kilo,
					fmt.Sprintf("%.1f %s used in %s by %s, above the %s plan's monthly threshold of %.1f %s", monthWh/1000, kilo,
						d.Bucket.In(loc).Format("January 2006"), date, m.Plan, float64(th.MonthlyWh)/1000, kilo),
					map[string]any{"span": "month", "month": month, "plan": m.Plan}))
			}
		default:
			if last && d.Samples > 0 && (th.MonthlyWh == 0 || monthWh <= float64(th.MonthlyWh)) {
				clears = append(clears, alerts.Clear{TenantID: m.TenantID, MeterID: m.ID, Kind: alerts.KindConsumptionThreshold, At: d.Bucket, Reason: "usage back under the thresholds"})
			}
		}

		// Load above the sanctioned load.
		if m.SanctionedKW > 0 && d.HasPower {
			limit := m.SanctionedKW * 1000 * (1 + cfg.SanctionedTolerance)
			peak := d.MaxPowerW * mult
			switch {
			case peak > limit && reporting:
				out = append(out, finding(m, alerts.KindLoadAboveSanctioned, alerts.SeverityWarning, d.Bucket, peak/1000, m.SanctionedKW, "kW",
					fmt.Sprintf("load of %.2f kW on %s, above the sanctioned %.2f kW", peak/1000, date, m.SanctionedKW),
					map[string]any{"day": d.Bucket.In(loc).Format(time.DateOnly), "tolerance": cfg.SanctionedTolerance}))
			case peak <= limit && last:
				clears = append(clears, alerts.Clear{TenantID: m.TenantID, MeterID: m.ID, Kind: alerts.KindLoadAboveSanctioned, At: d.Bucket, Reason: "load back under the sanctioned load"})
			}
		}

		// Stuck: registers frozen for StuckDays whole days while reporting.
		switch {
		case frozen && frozenRun >= cfg.StuckDays && reporting:
			out = append(out, finding(m, alerts.KindStuck, alerts.SeverityWarning, d.Bucket, 0, 0, kilo,
				fmt.Sprintf("no consumption recorded for %d day(s) up to %s although the meter keeps reporting (registers frozen)", frozenRun, date),
				map[string]any{"days": frozenRun, "import_wh": d.LastImport, "export_wh": d.LastExport}))
		case !frozen && moved(d, prev, cfg.AdjacentGap) && last:
			clears = append(clears, alerts.Clear{TenantID: m.TenantID, MeterID: m.ID, Kind: alerts.KindStuck, At: d.Bucket, Reason: "registers moving again"})
		}

		// Tamper: a register going back without a recorded explanation —
		// a step the gateway recorded as an impossible jump back, or a
		// step back in the rollups with no counter event at all (data
		// that did not pass the gateway).
		if reporting {
			for _, reg := range []string{"import_wh", "export_wh"} {
				if f, ok := backwards(cfg, m, reg, d, prev, events); ok {
					out = append(out, f)
				}
			}
		}
	}
	return out, clears
}

// consumption is the import energy of day d, Wh before the multiplier:
// the movement within the day plus the step from the previous day's last
// reading when the days are adjacent; backward steps count 0.
func consumption(d Day, prev *Day, adjacent time.Duration) int64 {
	if !d.HasImport {
		return 0
	}
	wh := max(d.LastImport-d.FirstImport, 0)
	if prev != nil && prev.HasImport && d.Bucket.Sub(prev.Bucket) <= adjacent {
		wh += max(d.FirstImport-prev.LastImport, 0)
	}
	return wh
}

// isFrozen: the day has readings (two at least) and neither register
// moved within it or since the previous adjacent day.
func isFrozen(d Day, prev *Day, adjacent time.Duration) bool {
	return d.Samples >= 2 && d.HasImport && !moved(d, prev, adjacent)
}

// moved: a register moved within the day or since the previous adjacent
// day.
func moved(d Day, prev *Day, adjacent time.Duration) bool {
	if (d.HasImport && d.LastImport != d.FirstImport) || (d.HasExport && d.LastExport != d.FirstExport) {
		return true
	}
	if prev != nil && d.Bucket.Sub(prev.Bucket) <= adjacent {
		if prev.HasImport && d.HasImport && prev.LastImport != d.FirstImport {
			return true
		}
		if prev.HasExport && d.HasExport && prev.LastExport != d.FirstExport {
			return true
		}
	}
	return false
}

// backwards finds a register step back by more than the tolerance within
// day d or between prev and d, not explained by a recorded counter event
// in that window.
func backwards(cfg Config, m Meter, reg string, d Day, prev *Day, events []CounterEvent) (alerts.Finding, bool) {
	first, last, has := d.FirstImport, d.LastImport, d.HasImport
	pLast, pHas := int64(0), false
	if prev != nil {
		pLast, pHas = prev.LastImport, prev.HasImport
	}
	if reg == "export_wh" {
		first, last, has = d.FirstExport, d.LastExport, d.HasExport
		if prev != nil {
			pLast, pHas = prev.LastExport, prev.HasExport
		}
	}
	if !has {
		return alerts.Finding{}, false
	}
	type step struct {
		from, to      time.Time
		before, after int64
	}
	var steps []step
	// Steps the gateway saw at the readings and could not explain. Those
	// after the previous day's last reading belong to this day.
	from := d.FirstTS
	if prev != nil {
		from = prev.LastTS.Add(time.Nanosecond)
	}
	for _, e := range events {
		if e.Register == reg && e.backJump() && e.PrevWh-e.ValueWh > cfg.TamperToleranceWh && !e.TS.Before(from) && !e.TS.After(d.LastTS) {
			steps = append(steps, step{e.PrevTS, e.TS, e.PrevWh, e.ValueWh})
		}
	}
	// Steps back in the rollups with no counter event at all.
	if len(steps) == 0 {
		if pHas && first < pLast-cfg.TamperToleranceWh {
			steps = append(steps, step{prev.LastTS, d.FirstTS, pLast, first})
		}
		if last < first-cfg.TamperToleranceWh {
			steps = append(steps, step{d.FirstTS, d.LastTS, first, last})
		}
	}
	for _, s := range steps {
		explained := false
		for _, e := range events {
			if e.Register == reg && e.explains() && !e.TS.Before(s.from) && !e.TS.After(s.to) {
				explained = true
				break
			}
		}
		if explained {
			continue
		}
		drop := float64(s.before-s.after) / 1000
		return finding(m, alerts.KindTamper, alerts.SeverityCritical, s.to, -drop, 0, m.Kind.KiloUnit(),
			fmt.Sprintf("%s register went back by %.1f %s (%d → %d %s) between %s and %s without a recorded reset, rollover or replacement",
				map[string]string{"import_wh": "import", "export_wh": "export"}[reg], drop, m.Kind.KiloUnit(), s.before, s.after, m.Kind.Unit(),
				s.from.UTC().Format(time.RFC3339), s.to.UTC().Format(time.RFC3339)),
			map[string]any{"register": reg, "before_wh": s.before, "after_wh": s.after, "from": s.from.UTC(), "to": s.to.UTC()}), true
	}
	return alerts.Finding{}, false
}

func finding(m Meter, k alerts.Kind, sev alerts.Severity, at time.Time, observed, expected float64, unit, summary string, ev map[string]any) alerts.Finding {
	return alerts.Finding{TenantID: m.TenantID, MeterID: m.ID, Kind: k, Severity: sev, At: at.UTC(), Observed: round(observed, 3), Expected: round(expected, 3),
		Unit: unit, Summary: summary, Evidence: ev}
}

// Silent checks a meter's liveness: no reading for longer than
// SilentFactor × its expected interval (at least SilentMin), counted from
// the last reading or, for a meter never heard from, its installation.
func Silent(cfg Config, now time.Time, m Meter, lastSeen time.Time, seen bool) (alerts.Finding, *alerts.Clear) {
	allowed := time.Duration(math.Max(float64(cfg.SilentMin), cfg.SilentFactor*float64(m.ExpectedInterval)))
	since := lastSeen
	if !seen {
		since = m.InstalledAt
	}
	if now.Sub(since) <= allowed {
		if seen {
			return alerts.Finding{}, &alerts.Clear{TenantID: m.TenantID, MeterID: m.ID, Kind: alerts.KindSilent, At: lastSeen, Reason: "readings arriving again"}
		}
		return alerts.Finding{}, nil
	}
	silentFor := now.Sub(since).Truncate(time.Minute)
	sev := alerts.SeverityWarning
	if silentFor > 24*time.Hour {
		sev = alerts.SeverityCritical
	}
	what := "no reading since " + since.UTC().Format(time.RFC3339)
	if !seen {
		what = "no reading since it was installed (" + since.UTC().Format(time.RFC3339) + ")"
	}
	return finding(m, alerts.KindSilent, sev, since, silentFor.Hours(), allowed.Hours(), "h",
		fmt.Sprintf("%s: silent for %s, more than the %s allowed for its %s reading interval", what, silentFor, allowed, m.ExpectedInterval),
		map[string]any{"last_seen": since.UTC(), "expected_interval": m.ExpectedInterval.String(), "never_seen": !seen}), nil
}
