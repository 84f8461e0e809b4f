package detect

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/meterd/meterd/alerts"
)

// Tenant is a tenant the scanner works for.
type Tenant struct {
	ID   int64
	Zone *time.Location
}

// MeterHour is an hourly rollup of one meter.
type MeterHour struct {
	MeterID int64
	Hour
}

// Usage is a meter's recent use from its daily rollups.
type Usage struct {
	MeanImportW float64
	ExportWh    int64
}

// ScanStats describe one scan, for alert_scan_state.
type ScanStats struct {
	Meters   int
	Findings int
	Took     time.Duration
}

// Store is what the scanner reads and writes; alerts/postgres implements it.
type Store interface {
	// Tenants lists the tenants.
	ScanTenants(ctx context.Context) ([]Tenant, error)
	// RollupZone is the zone of the rollups' hour and day buckets.
	RollupZone(ctx context.Context) (*time.Location, error)
	// Meters lists a tenant's meters not removed, with their current
	// installation, plan and sanctioned load.
	Meters(ctx context.Context, tenantID int64) ([]Meter, error)
	// Thresholds returns a tenant's consumption thresholds by
	// service and plan ("*" for the service's default).
	Thresholds(ctx context.Context, tenantID int64) (map[[2]string]Thresholds, error)
	// Hours returns the hourly rollups of meters at the given buckets.
	Hours(ctx context.Context, meterIDs []int64, buckets []time.Time) ([]MeterHour, error)
	// Usage returns each meter's mean import power and its exported
	// energy over the daily rollups in [from, to).
	Usage(ctx context.Context, meterIDs []int64, from, to time.Time) (map[int64]Usage, error)
	// Days calls fn with each meter's daily rollups in [from, to), meter
	// ids in [lo, hi], days ascending.
	Days(ctx context.Context, lo, hi int64, from, to time.Time, fn func(meterID int64, days []Day) error) error
	// CounterEvents returns the counter events of a tenant's meters in
	// [from, to].
	CounterEvents(ctx context.Context, tenantID int64, from, to time.Time) (map[int64][]CounterEvent, error)
	// LastSeen returns when each meter of a tenant was last heard from.
	LastSeen(ctx context.Context, tenantID int64) (map[int64]time.Time, error)
	// Watermark returns the end of what a scan covered (ok false: never).
	Watermark(ctx context.Context, tenantID int64, scan string) (time.Time, bool, error)
	// SetWatermark records a scan's progress.
	SetWatermark(ctx context.Context, tenantID int64, scan string, to time.Time, now time.Time, st ScanStats) error
	// Apply opens or updates alerts for findings (one unresolved alert per
	// meter and kind), notifying people of new ones in the same
	// transaction, and resolves the alerts clears name. It returns how
	// many alerts it opened.
	Apply(ctx context.Context, now time.Time, findings []alerts.Finding, clears []alerts.Clear) (int, error)
	// ResolveQuiet resolves a tenant's unresolved alerts of kind last seen
	// before the given time.
	ResolveQuiet(ctx context.Context, tenantID int64, kind alerts.Kind, before, now time.Time) (int, error)
}

// Scanner runs the rules incrementally for every tenant.
type Scanner struct {
	cfg Config
	st  Store
	now func() time.Time
	log *slog.Logger
}

// NewScanner returns a scanner; now nil is time.Now.
func NewScanner(cfg Config, st Store, now func() time.Time, log *slog.Logger) (*Scanner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scanner{cfg: cfg, st: st, now: now, log: log}, nil
}

// Config returns the scanner's configuration with defaults filled in.
func (s *Scanner) Config() Config { return s.cfg }

