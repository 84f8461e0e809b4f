package ingest

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/postgres"
)

// StateStore is what the tracker needs from the store.
type StateStore interface {
	LatestStates(ctx context.Context, ids ...int64) ([]postgres.Latest, error)
	UpsertLatest(ctx context.Context, states []postgres.Latest) error
	WriteCounterEvents(ctx context.Context, evs []postgres.CounterEvent) error
	OfflineMeters(ctx context.Context, now time.Time, factor float64, limit int) ([]postgres.OfflineMeter, int, error)
}

// TrackerConfig tunes the Tracker. Zero values take the defaults.
type TrackerConfig struct {
	// Flush is how often latest states and counter events are written.
	// Default 2 s.
	Flush time.Duration
	// OfflineFactor: a meter is offline when silent for more than this
	// many expected intervals. Default 3.
	OfflineFactor float64
	// OfflineEvery is how often the offline-meters gauge is recomputed.
	// Default 30 s.
	OfflineEvery time.Duration
	// MaxPowerW is the most power a metered connection can carry, for
	// telling resets from jumps (meter.StepCounter). Default 7.5 MW
	// (three times meter.DefaultLimits().MaxPhasePowerW).
	MaxPowerW float64
	// MaxPendingEvents bounds counter events waiting to be written while
	// the database is down; beyond it the oldest are dropped and counted.
	// Default 100 000.
	MaxPendingEvents int
	// FlushChunk is the most latest states written by one statement.
	// Default 2 000: a flush after every meter has reported (100 000
	// states) would otherwise encode one statement of about 50 MB, which
	// alone doubled the gateway's peak memory.
	FlushChunk int
}

func (c *TrackerConfig) setDefaults() {
	if c.Flush == 0 {
		c.Flush = 2 * time.Second
	}
	if c.OfflineFactor == 0 {
		c.OfflineFactor = 3
	}
	if c.OfflineEvery == 0 {
		c.OfflineEvery = 30 * time.Second
	}
	if c.MaxPowerW == 0 {
		c.MaxPowerW = 3 * meter.DefaultLimits().MaxPhasePowerW
	}
	if c.MaxPendingEvents == 0 {
		c.MaxPendingEvents = 100_000
	}
	if c.FlushChunk == 0 {
		c.FlushChunk = 2_000
	}
}

// Validate checks the configuration.
func (c TrackerConfig) Validate() error {
	if c.Flush < 0 || c.OfflineFactor < 0 || c.OfflineEvery < 0 || c.MaxPowerW < 0 || c.MaxPendingEvents < 0 || c.FlushChunk < 0 {
		return errors.New("ingest: tracker settings must not be negative")
	}
	return nil
}

// Tracker follows every meter's committed readings: it keeps the newest
// state and last-seen time (written to meter_latest), steps each energy
// register with meter.StepCounter and records resets, rollovers,
// replacements and jumps as counter events. Readings older than a
// register's newest are stored but do not move the counter. It is a
// component: Start loads the stored states so counters continue across
// restarts.
type Tracker struct {
	cfg      TrackerConfig
	store    StateStore
	identity func(meterID int64) string
	metrics  *Metrics
	log      *slog.Logger

	mu      sync.Mutex
	states  map[int64]*meterState
	dirty   map[int64]struct{}
	events  []postgres.CounterEvent
	specs   map[specKey]meter.CounterSpec
	specFn  func(meterID int64, reg meter.Fields) (meter.CounterSpec, bool)
	flushMu sync.Mutex

	cancel context.CancelFunc
	done   chan struct{}
}

type specKey struct {
	meter int64
	reg   meter.Fields
}

// meterState is one meter's state, compact (times as Unix µs, 0 for
// none) because the tracker holds one per meter: 100 000 of them.
type meterState struct {
	meterID            int64
	lastSeen, ts, recv int64
	impWh, expWh       int64
	impTS, expTS       int64
	inst               [5]float32 // power, voltage, current, frequency, power factor
	fields             meter.Fields
	source             meter.Source
	identity           string
}

func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromUS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func stateFrom(l *postgres.Latest) *meterState {
	r := &l.Reading
	return &meterState{meterID: l.MeterID, lastSeen: us(l.LastSeen), ts: us(r.Time), recv: us(r.ReceivedAt),
		impWh: l.ImportWh, impTS: us(l.ImportTime), expWh: l.ExportWh, expTS: us(l.ExportTime),
		inst: [5]float32{r.PowerW, r.VoltageV, r.CurrentA, r.FrequencyHz, r.PowerFactor}, fields: r.Fields, source: r.Source}
}

