package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/deploy/schema"
)

// dbConfig is the database part of commands that use one.
type dbConfig struct {
	url      string
	maxConns int
}

func (c *dbConfig) register(f *flags) {
	f.String(&c.url, "database-url", "DATABASE_URL", "", "PostgreSQL connection URL")
	f.Int(&c.maxConns, "db-max-conns", "METERD_DB_MAX_CONNS", 20, "largest number of pooled database connections")
}

func (c dbConfig) Validate() error {
	if c.url == "" {
		return errors.New("no database: set DATABASE_URL or --database-url (or use 'meterd dev')")
	}
	if c.maxConns < 2 {
		return errors.New("db-max-conns must be at least 2")
	}
	return nil
}

// poolComponent opens the pgx pool on Start and closes it on Stop.
type poolComponent struct {
	url      string
	maxConns int
	pool     *pgxpool.Pool
}

func (p *poolComponent) Start(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(p.url)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	cfg.MaxConns = int32(p.maxConns)
	cfg.ConnConfig.RuntimeParams["application_name"] = "meterd"
	// Money is numeric in SQL and shopspring/decimal in Go, exactly.
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgxdecimal.Register(conn.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("database: %w", err)
	}
	p.pool = pool
	return nil
}

func (p *poolComponent) Stop(context.Context) error {
	if p.pool != nil {
		p.pool.Close()
	}
	return nil
}

// riverComponent runs the River client with the workers and periodic jobs
// registered by the domains. Periodic jobs run only on the elected leader,
// so any number of instances can run it.
type riverComponent struct {
	pools    *poolComponent
	log      *slog.Logger
	register []registrar
	workers  int
	client   *river.Client[pgx.Tx]
}

func (r *riverComponent) Start(ctx context.Context) error {
	workers := river.NewWorkers()
	var periodic []*river.PeriodicJob
	for _, reg := range r.register {
		jobs, err := reg(ctx, workers)
		if err != nil {
			return err
		}
		periodic = append(periodic, jobs...)
	}
	client, err := river.NewClient(riverpgxv5.New(r.pools.pool), &river.Config{
		Logger:       r.log.With("component", "river"),
		Queues:       map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: r.workers}},
		Workers:      workers,
		PeriodicJobs: periodic,
	})
	if err != nil {
		return fmt.Errorf("river: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("river: %w", err)
	}
	r.client = client
	return nil
}

// Stop lets running jobs finish until ctx runs short, then cancels them;
// cancelled jobs are retried by whichever instance runs next.
func (r *riverComponent) Stop(ctx context.Context) error {
	if r.client == nil {
		return nil
	}
	soft := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		soft, cancel = context.WithDeadline(ctx, dl.Add(-time.Until(dl)/3))
		defer cancel()
	}
	if err := r.client.Stop(soft); err == nil {
		return nil
	}
	return r.client.StopAndCancel(ctx)
}

// newRegistry returns the metrics registry with the Go runtime and process
// collectors and meterd's build info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "meterd", Name: "build_info", Help: "meterd build information.",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }),
	)
	return reg
}

// readiness reports the database reachable, the schema current and the
// storage profile.
func readiness(pools *poolComponent) api.ReadyFunc {
	return func(ctx context.Context) (map[string]any, error) {
		if pools.pool == nil {
			return nil, errors.New("database pool not open")
		}
		if err := pools.pool.Ping(ctx); err != nil {
			return map[string]any{"database": "unreachable"}, fmt.Errorf("database: %w", err)
		}
		st, err := schema.Check(ctx, pools.pool)
		if err != nil {
			return map[string]any{"database": "ok"}, err
		}
		details := map[string]any{
			"database":         "ok",
			"profile":          string(st.Profile),
			"rollup_time_zone": st.RollupTimeZone,
			"schema_version":   st.SchemaVersion,
			"schema_latest":    st.SchemaLatest,
		}
		if st.TimescaleVersion != "" {
			details["timescaledb"] = st.TimescaleVersion
		}
		if !st.Current() {
			return details, errors.New("migrations pending: run meterd migrate")
		}
		return details, nil
	}
}

// registrar adds a domain's River workers and returns its periodic jobs.
type registrar func(ctx context.Context, w *river.Workers) ([]*river.PeriodicJob, error)

// upkeepRegistrar registers the storage upkeep jobs once the pool is open
// (the recorded profile decides which jobs exist).
func upkeepRegistrar(pools *poolComponent, cfg schema.UpkeepConfig, jobs schema.JobsConfig, log *slog.Logger) registrar {
	return func(ctx context.Context, w *river.Workers) ([]*river.PeriodicJob, error) {
		st, err := schema.LoadStorage(ctx, pools.pool)
		if err != nil {
			return nil, fmt.Errorf("storage upkeep: %w", err)
		}
		return schema.NewUpkeep(pools.pool, st, cfg).AddWorkers(w, jobs, log.With("component", "upkeep")), nil
	}
}
