package modbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/ingest/internal/wait"
	"github.com/meterd/meterd/ingest/spool"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/postgres"
	"github.com/meterd/meterd/meter/regmap"
)

// Config tunes the poller. Zero values take the defaults.
type Config struct {
	// Interval is the poll period of devices that set none. Default 15 s.
	Interval time.Duration
	// Timeout is a device's reply timeout when it sets none. Default 1 s.
	Timeout time.Duration
	// OnTime is how late a poll may start and still count as on time.
	// Default 10% of its interval.
	OnTime float64
	// BreakerFailures is how many consecutive failed polls (timeouts, I/O
	// errors; not Modbus exceptions, which prove the device alive) open a
	// device's breaker. Default 1: a dead meter costs one timeout, then one
	// per BreakerPeriod.
	BreakerFailures uint32
	// BreakerPeriod is how long a breaker stays open before one probe poll.
	// Default 30 s.
	BreakerPeriod time.Duration
	// MaxGap is the planner's MaxGap (regmap.PlanOptions). Default
	// regmap.DefaultMaxGap.
	MaxGap int
	// Logger receives device events. Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Interval == 0 {
		c.Interval = 15 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = time.Second
	}
	if c.OnTime == 0 {
		c.OnTime = 0.1
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 1
	}
	if c.BreakerPeriod == 0 {
		c.BreakerPeriod = 30 * time.Second
	}
	if c.MaxGap == 0 {
		c.MaxGap = regmap.DefaultMaxGap
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Interval < 0 || c.Timeout < 0 || c.OnTime < 0 || c.BreakerPeriod < 0 || c.MaxGap < 0 {
		return errors.New("modbus: durations and sizes must not be negative")
	}
	return nil
}

// Bus is one physical bus: a serial line or a TCP endpoint with its
// devices.
type Bus struct {
	Transport Transport
	Address   string // host:port, or the serial device
	Serial    SerialConfig
	// Gap is the pause between two requests on the bus (inter-frame gap
	// plus device turnaround). Default 0 on TCP, 5 ms on RTU transports.
	Gap     time.Duration
	Devices []Device
}

// Device is one meter on a bus.
type Device struct {
	Name     string // metric label; default "<address>/<unit>"
	MeterID  int64
	Unit     byte
	Map      *regmap.Map
	Interval time.Duration // default Config.Interval
	Timeout  time.Duration // default Config.Timeout
}

// Settings are the keys of meters.settings a Modbus meter uses. The map is
// the meter's model (meters.model, a meter/regmap model).
type Settings struct {
	Address   string `json:"address"`             // host:port of the TCP gateway, or a serial device
	UnitID    int    `json:"unit_id"`             // unit id behind it
	Transport string `json:"transport,omitempty"` // tcp (default), rtuovertcp or rtu
	Baud      int    `json:"baud,omitempty"`      // RTU line speed
	Interval  string `json:"interval,omitempty"`  // poll period; default the meter's expected interval
	Timeout   string `json:"timeout,omitempty"`   // reply timeout
}

