package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/cmd/internal/lifecycle"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/ingest/broker"
	"github.com/meterd/meterd/ingest/modbus"
	"github.com/meterd/meterd/ingest/mqtt"
	"github.com/meterd/meterd/ingest/spool"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/postgres"
)

// ingestConfig is the configuration of the gateway role.
type ingestConfig struct {
	log      logConfig
	db       dbConfig
	http     api.Config
	gateway  gatewayConfig
	runtime  runtimeConfig
	shutdown time.Duration
}

func (c *ingestConfig) register(f *flags) {
	c.log.register(f, "json")
	c.db.register(f)
	f.String(&c.http.Addr, "http-addr", "METERD_INGEST_HTTP_ADDR", ":8081", "listen address of the gateway's /healthz, /readyz, /metrics and /ingest/offline")
	f.Duration(&c.http.DrainDelay, "http-drain-delay", "METERD_HTTP_DRAIN_DELAY", 0, "how long /readyz reports 503 before shutdown continues")
	f.Duration(&c.shutdown, "shutdown-timeout", "METERD_SHUTDOWN_TIMEOUT", 8*time.Second, "how long a graceful shutdown may take in all")
	c.gateway.register(f, false)
	c.runtime.register(f, 100)
}

func (c ingestConfig) Validate() error {
	return errors.Join(c.db.Validate(), c.http.Validate(), c.gateway.Validate(), c.runtime.Validate())
}

// gatewayConfig configures the gateway's components; 'meterd ingest' and
// 'meterd dev' share it.
type gatewayConfig struct {
	pipeline ingest.PipelineConfig
	tracker  ingest.TrackerConfig
	resolver ingest.ResolverConfig

	mqttBrokers  []string
	mqttClientID string
	mqttUser     string
	mqttPassword string
	mqttShare    string
	mqttInflight int
	mqttSession  time.Duration
	mqttTrust    bool

	embedded      bool
	brokerAddr    string
	brokerTLSAddr string
	brokerCert    string
	brokerKey     string
	brokerSession time.Duration
	brokerQueue   int

	modbus        bool
	modbusEvery   time.Duration
	modbusTimeout time.Duration
	spoolDir      string
	spoolMaxMiB   int
}