// ScanHourly checks, for every tenant, the meters' liveness and judges the
// hours completed since the last hourly scan (at most MaxHoursPerScan, the
// newest) against each meter's baseline, and resolves deviation alerts not
// seen for DeviationClearAfter. It returns the number of findings.
func (s *Scanner) ScanHourly(ctx context.Context) (int, error) {
	now := s.now().UTC()
	rz, err := s.st.RollupZone(ctx)
	if err != nil {
		return 0, fmt.Errorf("hourly scan: %w", err)
	}
	tenants, err := s.st.ScanTenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("hourly scan: %w", err)
	}
	total := 0
	for _, t := range tenants {
		n, err := s.ScanLiveness(ctx, t)
		total += n
		if err != nil {
			return total, err
		}
		last := lastComplete(now.Add(-s.cfg.Settle), time.Hour, rz)
		wm, ok, err := s.st.Watermark(ctx, t.ID, "hourly")
		if err != nil {
			return total, fmt.Errorf("hourly scan: %w", err)
		}
		first := last.Add(-time.Duration(s.cfg.MaxHoursPerScan-1) * time.Hour)
		if ok && wm.After(first) {
			first = wm
		}
		var hours []time.Time
		for h := first; !h.After(last); h = h.Add(time.Hour) {
			hours = append(hours, h)
		}
		if len(hours) == 0 {
			continue
		}
		n, err = s.ScanHours(ctx, t, hours)
		total += n
		if err != nil {
			return total, err
		}
		if _, err := s.st.ResolveQuiet(ctx, t.ID, alerts.KindUsageDeviation, now.Add(-s.cfg.DeviationClearAfter), now); err != nil {
			return total, fmt.Errorf("hourly scan: %w", err)
		}
	}
	return total, nil
}

// lastComplete returns the start of the last whole bucket of size step
// (an hour or a day in zone) ending at or before t.
func lastComplete(t time.Time, step time.Duration, zone *time.Location) time.Time {
	lt := t.In(zone)
	if step == time.Hour {
		start := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), 0, 0, 0, zone)
		// Zones with a half-hour offset keep hour buckets at :30 UTC.
		return start.Add(-time.Hour).UTC()
	}
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, zone)
	return day.AddDate(0, 0, -1).UTC()
}

// ScanHours judges the given hour buckets of a tenant's meters and applies
// the findings; it advances the hourly watermark past the last hour.
func (s *Scanner) ScanHours(ctx context.Context, t Tenant, hours []time.Time) (int, error) {
	start := time.Now() // a duration: the real clock
	meters, err := s.st.Meters(ctx, t.ID)
	if err != nil {
		return 0, fmt.Errorf("hourly scan: %w", err)
	}
	// The same weekday and hour of earlier weeks, in the tenant's zone.
	history := map[time.Time][]time.Time{}
	want := map[time.Time]bool{}
	for _, h := range hours {
		want[h] = true
		lh := h.In(t.Zone)
		for k := 1; k <= s.cfg.BaselineWeeks; k++ {
			b := lh.AddDate(0, 0, -7*k).UTC()
			history[h] = append(history[h], b)
			want[b] = true
		}
	}
	buckets := make([]time.Time, 0, len(want))
	for b := range want {
		buckets = append(buckets, b)
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].Before(buckets[j]) })
	// Pass 1: judge every meter-hour; keep the candidates, and the z of
	// every solar meter's features per hour for the common mode.
	var candidates []Eval
	prosumer := map[int64]bool{}
	type key struct {
		hour    time.Time
		feature string
	}
	cohort := map[key][]float64{}
	for i := 0; i < len(meters); i += s.cfg.MeterBatch {
		batch := meters[i:min(i+s.cfg.MeterBatch, len(meters))]
		ids := make([]int64, len(batch))
		for j, m := range batch {
			ids[j] = m.ID
		}
		rows, err := s.st.Hours(ctx, ids, buckets)
		if err != nil {
			return 0, fmt.Errorf("hourly scan: %w", err)
		}
		use, err := s.st.Usage(ctx, ids, hours[0].AddDate(0, 0, -28), hours[0])
		if err != nil {
			return 0, fmt.Errorf("hourly scan: %w", err)
		}
		byMeter := map[int64]map[time.Time]Hour{}
		for _, r := range rows {
			mh := byMeter[r.MeterID]
			if mh == nil {
				mh = map[time.Time]Hour{}
				byMeter[r.MeterID] = mh
			}
			mh[r.Bucket.UTC()] = r.Hour
		}
		for _, m := range batch {
			mh := byMeter[m.ID]
			u := use[m.ID]
			prosumer[m.ID] = u.ExportWh > 0
			for _, h := range hours {
				cur, ok := mh[h]
				if !ok {
					continue
				}
				cur.Bucket = h
				var hist []Hour
				for _, b := range history[h] {
					if x, ok := mh[b]; ok {
						hist = append(hist, x)
					}
				}
				e, ok := Evaluate(s.cfg, m.ID, u.MeanImportW, cur, hist)
				if !ok {
					continue
				}
				e.Kind = m.Kind
				if prosumer[m.ID] {
					for _, f := range e.Weather {
						k := key{h, f.Name}
						cohort[k] = append(cohort[k], f.Z)
					}
				}
				if e.Candidate(s.cfg) {
					candidates = append(candidates, e)
				}
			}
		}
	}
	// Pass 2: weather moves every solar meter at once; take the common
	// mode (the median z of the solar meters, when there are enough) off
	// the solar meters' candidates.
	var findings []alerts.Finding
	for _, e := range candidates {
		var common map[string]float64
		if prosumer[e.MeterID] {
			common = map[string]float64{}
			for _, f := range e.Features {
				if zs := cohort[key{e.Bucket, f.Name}]; len(zs) >= s.cfg.MinCohort {
					common[f.Name] = Robust(zs).Median
				}
			}
		}
		if f, ok := e.Finding(s.cfg, common); ok {
			f.TenantID = t.ID
			findings = append(findings, f)
		}
	}
	if _, err := s.st.Apply(ctx, s.now().UTC(), findings, nil); err != nil {
		return 0, fmt.Errorf("hourly scan: %w", err)
	}
	next := hours[len(hours)-1].Add(time.Hour)
	if err := s.st.SetWatermark(ctx, t.ID, "hourly", next, s.now().UTC(), ScanStats{Meters: len(meters), Findings: len(findings), Took: time.Since(start)}); err != nil {
		return 0, fmt.Errorf("hourly scan: %w", err)
	}
	return len(findings), nil
}