// BusesFromMeters groups the directory's Modbus meters into buses by
// transport and address. Meters it cannot use are returned as errors (and
// left out); the rest are polled.
func BusesFromMeters(ms []postgres.Meter) ([]Bus, []error) {
	byKey := map[string]*Bus{}
	var errs []error
	for _, m := range ms {
		if m.Protocol != "modbus" {
			continue
		}
		var s Settings
		if err := json.Unmarshal(m.Settings, &s); err != nil {
			errs = append(errs, fmt.Errorf("meter %s/%s: settings: %w", m.TenantCode, m.ExternalID, err))
			continue
		}
		if s.Address == "" || s.UnitID < 0 || s.UnitID > 255 {
			errs = append(errs, fmt.Errorf("meter %s/%s: settings need an address and a unit_id 0..255", m.TenantCode, m.ExternalID))
			continue
		}
		mp, err := regmap.Load(m.Model)
		if err != nil {
			errs = append(errs, fmt.Errorf("meter %s/%s: %w", m.TenantCode, m.ExternalID, err))
			continue
		}
		t := Transport(s.Transport)
		if t == "" {
			t = TCP
		}
		d := Device{Name: m.TenantCode + "/" + m.ExternalID, MeterID: m.ID, Unit: byte(s.UnitID), Map: mp, Interval: m.ExpectedInterval}
		if s.Interval != "" {
			if d.Interval, err = time.ParseDuration(s.Interval); err != nil {
				errs = append(errs, fmt.Errorf("meter %s/%s: interval: %w", m.TenantCode, m.ExternalID, err))
				continue
			}
		}
		if s.Timeout != "" {
			if d.Timeout, err = time.ParseDuration(s.Timeout); err != nil {
				errs = append(errs, fmt.Errorf("meter %s/%s: timeout: %w", m.TenantCode, m.ExternalID, err))
				continue
			}
		}
		key := string(t) + "://" + s.Address
		b := byKey[key]
		if b == nil {
			b = &Bus{Transport: t, Address: s.Address, Serial: SerialConfig{BaudRate: s.Baud}}
			byKey[key] = b
		}
		b.Devices = append(b.Devices, d)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	buses := make([]Bus, 0, len(keys))
	for _, k := range keys {
		buses = append(buses, *byKey[k])
	}
	return buses, errs
}

// Pipe is what the poller needs from the pipeline.
type Pipe interface {
	TrySubmit(e *ingest.Envelope) bool
	Submit(ctx context.Context, e *ingest.Envelope) error
	Healthy() bool
}

// CounterSpecs is told each device's register arithmetic (ingest.Tracker).
type CounterSpecs interface {
	SetCounterSpec(meterID int64, reg meter.Fields, spec meter.CounterSpec)
}

// Poller polls every bus, a component with Start and Stop.
type Poller struct {
	cfg    Config
	buses  []*bus
	pipe   Pipe
	spool  *spool.Spool
	specs  CounterSpecs
	limits meter.Limits
	m      *pollMetrics
	im     *ingest.Metrics
	log    *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
	drops  rateLog
}

type pollMetrics struct {
	polls     *prometheus.CounterVec
	late      *prometheus.CounterVec
	skipped   *prometheus.CounterVec
	breaker   *prometheus.GaugeVec
	pollTime  prometheus.Histogram
	lateness  prometheus.Histogram
	spooled   prometheus.Counter
	spoolSize prometheus.GaugeFunc
	spoolAge  prometheus.GaugeFunc
}

// New returns a poller for buses. sp may be nil (no spool: readings the
// pipeline cannot take at once are dropped and counted); specs may be nil.
func New(cfg Config, buses []Bus, pipe Pipe, sp *spool.Spool, specs CounterSpecs, limits meter.Limits, im *ingest.Metrics, reg prometheus.Registerer) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	p := &Poller{cfg: cfg, pipe: pipe, spool: sp, specs: specs, limits: limits, im: im, log: cfg.Logger}
	p.drops.every = 10 * time.Second
	const ns, sub = "meterd", "ingest_modbus"
	p.m = &pollMetrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "polls_total",
			Help: "Device polls, by device and result (ok, partial, timeout, exception, error, breaker_open)."}, []string{"device", "result"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "late_polls_total",
			Help: "Polls that started later than the on-time allowance after their slot, by device."}, []string{"device"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "skipped_slots_total",
			Help: "Poll slots skipped because the bus was still busy with earlier ones, by device."}, []string{"device"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "breaker_state",
			Help: "Circuit breaker state by device: 0 closed, 1 half-open, 2 open."}, []string{"device"}),
		pollTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "poll_seconds",
			Help: "Time one device poll held its bus.", Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10)}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "poll_start_delay_seconds",
			Help: "How long after its slot a poll started.", Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10)}),
		spooled: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "spooled_total",
			Help: "Poll results written to the spool instead of the pipeline."}),
	}
	p.m.spoolSize = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "meterd", Subsystem: "ingest", Name: "spool_bytes",
		Help: "Bytes in the Modbus spool not yet committed to the database."}, func() float64 {
		if sp == nil {
			return 0
		}
		return float64(sp.Bytes())
	})
	p.m.spoolAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "meterd", Subsystem: "ingest", Name: "spool_oldest_age_seconds",
		Help: "Age of the oldest record in the Modbus spool, 0 when empty."}, func() float64 {
		if sp == nil {
			return 0
		}
		return sp.OldestAge().Seconds()
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{p.m.polls, p.m.late, p.m.skipped, p.m.breaker, p.m.pollTime, p.m.lateness,
			p.m.spooled, p.m.spoolSize, p.m.spoolAge} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	for _, b := range buses {
		nb, err := p.newBus(b)
		if err != nil {
			return nil, err
		}
		p.buses = append(p.buses, nb)
	}
	return p, nil
}

