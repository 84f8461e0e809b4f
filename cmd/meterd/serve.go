package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/billing/billrun"
	"github.com/meterd/meterd/cmd/internal/lifecycle"
	"github.com/meterd/meterd/deploy/schema"
)

// serveConfig is the configuration of the API and background-worker role.
type serveConfig struct {
	log      logConfig
	db       dbConfig
	http     api.Config
	api      apiConfig
	upkeep   schema.UpkeepConfig
	jobs     schema.JobsConfig
	billing  billrun.Config
	notify   notifyConfig
	payments paymentsConfig
	runtime  runtimeConfig
	workers  int
	shutdown time.Duration
	// listener, when set, is the HTTP listener opened before the stack
	// (meterd dev, to know its address); nil: the server listens on
	// http.Addr when it starts.
	listener net.Listener
}

// register declares the flags; httpAddr is the role's default address.
func (c *serveConfig) register(f *flags, httpAddr, logFormat string) {
	c.log.register(f, logFormat)
	c.db.register(f)
	f.String(&c.http.Addr, "http-addr", "METERD_HTTP_ADDR", httpAddr, "HTTP listen address")
	f.Duration(&c.http.RequestTimeout, "http-request-timeout", "METERD_HTTP_REQUEST_TIMEOUT", 15*time.Second, "deadline of a request's work")
	f.Int(&c.http.BodyLimit, "http-body-limit", "METERD_HTTP_BODY_LIMIT", 1<<20, "largest request body in bytes")
	f.Duration(&c.http.DrainDelay, "http-drain-delay", "METERD_HTTP_DRAIN_DELAY", 0, "how long /readyz reports 503 before the server stops (give load balancers time)")
	f.List(&c.http.TrustedProxies, "http-trusted-proxies", "METERD_HTTP_TRUSTED_PROXIES", "", "proxies whose X-Forwarded-For is believed")
	f.List(&c.http.CORSOrigins, "http-cors-origins", "METERD_HTTP_CORS_ORIGINS", "", "browser origins allowed to call the API (scheme://host[:port])")
	c.api.register(f)
	f.Duration(&c.jobs.RollupEvery, "rollup-every", "METERD_ROLLUP_EVERY", time.Minute, "how often the hourly and daily rollups are refreshed")
	f.Duration(&c.upkeep.Retention, "retention", "METERD_RETENTION", 0, "drop raw readings older than this (0 keeps them; rollups are always kept)")
	f.Duration(&c.upkeep.CompressAfter, "compress-after", "METERD_COMPRESS_AFTER", 7*24*time.Hour, "compress readings chunks older than this (timescale profile)")
	f.Int(&c.workers, "job-workers", "METERD_JOB_WORKERS", 20, "background jobs run at once by this instance")
	f.Int(&c.billing.BatchSize, "billrun-batch-size", "METERD_BILLRUN_BATCH_SIZE", 500, "connections billed per transaction by bill runs")
	f.Duration(&c.billing.ScheduleEvery, "billrun-schedule-every", "METERD_BILLRUN_SCHEDULE_EVERY", time.Hour, "how often due bill runs and overdue bills are checked")
	c.notify.register(f)
	c.payments.register(f)
	f.Duration(&c.shutdown, "shutdown-timeout", "METERD_SHUTDOWN_TIMEOUT", 8*time.Second, "how long a graceful shutdown may take in all")
	c.runtime.register(f, 400)
}

func (c serveConfig) Validate() error {
	return errors.Join(c.db.Validate(), c.http.Validate(), c.api.Validate(), c.upkeep.Validate(), c.jobs.Validate(), c.billing.Validate(), c.notify.Validate(), c.payments.Validate(), c.runtime.Validate(), positive("job-workers", c.workers))
}

func positive(name string, v int) error {
	if v <= 0 {
		return errors.New(name + " must be positive")
	}
	return nil
}

// serveStack is what addServeStack assembled.
type serveStack struct {
	pools *poolComponent
	srv   *api.Server
	api   *apiComponent // its services exist once it has started
	// alerts are the notification engine, reminders and detector, built
	// when the jobs start.
	alerts *alertsParts
	// payments is built with the API services (nil service when no
	// provider is configured).
	payments *paymentsComponent
}

// addServeStack adds the pool, the API services and routes, the job
// workers and the HTTP server to g, in start order. It returns them so
// callers can mount more.
func addServeStack(g *lifecycle.Group, c serveConfig, log *slog.Logger, reg *prometheus.Registry) (serveStack, error) {
	pools := &poolComponent{url: c.db.url, maxConns: c.db.maxConns}
	srv, err := api.New(c.http, api.Deps{Logger: log.With("component", "http"), Registry: reg, Ready: readiness(pools), Version: version, Listener: c.listener})
	if err != nil {
		return serveStack{}, err
	}
	pays, err := newPaymentsComponent(c.payments, c.api.publicURL, srv.Addr, log, reg)
	if err != nil {
		return serveStack{}, err
	}
	apis := &apiComponent{cfg: c.api, pools: pools, srv: srv, upkeep: c.upkeep, log: log, payments: pays}
	alertParts := &alertsParts{}
	jobs := &riverComponent{
		pools:   pools,
		log:     log,
		workers: c.workers,
		register: []registrar{upkeepRegistrar(pools, c.upkeep, c.jobs, log), apiRegistrar(apis, log.With("component", "api-jobs")),
			billingRegistrar(pools, c.billing, log, reg), alertsRegistrar(pools, c.notify, c.api, log, reg, alertParts), paymentsRegistrar(pays)},
	}
	g.Add("database pool", pools)
	g.Add("api services", apis)
	g.Add("jobs", jobs)
	g.Add("http", srv)
	g.Add("payments sandbox", pays)
	return serveStack{pools: pools, srv: srv, api: apis, alerts: alertParts, payments: pays}, nil
}

func runServe(ctx context.Context, e env, args []string) error {
	var c serveConfig
	f := newFlags("serve", "Usage: meterd serve [flags]\n\nServes the REST API and runs background jobs against an existing, migrated database.", e.getenv, e.stderr)
	c.register(f, ":8080", "json")
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	c.runtime.apply()
	log, err := c.log.logger(e.stderr)
	if err != nil {
		return err
	}
	g := lifecycle.New(log)
	if _, err := addServeStack(g, c, log, newRegistry()); err != nil {
		return err
	}
	return g.Run(ctx, c.shutdown)
}