// ScanDaily judges, for every tenant, the days completed since the last
// daily scan (the first scan reads LookbackDays). It returns the number of
// findings.
func (s *Scanner) ScanDaily(ctx context.Context) (int, error) {
	now := s.now().UTC()
	rz, err := s.st.RollupZone(ctx)
	if err != nil {
		return 0, fmt.Errorf("daily scan: %w", err)
	}
	tenants, err := s.st.ScanTenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("daily scan: %w", err)
	}
	total := 0
	for _, t := range tenants {
		n, err := s.scanTenantDays(ctx, t, rz, now)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Scanner) scanTenantDays(ctx context.Context, t Tenant, rz *time.Location, now time.Time) (int, error) {
	last := lastComplete(now.Add(-s.cfg.Settle), 24*time.Hour, rz)
	end := last.In(rz).AddDate(0, 0, 1).UTC()
	report := last.In(rz).AddDate(0, 0, -s.cfg.LookbackDays+1).UTC()
	wm, ok, err := s.st.Watermark(ctx, t.ID, "daily")
	if err != nil {
		return 0, fmt.Errorf("daily scan: %w", err)
	}
	if ok {
		if !wm.Before(end) {
			return 0, nil
		}
		if wm.After(report) {
			report = wm
		}
	}
	// Context before the reported days: the month so far (monthly
	// thresholds) and the stuck run.
	rl := report.In(rz)
	from := time.Date(rl.Year(), rl.Month(), 1, 0, 0, 0, 0, rz).AddDate(0, 0, -s.cfg.StuckDays-1)
	if ctxStart := rl.AddDate(0, 0, -s.cfg.StuckDays-1); ctxStart.Before(from) {
		from = ctxStart
	}
	n, err := s.ScanDays(ctx, t, rz, from.UTC(), report, end)
	if err != nil {
		return n, err
	}
	return n, nil
}

