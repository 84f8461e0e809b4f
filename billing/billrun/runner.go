package billrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterd/meterd/billing/municipal"
	"github.com/meterd/meterd/billing/postgres"
)

// Config configures bill runs.
type Config struct {
	// BatchSize is how many connections one transaction bills. Default 500.
	BatchSize int
	// Workers is how many batches of one run are billed at once, each on
	// its own connection. Default 2.
	Workers int
	// ScheduleEvery is how often the scheduler looks for due runs and
	// overdue bills. Default 1 hour.
	ScheduleEvery time.Duration
}

// Validate checks the configuration; zero values take the defaults.
func (c Config) Validate() error {
	if c.BatchSize < 0 || c.BatchSize > 10000 {
		return errors.New("billrun: batch size must be 1..10000")
	}
	if c.Workers < 0 || c.Workers > 32 {
		return errors.New("billrun: workers must be 1..32")
	}
	if c.ScheduleEvery < 0 || (c.ScheduleEvery > 0 && c.ScheduleEvery < time.Minute) {
		return errors.New("billrun: schedule interval must be at least 1m")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.ScheduleEvery == 0 {
		c.ScheduleEvery = time.Hour
	}
	return c
}

// Runner executes bill runs against the store.
type Runner struct {
	store   *postgres.Store
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

type metrics struct {
	outcomes *prometheus.CounterVec
	batches  *prometheus.HistogramVec
	deadOpen *prometheus.GaugeVec
}

// NewRunner returns a runner; reg may be nil (no metrics).
func NewRunner(store *postgres.Store, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "meterd", Subsystem: "billing", Name: "connections_total",
			Help: "Connections handled by bill runs, by outcome (billed, unchanged, skipped, failed)."}, []string{"outcome"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "meterd", Subsystem: "billing", Name: "batch_seconds",
			Help: "Duration of bill-run batch transactions, by mode (batch or item retry).", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}, []string{"mode"}),
		deadOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "meterd", Subsystem: "billing", Name: "dead_letters_open",
			Help: "Connections a bill run could not bill and no later run has billed yet, per tenant and service."}, []string{"tenant", "service"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.outcomes, m.batches, m.deadOpen} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("billrun metrics: %w", err)
			}
		}
	}
	return &Runner{store: store, cfg: cfg.withDefaults(), log: log, metrics: m}, nil
}

// BatchSize is the configured batch size.
func (r *Runner) BatchSize() int { return r.cfg.BatchSize }

// Execute runs bill run id to its end, resuming after its cursor if an
// earlier attempt stopped. Batches are billed by Workers goroutines at
// once; the cursor only moves past batches that all committed (a low-water
// mark), and connections a resumed run had already counted are not counted
// again. progress, when not nil, is called as batches finish with the
// run's committed counts. A database failure ends the run with an error
// (the River job retries it and it resumes); failures of single
// connections are dead letters, not errors.
func (r *Runner) Execute(ctx context.Context, id int64, progress func(postgres.Run)) (postgres.Run, error) {
	run, err := r.store.StartRun(ctx, id)
	if err != nil {
		return run, err
	}
	var biller *Biller
	if _, ok := municipal.ForService(run.Service); ok {
		plans, err := r.store.MunicipalPlans(ctx, run.TenantID, run.Service)
		if err != nil {
			return run, r.finish(ctx, run, err)
		}
		biller = NewMunicipalBiller(run, plans)
	} else {
		schedules, err := r.store.Schedules(ctx, run.TenantID)
		if err != nil {
			return run, r.finish(ctx, run, err)
		}
		biller = NewBiller(run, schedules)
	}
	load := postgres.Loader{Hourly: biller.Hourly}
	if progress != nil {
		progress(run)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		seq int
		ids []int64
		err error
	}
	todo := make(chan batch)
	done := make(chan batch)
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range todo {
				b.err = r.billBatch(ctx, run, b.ids, load, biller)
				done <- b
			}
		}()
	}
	// The feeder reads the scope ahead in order; the collector below
	// advances the cursor over the committed prefix.
	feedErr := make(chan error, 1)
	go func() {
		defer close(todo)
		cursor := run.Cursor
		for seq := 0; ; seq++ {
			ids, err := r.store.NextConnections(ctx, run, cursor, run.BatchSize)
			if err != nil || len(ids) == 0 {
				feedErr <- err
				return
			}
			select {
			case todo <- batch{seq: seq, ids: ids}:
			case <-ctx.Done():
				feedErr <- ctx.Err()
				return
			}
			cursor = ids[len(ids)-1]
		}
	}()
	go func() { wg.Wait(); close(done) }()
	var firstErr error
	finished := map[int]int64{} // seq → last id, committed but not yet under the cursor
	next := 0
	for b := range done {
		if b.err != nil {
			if firstErr == nil {
				firstErr = b.err
				cancel()
			}
			continue
		}
		finished[b.seq] = b.ids[len(b.ids)-1]
		advanced := int64(0)
		for last, ok := finished[next]; ok; last, ok = finished[next] {
			delete(finished, next)
			advanced = last
			next++
		}
		if advanced != 0 && firstErr == nil {
			if err := r.store.AdvanceCursor(ctx, run.ID, advanced); err != nil {
				firstErr = err
				cancel()
			}
		}
		if progress != nil {
			if cur, err := r.store.Run(ctx, 0, run.ID); err == nil {
				progress(cur)
			}
		}
	}
	if err := <-feedErr; err != nil && firstErr == nil && !errors.Is(err, context.Canceled) {
		firstErr = err
	}
	if firstErr != nil {
		return run, firstErr
	}
	if err := r.finish(ctx, run, nil); err != nil {
		return run, err
	}
	return r.store.Run(ctx, 0, run.ID)
}

