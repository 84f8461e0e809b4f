package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meterd/meterd/ingest/internal/wait"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/postgres"
)

// ReadingStore is what the pipeline's writers need from the store.
type ReadingStore interface {
	WriteReadings(ctx context.Context, rows []meter.Reading) (postgres.WriteResult, error)
	WriteRejects(ctx context.Context, rs []postgres.Reject) error
}

// PartitionMaker creates missing readings partitions (schema.Upkeep).
type PartitionMaker interface {
	EnsurePartitions(ctx context.Context, from, to time.Time) (int, error)
}

// Observer is told about readings after they committed (the Tracker).
type Observer interface {
	Observe(rows []meter.Reading)
}

// PipelineConfig tunes the pipeline. Zero values take the defaults.
type PipelineConfig struct {
	// BatchSize is the number of readings that closes a batch. Default
	// 10 000 (COPY gains flatten beyond 10–20k while commit latency keeps
	// growing; ingest-anchors §5.2). One message larger than this forms a
	// batch of its own.
	BatchSize int
	// Linger is the longest a batch stays open after its first reading.
	// Default 200 ms.
	Linger time.Duration
	// QuietLinger closes a batch earlier, whatever its size, once it is
	// this old and no further input is waiting: a light load, or
	// publishers holding back until their messages are acknowledged (QoS 1
	// meters on the embedded broker, whose acknowledgement follows the
	// commit), is written at once instead of waiting out Linger, while a
	// steady stream still fills batches. Default 5 ms (at most Linger).
	QuietLinger time.Duration
	// Writers is the number of batches written at once, one database
	// connection each. Default 2.
	Writers int
	// MaxQueued bounds the readings (and rejects) accepted but not yet
	// committed; Submit blocks beyond it. Default 200 000 (≈ 20 MB).
	MaxQueued int
	// AttemptTimeout bounds one write attempt. Default 30 s.
	AttemptTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff, with jitter,
	// between attempts on transient errors. Defaults 100 ms and 5 s.
	RetryMin, RetryMax time.Duration
}

func (c *PipelineConfig) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 10_000
	}
	if c.Linger == 0 {
		c.Linger = 200 * time.Millisecond
	}
	if c.QuietLinger == 0 {
		c.QuietLinger = 5 * time.Millisecond
	}
	c.QuietLinger = min(c.QuietLinger, c.Linger)
	if c.Writers == 0 {
		c.Writers = 2
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = 200_000
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 30 * time.Second
	}
	if c.RetryMin == 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
}

// Validate checks the configuration.
func (c PipelineConfig) Validate() error {
	if c.BatchSize < 0 || c.Linger < 0 || c.QuietLinger < 0 || c.Writers < 0 || c.MaxQueued < 0 || c.AttemptTimeout < 0 || c.RetryMin < 0 || c.RetryMax < 0 {
		return errors.New("ingest: pipeline sizes and durations must not be negative")
	}
	if c.RetryMax != 0 && c.RetryMin > c.RetryMax {
		return errors.New("ingest: RetryMin exceeds RetryMax")
	}
	if c.MaxQueued != 0 && c.BatchSize > c.MaxQueued {
		return errors.New("ingest: BatchSize exceeds MaxQueued")
	}
	return nil
}

// Envelope is one unit of input: the readings and rejects of one MQTT
// message or one Modbus poll. Done is called exactly once: with nil after
// all of it has committed, or with ErrStopped if the pipeline stopped
// first (then nothing of it may be assumed stored, and the source keeps it:
// MQTT leaves the message unacknowledged, Modbus spools it).
type Envelope struct {
	Readings []meter.Reading // resolved (MeterID set) and checked
	Rejects  []postgres.Reject
	Done     func(err error)
	weight   int
}

// ErrStopped is passed to Envelope.Done, and returned by Submit, when the
// pipeline stops before the envelope committed.
var ErrStopped = errors.New("ingest: pipeline stopped")

