package consumption

import (
	"fmt"
	"sort"
	"time"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

// DailyUsage is one day of a connection's energy, a readings_daily row.
type DailyUsage struct {
	Date      billing.Date
	ImportWh  int64
	ExportWh  int64
	Estimated bool // the row was filled in, not measured
}

// HourlyUsage is one hour of a connection's energy, a readings_hourly row.
type HourlyUsage struct {
	Start    time.Time // start of the hour
	ImportWh int64
	ExportWh int64
}

// PeriodUsage is a connection's energy over a billing period.
type PeriodUsage struct {
	Period   billing.Period
	ImportWh int64
	ExportWh int64
	// MeasuredDays and EstimatedDays count days read and days estimated
	// (missing, or estimated in the rollup).
	MeasuredDays  int
	EstimatedDays int
}

// Estimated reports whether any of the period's energy was estimated; the
// bill must say so.
func (p PeriodUsage) Estimated() bool { return p.EstimatedDays > 0 }

// Usage returns the tariff usage for p: its energy and estimate flag; the
// caller adds the connection's sanctioned load, maximum demand, cycle,
// windows and net-metering credit.
func (p PeriodUsage) Usage() tariff.Usage {
	return tariff.Usage{Period: p.Period, ImportWh: p.ImportWh, ExportWh: p.ExportWh, Estimated: p.Estimated()}
}

// Aggregate sums the daily usage of period. A day without a row is
// estimated at the average daily use of the measured days in the period,
// or, when the period has none, of the measured days in history; such days
// and days the rollup marked estimated make the result estimated. It fails
// with billing.ErrCalculation when days are missing and nothing measured is
// left to average, and with billing.ErrInvalidInput for negative energy or
// two rows for one day.
func Aggregate(period billing.Period, days, history []DailyUsage) (PeriodUsage, error) {
	if !period.Valid() {
		return PeriodUsage{}, fmt.Errorf("%w: period %s ends before it starts", billing.ErrInvalidInput, period)
	}
	out := PeriodUsage{Period: period}
	seen := make(map[billing.Date]bool, len(days))
	var measured average
	for _, d := range days {
		if !period.Contains(d.Date) {
			continue
		}
		if d.ImportWh < 0 || d.ExportWh < 0 {
			return PeriodUsage{}, fmt.Errorf("%w: negative energy on %s", billing.ErrInvalidInput, d.Date)
		}
		if seen[d.Date] {
			return PeriodUsage{}, fmt.Errorf("%w: two rows for %s", billing.ErrInvalidInput, d.Date)
		}
		seen[d.Date] = true
		out.ImportWh += d.ImportWh
		out.ExportWh += d.ExportWh
		if d.Estimated {
			out.EstimatedDays++
		} else {
			out.MeasuredDays++
			measured.add(d)
		}
	}
	missing := period.Days() - len(seen)
	if missing == 0 {
		return out, nil
	}
	basis := measured
	if basis.days == 0 {
		basis = averageOf(history)
	}
	if basis.days == 0 {
		return PeriodUsage{}, fmt.Errorf("%w: %d days of %s have no reading and there is no measured use to estimate them from", billing.ErrCalculation, missing, period)
	}
	out.ImportWh += basis.scale(basis.importWh, missing)
	out.ExportWh += basis.scale(basis.exportWh, missing)
	out.EstimatedDays += missing
	return out, nil
}

// Estimate estimates a whole period at the average daily use of the
// measured days in history. It fails with billing.ErrCalculation when
// history has no measured day.
func Estimate(period billing.Period, history []DailyUsage) (PeriodUsage, error) {
	return Aggregate(period, nil, history)
}

// average accumulates measured days.
type average struct {
	days               int
	importWh, exportWh int64
}

func (a *average) add(d DailyUsage) {
	a.days++
	a.importWh += d.ImportWh
	a.exportWh += d.ExportWh
}

func averageOf(history []DailyUsage) average {
	var a average
	for _, d := range history {
		if !d.Estimated && d.ImportWh >= 0 && d.ExportWh >= 0 {
			a.add(d)
		}
	}
	return a
}

// scale returns total/a.days × days, rounded half up to a whole Wh.
func (a average) scale(total int64, days int) int64 {
	num := total * int64(days)
	return (2*num + int64(a.days)) / (2 * int64(a.days))
}

// WindowEnergy splits hourly imports into the time-of-use windows of e by
// the local time of each hour in loc (the tenant's zone). An hour that
// straddles a window boundary is shared by minutes; the Wh left over by
// whole-Wh division goes to the window holding most of the hour, so the
// windows add up to the hours exactly.
func WindowEnergy(hours []HourlyUsage, e *tariff.Energy, loc *time.Location) map[string]int64 {
	out := make(map[string]int64, len(e.Windows))
	for _, w := range e.Windows {
		out[w.Name] = 0
	}
	type part struct {
		name    string
		minutes int64
	}
	for _, h := range hours {
		local := h.Start.In(loc)
		m0 := local.Hour()*60 + local.Minute()
		var parts []part
		for m := m0; m < m0+60; m++ {
			name := e.WindowAt(m % (24 * 60))
			if n := len(parts); n > 0 && parts[n-1].name == name {
				parts[n-1].minutes++
			} else {
				parts = append(parts, part{name: name, minutes: 1})
			}
		}
		if len(parts) == 1 {
			out[parts[0].name] += h.ImportWh
			continue
		}
		sort.SliceStable(parts, func(i, j int) bool { return parts[i].minutes > parts[j].minutes })
		left := h.ImportWh
		for _, p := range parts[1:] {
			wh := h.ImportWh * p.minutes / 60
			out[p.name] += wh
			left -= wh
		}
		out[parts[0].name] += left
	}
	return out
}