func (st *meterState) latest() postgres.Latest {
	return postgres.Latest{MeterID: st.meterID, LastSeen: fromUS(st.lastSeen),
		ImportWh: st.impWh, ImportTime: fromUS(st.impTS), ExportWh: st.expWh, ExportTime: fromUS(st.expTS),
		Reading: meter.Reading{MeterID: st.meterID, Time: fromUS(st.ts), ReceivedAt: fromUS(st.recv),
			PowerW: st.inst[0], VoltageV: st.inst[1], CurrentA: st.inst[2], FrequencyHz: st.inst[3], PowerFactor: st.inst[4],
			Fields: st.fields &^ (meter.FieldImport | meter.FieldExport), Source: st.source}}
}

// NewTracker returns a tracker. identity returns the identity (serial) of
// the physical meter behind a meter id, for replacement detection; it may
// be nil.
func NewTracker(cfg TrackerConfig, store StateStore, identity func(int64) string, m *Metrics, log *slog.Logger) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{cfg: cfg, store: store, identity: identity, metrics: m, log: log,
		states: map[int64]*meterState{}, dirty: map[int64]struct{}{}, specs: map[specKey]meter.CounterSpec{}}, nil
}

// SetCounterSpec declares the arithmetic of a meter's energy register
// (reg is meter.FieldImport or meter.FieldExport); registers without one
// are integer Wh that never wrap.
func (t *Tracker) SetCounterSpec(meterID int64, reg meter.Fields, spec meter.CounterSpec) {
	t.mu.Lock()
	t.specs[specKey{meterID, reg}] = spec
	t.mu.Unlock()
}

// SetSpecFunc sets where the arithmetic of registers without an explicit
// SetCounterSpec comes from (for example ModelSpecs by the meter's model).
// Call it before Start.
func (t *Tracker) SetSpecFunc(f func(meterID int64, reg meter.Fields) (meter.CounterSpec, bool)) {
	t.mu.Lock()
	t.specFn = f
	t.mu.Unlock()
}

// Start loads stored states and starts the flush loop.
func (t *Tracker) Start(ctx context.Context) error {
	ls, err := t.store.LatestStates(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	for _, l := range ls {
		st := stateFrom(&l)
		if t.identity != nil {
			st.identity = t.identity(l.MeterID)
		}
		t.states[l.MeterID] = st
	}
	t.mu.Unlock()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.cancel, t.done = cancel, make(chan struct{})
	go t.loop(ctx)
	return nil
}

// Stop flushes what is pending (within ctx) and stops.
func (t *Tracker) Stop(ctx context.Context) error {
	if t.cancel == nil {
		return nil
	}
	t.cancel()
	<-t.done
	return t.Flush(ctx)
}

func (t *Tracker) loop(ctx context.Context) {
	defer close(t.done)
	flush := time.NewTicker(t.cfg.Flush)
	defer flush.Stop()
	offline := time.NewTicker(t.cfg.OfflineEvery)
	defer offline.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			if err := t.Flush(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("write latest states failed; will retry", "err", err)
			}
		case <-offline.C:
			if _, n, err := t.store.OfflineMeters(ctx, time.Now(), t.cfg.OfflineFactor, 0); err == nil && t.metrics != nil {
				t.metrics.MetersOffline.Set(float64(n))
			}
		}
	}
}