// Start starts one scheduler per bus and the spool replayer.
func (p *Poller) Start(ctx context.Context) error {
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, b := range p.buses {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			b.run(ctx)
		}()
	}
	if p.spool != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.replay(ctx)
		}()
	}
	return nil
}

// Stop stops polling and replay and closes the bus connections.
func (p *Poller) Stop(ctx context.Context) error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, b := range p.buses {
		_ = b.conn.close()
	}
	return nil
}

// Stats are a device's running totals, for tests and benchmarks.
type Stats struct {
	Polls, OnTime, Late, Skipped, Failed, BreakerOpen int64
	MaxDelay                                          time.Duration // latest start after a slot
}

// Stats returns the totals of every device, keyed by device name.
func (p *Poller) Stats() map[string]Stats {
	out := map[string]Stats{}
	for _, b := range p.buses {
		b.mu.Lock()
		for _, d := range b.devices {
			out[d.name] = d.stats
		}
		b.mu.Unlock()
	}
	return out
}

// deliver hands a poll's envelope to the pipeline, or to the spool when the
// database is not taking writes or older readings wait in the spool (so
// replay stays in order).
func (p *Poller) deliver(e *ingest.Envelope) {
	if p.spool == nil {
		if !p.pipe.TrySubmit(e) {
			p.drop(len(e.Readings), "queue_full", nil)
		}
		return
	}
	if p.spool.Empty() && p.pipe.Healthy() {
		e.Done = func(err error) {
			if err != nil { // the pipeline stopped first: keep it
				p.toSpool(e)
			}
		}
		if p.pipe.TrySubmit(e) {
			return
		}
		e.Done = nil
	}
	p.toSpool(e)
}

func (p *Poller) toSpool(e *ingest.Envelope) {
	if err := p.spool.Append(encodeEnvelope(e)); err != nil {
		p.drop(len(e.Readings), "spool_full", err)
		return
	}
	p.m.spooled.Inc()
}

func (p *Poller) drop(n int, reason string, err error) {
	if p.im != nil {
		p.im.Dropped.WithLabelValues(reason).Add(float64(n))
	}
	if p.drops.allow() {
		p.log.Error("dropping Modbus readings", "reason", reason, "err", err)
	}
}

// replay feeds spooled records back into the pipeline in order and commits
// each once stored.
func (p *Poller) replay(ctx context.Context) {
	defer p.spool.Rewind()
	for {
		rec, ok, err := p.spool.Next()
		if err != nil {
			p.log.Error("spool read failed", "err", err)
			return
		}
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-p.spool.Wait():
			case <-time.After(time.Second):
			}
			continue
		}
		e, err := decodeEnvelope(rec.Data)
		if err != nil { // cannot happen for records this version wrote
			p.drop(0, "spool_corrupt", err)
			_ = p.spool.Commit(rec.Pos)
			continue
		}
		pos := rec.Pos
		e.Done = func(err error) {
			if err == nil {
				_ = p.spool.Commit(pos)
			}
		}
		if err := p.pipe.Submit(ctx, e); err != nil {
			return
		}
	}
}

// bus is one bus's scheduler state.
type bus struct {
	p       *Poller
	spec    Bus
	conn    *conn
	gap     time.Duration
	mu      sync.Mutex // guards devices' stats
	devices []*device
}

type device struct {
	name        string
	meterID     int64
	unit        byte
	mp          *regmap.Map
	plan        regmap.Plan
	interval    time.Duration
	timeout     time.Duration
	due         time.Time
	breaker     *gobreaker.CircuitBreaker[struct{}]
	unsupported map[int]bool // optional blocks the device answered with an exception
	specSet     bool
	stats       Stats
}