func (c *gatewayConfig) register(f *flags, dev bool) {
	f.Int(&c.pipeline.BatchSize, "ingest-batch-size", "METERD_INGEST_BATCH_SIZE", 10_000, "readings that close a write batch")
	f.Duration(&c.pipeline.Linger, "ingest-linger", "METERD_INGEST_LINGER", 200*time.Millisecond, "longest a write batch stays open")
	f.Duration(&c.pipeline.QuietLinger, "ingest-quiet-linger", "METERD_INGEST_QUIET_LINGER", 5*time.Millisecond, "a write batch this old closes when no further input is waiting")
	f.Int(&c.pipeline.Writers, "ingest-writers", "METERD_INGEST_WRITERS", 2, "batches written at once (one database connection each)")
	f.Int(&c.pipeline.MaxQueued, "ingest-max-queued", "METERD_INGEST_MAX_QUEUED", 200_000, "readings accepted but not yet committed before sources are held back")
	f.Duration(&c.resolver.Refresh, "meter-refresh", "METERD_METER_REFRESH", 5*time.Minute, "how often the gateway reloads the whole meter directory (new meters are found at once; removals and changed serials at the next reload)")
	f.Duration(&c.tracker.Flush, "latest-flush", "METERD_LATEST_FLUSH", 2*time.Second, "how often the meters' latest state and counter events are written")

	f.List(&c.mqttBrokers, "mqtt-broker", "METERD_MQTT_BROKERS", "", "external MQTT v5 broker URLs to subscribe to (mqtt://host:1883, tls://host:8883)")
	f.String(&c.mqttClientID, "mqtt-client-id", "METERD_MQTT_CLIENT_ID", defaultClientID(), "stable MQTT client id of this gateway (keys its persistent session)")
	f.String(&c.mqttUser, "mqtt-username", "METERD_MQTT_USERNAME", "", "MQTT username of the gateway at an external broker")
	f.String(&c.mqttPassword, "mqtt-password", "METERD_MQTT_PASSWORD", "", "MQTT password of the gateway at an external broker")
	f.String(&c.mqttShare, "mqtt-share-group", "METERD_MQTT_SHARE_GROUP", "meterd", "shared-subscription group ($share/<group>/…) gateways split the load in; empty for none")
	f.Int(&c.mqttInflight, "mqtt-inflight", "METERD_MQTT_INFLIGHT", 10_000, "unacknowledged messages the broker may send the gateway (MQTT receive maximum)")
	f.Duration(&c.mqttSession, "mqtt-session-expiry", "METERD_MQTT_SESSION_EXPIRY", 24*time.Hour, "how long the broker keeps the gateway's session and messages while it is away")
	f.Bool(&c.mqttTrust, "mqtt-trust-publisher", "METERD_MQTT_TRUST_PUBLISHER", false, "trust the meterd-publisher user property of an external broker (only if it overwrites it like meterd's own)")

	f.Bool(&c.embedded, "broker-embedded", "METERD_BROKER_EMBEDDED", dev, "run the embedded MQTT broker (meters authenticate against the meters table; a publish is acknowledged once stored)")
	f.String(&c.brokerAddr, "broker-addr", "METERD_BROKER_ADDR", "127.0.0.1:1883", "embedded broker's MQTT listener")
	f.String(&c.brokerTLSAddr, "broker-tls-addr", "METERD_BROKER_TLS_ADDR", "", "embedded broker's MQTT over TLS listener (needs --broker-tls-cert and --broker-tls-key)")
	f.String(&c.brokerCert, "broker-tls-cert", "METERD_BROKER_TLS_CERT", "", "PEM certificate of the TLS listener")
	f.String(&c.brokerKey, "broker-tls-key", "METERD_BROKER_TLS_KEY", "", "PEM key of the TLS listener")
	f.Duration(&c.brokerSession, "broker-max-session-expiry", "METERD_BROKER_MAX_SESSION_EXPIRY", 24*time.Hour, "longest a disconnected client's session is kept by the embedded broker")
	f.Int(&c.brokerQueue, "broker-max-inflight", "METERD_BROKER_MAX_INFLIGHT", 1024, "QoS 1 messages the embedded broker queues per client")

	f.Bool(&c.modbus, "modbus", "METERD_MODBUS", true, "poll the Modbus meters of the meters table")
	f.Duration(&c.modbusEvery, "modbus-interval", "METERD_MODBUS_INTERVAL", 0, "poll period of Modbus meters (0: each meter's expected interval)")
	f.Duration(&c.modbusTimeout, "modbus-timeout", "METERD_MODBUS_TIMEOUT", time.Second, "reply timeout of Modbus devices that set none")
	spoolDef := "meterd-spool"
	if dev {
		spoolDef = "" // dev puts it under --data-dir
	}
	f.String(&c.spoolDir, "spool-dir", "METERD_SPOOL_DIR", spoolDef, "directory of the Modbus spool (readings held while the database is down)")
	f.Int(&c.spoolMaxMiB, "spool-max-mib", "METERD_SPOOL_MAX_MIB", 256, "largest Modbus spool in MiB; beyond it readings are dropped and counted")
}

func defaultClientID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "meterd-ingest-" + host
}

func (c gatewayConfig) Validate() error {
	var errs []error
	if len(c.mqttBrokers) == 0 && !c.embedded {
		errs = append(errs, errors.New("no MQTT broker: set --mqtt-broker or --broker-embedded"))
	}
	if c.mqttInflight < 1 || c.mqttInflight > 65535 {
		errs = append(errs, errors.New("mqtt-inflight must be 1..65535"))
	}
	if c.brokerQueue < 1 || c.brokerQueue > 65535 {
		errs = append(errs, errors.New("broker-max-inflight must be 1..65535"))
	}
	if (c.brokerCert == "") != (c.brokerKey == "") || (c.brokerTLSAddr != "" && c.brokerCert == "") {
		errs = append(errs, errors.New("the broker's TLS listener needs both --broker-tls-cert and --broker-tls-key"))
	}
	if c.spoolMaxMiB < 1 {
		errs = append(errs, errors.New("spool-max-mib must be positive"))
	}
	if c.modbusEvery < 0 || c.modbusTimeout < 0 || c.mqttSession < 0 || c.brokerSession < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	errs = append(errs, c.pipeline.Validate(), c.tracker.Validate(), c.resolver.Validate())
	return errors.Join(errs...)
}

// gatewayComponent runs the gateway on the process's pool: resolver,
// tracker, pipeline, optional embedded broker, MQTT source and Modbus
// poller. It builds them on Start, once the pool is open, and stops them in
// reverse order: sources first (so what they handed over commits and is
// acknowledged), the pipeline, then the state tracker's last flush.
type gatewayComponent struct {
	cfg   gatewayConfig
	pools *poolComponent
	reg   prometheus.Registerer
	log   *slog.Logger

	store   *postgres.Store
	pipe    *ingest.Pipeline
	broker  *broker.Broker
	source  *mqtt.Source
	poller  *modbus.Poller
	tracker *ingest.Tracker
	started []namedComponent
}

type namedComponent struct {
	name string
	c    lifecycle.Component
}

func newGateway(cfg gatewayConfig, pools *poolComponent, reg prometheus.Registerer, log *slog.Logger) *gatewayComponent {
	return &gatewayComponent{cfg: cfg, pools: pools, reg: reg, log: log}
}

