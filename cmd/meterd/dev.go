package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/cmd/internal/lifecycle"
	"github.com/meterd/meterd/deploy/localpg"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/simulator"
)

// devConfig is the configuration of 'meterd dev'.
type devConfig struct {
	serve   serveConfig
	dataDir string
	pgPort  int
	prof    string
	tz      string
	gateway gatewayConfig
	// The simulated fleet publishing to the embedded broker.
	simMeters   int
	simInterval time.Duration
}

func (c *devConfig) register(f *flags) {
	c.serve.register(f, "127.0.0.1:8080", "text")
	f.String(&c.dataDir, "data-dir", "METERD_DATA_DIR", ".meterd", "directory for the private PostgreSQL cluster and other local state")
	f.Int(&c.pgPort, "pg-port", "METERD_DEV_PG_PORT", 54329, "port of the private PostgreSQL cluster on 127.0.0.1 (another free port is used if it is taken)")
	f.String(&c.prof, "profile", "METERD_PROFILE", "auto", "storage profile of a new database: auto, timescale or postgres")
	f.String(&c.tz, "rollup-time-zone", "METERD_ROLLUP_TIME_ZONE", "Asia/Kolkata", "IANA zone of the rollups' hours and days (first migration only)")
	c.gateway.register(f, true)
	f.Int(&c.simMeters, "sim-meters", "METERD_DEV_SIM_METERS", 20, "meters of the simulated fleet publishing to the embedded broker (0: none)")
	f.Duration(&c.simInterval, "sim-interval", "METERD_DEV_SIM_INTERVAL", 10*time.Second, "reading interval of the simulated fleet")
}

func (c devConfig) Validate() error {
	errs := []error{c.serve.http.Validate(), c.serve.upkeep.Validate(), c.serve.jobs.Validate(), positive("job-workers", c.serve.workers), c.gateway.Validate(), c.serve.runtime.Validate()}
	if c.simMeters < 0 || c.simInterval <= 0 {
		errs = append(errs, errors.New("sim-meters must not be negative and sim-interval must be positive"))
	}
	if c.dataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	return errors.Join(errs...)
}

func runDev(ctx context.Context, e env, args []string) error {
	var c devConfig
	f := newFlags("dev", "Usage: meterd dev [flags]\n\nRuns meterd on this machine with embedded defaults: a private PostgreSQL cluster under\n--data-dir (reused next time), migrations, the API and the background jobs. With\nDATABASE_URL set it uses that server instead. Ctrl-C stops everything.", e.getenv, e.stderr)
	c.register(f)
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	c.serve.runtime.apply()
	log, err := c.serve.log.logger(e.stderr)
	if err != nil {
		return err
	}
	ctx, stopWatching := withMakeInterrupt(ctx, log, 200*time.Millisecond)
	defer stopWatching()
	if err := devKeys(&c.serve.api, c.dataDir, log); err != nil {
		return err
	}
	if c.serve.api.defaultTenant == "" {
		c.serve.api.defaultTenant = demoTenant
	}
	c.serve.api.logVerificationLinks = true
	if !f.IsSet("public-url") {
		// Links in emails go where dev actually listens (another port,
		// 127.0.0.1:0): the listener opens now; the server serves on it.
		ln, err := net.Listen("tcp", c.serve.http.Addr)
		if err != nil {
			return fmt.Errorf("http: listen: %w", err)
		}
		defer func() { _ = ln.Close() }() // in case the server never starts
		c.serve.listener, c.serve.api.publicURL = ln, devPublicURL(ln.Addr())
	}
	c.serve.payments.devDefaults()
	migrateCfg := schema.Config{Profile: schema.Profile(c.prof), RollupTimeZone: c.tz, Logger: log.With("component", "migrate")}
	if err := migrateCfg.Validate(); err != nil {
		return err
	}

	g := lifecycle.New(log)
	var url string
	var cluster *clusterComponent
	if c.serve.db.url != "" {
		url = c.serve.db.url
	} else {
		cluster = &clusterComponent{dataDir: c.dataDir, port: c.pgPort, log: log.With("component", "postgres")}
		g.Add("postgres", cluster)
	}
	var status schema.Status
	var pools *poolComponent
	g.Add("migrate", lifecycle.Funcs{StartFunc: func(ctx context.Context) error {
		if cluster != nil {
			url = cluster.url
		}
		st, err := schema.Migrate(ctx, url, migrateCfg)
		if err != nil {
			return err
		}
		status = st
		pools.url = url
		return nil
	}})
	c.serve.db.url = "set by the migrate step"
	// Notifications go to sinks on this machine: an SMTP server on
	// loopback and log-only SMS and push providers (see the banner).
	devNotify := newDevNotifications(log.With("component", "dev-notify"))
	c.serve.notify.dev = devNotify
	g.Add("notification sinks", devNotify)
	reg := newRegistry()
	stack, err := addServeStack(g, c.serve, log, reg)
	if err != nil {
		return err
	}
	mountDevNotifications(stack.srv.App(), devNotify)
	pools, srv := stack.pools, stack.srv
	var demo demoLogins
	g.Add("demo data", lifecycle.Funcs{StartFunc: func(ctx context.Context) error {
		demo, err = seedDemo(ctx, stack.api.services, c.dataDir)
		return err
	}})
	walk := &demoWalkthrough{pools: pools, upkeep: c.serve.upkeep, dataDir: c.dataDir, logins: &demo, log: log.With("component", "demo")}
	g.Add("demo history", lifecycle.Funcs{StartFunc: walk.backfill})
	var billingDemo string
	g.Add("billing demo", lifecycle.Funcs{StartFunc: func(ctx context.Context) error {
		billingDemo, err = seedBillingDemo(ctx, pools, log.With("component", "billing"))
		return err
	}})
	g.Add("demo bill", lifecycle.Funcs{StartFunc: walk.findBill})
	// The gateway: embedded broker, MQTT source, Modbus poller, writer;
	// and a small simulated fleet so readings arrive from the start.
	if c.gateway.spoolDir == "" {
		c.gateway.spoolDir = filepath.Join(c.dataDir, "spool")
	}
	fleet := &devFleet{dataDir: c.dataDir, meters: c.simMeters, interval: c.simInterval, pools: pools, log: log.With("component", "simulator")}
	g.Add("simulated fleet provisioning", lifecycle.Funcs{StartFunc: fleet.provision})
	gw := newGateway(c.gateway, pools, reg, log.With("component", "gateway"))
	mountIngestRoutes(srv.App(), gw)
	g.Add("gateway", gw)
	g.Add("simulated fleet", lifecycle.Funcs{
		StartFunc: func(ctx context.Context) error { return fleet.publish(ctx, gw.BrokerURL()) },
		StopFunc:  fleet.stop,
	})
	g.Add("banner", lifecycle.Funcs{StartFunc: func(context.Context) error {
		var b strings.Builder
		b.WriteString("\nmeterd dev is running\n")
		fmt.Fprintf(&b, "  API         http://%s  (/healthz, /readyz, /metrics)\n", srv.Addr())
		if cluster != nil {
			fmt.Fprintf(&b, "  PostgreSQL  %s  (password in %s)\n", redact(url), cluster.passwordFile())
		} else {
			fmt.Fprintf(&b, "  PostgreSQL  %s\n", redact(url))
		}
		fmt.Fprintf(&b, "  Storage     %s profile, rollups in %s\n", status.Profile, status.RollupTimeZone)
		fmt.Fprintf(&b, "  API docs    http://%s/api/openapi.json  (verification links are logged)\n", srv.Addr())
		fmt.Fprintf(&b, "  Portal      http://%s/  (consumers; staff at /staff; log in with the demo logins below)\n", srv.Addr())
		b.WriteString(demo.banner())
		b.WriteString(billingDemo)
		b.WriteString(walk.banner(srv.Addr(), stack.payments.sbx != nil))
		b.WriteString(stack.payments.banner())
		if u := gw.BrokerURL(); u != "" {
			fmt.Fprintf(&b, "  MQTT        %s  (embedded broker; meters log in with their own credentials)\n", u)
		}
		b.WriteString(devNotify.banner(srv.Addr()))
		if c.simMeters > 0 {
			fmt.Fprintf(&b, "  Simulator   %d meters of tenant %q publishing every %v  (offline meters: http://%s/ingest/offline)\n",
				c.simMeters, simulator.DefaultTenant, c.simInterval, srv.Addr())
		}
		b.WriteString("Press Ctrl-C to stop.\n\n")
		_, err := fmt.Fprint(e.stdout, b.String())
		return err
	}})
	return g.Run(ctx, c.serve.shutdown)
}