// Pipeline batches envelopes and writes them: bounded intake with
// backpressure, batches closed by size or linger, in-batch dedupe, writes
// retried with backoff on transient errors, missing partitions created,
// bad rows triaged one by one into rejects. It is a component: Start, then
// Submit from any goroutine, then Stop.
type Pipeline struct {
	cfg     PipelineConfig
	store   ReadingStore
	parts   PartitionMaker
	obs     Observer
	metrics *Metrics
	log     *slog.Logger

	limit   *limiter
	mu      sync.RWMutex // guards closed against Submit's send
	closed  bool
	in      chan *Envelope
	batches chan *batch
	healthy atomic.Bool

	writeCtx  context.Context // cancelled when Stop runs out of time
	cancel    context.CancelFunc
	batcherWG sync.WaitGroup
	writerWG  sync.WaitGroup

	errLog rateLog
}

type batch struct {
	envs []*Envelope
	rows int
}

// NewPipeline returns a pipeline writing to store. parts and obs may be nil.
func NewPipeline(cfg PipelineConfig, store ReadingStore, parts PartitionMaker, obs Observer, m *Metrics, log *slog.Logger) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{cfg: cfg, store: store, parts: parts, obs: obs, metrics: m, log: log,
		limit: newLimiter(cfg.MaxQueued), in: make(chan *Envelope, cfg.MaxQueued), batches: make(chan *batch, cfg.Writers)}
	p.healthy.Store(true)
	p.errLog.every = 10 * time.Second
	return p, nil
}

// Start starts the batcher and the writers.
func (p *Pipeline) Start(ctx context.Context) error {
	p.writeCtx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.batcherWG.Add(1)
	go p.batcher()
	for range p.cfg.Writers {
		p.writerWG.Add(1)
		go p.writer()
	}
	return nil
}

// Stop stops intake and writes what was accepted until ctx runs out; the
// envelopes still unwritten then get ErrStopped.
func (p *Pipeline) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.in)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.batcherWG.Wait()
		p.writerWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		p.cancel()
		<-done
	}
	p.cancel()
	return nil
}

// Healthy reports whether the last database write succeeded.
func (p *Pipeline) Healthy() bool { return p.healthy.Load() }

// Submit hands e to the pipeline, blocking while the pipeline holds
// MaxQueued readings (backpressure). It returns ErrStopped after Stop, or
// ctx's error; in both cases e.Done is not called.
func (p *Pipeline) Submit(ctx context.Context, e *Envelope) error {
	e.weight = max(1, len(e.Readings)+len(e.Rejects))
	if err := p.limit.acquire(ctx, e.weight); err != nil {
		return err
	}
	return p.enqueue(e)
}

// TrySubmit is Submit without waiting: it returns false, without calling
// e.Done, when the pipeline is full or stopped.
func (p *Pipeline) TrySubmit(e *Envelope) bool {
	e.weight = max(1, len(e.Readings)+len(e.Rejects))
	if !p.limit.tryAcquire(e.weight) {
		return false
	}
	return p.enqueue(e) == nil
}

func (p *Pipeline) enqueue(e *Envelope) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.limit.release(e.weight)
		return ErrStopped
	}
	p.in <- e // never blocks: capacity ≥ MaxQueued ≥ queued weight
	if p.metrics != nil {
		p.metrics.QueueReadings.Add(float64(e.weight))
	}
	return nil
}

// batcher groups envelopes into batches: closed at BatchSize readings, at
// Linger age, or at QuietLinger age when no further input is waiting.
func (p *Pipeline) batcher() {
	defer p.batcherWG.Done()
	defer close(p.batches)
	var cur *batch
	ripe := false // cur is QuietLinger old: the timer now runs to Linger
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if cur != nil {
			p.batches <- cur
			cur = nil
		}
		ripe = false
		timer.Stop()
	}
	for {
		if ripe && len(p.in) == 0 {
			flush()
			continue
		}
		select {
		case e, ok := <-p.in:
			if !ok {
				flush()
				return
			}
			if cur == nil {
				cur = &batch{}
				timer.Reset(p.cfg.QuietLinger)
			}
			cur.envs = append(cur.envs, e)
			cur.rows += len(e.Readings)
			if cur.rows >= p.cfg.BatchSize {
				flush()
			}
		case <-timer.C:
			if ripe || p.cfg.QuietLinger == p.cfg.Linger {
				flush()
				continue
			}
			ripe = true
			timer.Reset(p.cfg.Linger - p.cfg.QuietLinger)
		}
	}
}

