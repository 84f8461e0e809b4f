package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
)

// Row is one stored reading.
type Row struct {
	MeterID            int64
	Time               time.Time
	ImportWh, ExportWh int64
	HasImport          bool
	HasExport          bool
	PowerW             float32
	HasPower           bool
}

// Key names a reading by meter id and time.
type Key struct {
	MeterID int64
	Time    time.Time
}

// Store is the database side of a verify.
type Store interface {
	// MeterIDs returns meters.id by external id for the tenant's meters
	// (installed or removed).
	MeterIDs(ctx context.Context, tenant string) (map[string]int64, error)
	// Readings calls fn for each stored reading of the given meters with
	// from ≤ ts ≤ to, ordered by meter id, then time.
	Readings(ctx context.Context, meterIDs []int64, from, to time.Time, fn func(Row) error) error
	// ReadingsAt returns the stored readings at exactly the given keys.
	ReadingsAt(ctx context.Context, keys []Key) ([]Row, error)
}

// Options tune Verify.
type Options struct {
	// Samples is how many examples to keep per category. Default 10.
	Samples int
	// Strict fails the check on unexpected readings too.
	Strict bool
	// ModbusSkew is how far a poller's timestamp may be from the moment
	// the server computed the registers. Default 2 s.
	ModbusSkew time.Duration
}

// Sample is one example reading of a category.
type Sample struct {
	Meter string
	Time  time.Time
	Want  string // what the manifest or model says
	Got   string // what the database holds
}

// Report is the result of a verify.
type Report struct {
	Manifest string
	Source   string // mqtt or modbus
	Torn     bool   // the manifest ended in a torn record (the writer crashed)
	Ended    bool   // the manifest was closed cleanly
	From, To time.Time

	Meters          int   // meters of the fleet checked
	Expected        int64 // distinct readings the manifest lists
	Matched         int64 // stored exactly as sent
	Lost            int64 // listed, not stored (QoS 1)
	DroppedQoS0     int64 // listed, not stored, sent only at QoS 0 (allowed)
	Wrong           int64 // stored with other values than sent (or than the model, Modbus)
	Duplicated      int64 // the same reading stored again under another timestamp
	AcceptedInvalid int64 // stored at a timestamp only a malformed input claimed
	Unrecorded      int64 // stored, not listed, but what the model sent (the simulator stopped before recording it)
	Unexpected      int64 // stored, explained by nothing above
	ModbusChecked   int64 // Modbus readings that matched the model

	// NotProvisioned are meters of the manifest the database does not know.
	NotProvisioned []string
	// Faults counts the injected faults by kind.
	Faults map[string]int64

	Samples map[string][]Sample
}

// Failed returns the failing categories' counts, empty when OK.
func (r *Report) failures(strict bool) []string {
	var f []string
	add := func(name string, n int64) {
		if n > 0 {
			f = append(f, fmt.Sprintf("%s %d", name, n))
		}
	}
	add("lost", r.Lost)
	add("duplicated", r.Duplicated)
	add("wrong", r.Wrong)
	add("accepted_invalid", r.AcceptedInvalid)
	if strict {
		add("unexpected", r.Unexpected)
	}
	return f
}

// OK reports whether nothing was lost, duplicated, wrong or wrongly
// accepted.
func (r *Report) OK() bool { return len(r.failures(false)) == 0 }

// OKStrict is OK that also fails on unexpected readings.
func (r *Report) OKStrict() bool { return len(r.failures(true)) == 0 }

// ErrFailed is returned by Report.Err when the check failed.
var ErrFailed = errors.New("verify failed")