// redact hides a URL's password.
func redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "(unparsable URL)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// clusterComponent runs the private PostgreSQL cluster of 'meterd dev'. It
// is durable (fsync on) because people keep demo data in it.
type clusterComponent struct {
	dataDir  string
	port     int
	log      *slog.Logger
	cluster  *localpg.Cluster
	url      string
	stopping atomic.Bool
	failed   chan error
}

func (c *clusterComponent) passwordFile() string { return filepath.Join(c.dataDir, "pg-password") }

func (c *clusterComponent) Start(ctx context.Context) error {
	if err := os.MkdirAll(c.dataDir, 0o755); err != nil {
		return err
	}
	pw, err := c.password()
	if err != nil {
		return err
	}
	cl, err := localpg.Start(ctx, localpg.Config{
		DataDir:      filepath.Join(c.dataDir, "pgdata"),
		Port:         c.port,
		PortFallback: true,
		Password:     pw,
		Durable:      true,
		Logger:       c.log,
	})
	if err != nil {
		return err
	}
	c.cluster = cl
	c.failed = make(chan error, 1)
	go func() {
		<-cl.Exited()
		if !c.stopping.Load() {
			c.failed <- errors.New("postgres exited; see " + filepath.Join(c.dataDir, "postgres.log"))
		}
	}()
	if err := ensureDatabase(ctx, cl.URL("postgres"), "meterd"); err != nil {
		return err
	}
	c.url = cl.URL("meterd")
	return nil
}

func (c *clusterComponent) Failed() <-chan error { return c.failed }

func (c *clusterComponent) Stop(ctx context.Context) error {
	if c.cluster == nil {
		return nil
	}
	c.stopping.Store(true)
	return c.cluster.Stop(ctx)
}

// password returns the cluster's password, creating it on first use. It
// lives in a 0600 file next to the data, never in logs.
func (c *clusterComponent) password() (string, error) {
	p := c.passwordFile()
	b, err := os.ReadFile(p)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "pgdata", "PG_VERSION")); err == nil {
		return "", fmt.Errorf("%s is missing but the cluster exists; restore it or remove %s", p, c.dataDir)
	}
	var raw [18]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(raw[:])
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