// Observe takes committed readings (any order, any meters).
func (t *Tracker) Observe(rows []meter.Reading) {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b meter.Reading) int {
		if c := cmp.Compare(a.MeterID, b.MeterID); c != 0 {
			return c
		}
		return a.Time.Compare(b.Time)
	})
	var kinds [5]int
	t.mu.Lock()
	for i := range sorted {
		r := &sorted[i]
		st := t.states[r.MeterID]
		if st == nil {
			st = &meterState{meterID: r.MeterID}
			if t.identity != nil {
				st.identity = t.identity(r.MeterID)
			}
			t.states[r.MeterID] = st
		}
		id := ""
		if t.identity != nil {
			id = t.identity(r.MeterID)
		}
		if v := r.ReceivedAt.UnixMicro(); v > st.lastSeen {
			st.lastSeen = v
		}
		if v := r.Time.UnixMicro(); v > st.ts {
			st.ts, st.recv = v, r.ReceivedAt.UnixMicro()
			st.inst = [5]float32{r.PowerW, r.VoltageV, r.CurrentA, r.FrequencyHz, r.PowerFactor}
			st.fields, st.source = r.Fields, r.Source
		}
		if r.Fields.Has(meter.FieldImport) {
			if k := t.step(st, r, meter.FieldImport, r.ImportWh, &st.impWh, &st.impTS, id); k > 0 {
				kinds[k]++
			}
		}
		if r.Fields.Has(meter.FieldExport) {
			if k := t.step(st, r, meter.FieldExport, r.ExportWh, &st.expWh, &st.expTS, id); k > 0 {
				kinds[k]++
			}
		}
		if id != "" {
			st.identity = id
		}
		t.dirty[r.MeterID] = struct{}{}
	}
	if over := len(t.events) - t.cfg.MaxPendingEvents; over > 0 {
		t.events = t.events[over:]
		if t.metrics != nil {
			t.metrics.Dropped.WithLabelValues("counter_events_overflow").Add(float64(over))
		}
	}
	pending := len(t.dirty) + len(t.events)
	t.mu.Unlock()
	if t.metrics != nil {
		for k, n := range kinds {
			if n > 0 {
				t.metrics.CounterEvents.WithLabelValues(meter.CounterEventKind(k).String()).Add(float64(n))
			}
		}
		t.metrics.StateLag.Set(float64(pending))
	}
}

// step advances one register and records an event; it returns the event
// kind or 0. t.mu is held.
func (t *Tracker) step(st *meterState, r *meter.Reading, reg meter.Fields, wh int64, lastWh, lastUS *int64, id string) meter.CounterEventKind {
	now := r.Time.UnixMicro()
	if *lastUS == 0 {
		*lastWh, *lastUS = wh, now
		return 0
	}
	if now <= *lastUS {
		return 0 // late or repeated: stored, but the counter stays
	}
	prev := meter.CounterSample{Time: fromUS(*lastUS), ValueWh: *lastWh, Identity: st.identity}
	cur := meter.CounterSample{Time: r.Time, ValueWh: wh, Identity: id}
	spec, ok := t.specs[specKey{r.MeterID, reg}]
	if !ok && t.specFn != nil {
		spec, _ = t.specFn(r.MeterID, reg)
	}
	s, err := meter.StepCounter(prev, cur, spec, t.cfg.MaxPowerW)
	*lastWh, *lastUS = wh, now
	if err != nil || s.Kind == meter.CounterNormal {
		return 0
	}
	t.events = append(t.events, postgres.CounterEvent{MeterID: r.MeterID, Register: reg, PrevTime: prev.Time, Time: cur.Time,
		PrevWh: prev.ValueWh, ValueWh: cur.ValueWh, Step: s})
	return s.Kind
}

// Flush writes the pending counter events, then the states that changed,
// FlushChunk at a time. On failure what was not written stays pending for
// the next flush.
func (t *Tracker) Flush(ctx context.Context) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	ids := make([]int64, 0, len(t.dirty))
	for id := range t.dirty {
		ids = append(ids, id)
	}
	clear(t.dirty)
	events := t.events
	t.events = nil
	t.mu.Unlock()
	slices.Sort(ids)

	err := t.store.WriteCounterEvents(ctx, events)
	if err != nil {
		t.mu.Lock()
		t.events = append(events, t.events...)
		t.mu.Unlock()
	}
	states := make([]postgres.Latest, 0, min(len(ids), t.cfg.FlushChunk))
	for err == nil && len(ids) > 0 {
		chunk := ids[:min(len(ids), t.cfg.FlushChunk)]
		states = states[:0]
		t.mu.Lock()
		for _, id := range chunk {
			states = append(states, t.states[id].latest())
		}
		t.mu.Unlock()
		if err = t.store.UpsertLatest(ctx, states); err == nil {
			ids = ids[len(chunk):]
		}
	}
	t.mu.Lock()
	for _, id := range ids { // not written: pending again
		t.dirty[id] = struct{}{}
	}
	lag := len(t.dirty) + len(t.events)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if t.metrics != nil {
		t.metrics.StateLag.Set(float64(lag))
	}
	return nil
}
