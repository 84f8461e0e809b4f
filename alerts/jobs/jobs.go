package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/meterd/meterd/alerts/notify"
)

// Notifier is the delivery engine (notify.Engine).
type Notifier interface {
	Pump(ctx context.Context) (notify.PumpStats, error)
	Deliver(ctx context.Context, j notify.Job) (notify.Outcome, error)
}

// Reminders schedules due-date reminders and overdue escalations
// (reminder.Scheduler).
type Reminders interface {
	Run(ctx context.Context) (int, error)
}

// Scanner is the abnormal-usage detector (detect.Scanner).
type Scanner interface {
	// ScanHourly checks liveness and evaluates the hours completed since
	// the last scan.
	ScanHourly(ctx context.Context) (int, error)
	// ScanDaily evaluates the days completed since the last scan.
	ScanDaily(ctx context.Context) (int, error)
}

// Config sets how often the periodic jobs run. Zero values take the
// defaults; a nil component's jobs are not registered.
type Config struct {
	// PumpEvery is the notification pump's interval. Default 2 s.
	PumpEvery time.Duration
	// DeliverTimeout bounds one delivery job. Default 1 min.
	DeliverTimeout time.Duration
	// RemindersEvery is the reminder scheduler's interval. Default 15 min.
	RemindersEvery time.Duration
	// HourlyScanEvery is how often completed hours are scanned. Default 5 min.
	HourlyScanEvery time.Duration
	// DailyScanEvery is how often the daily scan runs. Default 1 h.
	DailyScanEvery time.Duration
}

// Validate checks the configuration.
func (c Config) Validate() error {
	for name, d := range map[string]time.Duration{"pump": c.PumpEvery, "deliver timeout": c.DeliverTimeout, "reminders": c.RemindersEvery,
		"hourly scan": c.HourlyScanEvery, "daily scan": c.DailyScanEvery} {
		if d < 0 || (d > 0 && d < time.Second) {
			return fmt.Errorf("alerts jobs: %s interval %v must be at least 1s", name, d)
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.PumpEvery == 0 {
		c.PumpEvery = 2 * time.Second
	}
	if c.DeliverTimeout == 0 {
		c.DeliverTimeout = time.Minute
	}
	if c.RemindersEvery == 0 {
		c.RemindersEvery = 15 * time.Minute
	}
	if c.HourlyScanEvery == 0 {
		c.HourlyScanEvery = 5 * time.Minute
	}
	if c.DailyScanEvery == 0 {
		c.DailyScanEvery = time.Hour
	}
}

// Components are the parts whose work runs as jobs; nil ones are skipped.
type Components struct {
	Notifier  Notifier
	Reminders Reminders
	Scanner   Scanner
	Logger    *slog.Logger
}

// oneQueued are the insert options of a periodic job: a few attempts, and
// no second copy while one is available, pending, running, retryable or
// scheduled (River requires the first three and scheduled in the set).
func oneQueued() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateRetryable, rivertype.JobStateScheduled,
	}}}
}

// PumpArgs is the notification pump.
type PumpArgs struct{}

// Kind implements river.JobArgs.
func (PumpArgs) Kind() string { return "notify.pump" }

// InsertOpts keeps one pump queued at a time.
func (PumpArgs) InsertOpts() river.InsertOpts {
	return oneQueued()
}