func (g *gatewayComponent) start(ctx context.Context, name string, c lifecycle.Component) error {
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	g.started = append(g.started, namedComponent{name, c})
	return nil
}

func (g *gatewayComponent) Start(ctx context.Context) error {
	if err := g.build(ctx); err != nil {
		_ = g.Stop(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

func (g *gatewayComponent) build(ctx context.Context) error {
	pool := g.pools.pool
	g.store = postgres.NewStore(pool)
	m, err := ingest.NewMetrics(g.reg)
	if err != nil {
		return err
	}
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		return err
	}
	res, err := ingest.NewResolver(g.store, g.cfg.resolver, m)
	if err != nil {
		return err
	}
	if err := g.start(ctx, "meter resolver", res); err != nil {
		return err
	}
	identity := func(id int64) string {
		if mt, ok := res.ByID(id); ok {
			return mt.Serial
		}
		return ""
	}
	tr, err := ingest.NewTracker(g.cfg.tracker, g.store, identity, m, g.log.With("component", "tracker"))
	if err != nil {
		return err
	}
	specs := &ingest.ModelSpecs{}
	tr.SetSpecFunc(func(id int64, reg meter.Fields) (meter.CounterSpec, bool) {
		if mt, ok := res.ByID(id); ok {
			return specs.Spec(mt.Model, reg)
		}
		return meter.CounterSpec{}, false
	})
	if err := g.start(ctx, "tracker", tr); err != nil {
		return err
	}
	g.tracker = tr

	var buses []modbus.Bus
	if g.cfg.modbus {
		ms, err := g.store.Meters(ctx) // with their settings, which the resolver does not keep
		if err != nil {
			return err
		}
		var errs []error
		buses, errs = modbus.BusesFromMeters(ms)
		for _, err := range errs {
			g.log.Warn("Modbus meter not polled", "err", err)
		}
	}
	var sp *spool.Spool
	if len(buses) > 0 {
		sp, err = spool.Open(spool.Config{Dir: g.cfg.spoolDir, MaxBytes: int64(g.cfg.spoolMaxMiB) << 20})
		if err != nil {
			return err
		}
		// Closed after the pipeline stopped: readings it hands back at
		// shutdown are spooled.
		g.started = append(g.started, namedComponent{"spool", lifecycle.Funcs{StopFunc: func(context.Context) error { return sp.Close() }}})
	}

	g.pipe, err = ingest.NewPipeline(g.cfg.pipeline, g.store, schema.NewUpkeep(pool, st, schema.UpkeepConfig{}), tr, m, g.log.With("component", "pipeline"))
	if err != nil {
		return err
	}
	if err := g.start(ctx, "pipeline", g.pipe); err != nil {
		return err
	}

	dec, err := ingest.NewMessageDecoder(payload.DefaultConfig(), meter.DefaultLimits(), res, m)
	if err != nil {
		return err
	}
	if g.cfg.embedded {
		// Meters' publishes are stored in-process before the broker
		// acknowledges them (ingest/broker's doc says why).
		bc := broker.Config{Addr: g.cfg.brokerAddr, AddrFallback: true, TLSAddr: g.cfg.brokerTLSAddr, MaxSessionExpiry: g.cfg.brokerSession,
			MaxInflight: uint16(g.cfg.brokerQueue), Sink: ingest.NewSink(dec, g.pipe), Logger: g.log.With("component", "broker")}
		if g.cfg.brokerCert != "" {
			cert, err := tls.LoadX509KeyPair(g.cfg.brokerCert, g.cfg.brokerKey)
			if err != nil {
				return fmt.Errorf("broker TLS: %w", err)
			}
			bc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		g.broker, err = broker.New(bc, res, g.reg)
		if err != nil {
			return err
		}
		if err := g.start(ctx, "broker", g.broker); err != nil {
			return err
		}
	}
	if len(g.cfg.mqttBrokers) > 0 {
		mc := mqtt.Config{Brokers: g.cfg.mqttBrokers, ClientID: g.cfg.mqttClientID, Username: g.cfg.mqttUser, Password: g.cfg.mqttPassword,
			ShareGroup: g.cfg.mqttShare, InFlight: uint16(g.cfg.mqttInflight), SessionExpiry: g.cfg.mqttSession,
			TrustPublisher: g.cfg.mqttTrust, Logger: g.log.With("component", "mqtt")}
		g.source, err = mqtt.New(mc, dec, g.pipe, g.reg)
		if err != nil {
			return err
		}
		if err := g.start(ctx, "mqtt source", g.source); err != nil {
			return err
		}
	}

	if len(buses) > 0 {
		for i := range buses {
			for j := range buses[i].Devices {
				if g.cfg.modbusEvery > 0 {
					buses[i].Devices[j].Interval = g.cfg.modbusEvery
				}
			}
		}
		g.poller, err = modbus.New(modbus.Config{Timeout: g.cfg.modbusTimeout, Logger: g.log.With("component", "modbus")},
			buses, g.pipe, sp, tr, meter.DefaultLimits(), m, g.reg)
		if err != nil {
			return err
		}
		if err := g.start(ctx, "modbus poller", g.poller); err != nil {
			return err
		}
		g.log.Info("polling Modbus meters", "buses", len(buses))
	}
	return nil
}

// Stop stops what Start started, in reverse order.
func (g *gatewayComponent) Stop(ctx context.Context) error {
	var errs []error
	for i := len(g.started) - 1; i >= 0; i-- {
		n := g.started[i]
		if err := n.c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", n.name, err))
		}
	}
	g.started = nil
	return errors.Join(errs...)
}

// BrokerURL is the embedded broker's URL, or "".
func (g *gatewayComponent) BrokerURL() string {
	if g.broker == nil {
		return ""
	}
	return "mqtt://" + g.broker.Addr()
}

// ready reports the gateway's own readiness: database writes succeeding.
func (g *gatewayComponent) ready(details map[string]any) error {
	if g.pipe == nil {
		return errors.New("gateway not started")
	}
	if !g.pipe.Healthy() {
		details["gateway"] = "database writes failing"
		return errors.New("gateway: database writes failing")
	}
	if g.source != nil && !g.source.Subscribed() {
		details["gateway"] = "not yet subscribed to the MQTT broker"
		return errors.New("gateway: not yet subscribed to the MQTT broker")
	}
	details["gateway"] = "ok"
	return nil
}

// mountIngestRoutes adds GET /ingest/offline: installed meters not heard
// from within k × their expected interval, longest silent first.
func mountIngestRoutes(app *fiber.App, g *gatewayComponent) {
	app.Get("/ingest/offline", func(c *fiber.Ctx) error {
		if g.store == nil {
			return fiber.ErrServiceUnavailable
		}
		limit := 100
		if s := c.Query("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 10_000 {
				return api.InvalidInput(api.FieldError{Field: "limit", Message: "must be an integer 0..10000"})
			}
			limit = n
		}
		const factor = 3 // ingest.TrackerConfig's default OfflineFactor
		ms, total, err := g.store.OfflineMeters(c.UserContext(), time.Now(), factor, limit)
		if err != nil {
			return err
		}
		type row struct {
			MeterID          int64      `json:"meter_id"`
			Tenant           string     `json:"tenant"`
			Meter            string     `json:"meter"`
			Protocol         string     `json:"protocol"`
			ExpectedInterval string     `json:"expected_interval"`
			LastSeen         *time.Time `json:"last_seen"`
		}
		out := make([]row, 0, len(ms))
		for _, m := range ms {
			r := row{MeterID: m.MeterID, Tenant: m.TenantCode, Meter: m.ExternalID, Protocol: m.Protocol, ExpectedInterval: m.ExpectedInterval.String()}
			if !m.LastSeen.IsZero() {
				seen := m.LastSeen
				r.LastSeen = &seen
			}
			out = append(out, r)
		}
		return c.JSON(fiber.Map{"total": total, "factor": factor, "meters": out})
	})
}

// runIngest runs the gateway process: the database pool, the gateway
// (MQTT source, optional embedded broker, Modbus poller, writer) and its
// health, metrics and offline-meters endpoints.
func runIngest(ctx context.Context, e env, args []string) error {
	var c ingestConfig
	f := newFlags("ingest", "Usage: meterd ingest [flags]\n\nRuns the ingestion gateway alone against an existing, migrated database: an MQTT\nsubscriber (external broker, or --broker-embedded), the Modbus poller for the\nmeters table's Modbus meters, and the writer.", e.getenv, e.stderr)
	c.register(f)
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
	pools := &poolComponent{url: c.db.url, maxConns: c.db.maxConns}
	reg := newRegistry()
	gw := newGateway(c.gateway, pools, reg, log.With("component", "gateway"))
	dbReady := readiness(pools)
	srv, err := api.New(c.http, api.Deps{Logger: log.With("component", "http"), Registry: reg, Version: version,
		Ready: func(ctx context.Context) (map[string]any, error) {
			details, err := dbReady(ctx)
			if err != nil {
				return details, err
			}
			return details, gw.ready(details)
		}})
	if err != nil {
		return err
	}
	mountIngestRoutes(srv.App(), gw)
	g := lifecycle.New(log)
	g.Add("database pool", pools)
	g.Add("gateway", gw)
	g.Add("http", srv)
	return g.Run(ctx, c.shutdown)
}
