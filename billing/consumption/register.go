package consumption

import (
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// RegisterBucket is one rollup bucket of one meter's energy register (a
// readings_daily or readings_hourly row): the register at the bucket's
// first and last reading.
type RegisterBucket struct {
	Start     time.Time // bucket start
	FirstTime time.Time
	LastTime  time.Time
	FirstWh   int64
	LastWh    int64
}

// StepCorrection is a counter event of the register: the step that ended
// at Time moved the raw value by DeltaWh but counted ConsumptionWh (a
// rollover, a reset, a replacement or an implausible jump, as the gateway
// classified it with meter.StepCounter).
type StepCorrection struct {
	Time          time.Time
	DeltaWh       int64
	ConsumptionWh int64
}

// MeterSeries is what one meter registered while installed on a
// connection, around a window of buckets: the last bucket before the
// window (the baseline; nil when there is none), the buckets inside it,
// the register's counter events after the baseline, and the installation's
// bounds. InitialWh and FinalWh are the registers read at installation and
// removal (nil when not recorded).
type MeterSeries struct {
	Baseline    *RegisterBucket
	Buckets     []RegisterBucket // ascending by Start
	Corrections []StepCorrection // ascending by Time
	Installed   time.Time
	InitialWh   *int64
	Removed     time.Time // zero: still installed
	FinalWh     *int64
	// Multiplier is the CT/PT ratio applied to register movement; zero
	// means 1.
	Multiplier decimal.Decimal
}

// BucketWh is the energy attributed to one bucket.
type BucketWh struct {
	Start time.Time
	Wh    int64
}

// Reads are the register values that bound a series' energy in a window:
// the register before the first bucket and after the last, raw Wh.
type Reads struct {
	Previous, Current int64
	Known             bool
}

// Energy attributes the meter's register movement to the buckets in
// [from, to): each step between consecutive readings counts its raw
// difference unless a counter event says otherwise, and energy bracketed by
// readings either side of buckets without readings is spread evenly over
// them (those days were measured, just not read one by one); buckets before
// the first reading and after the last have no energy and are left out, so
// the caller can estimate them. next advances a bucket start by one bucket
// (a day in the rollup zone, or an hour). The multiplier is applied to the
// running total and rounded half up, so the buckets add up to the
// multiplied total exactly. A step that goes backwards without a counter
// event fails with billing.ErrCalculation.
func (s MeterSeries) Energy(from, to time.Time, next func(time.Time) time.Time) ([]BucketWh, Reads, error) {
	var out []BucketWh
	var reads Reads
	var (
		prevWh     int64
		prevTime   time.Time
		prevBucket time.Time // bucket the previous reading belongs to
		havePrev   bool
	)
	if b := s.Baseline; b != nil && !b.LastTime.Before(s.Installed) {
		prevWh, prevTime, prevBucket, havePrev = b.LastWh, b.LastTime, b.Start, true
	}
	if !havePrev && s.InitialWh != nil {
		prevWh, prevTime, havePrev = *s.InitialWh, s.Installed, true
		prevBucket = bucketOf(s.Installed, from, next)
	}
	ci := 0
	correction := func(after, upto time.Time) int64 {
		var c int64
		for ci < len(s.Corrections) && !s.Corrections[ci].Time.After(upto) {
			if e := s.Corrections[ci]; e.Time.After(after) {
				c += e.ConsumptionWh - e.DeltaWh
			}
			ci++
		}
		return c
	}
	if havePrev {
		reads.Previous, reads.Known = prevWh, true
	}
	emit := func(fromBucket, toBucket time.Time, wh int64, spread bool) error {
		if wh < 0 {
			return fmt.Errorf("%w: register went back by %d Wh before %s without a counter event", billing.ErrCalculation, -wh, toBucket.Format(time.RFC3339))
		}
		if !spread {
			out = append(out, BucketWh{Start: toBucket, Wh: wh})
			return nil
		}
		var starts []time.Time
		for b := next(fromBucket); !b.After(toBucket); b = next(b) {
			starts = append(starts, b)
			if len(starts) > 100_000 {
				return fmt.Errorf("%w: bucket gap too long before %s", billing.ErrCalculation, toBucket.Format(time.RFC3339))
			}
		}
		if len(starts) == 0 {
			starts = []time.Time{toBucket}
		}
		n := int64(len(starts))
		for i, b := range starts {
			share := wh/n + boolInt(int64(i) < wh%n)
			out = append(out, BucketWh{Start: b, Wh: share})
		}
		return nil
	}
	for _, b := range s.Buckets {
		if !s.Removed.IsZero() && !b.FirstTime.Before(s.Removed) {
			break
		}
		if !havePrev {
			prevWh, prevTime, havePrev = b.FirstWh, b.FirstTime, true
			prevBucket = b.Start
			reads.Previous, reads.Known = prevWh, true
			ci = 0
		}
		wh := b.LastWh - prevWh + correction(prevTime, b.LastTime)
		if err := emit(prevBucket, b.Start, wh, !prevBucket.Equal(b.Start)); err != nil {
			return nil, Reads{}, err
		}
		prevWh, prevTime, prevBucket = b.LastWh, b.LastTime, b.Start
		reads.Current = prevWh
	}
	if havePrev && s.FinalWh != nil && !s.Removed.IsZero() && s.Removed.After(prevTime) {
		wh := *s.FinalWh - prevWh + correction(prevTime, s.Removed)
		if err := emit(prevBucket, bucketOf(s.Removed, from, next), wh, true); err != nil {
			return nil, Reads{}, err
		}
		reads.Current = *s.FinalWh
	}
	if !reads.Known {
		return nil, reads, nil
	}
	out = mergeBuckets(out)
	kept := out[:0]
	for _, b := range out {
		if !b.Start.Before(from) && b.Start.Before(to) {
			kept = append(kept, b)
		}
	}
	return scale(kept, s.Multiplier), reads, nil
}

// bucketOf returns the start of the bucket containing t, stepping from a
// known bucket start with next (backwards by whole buckets is not needed:
// callers only ask about times near the window).
func bucketOf(t, anchor time.Time, next func(time.Time) time.Time) time.Time {
	if t.Before(anchor) {
		// step back in whole buckets of the anchor's size
		for b := anchor; ; {
			prev := b.Add(-next(b).Sub(b))
			if !t.Before(prev) {
				return prev
			}
			b = prev
		}
	}
	b := anchor
	for {
		n := next(b)
		if t.Before(n) {
			return b
		}
		b = n
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// mergeBuckets sums entries with the same start, in start order.
func mergeBuckets(in []BucketWh) []BucketWh {
	sort.SliceStable(in, func(i, j int) bool { return in[i].Start.Before(in[j].Start) })
	out := in[:0]
	for _, b := range in {
		if n := len(out); n > 0 && out[n-1].Start.Equal(b.Start) {
			out[n-1].Wh += b.Wh
			continue
		}
		out = append(out, b)
	}
	return out
}

// scale multiplies bucket energy by m with cumulative rounding: the
// running total is multiplied and rounded half up, and each bucket gets
// the difference, so no Wh is lost or invented by rounding.
func scale(in []BucketWh, m decimal.Decimal) []BucketWh {
	if m.IsZero() || m.Equal(decimal.NewFromInt(1)) {
		return in
	}
	var raw, done int64
	for i := range in {
		raw += in[i].Wh
		total := decimal.NewFromInt(raw).Mul(m).Round(0).IntPart()
		in[i].Wh, done = total-done, total
	}
	return in
}

// Days turns the bucket energy of daily buckets into daily usage (imports
// only; exports are billed only under net metering, which reads exports
// through its own series), dating each bucket in loc, and sums meters that
// share a day (a replacement day), so slabs apply once to the connection.
func Days(loc *time.Location, series ...[]BucketWh) []DailyUsage {
	byDate := map[billing.Date]int64{}
	for _, s := range series {
		for _, b := range s {
			byDate[billing.DateOf(b.Start, loc)] += b.Wh
		}
	}
	out := make([]DailyUsage, 0, len(byDate))
	for d, wh := range byDate {
		out = append(out, DailyUsage{Date: d, ImportWh: wh})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Date.Before(out[j].Date) })
	return out
}

// Hours turns hourly bucket energy into hourly usage, summing meters.
func Hours(series ...[]BucketWh) []HourlyUsage {
	byStart := map[int64]int64{}
	for _, s := range series {
		for _, b := range s {
			byStart[b.Start.Unix()] += b.Wh
		}
	}
	out := make([]HourlyUsage, 0, len(byStart))
	for s, wh := range byStart {
		out = append(out, HourlyUsage{Start: time.Unix(s, 0).UTC(), ImportWh: wh})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// ScaleWindows scales energy per time-of-use window so that it sums to
// totalWh (the period's import including estimated days), in proportion to
// the measured windows, by largest remainder (ties to the name that sorts
// first). Windows with no measured energy stay at zero; when nothing was
// measured at all it fails with billing.ErrCalculation, since the split
// cannot be known.
func ScaleWindows(windows map[string]int64, totalWh int64) (map[string]int64, error) {
	var measured int64
	names := make([]string, 0, len(windows))
	for name, wh := range windows {
		measured += wh
		names = append(names, name)
	}
	sort.Strings(names)
	out := make(map[string]int64, len(windows))
	if measured == totalWh {
		for k, v := range windows {
			out[k] = v
		}
		return out, nil
	}
	if measured <= 0 {
		return nil, fmt.Errorf("%w: no hourly energy to split %d Wh into time-of-use windows", billing.ErrCalculation, totalWh)
	}
	type rem struct {
		name string
		r    int64
	}
	var given int64
	rems := make([]rem, 0, len(names))
	for _, n := range names {
		num := windows[n] * totalWh
		out[n] = num / measured
		given += out[n]
		rems = append(rems, rem{n, num % measured})
	}
	sort.SliceStable(rems, func(i, j int) bool { return rems[i].r > rems[j].r })
	for i := 0; given < totalWh; i++ {
		out[rems[i%len(rems)].name]++
		given++
	}
	return out, nil
}