func (p *Poller) newBus(b Bus) (*bus, error) {
	c, err := newConn(b.Transport, b.Address, b.Serial)
	if err != nil {
		return nil, err
	}
	nb := &bus{p: p, spec: b, conn: c, gap: b.Gap}
	if nb.gap == 0 && b.Transport != TCP {
		nb.gap = 5 * time.Millisecond
	}
	for _, d := range b.Devices {
		if d.Map == nil {
			return nil, fmt.Errorf("modbus: device %s has no register map", d.Name)
		}
		plan, err := d.Map.Plan(regmap.PlanOptions{MaxGap: p.cfg.MaxGap})
		if err != nil {
			return nil, err
		}
		nd := &device{name: d.Name, meterID: d.MeterID, unit: d.Unit, mp: d.Map, plan: plan,
			interval: d.Interval, timeout: d.Timeout, unsupported: map[int]bool{}}
		if nd.name == "" {
			nd.name = b.Address + "/" + strconv.Itoa(int(d.Unit))
		}
		if nd.interval <= 0 {
			nd.interval = p.cfg.Interval
		}
		if nd.timeout <= 0 {
			nd.timeout = p.cfg.Timeout
		}
		name := nd.name
		nd.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        name,
			MaxRequests: 1,
			Timeout:     p.cfg.BreakerPeriod,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= p.cfg.BreakerFailures },
			// A Modbus exception is an answer: the device is alive.
			IsSuccessful: func(err error) bool { _, exc := isException(err); return err == nil || exc },
			OnStateChange: func(_ string, from, to gobreaker.State) {
				p.m.breaker.WithLabelValues(name).Set(float64(to))
				p.log.Info("Modbus device breaker", "device", name, "from", from.String(), "to", to.String())
			},
		})
		p.m.breaker.WithLabelValues(name).Set(0)
		nb.devices = append(nb.devices, nd)
	}
	return nb, nil
}

