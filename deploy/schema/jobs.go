package schema

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// JobsConfig sets how often the upkeep jobs run. Zero values take the
// defaults.
type JobsConfig struct {
	// RollupEvery is the rollup refresh interval. Default 1 minute.
	RollupEvery time.Duration
	// PartitionsEvery is how often partitions ahead are checked (postgres
	// profile). Default 1 hour.
	PartitionsEvery time.Duration
	// HousekeepingEvery is how often compression and retention run.
	// Default 6 hours.
	HousekeepingEvery time.Duration
}

// Validate checks the configuration.
func (c JobsConfig) Validate() error {
	for name, d := range map[string]time.Duration{"rollup": c.RollupEvery, "partitions": c.PartitionsEvery, "housekeeping": c.HousekeepingEvery} {
		if d < 0 || (d > 0 && d < time.Second) {
			return fmt.Errorf("schema: %s interval %v must be at least 1s", name, d)
		}
	}
	return nil
}

// RollupArgs is the job that refreshes the rollups.
type RollupArgs struct{}

// Kind implements river.JobArgs.
func (RollupArgs) Kind() string { return "storage.rollup_refresh" }

// InsertOpts keeps at most one refresh queued at a time.
func (RollupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByState: pendingStates}}
}

// PartitionsArgs is the job that creates readings partitions ahead.
type PartitionsArgs struct{}

// Kind implements river.JobArgs.
func (PartitionsArgs) Kind() string { return "storage.partitions" }

// InsertOpts keeps at most one queued at a time.
func (PartitionsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByState: pendingStates}}
}

// HousekeepingArgs is the job that compresses and expires old readings.
type HousekeepingArgs struct{}

// Kind implements river.JobArgs.
func (HousekeepingArgs) Kind() string { return "storage.housekeeping" }

// InsertOpts keeps at most one queued at a time.
func (HousekeepingArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByState: pendingStates}}
}

// pendingStates are the states in which a second copy of an upkeep job is
// pointless. River requires the available, pending, running and scheduled
// states in a unique-by-state list.
var pendingStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}

// AddWorkers registers the upkeep workers and returns their periodic
// schedules, for the River client that cmd builds.
func (u *Upkeep) AddWorkers(workers *river.Workers, cfg JobsConfig, log *slog.Logger) []*river.PeriodicJob {
	if cfg.RollupEvery == 0 {
		cfg.RollupEvery = time.Minute
	}
	if cfg.PartitionsEvery == 0 {
		cfg.PartitionsEvery = time.Hour
	}
	if cfg.HousekeepingEvery == 0 {
		cfg.HousekeepingEvery = 6 * time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	river.AddWorker(workers, &rollupWorker{u: u, log: log})
	river.AddWorker(workers, &partitionsWorker{u: u, log: log})
	river.AddWorker(workers, &housekeepingWorker{u: u, log: log})
	jobs := []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(cfg.RollupEvery),
			func() (river.JobArgs, *river.InsertOpts) { return RollupArgs{}, nil },
			&river.PeriodicJobOpts{ID: RollupArgs{}.Kind(), RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(cfg.HousekeepingEvery),
			func() (river.JobArgs, *river.InsertOpts) { return HousekeepingArgs{}, nil },
			&river.PeriodicJobOpts{ID: HousekeepingArgs{}.Kind(), RunOnStart: true}),
	}
	if u.st.Profile == ProfilePostgres {
		jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(cfg.PartitionsEvery),
			func() (river.JobArgs, *river.InsertOpts) { return PartitionsArgs{}, nil },
			&river.PeriodicJobOpts{ID: PartitionsArgs{}.Kind(), RunOnStart: true}))
	}
	return jobs
}

type rollupWorker struct {
	river.WorkerDefaults[RollupArgs]
	u   *Upkeep
	log *slog.Logger
}

func (w *rollupWorker) Timeout(*river.Job[RollupArgs]) time.Duration { return 30 * time.Minute }

func (w *rollupWorker) Work(ctx context.Context, _ *river.Job[RollupArgs]) error {
	start := time.Now()
	s, err := w.u.RefreshRollups(ctx)
	if err != nil {
		return err
	}
	if s.HourlyBuckets > 0 || s.DailyBuckets > 0 || w.u.st.Profile == ProfileTimescale {
		w.log.Debug("rollups refreshed", "hourly_buckets", s.HourlyBuckets, "daily_buckets", s.DailyBuckets, "took", time.Since(start))
	}
	return nil
}

type partitionsWorker struct {
	river.WorkerDefaults[PartitionsArgs]
	u   *Upkeep
	log *slog.Logger
}

func (w *partitionsWorker) Work(ctx context.Context, _ *river.Job[PartitionsArgs]) error {
	now := time.Now()
	n, err := w.u.EnsurePartitions(ctx, now.Add(-w.u.st.PartitionInterval), now.Add(w.u.cfg.PartitionsAhead))
	if n > 0 {
		w.log.Info("created readings partitions", "count", n)
	}
	return err
}

type housekeepingWorker struct {
	river.WorkerDefaults[HousekeepingArgs]
	u   *Upkeep
	log *slog.Logger
}

func (w *housekeepingWorker) Timeout(*river.Job[HousekeepingArgs]) time.Duration {
	return 2 * time.Hour
}

func (w *housekeepingWorker) Work(ctx context.Context, _ *river.Job[HousekeepingArgs]) error {
	c, err := w.u.Compress(ctx)
	if err != nil {
		return err
	}
	d, err := w.u.ApplyRetention(ctx)
	if err != nil {
		return err
	}
	if c > 0 || d > 0 {
		w.log.Info("storage housekeeping", "compressed_chunks", c, "dropped", d)
	}
	return nil
}