func (p *Pipeline) writer() {
	defer p.writerWG.Done()
	for b := range p.batches {
		err := p.write(p.writeCtx, b)
		weight := 0
		for _, e := range b.envs {
			weight += e.weight
			if e.Done != nil {
				e.Done(err)
			}
		}
		p.limit.release(weight)
		if p.metrics != nil {
			p.metrics.QueueReadings.Sub(float64(weight))
		}
	}
}

type readingKey struct {
	meter int64
	us    int64
}

// write commits one batch: rejects first, then the deduplicated readings.
// It returns nil or ErrStopped.
func (p *Pipeline) write(ctx context.Context, b *batch) error {
	start := time.Now()
	rows := make([]meter.Reading, 0, b.rows)
	var rejects []postgres.Reject
	seen := make(map[readingKey]struct{}, b.rows)
	dups := 0
	for _, e := range b.envs {
		rejects = append(rejects, e.Rejects...)
		for _, r := range e.Readings {
			k := readingKey{r.MeterID, r.Time.UnixMicro()}
			if _, ok := seen[k]; ok {
				dups++
				continue
			}
			seen[k] = struct{}{}
			rows = append(rows, r)
		}
	}
	if len(rejects) > 0 {
		if err := p.retry(ctx, nil, func(ctx context.Context) error { return p.store.WriteRejects(ctx, rejects) }); err != nil {
			if errors.Is(err, postgres.ErrBadRow) {
				// A reject the database refuses even after cleaning:
				// counted and logged, never retried forever.
				p.drop("reject_refused", len(rejects), err)
			} else {
				return ErrStopped
			}
		} else {
			p.countRejects(rejects)
		}
	}
	res, bad, err := p.writeRows(ctx, rows)
	if err != nil {
		return ErrStopped
	}
	if len(bad) > 0 {
		if err := p.retry(ctx, nil, func(ctx context.Context) error { return p.store.WriteRejects(ctx, bad) }); err != nil {
			if !errors.Is(err, postgres.ErrBadRow) {
				return ErrStopped
			}
			p.drop("reject_refused", len(bad), err)
		} else {
			p.countRejects(bad)
		}
	}
	if p.metrics != nil {
		p.metrics.Written.Add(float64(res.Inserted))
		p.metrics.Duplicates.WithLabelValues("batch").Add(float64(dups))
		p.metrics.Duplicates.WithLabelValues("database").Add(float64(res.Duplicates))
		p.metrics.BatchRows.Observe(float64(len(rows)))
		p.metrics.BatchSeconds.Observe(time.Since(start).Seconds())
	}
	if p.obs != nil && len(rows) > 0 {
		p.obs.Observe(rows)
	}
	return nil
}

// writeRows writes rows, splitting the batch to isolate rows the database
// refuses; those come back as rejects. err is non-nil only when stopping.
func (p *Pipeline) writeRows(ctx context.Context, rows []meter.Reading) (postgres.WriteResult, []postgres.Reject, error) {
	if len(rows) == 0 {
		return postgres.WriteResult{}, nil, nil
	}
	var res postgres.WriteResult
	err := p.retry(ctx, rows, func(ctx context.Context) error {
		var err error
		res, err = p.store.WriteReadings(ctx, rows)
		return err
	})
	if err == nil {
		return res, nil, nil
	}
	if !errors.Is(err, postgres.ErrBadRow) {
		return res, nil, err
	}
	if len(rows) == 1 {
		r := &rows[0]
		return postgres.WriteResult{}, []postgres.Reject{{
			ReceivedAt: r.ReceivedAt, Source: r.Source, MeterRef: strconv.FormatInt(r.MeterID, 10),
			Reason: meter.ReasonImpossibleValue, Detail: "database refused the reading: " + err.Error(),
			Payload: payload.AppendCanonical(nil, r, payload.CanonicalOptions{}),
		}}, nil
	}
	mid := len(rows) / 2
	a, badA, err := p.writeRows(ctx, rows[:mid])
	if err != nil {
		return res, nil, err
	}
	b, badB, err := p.writeRows(ctx, rows[mid:])
	if err != nil {
		return res, nil, err
	}
	return postgres.WriteResult{Inserted: a.Inserted + b.Inserted, Duplicates: a.Duplicates + b.Duplicates, Staged: a.Staged || b.Staged},
		append(badA, badB...), nil
}

