package main

import (
	"context"
	"errors"
	"time"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/cmd/internal/lifecycle"
)

// ingestConfig is the configuration of the gateway role.
type ingestConfig struct {
	log      logConfig
	db       dbConfig
	http     api.Config
	shutdown time.Duration
}

func (c *ingestConfig) register(f *flags) {
	c.log.register(f, "json")
	c.db.register(f)
	f.String(&c.http.Addr, "http-addr", "METERD_INGEST_HTTP_ADDR", ":8081", "listen address of the gateway's /healthz, /readyz and /metrics")
	f.Duration(&c.http.DrainDelay, "http-drain-delay", "METERD_HTTP_DRAIN_DELAY", 0, "how long /readyz reports 503 before shutdown continues")
	f.Duration(&c.shutdown, "shutdown-timeout", "METERD_SHUTDOWN_TIMEOUT", 8*time.Second, "how long a graceful shutdown may take in all")
}

func (c ingestConfig) Validate() error { return errors.Join(c.db.Validate(), c.http.Validate()) }

// runIngest runs the gateway process: its database pool and its health and
// metrics endpoints, which the MQTT and Modbus sources join.
func runIngest(ctx context.Context, e env, args []string) error {
	var c ingestConfig
	f := newFlags("ingest", "Usage: meterd ingest [flags]\n\nRuns the ingestion gateway alone against an existing, migrated database.", e.getenv, e.stderr)
	c.register(f)
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	log, err := c.log.logger(e.stderr)
	if err != nil {
		return err
	}
	pools := &poolComponent{url: c.db.url, maxConns: c.db.maxConns}
	srv, err := api.New(c.http, api.Deps{Logger: log.With("component", "http"), Registry: newRegistry(), Ready: readiness(pools), Version: version})
	if err != nil {
		return err
	}
	g := lifecycle.New(log)
	g.Add("database pool", pools)
	g.Add("http", srv)
	return g.Run(ctx, c.shutdown)
}