// DeliverArgs is one delivery attempt.
type DeliverArgs struct {
	DeliveryID int64  `json:"delivery_id"`
	Token      string `json:"token"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "notify.deliver" }

// InsertOpts gives few attempts: the engine keeps its own, and River retries
// only a failure to record an outcome (the lease makes a retry safe).
func (DeliverArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 3} }

// RemindersArgs is the reminder scheduler.
type RemindersArgs struct{}

// Kind implements river.JobArgs.
func (RemindersArgs) Kind() string { return "notify.reminders" }

// InsertOpts keeps one queued at a time.
func (RemindersArgs) InsertOpts() river.InsertOpts {
	return oneQueued()
}

// ScanHourlyArgs is the detector's hourly scan.
type ScanHourlyArgs struct{}

// Kind implements river.JobArgs.
func (ScanHourlyArgs) Kind() string { return "alerts.scan_hourly" }

// InsertOpts keeps one queued at a time.
func (ScanHourlyArgs) InsertOpts() river.InsertOpts {
	return oneQueued()
}

// ScanDailyArgs is the detector's daily scan.
type ScanDailyArgs struct{}

// Kind implements river.JobArgs.
func (ScanDailyArgs) Kind() string { return "alerts.scan_daily" }

// InsertOpts keeps one queued at a time.
func (ScanDailyArgs) InsertOpts() river.InsertOpts {
	return oneQueued()
}

// AddWorkers registers the workers of the given components and returns
// their periodic jobs.
func AddWorkers(w *river.Workers, cfg Config, c Components) ([]*river.PeriodicJob, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var periodic []*river.PeriodicJob
	every := func(d time.Duration, args river.JobArgs) {
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(d),
			func() (river.JobArgs, *river.InsertOpts) { return args, nil },
			&river.PeriodicJobOpts{ID: args.Kind(), RunOnStart: true}))
	}
	if c.Notifier != nil {
		river.AddWorker(w, &pumpWorker{n: c.Notifier, log: log})
		river.AddWorker(w, &deliverWorker{n: c.Notifier, timeout: cfg.DeliverTimeout})
		every(cfg.PumpEvery, PumpArgs{})
	}
	if c.Reminders != nil {
		river.AddWorker(w, &countWorker[RemindersArgs]{run: c.Reminders.Run, timeout: 10 * time.Minute, log: log, msg: "reminders enqueued", key: "count"})
		every(cfg.RemindersEvery, RemindersArgs{})
	}
	if c.Scanner != nil {
		river.AddWorker(w, &countWorker[ScanHourlyArgs]{run: c.Scanner.ScanHourly, timeout: 30 * time.Minute, log: log, msg: "hourly usage scan", key: "findings"})
		river.AddWorker(w, &countWorker[ScanDailyArgs]{run: c.Scanner.ScanDaily, timeout: time.Hour, log: log, msg: "daily usage scan", key: "findings"})
		every(cfg.HourlyScanEvery, ScanHourlyArgs{})
		every(cfg.DailyScanEvery, ScanDailyArgs{})
	}
	return periodic, nil
}

type pumpWorker struct {
	river.WorkerDefaults[PumpArgs]
	n   Notifier
	log *slog.Logger
}

func (w *pumpWorker) Timeout(*river.Job[PumpArgs]) time.Duration { return 5 * time.Minute }

// Work fans out the outbox and inserts a job per queued delivery. If the
// insert fails, the deliveries' queue lease runs out and the next pump
// queues them again.
func (w *pumpWorker) Work(ctx context.Context, _ *river.Job[PumpArgs]) error {
	st, err := w.n.Pump(ctx)
	if err != nil {
		return err
	}
	if len(st.Jobs) == 0 {
		return nil
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("notify pump: %w", err)
	}
	params := make([]river.InsertManyParams, len(st.Jobs))
	for i, j := range st.Jobs {
		params[i] = river.InsertManyParams{Args: DeliverArgs{DeliveryID: j.DeliveryID, Token: j.Token}}
	}
	if _, err := client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("notify pump: insert %d delivery jobs: %w", len(params), err)
	}
	w.log.Debug("notifications queued", "outbox_claimed", st.Claimed, "deliveries", len(st.Jobs))
	return nil
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	n       Notifier
	timeout time.Duration
}

func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return w.timeout }

func (w *deliverWorker) Work(ctx context.Context, j *river.Job[DeliverArgs]) error {
	_, err := w.n.Deliver(ctx, notify.Job{DeliveryID: j.Args.DeliveryID, Token: j.Args.Token})
	if errors.Is(err, context.Canceled) {
		// Shutting down: the lease runs out and the pump queues it again.
		return river.JobCancel(err)
	}
	return err
}

// countWorker runs a periodic job's pass and logs what it counted, when it
// counted anything: the reminder scheduler and the detector's scans.
type countWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	run     func(context.Context) (int, error)
	timeout time.Duration
	log     *slog.Logger
	msg     string // "reminders enqueued"
	key     string // "count"
}

func (w *countWorker[T]) Timeout(*river.Job[T]) time.Duration { return w.timeout }

func (w *countWorker[T]) Work(ctx context.Context, _ *river.Job[T]) error {
	n, err := w.run(ctx)
	if n > 0 {
		w.log.Info(w.msg, w.key, n)
	}
	return err
}