// ScanDays applies the day rules to a tenant's days in [from, to),
// reporting findings for days from report on, and advances the daily
// watermark to to.
func (s *Scanner) ScanDays(ctx context.Context, t Tenant, rz *time.Location, from, report, to time.Time) (int, error) {
	start := time.Now() // a duration: the real clock
	meters, err := s.st.Meters(ctx, t.ID)
	if err != nil {
		return 0, fmt.Errorf("daily scan: %w", err)
	}
	ths, err := s.st.Thresholds(ctx, t.ID)
	if err != nil {
		return 0, fmt.Errorf("daily scan: %w", err)
	}
	events, err := s.st.CounterEvents(ctx, t.ID, from, to)
	if err != nil {
		return 0, fmt.Errorf("daily scan: %w", err)
	}
	byID := make(map[int64]*Meter, len(meters))
	for i := range meters {
		byID[meters[i].ID] = &meters[i]
	}
	sort.Slice(meters, func(i, j int) bool { return meters[i].ID < meters[j].ID })
	var mu sync.Mutex
	var findings []alerts.Finding
	var clears []alerts.Clear
	// Meter id ranges, scanned Parallel at a time.
	type span struct{ lo, hi int64 }
	var spans []span
	for i := 0; i < len(meters); i += s.cfg.MeterBatch {
		j := min(i+s.cfg.MeterBatch, len(meters)) - 1
		spans = append(spans, span{meters[i].ID, meters[j].ID})
	}
	work := make(chan span)
	errs := make(chan error, s.cfg.Parallel)
	var wg sync.WaitGroup
	for range s.cfg.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fs []alerts.Finding
			var cs []alerts.Clear
			for sp := range work {
				err := s.st.Days(ctx, sp.lo, sp.hi, from, to, func(id int64, days []Day) error {
					m, ok := byID[id]
					if !ok {
						return nil // another tenant's meter in the id range
					}
					th := ths[[2]string{m.Service, m.Plan}]
					if th == (Thresholds{}) {
						th = ths[[2]string{m.Service, "*"}]
					}
					f, c := Daily(s.cfg, *m, days, events[id], th, report, rz)
					fs, cs = append(fs, f...), append(cs, c...)
					return nil
				})
				if err != nil {
					errs <- err
					for range work { // drain
					}
					return
				}
			}
			mu.Lock()
			findings, clears = append(findings, fs...), append(clears, cs...)
			mu.Unlock()
		}()
	}
	for _, sp := range spans {
		work <- sp
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("daily scan: %w", err)
	}
	if _, err := s.st.Apply(ctx, s.now().UTC(), findings, clears); err != nil {
		return 0, fmt.Errorf("daily scan: %w", err)
	}
	if err := s.st.SetWatermark(ctx, t.ID, "daily", to, s.now().UTC(), ScanStats{Meters: len(meters), Findings: len(findings), Took: time.Since(start)}); err != nil {
		return 0, fmt.Errorf("daily scan: %w", err)
	}
	return len(findings), nil
}

// ScanLiveness flags a tenant's meters silent beyond their expected
// interval and clears those heard from again.
func (s *Scanner) ScanLiveness(ctx context.Context, t Tenant) (int, error) {
	now := s.now().UTC()
	meters, err := s.st.Meters(ctx, t.ID)
	if err != nil {
		return 0, fmt.Errorf("liveness: %w", err)
	}
	seen, err := s.st.LastSeen(ctx, t.ID)
	if err != nil {
		return 0, fmt.Errorf("liveness: %w", err)
	}
	var findings []alerts.Finding
	var clears []alerts.Clear
	for _, m := range meters {
		last, ok := seen[m.ID]
		f, c := Silent(s.cfg, now, m, last, ok)
		switch {
		case f.Kind != "":
			findings = append(findings, f)
		case c != nil:
			clears = append(clears, *c)
		}
	}
	if _, err := s.st.Apply(ctx, now, findings, clears); err != nil {
		return 0, fmt.Errorf("liveness: %w", err)
	}
	if err := s.st.SetWatermark(ctx, t.ID, "liveness", now, now, ScanStats{Meters: len(meters), Findings: len(findings)}); err != nil {
		return 0, fmt.Errorf("liveness: %w", err)
	}
	return len(findings), nil
}