// retry runs f until it succeeds, fails with ErrBadRow (returned), or ctx
// ends (ctx's error). Transient errors back off; a missing partition is
// created for rows' time range first.
func (p *Pipeline) retry(ctx context.Context, rows []meter.Reading, f func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, p.cfg.AttemptTimeout)
		err := f(actx)
		cancel()
		switch {
		case err == nil:
			if !p.healthy.Swap(true) {
				p.log.Info("database writes recovered", "attempts", attempt+1)
			}
			p.setHealthy(true)
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, postgres.ErrBadRow):
			return err
		case errors.Is(err, postgres.ErrMissingPartition) && p.parts != nil && len(rows) > 0:
			p.countRetry("missing_partition")
			from, to := timeRange(rows)
			if n, perr := p.parts.EnsurePartitions(ctx, from, to); perr != nil {
				err = fmt.Errorf("ensure partitions: %w", perr)
			} else {
				p.log.Info("created readings partitions", "count", n, "from", from, "to", to)
				continue
			}
		default:
			p.countRetry("transient")
		}
		p.healthy.Store(false)
		p.setHealthy(false)
		if p.errLog.allow() {
			p.log.Warn("database write failed; retrying", "err", err, "attempt", attempt+1)
		}
		if !wait.Sleep(ctx, backoff(p.cfg.RetryMin, p.cfg.RetryMax, attempt)) {
			return ctx.Err()
		}
	}
}

func (p *Pipeline) setHealthy(ok bool) {
	if p.metrics == nil {
		return
	}
	if ok {
		p.metrics.DBHealthy.Set(1)
	} else {
		p.metrics.DBHealthy.Set(0)
	}
}

func (p *Pipeline) countRetry(cause string) {
	if p.metrics != nil {
		p.metrics.WriteRetries.WithLabelValues(cause).Inc()
	}
}

func (p *Pipeline) countRejects(rs []postgres.Reject) {
	if p.metrics == nil {
		return
	}
	for _, r := range rs {
		p.metrics.Rejected.WithLabelValues(string(r.Reason)).Inc()
	}
}

func (p *Pipeline) drop(reason string, n int, err error) {
	if p.metrics != nil {
		p.metrics.Dropped.WithLabelValues(reason).Add(float64(n))
	}
	p.log.Error("dropped input the database refuses", "reason", reason, "count", n, "err", err)
}

func timeRange(rows []meter.Reading) (from, to time.Time) {
	from, to = rows[0].Time, rows[0].Time
	for _, r := range rows[1:] {
		if r.Time.Before(from) {
			from = r.Time
		}
		if r.Time.After(to) {
			to = r.Time
		}
	}
	return from, to
}

// backoff returns the delay before retry attempt+1: exponential from lo to
// hi with "equal jitter" (half fixed, half random), so that many gateways
// retrying together spread out.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// limiter is a weighted semaphore: acquire blocks until n units are free.
// A request larger than the capacity is admitted when nothing else is held,
// so one huge envelope cannot deadlock the pipeline.
type limiter struct {
	mu   sync.Mutex
	cap  int
	used int
	wake chan struct{}
}

func newLimiter(n int) *limiter { return &limiter{cap: n, wake: make(chan struct{})} }

func (l *limiter) tryAcquire(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used+n <= l.cap || l.used == 0 {
		l.used += n
		return true
	}
	return false
}

func (l *limiter) acquire(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		if l.used+n <= l.cap || l.used == 0 {
			l.used += n
			l.mu.Unlock()
			return nil
		}
		w := l.wake
		l.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *limiter) release(n int) {
	l.mu.Lock()
	l.used -= n
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// rateLog lets a repeated log line through at most once per every, so a
// long outage logs a rate, not a flood.
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