// run polls the bus's devices in slot order, one request at a time, until
// ctx ends.
func (b *bus) run(ctx context.Context) {
	if len(b.devices) == 0 {
		return
	}
	now := time.Now()
	for _, d := range b.devices {
		d.due = now.Truncate(d.interval).Add(d.interval)
	}
	for {
		d := b.devices[0]
		for _, x := range b.devices[1:] {
			if x.due.Before(d.due) {
				d = x
			}
		}
		if wait := time.Until(d.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		start := time.Now()
		delay := start.Sub(d.due)
		b.p.m.lateness.Observe(delay.Seconds())
		onTime := delay <= time.Duration(b.p.cfg.OnTime*float64(d.interval))
		b.poll(ctx, d)
		b.p.m.pollTime.Observe(time.Since(start).Seconds())
		// The next slot strictly after now: slots the bus had no time
		// for are skipped, never queued.
		next := d.due.Add(d.interval)
		skipped := int64(0)
		for !next.After(time.Now()) {
			next = next.Add(d.interval)
			skipped++
		}
		b.mu.Lock()
		d.due = next
		d.stats.Polls++
		if onTime {
			d.stats.OnTime++
		} else {
			d.stats.Late++
			b.p.m.late.WithLabelValues(d.name).Inc()
		}
		d.stats.Skipped += skipped
		d.stats.MaxDelay = max(d.stats.MaxDelay, delay)
		b.mu.Unlock()
		if skipped > 0 {
			b.p.m.skipped.WithLabelValues(d.name).Add(float64(skipped))
		}
		if b.gap > 0 && !wait.Sleep(ctx, b.gap) {
			return
		}
	}
}

// poll reads one device through its breaker and delivers the reading.
func (b *bus) poll(ctx context.Context, d *device) {
	var r meter.Reading
	var rejects []postgres.Reject
	_, err := d.breaker.Execute(func() (struct{}, error) {
		var err error
		r, rejects, err = b.read(ctx, d)
		return struct{}{}, err
	})
	result := "ok"
	switch code, exc := isException(err); {
	case err == nil && r.Quality&meter.QualityPartial != 0:
		result = "partial"
	case err == nil:
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		result = "breaker_open"
	case exc:
		result = "exception"
		b.p.log.Debug("Modbus exception", "device", d.name, "code", code)
	case isTimeout(err):
		result = "timeout"
	default:
		result = "error"
	}
	b.p.m.polls.WithLabelValues(d.name, result).Inc()
	b.mu.Lock()
	switch result {
	case "breaker_open":
		d.stats.BreakerOpen++
	case "ok", "partial":
	default:
		d.stats.Failed++
	}
	b.mu.Unlock()
	if err != nil {
		return
	}
	e := &ingest.Envelope{Rejects: rejects}
	if r.Fields != 0 {
		if cerr := b.p.limits.Check(&r, r.ReceivedAt); cerr != nil {
			re, _ := errors.AsType[*meter.RejectError](cerr)
			if re == nil {
				re = meter.Reject(meter.ReasonImpossibleValue, "", cerr)
			}
			e.Rejects = append(e.Rejects, b.reject(d, r.ReceivedAt, re))
		} else {
			e.Readings = []meter.Reading{r}
		}
	}
	if b.p.im != nil {
		b.p.im.Received.WithLabelValues(meter.SourceModbus.String()).Inc()
	}
	if len(e.Readings) > 0 || len(e.Rejects) > 0 {
		b.p.deliver(e)
	}
}

func (b *bus) reject(d *device, at time.Time, re *meter.RejectError) postgres.Reject {
	return postgres.Reject{ReceivedAt: at, Source: meter.SourceModbus,
		Topic: string(b.spec.Transport) + "://" + b.spec.Address + "/" + strconv.Itoa(int(d.unit)), MeterRef: d.name,
		Reason: re.Reason, Detail: re.Error()}
}

// read reads every block of d's plan. The reading's time is when the first
// block (the energy and instantaneous values) was requested.
func (b *bus) read(ctx context.Context, d *device) (meter.Reading, []postgres.Reject, error) {
	var v meter.Values
	var t0 time.Time
	partial := false
	var rejects []postgres.Reject
	for i := range d.plan.Blocks {
		blk := &d.plan.Blocks[i]
		if d.unsupported[i] {
			partial = true
			continue
		}
		if i > 0 && b.gap > 0 && !wait.Sleep(ctx, b.gap) {
			return meter.Reading{}, nil, ctx.Err()
		}
		ts := time.Now()
		words, err := b.conn.read(d.unit, blk.Function, blk.Start, blk.Count, d.timeout)
		if err != nil {
			if code, exc := isException(err); exc && blk.Optional && (code == 1 || code == 2) {
				d.unsupported[i] = true
				partial = true
				b.p.log.Info("Modbus device lacks an optional register; not reading it again", "device", d.name,
					"address", blk.Start, "quantities", blk.Quantities())
				continue
			}
			if blk.Optional {
				partial = true
				continue
			}
			return meter.Reading{}, nil, err
		}
		if t0.IsZero() {
			t0 = ts
		}
		if derr := blk.Decode(words, &v); derr != nil {
			re, ok := errors.AsType[*meter.RejectError](derr)
			if !ok {
				re = meter.Reject(meter.ReasonImpossibleValue, "", derr)
			}
			rejects = append(rejects, b.reject(d, ts.UTC(), re))
		}
		if !d.specSet && b.p.specs != nil {
			b.setSpecs(d, blk, words)
		}
	}
	r := v.Reading()
	r.MeterID, r.Source = d.meterID, meter.SourceModbus
	r.Time = meter.NormalizeTime(t0)
	r.ReceivedAt = time.Now().UTC()
	if partial {
		r.Quality |= meter.QualityPartial
	}
	return r, rejects, nil
}

// setSpecs tells the tracker how d's energy registers count (rollover
// modulus, resolution), from the map and any SunSpec scale factor.
func (b *bus) setSpecs(d *device, blk *regmap.Block, words []uint16) {
	for _, q := range []struct {
		q meter.Quantity
		f meter.Fields
	}{{meter.QuantityImportEnergy, meter.FieldImport}, {meter.QuantityExportEnergy, meter.FieldExport}} {
		reg, ok := d.mp.Register(q.q)
		if !ok {
			continue
		}
		sf := 0
		if reg.ScaleFactor >= 0 {
			if sf, ok = blk.ScaleFactor(q.q, words); !ok {
				continue
			}
		}
		if spec, err := d.mp.CounterSpec(q.q, sf); err == nil {
			b.p.specs.SetCounterSpec(d.meterID, q.f, spec)
			d.specSet = true
		}
	}
}

// rateLog lets a log line through at most once per every.
type rateLog struct {
	mu    sync.Mutex
	every time.Duration
	last  time.Time
}

func (r *rateLog) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.last) >= r.every {
		r.last = now
		return true
	}
	return false
}
