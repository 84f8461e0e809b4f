package billrun

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/postgres"
)

// RunArgs is the River job that executes one bill run.
type RunArgs struct {
	RunID int64 `json:"run_id"`
}

// Kind implements river.JobArgs.
func (RunArgs) Kind() string { return "billing.bill_run" }

// InsertOpts makes one job per run; a failed attempt resumes at the run's
// cursor.
func (RunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// ScheduleArgs is the periodic job that starts due runs and marks overdue
// bills.
type ScheduleArgs struct{}

// Kind implements river.JobArgs.
func (ScheduleArgs) Kind() string { return "billing.schedule" }

// InsertOpts keeps one queued at a time.
func (ScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// EnqueueTx returns the function CreateRun calls in its transaction to
// insert the run's job, so the run and its job commit together.
func EnqueueTx(client *river.Client[pgx.Tx]) func(ctx context.Context, tx pgx.Tx, runID int64) error {
	return func(ctx context.Context, tx pgx.Tx, runID int64) error {
		if _, err := client.InsertTx(ctx, tx, RunArgs{RunID: runID}, nil); err != nil {
			return fmt.Errorf("enqueue bill run %d: %w", runID, err)
		}
		return nil
	}
}

// AddWorkers registers the bill-run workers and returns the scheduler's
// periodic job, for the River client cmd builds.
func (r *Runner) AddWorkers(w *river.Workers) []*river.PeriodicJob {
	river.AddWorker(w, &runWorker{r: r})
	river.AddWorker(w, &scheduleWorker{r: r})
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(r.cfg.ScheduleEvery),
		func() (river.JobArgs, *river.InsertOpts) { return ScheduleArgs{}, nil },
		&river.PeriodicJobOpts{ID: ScheduleArgs{}.Kind(), RunOnStart: true})}
}

type runWorker struct {
	river.WorkerDefaults[RunArgs]
	r *Runner
}

// Timeout allows a run over a large fleet; it resumes if cut short.
func (w *runWorker) Timeout(*river.Job[RunArgs]) time.Duration { return 12 * time.Hour }

func (w *runWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	_, err := w.r.Execute(ctx, job.Args.RunID, nil)
	if err != nil && ctx.Err() == nil && job.Attempt >= job.MaxAttempts {
		// The last attempt: end the run as failed so that the period can
		// be run again (an active run blocks another of the same period).
		return errors.Join(err, w.r.Fail(context.WithoutCancel(ctx), job.Args.RunID, err))
	}
	return err
}

type scheduleWorker struct {
	river.WorkerDefaults[ScheduleArgs]
	r *Runner
}

func (w *scheduleWorker) Work(ctx context.Context, _ *river.Job[ScheduleArgs]) error {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return err
	}
	_, err = w.r.Schedule(ctx, time.Now(), EnqueueTx(client))
	return err
}

// Schedule starts the runs due at now (the configured day of the cycle in
// each tenant's zone, for the cycle that just ended) that no earlier run
// covered, marks overdue bills, applies interest, penalty and rebate due
// at now to overdue water and sewerage demands, and returns the runs it
// created. A failed time-based batch does not stop the rest; it is
// reported in the error after the runs were scheduled.
func (r *Runner) Schedule(ctx context.Context, now time.Time, enqueue func(ctx context.Context, tx pgx.Tx, runID int64) error) ([]postgres.Run, error) {
	if n, err := r.store.MarkOverdue(ctx, now); err != nil {
		return nil, err
	} else if n > 0 {
		r.log.Info("bills overdue", "count", n)
	}
	tb, tbErr := r.store.ApplyTimeBased(ctx, now, r.cfg.BatchSize)
	if tb.Appended > 0 || tbErr != nil {
		r.log.Info("time-based applicables", "connections", tb.Connections, "appended", tb.Appended, "err", tbErr)
	}
	created, err := r.scheduleRuns(ctx, now, enqueue)
	return created, errors.Join(err, tbErr)
}

func (r *Runner) scheduleRuns(ctx context.Context, now time.Time, enqueue func(ctx context.Context, tx pgx.Tx, runID int64) error) ([]postgres.Run, error) {
	settings, err := r.store.ScheduledSettings(ctx)
	if err != nil {
		return nil, err
	}
	var created []postgres.Run
	for _, st := range settings {
		_, loc, err := r.store.TenantLocation(ctx, st.TenantID)
		if err != nil {
			return created, err
		}
		if !billing.IsGenerationDay(st.Cycle, st.GenerationDay, now, loc) {
			continue
		}
		p, err := PreviousPeriod(st.Cycle, now, loc)
		if err != nil {
			return created, err
		}
		if done, err := r.store.HasRun(ctx, st.TenantID, st.Service, p.From); err != nil || done {
			if err != nil {
				return created, err
			}
			continue
		}
		run, err := r.store.CreateRun(ctx, postgres.NewRun{TenantID: st.TenantID, Service: st.Service, Cycle: st.Cycle, Period: p,
			IssueDate: billing.DateOf(now, loc), Trigger: postgres.TriggerSchedule, BatchSize: r.cfg.BatchSize}, enqueue)
		if err != nil {
			return created, err
		}
		r.log.Info("bill run scheduled", "run", run.ID, "tenant", run.TenantCode, "service", run.Service, "period", run.Period.String())
		created = append(created, run)
	}
	return created, nil
}

// PreviousPeriod returns the cycle period that ended before the one
// containing now, in loc: on 4 May a monthly cycle bills April, a
// quarterly one January to March.
func PreviousPeriod(c billing.Cycle, now time.Time, loc *time.Location) (billing.Period, error) {
	from, _, err := billing.CyclePeriod(c, now, loc, 0)
	if err != nil {
		return billing.Period{}, err
	}
	pf, pt, err := billing.CyclePeriod(c, from.Add(-time.Millisecond), loc, 0)
	if err != nil {
		return billing.Period{}, err
	}
	return billing.Period{From: billing.DateOf(pf, loc), To: billing.DateOf(pt, loc)}, nil
}