// billBatch bills one batch, falling back to one connection at a time.
func (r *Runner) billBatch(ctx context.Context, run postgres.Run, ids []int64, load postgres.Loader, biller *Biller) error {
	start := time.Now()
	counts, err := r.store.BillBatch(ctx, run, ids, load, biller.Bill)
	r.metrics.batches.WithLabelValues("batch").Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		r.count(counts)
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	r.log.Info("bill run batch failed; retrying its connections one by one", "run", run.ID, "connections", len(ids), "first", ids[0], "err", err)
	return r.itemByItem(ctx, run, ids, load, biller)
}

// itemByItem bills each connection of a failed batch in its own
// transaction; one that still fails becomes a dead letter.
func (r *Runner) itemByItem(ctx context.Context, run postgres.Run, ids []int64, load postgres.Loader, biller *Biller) error {
	for _, id := range ids {
		start := time.Now()
		counts, err := r.store.BillBatch(ctx, run, []int64{id}, load, biller.Bill)
		r.metrics.batches.WithLabelValues("item").Observe(time.Since(start).Seconds())
		if err == nil {
			r.count(counts)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		reason := err.Error()
		var be *postgres.BatchError
		if errors.As(err, &be) {
			reason = be.Failures[0].Reason
		}
		if err := r.store.RecordFailure(ctx, run, id, reason); err != nil {
			return err
		}
		r.metrics.outcomes.WithLabelValues("failed").Inc()
		r.log.Warn("connection not billed: dead letter", "run", run.ID, "connection", id, "reason", reason)
	}
	return nil
}

func (r *Runner) count(c postgres.BatchCounts) {
	r.metrics.outcomes.WithLabelValues("billed").Add(float64(c.Billed))
	r.metrics.outcomes.WithLabelValues("unchanged").Add(float64(c.Unchanged))
	r.metrics.outcomes.WithLabelValues("skipped").Add(float64(c.Skipped))
}

// finish records the run's end, enqueues its summary and refreshes the
// open dead letters gauge.
func (r *Runner) finish(ctx context.Context, run postgres.Run, failure error) error {
	done, err := r.store.FinishRun(ctx, run.ID, failure)
	if err != nil {
		return errors.Join(failure, err)
	}
	if open, err := r.store.OpenDeadLetters(ctx); err == nil {
		r.metrics.deadOpen.Reset()
		for k, n := range open {
			r.metrics.deadOpen.WithLabelValues(k[0], k[1]).Set(float64(n))
		}
	}
	r.log.Info("bill run finished", "run", done.ID, "tenant", done.TenantCode, "service", done.Service, "period", done.Period.String(),
		"total", done.Total, "billed", done.Billed, "unchanged", done.Unchanged, "skipped", done.Skipped, "failed", done.Failed, "status", done.Status)
	return failure
}

// Fail ends run id as failed with the cause (its committed bills stand;
// a new run of the period bills the rest).
func (r *Runner) Fail(ctx context.Context, id int64, cause error) error {
	run, err := r.store.Run(ctx, 0, id)
	if err != nil {
		return err
	}
	if err := r.finish(ctx, run, cause); !errors.Is(err, cause) {
		return err
	}
	return nil
}
