package usage

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/meter"
)

// HistoryQuery asks for a consumption series of a connection or a meter.
type HistoryQuery struct {
	MeterID      int64
	ConnectionID int64
	Granularity  Granularity // default day
	From, To     time.Time   // default: the last 48 hours, 30 days or 12 months up to now
}

// maxPoints bounds a series per granularity.
var maxPoints = map[Granularity]int{Hour: 24 * 93, Day: 5 * 366, Month: 240}

// History returns the consumption series asked for. Buckets follow the
// rollup time zone; the range is widened to whole buckets. Consumption in
// a bucket is the movement of the import register from the previous
// bucket's last reading to this bucket's last reading (counter resets and
// rollovers handled by meter.StepCounter), within the spans the meter was
// installed on the connection; buckets with no readings are present with
// zero consumption and no power figures.
func (s *Service) History(ctx context.Context, scope account.Scope, q HistoryQuery) (Series, error) {
	if q.Granularity == "" {
		q.Granularity = Day
	}
	v := account.NewValidator(account.ErrInvalidInput)
	if _, ok := maxPoints[q.Granularity]; !ok {
		v.Add("granularity", "must be hour, day or month")
	}
	if q.MeterID == 0 && q.ConnectionID == 0 {
		v.Add("connection_id", "connection_id or meter_id is required")
	}
	if err := v.Err(); err != nil {
		return Series{}, err
	}
	loc, err := s.store.RollupTimeZone(ctx)
	if err != nil {
		return Series{}, err
	}
	now := s.cfg.Now()
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		switch q.Granularity {
		case Hour:
			q.From = q.To.Add(-48 * time.Hour)
		case Day:
			q.From = q.To.AddDate(0, 0, -30)
		case Month:
			q.From = q.To.AddDate(-1, 0, 0)
		}
	}
	from := truncate(q.From, q.Granularity, loc)
	to := truncate(q.To, q.Granularity, loc)
	if to.Before(q.To) {
		to = next(to, q.Granularity, loc)
	}
	if !from.Before(to) {
		v.Add("to", "must be after from")
		return Series{}, v.Err()
	}
	starts := []time.Time{}
	for t := from; t.Before(to); t = next(t, q.Granularity, loc) {
		starts = append(starts, t)
		if len(starts) > maxPoints[q.Granularity] {
			v.Add("from", fmt.Sprintf("the range holds more than %d %s buckets; narrow it or use a coarser granularity", maxPoints[q.Granularity], q.Granularity))
			return Series{}, v.Err()
		}
	}
	spans, err := s.store.History(ctx, scope, q.MeterID, q.ConnectionID, q.Granularity, from, to, loc)
	if err != nil {
		return Series{}, err
	}
	ser := Series{ConnectionID: q.ConnectionID, Granularity: q.Granularity, From: from, To: to, TimeZone: loc.String()}
	points := make([]Point, len(starts))
	for i, st := range starts {
		points[i] = Point{Start: st, End: next(st, q.Granularity, loc)}
	}
	index := make(map[time.Time]int, len(starts))
	for i, st := range starts {
		index[st] = i
	}
	water := len(spans) > 0
	for _, sp := range spans {
		water = water && sp.Kind == meter.KindWater
	}
	if water {
		ser.Kind = meter.KindWater
	}
	powerSum := make([]float64, len(starts))
	powerN := make([]int64, len(starts))
	for _, sp := range spans {
		if !slices.Contains(ser.MeterIDs, sp.MeterID) {
			ser.MeterIDs = append(ser.MeterIDs, sp.MeterID)
		}
		prev, buckets := sp.Prev, sp.Buckets
		maxW := s.cfg.DefaultMaxPowerW
		if sp.SanctionedLoadKW > 0 {
			maxW = sp.SanctionedLoadKW * 1000 * s.cfg.LoadMargin
		}
		acc := stepper{maxW: maxW, initial: sp.InitialImportWh}
		if prev != nil {
			acc.prevImport, acc.prevExport, acc.prevT = prev.LastImportWh, prev.LastExportWh, prev.LastTime
		}
		for _, b := range buckets {
			imp, exp := acc.step(b)
			i, ok := index[truncate(b.Start, q.Granularity, loc)]
			if !ok {
				continue
			}
			p := &points[i]
			p.ConsumptionWh += imp
			p.ExportWh += exp
			p.Samples += b.Samples
			if b.MaxPowerW != nil && (p.MaxPowerW == nil || *b.MaxPowerW > *p.MaxPowerW) {
				m := *b.MaxPowerW
				p.MaxPowerW = &m
			}
			if b.PowerSumW != nil {
				powerSum[i] += *b.PowerSumW
				powerN[i] += b.PowerSamples
			}
			if b.LastImportWh != nil {
				last := *b.LastImportWh
				p.LastImportWh = &last
			}
		}
	}
	for i := range points {
		if powerN[i] > 0 {
			avg := powerSum[i] / float64(powerN[i])
			points[i].AvgPowerW = &avg
		}
		if len(ser.MeterIDs) > 1 {
			points[i].LastImportWh = nil // registers of different meters do not add up
		}
		ser.ConsumptionWh += points[i].ConsumptionWh
		ser.ExportWh += points[i].ExportWh
	}
	ser.Points = points
	return ser, nil
}

// stepper turns consecutive buckets' last registers into consumption.
type stepper struct {
	maxW                   float64
	initial                *int64
	prevImport, prevExport *int64
	prevT                  time.Time
}

func (s *stepper) step(b Bucket) (imp, exp int64) {
	imp = s.register(s.prevImport, b.LastImportWh, b.ImportDeltaWh, s.initial, b.LastTime)
	exp = s.register(s.prevExport, b.LastExportWh, b.ExportDeltaWh, nil, b.LastTime)
	if b.LastImportWh != nil {
		s.prevImport = b.LastImportWh
	}
	if b.LastExportWh != nil {
		s.prevExport = b.LastExportWh
	}
	s.prevT = b.LastTime
	s.initial = nil
	return imp, exp
}

// register returns the consumption of one register in a bucket whose
// last value is last (at lastT): the step from the previous bucket's last
// value, else from the installation's initial value, else the in-bucket
// delta.
func (s *stepper) register(prev, last, delta, initial *int64, lastT time.Time) int64 {
	switch {
	case last == nil:
		return 0
	case prev != nil:
		st, err := meter.StepCounter(meter.CounterSample{Time: s.prevT, ValueWh: *prev}, meter.CounterSample{Time: lastT, ValueWh: *last}, meter.CounterSpec{}, s.maxW)
		if err == nil {
			return st.ConsumptionWh
		}
	case initial != nil && *last >= *initial:
		return *last - *initial
	}
	if delta != nil && *delta > 0 {
		return *delta
	}
	return 0
}

// truncate returns the start of the bucket of granularity g holding t.
func truncate(t time.Time, g Granularity, loc *time.Location) time.Time {
	l := t.In(loc)
	switch g {
	case Hour:
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), 0, 0, 0, loc)
	case Month:
		return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	}
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
}

// next returns the start of the bucket after the one starting at t.
func next(t time.Time, g Granularity, loc *time.Location) time.Time {
	l := t.In(loc)
	switch g {
	case Hour:
		return t.Add(time.Hour)
	case Month:
		return time.Date(l.Year(), l.Month()+1, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
}