// Err returns nil if the report is OK (OKStrict when strict), else an
// error wrapping ErrFailed naming the failing counts.
func (r *Report) Err(strict bool) error {
	if f := r.failures(strict); len(f) > 0 {
		return fmt.Errorf("%w: %s", ErrFailed, strings.Join(f, ", "))
	}
	return nil
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) {
	state := "closed cleanly"
	switch {
	case r.Torn:
		state = "writer crashed (torn last record ignored)"
	case !r.Ended:
		state = "writer did not close (no end record)"
	}
	fmt.Fprintf(w, "manifest %s (%s run, %s)\n", r.Manifest, r.Source, state)
	if !r.From.IsZero() {
		fmt.Fprintf(w, "window   %s … %s, %d meters\n", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Meters)
	}
	fmt.Fprintf(w, "expected %d  matched %d  lost %d  dropped_qos0 %d  wrong %d  duplicated %d  accepted_invalid %d  unrecorded %d  unexpected %d",
		r.Expected, r.Matched, r.Lost, r.DroppedQoS0, r.Wrong, r.Duplicated, r.AcceptedInvalid, r.Unrecorded, r.Unexpected)
	if r.Source == "modbus" || r.ModbusChecked > 0 {
		fmt.Fprintf(w, "  modbus_checked %d", r.ModbusChecked)
	}
	fmt.Fprintln(w)
	if len(r.Faults) > 0 {
		kinds := make([]string, 0, len(r.Faults))
		for k := range r.Faults {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		fmt.Fprint(w, "faults  ")
		for _, k := range kinds {
			fmt.Fprintf(w, " %s=%d", k, r.Faults[k])
		}
		fmt.Fprintln(w)
	}
	if len(r.NotProvisioned) > 0 {
		fmt.Fprintf(w, "not provisioned: %d meters, e.g. %s\n", len(r.NotProvisioned), r.NotProvisioned[0])
	}
	cats := make([]string, 0, len(r.Samples))
	for c := range r.Samples {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		for _, s := range r.Samples[c] {
			fmt.Fprintf(w, "  %-16s %s %s want %s got %s\n", c, s.Meter, s.Time.Format(time.RFC3339Nano), s.Want, s.Got)
		}
	}
	if err := r.Err(false); err != nil {
		fmt.Fprintf(w, "FAIL: %v\n", err)
	} else {
		fmt.Fprintln(w, "OK: nothing lost, duplicated, wrong or wrongly accepted")
	}
}

// expected is one reading the manifest lists.
type expected struct {
	us       int64
	imp, exp int64
	power    float32
	qos1     bool
	seen     bool
}

type forbidden struct {
	ref string
	us  int64
}

// Verify reads the manifest at path and checks the database behind store.
func Verify(ctx context.Context, store Store, path string, opt Options) (*Report, error) {
	if opt.Samples == 0 {
		opt.Samples = 10
	}
	if opt.ModbusSkew == 0 {
		opt.ModbusSkew = 2 * time.Second
	}
	rd, err := manifest.Open(path)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer func() { _ = rd.Close() }()
	h := rd.Header()
	fleet, err := simulator.New(h.Fleet)
	if err != nil {
		return nil, fmt.Errorf("verify: manifest fleet: %w", err)
	}
	rep := &Report{Manifest: path, Source: h.Source, Faults: map[string]int64{}, Samples: map[string][]Sample{}}

	// 1. The manifest: expected readings per meter, forbidden keys.
	exp := make([][]expected, fleet.Len())
	forbid := map[forbidden]simulator.Kind{}
	minUS, maxUS := int64(math.MaxInt64), int64(math.MinInt64)
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		if f := rec.Fault; f != nil {
			rep.Faults[f.Kind.String()]++
			if !f.Forbidden.IsZero() {
				forbid[forbidden{f.Ref, f.Forbidden.UnixMicro()}] = f.Kind
			}
			continue
		}
		m := rec.Message
		if m.Meter < 0 || m.Meter >= fleet.Len() {
			return nil, fmt.Errorf("verify: %w: message for meter %d of a %d-meter fleet", manifest.ErrCorrupt, m.Meter, fleet.Len())
		}
		for _, r := range m.Readings {
			us := r.Time.UnixMicro()
			exp[m.Meter] = append(exp[m.Meter], expected{us: us, imp: r.ImportWh, exp: r.ExportWh, power: r.PowerW, qos1: m.QoS > 0})
			minUS, maxUS = min(minUS, us), max(maxUS, us)
		}
	}
	rep.Torn, rep.Ended = rd.Torn(), rd.Ended()
	for i := range exp {
		e := exp[i]
		sort.SliceStable(e, func(a, b int) bool { return e[a].us < e[b].us })
		// The same reading listed twice (a resend after a lost PUBACK):
		// keep one, remembering whether any delivery was at QoS 1.
		out := e[:0]
		for _, x := range e {
			if n := len(out); n > 0 && out[n-1].us == x.us {
				out[n-1].qos1 = out[n-1].qos1 || x.qos1
				continue
			}
			out = append(out, x)
		}
		exp[i] = out
		rep.Expected += int64(len(out))
	}

	// 2. The database's meters.
	ids, err := store.MeterIDs(ctx, fleet.Config().Tenant)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	from, to := time.UnixMicro(minUS).UTC(), time.UnixMicro(maxUS).UTC()
	if h.Source == "modbus" || minUS > maxUS {
		from, to = fleet.Config().Start, time.Now().UTC().Add(24*time.Hour)
	}
	rep.From, rep.To = from, to
	byID := map[int64]int{}
	var meterIDs []int64
	for i := range fleet.Len() {
		m := fleet.Meter(i)
		if len(exp[i]) == 0 && m.Protocol != simulator.Modbus {
			continue
		}
		rep.Meters++
		id, ok := ids[m.ExternalID]
		if !ok {
			rep.NotProvisioned = append(rep.NotProvisioned, m.ExternalID)
			continue
		}
		byID[id] = i
		meterIDs = append(meterIDs, id)
	}

	// 3. Stream the stored readings, meter by meter, merging with the
	// expected ones.
	c := &checker{rep: rep, opt: opt, fleet: fleet, exp: exp, forbid: forbid, states: map[int]*simulator.State{}}
	cur := -1
	err = store.Readings(ctx, meterIDs, from, to, func(row Row) error {
		i, ok := byID[row.MeterID]
		if !ok {
			return nil
		}
		if i != cur {
			c.finish(cur)
			cur = i
			c.pos = 0
		}
		c.row(i, row)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	c.finish(cur)
	for i := range exp {
		if !c.done(i) {
			c.finish(i)
		}
	}

	// 4. Forbidden keys outside the window (far-future and far-past
	// timestamps, unknown meters that someone provisioned after all).
	var keys []Key
	for k := range forbid {
		id, ok := ids[k.ref]
		if !ok {
			continue // an unknown meter: nothing can be stored for it
		}
		if _, scanned := byID[id]; !scanned || k.us < from.UnixMicro() || k.us > to.UnixMicro() {
			keys = append(keys, Key{MeterID: id, Time: time.UnixMicro(k.us).UTC()})
		}
	}
	if len(keys) > 0 {
		rows, err := store.ReadingsAt(ctx, keys)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		refOf := map[int64]string{}
		for ref, id := range ids {
			refOf[id] = ref
		}
		for _, row := range rows {
			rep.AcceptedInvalid++
			c.sample("accepted_invalid", refOf[row.MeterID], row.Time, forbid[forbidden{refOf[row.MeterID], row.Time.UnixMicro()}].String(), describe(row))
		}
	}
	return rep, nil
}

type checker struct {
	rep      *Report
	opt      Options
	fleet    *simulator.Fleet
	exp      [][]expected
	forbid   map[forbidden]simulator.Kind
	states   map[int]*simulator.State
	pos      int
	byValue  map[[2]int64]int64
	finished map[int]bool
}

func (c *checker) done(i int) bool { return c.finished[i] }

func (c *checker) sample(cat, meter string, t time.Time, want, got string) {
	if len(c.rep.Samples[cat]) < c.opt.Samples {
		c.rep.Samples[cat] = append(c.rep.Samples[cat], Sample{Meter: meter, Time: t, Want: want, Got: got})
	}
}

func describe(r Row) string {
	s := func(ok bool, v int64) string {
		if !ok {
			return "null"
		}
		return fmt.Sprint(v)
	}
	p := "null"
	if r.HasPower {
		p = fmt.Sprint(r.PowerW)
	}
	return fmt.Sprintf("import=%s export=%s power=%s", s(r.HasImport, r.ImportWh), s(r.HasExport, r.ExportWh), p)
}

func describeExp(e expected) string {
	return fmt.Sprintf("import=%d export=%d power=%v", e.imp, e.exp, e.power)
}

// row checks one stored reading of meter i.
func (c *checker) row(i int, row Row) {
	m := c.fleet.Meter(i)
	us := row.Time.UnixMicro()
	e := c.exp[i]
	for c.pos < len(e) && e[c.pos].us < us {
		c.pos++
	}
	if c.pos < len(e) && e[c.pos].us == us {
		x := &e[c.pos]
		x.seen = true
		if row.HasImport && row.HasExport && row.HasPower && row.ImportWh == x.imp && row.ExportWh == x.exp && row.PowerW == x.power {
			c.rep.Matched++
		} else {
			c.rep.Wrong++
			c.sample("wrong", m.ExternalID, row.Time, describeExp(*x), describe(row))
		}
		return
	}
	if kind, ok := c.forbid[forbidden{m.ExternalID, us}]; ok {
		c.rep.AcceptedInvalid++
		c.sample("accepted_invalid", m.ExternalID, row.Time, kind.String()+" input must be rejected", describe(row))
		return
	}
	if m.Protocol == simulator.Modbus {
		c.modbus(i, row)
		return
	}
	if c.byValue == nil {
		c.byValue = map[[2]int64]int64{}
		for _, x := range e {
			if _, dup := c.byValue[[2]int64{x.imp, x.exp}]; !dup {
				c.byValue[[2]int64{x.imp, x.exp}] = x.us
			}
		}
	}
	if orig, ok := c.byValue[[2]int64{row.ImportWh, row.ExportWh}]; ok && row.HasImport {
		c.rep.Duplicated++
		c.sample("duplicated", m.ExternalID, row.Time, "stored once, at "+time.UnixMicro(orig).UTC().Format(time.RFC3339Nano), describe(row))
		return
	}
	smp := c.state(i).At(row.Time)
	if row.HasImport && row.HasExport && row.ImportWh == smp.ImportWh && row.ExportWh == smp.ExportWh && row.Time.Sub(c.fleet.Config().Start)%c.fleet.Config().Interval == 0 {
		c.rep.Unrecorded++
		c.sample("unrecorded", m.ExternalID, row.Time, "sent, not recorded", describe(row))
		return
	}
	c.rep.Unexpected++
	c.sample("unexpected", m.ExternalID, row.Time, fmt.Sprintf("nothing (model import=%d export=%d)", smp.ImportWh, smp.ExportWh), describe(row))
}

func (c *checker) state(i int) *simulator.State {
	s := c.states[i]
	if s == nil {
		s = c.fleet.NewState(i)
		c.states[i] = s
	}
	return s
}

// modbus checks a polled reading against the model.
func (c *checker) modbus(i int, row Row) {
	m := c.fleet.Meter(i)
	smp := c.state(i).At(row.Time)
	slackWh := int64(math.Ceil(m.MeanW*3*c.fleet.Config().Faults.SpikeFactor*c.opt.ModbusSkew.Hours())) + 1
	ok := !m.WrongWordOrder
	check := func(has bool, got, want int64) {
		if !has {
			return
		}
		res := int64(1)
		if spec, err := m.Map.CounterSpec(meter.QuantityImportEnergy, 0); err == nil {
			res = spec.ResolutionWh(want)
		}
		d := got - want
		if m.ModulusWh > 0 {
			d = ((d%m.ModulusWh)+m.ModulusWh+m.ModulusWh/2)%m.ModulusWh - m.ModulusWh/2
		}
		if d < 0 {
			d = -d
		}
		if d > res+slackWh {
			ok = false
		}
	}
	check(row.HasImport, row.ImportWh, smp.ImportWh)
	check(row.HasExport, row.ExportWh, smp.ExportWh)
	if ok {
		c.rep.ModbusChecked++
		return
	}
	c.rep.Wrong++
	want := fmt.Sprintf("model import=%d export=%d", smp.ImportWh, smp.ExportWh)
	if m.WrongWordOrder {
		want = "no reading (device with the wrong word order)"
	}
	c.sample("wrong", m.ExternalID, row.Time, want, describe(row))
}

// finish counts meter i's expected readings that were never stored.
func (c *checker) finish(i int) {
	if i < 0 {
		return
	}
	if c.finished == nil {
		c.finished = map[int]bool{}
	}
	if c.finished[i] {
		return
	}
	c.finished[i] = true
	m := c.fleet.Meter(i)
	for _, x := range c.exp[i] {
		if x.seen {
			continue
		}
		if x.qos1 {
			c.rep.Lost++
			c.sample("lost", m.ExternalID, time.UnixMicro(x.us).UTC(), describeExp(x), "nothing")
		} else {
			c.rep.DroppedQoS0++
			c.sample("dropped_qos0", m.ExternalID, time.UnixMicro(x.us).UTC(), describeExp(x), "nothing")
		}
	}
	c.exp[i] = nil
	c.byValue = nil
	delete(c.states, i)
}
