package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
	"github.com/meterd/meterd/simulator/modbussrv"
	"github.com/meterd/meterd/simulator/mqttpub"
	simpg "github.com/meterd/meterd/simulator/postgres"
	"github.com/meterd/meterd/simulator/verify"
)

// stopBudget bounds a clean stop after Ctrl-C.
const stopBudget = 10 * time.Second

func runRun(ctx context.Context, e env, args []string) error {
	f := newFlags("run", `Usage: metersim run [flags]

Publishes the fleet's readings to an MQTT broker: live at every --interval
tick of the wall clock, or, with --from, a time-warp backfill of the ticks
in [--from, --to) as fast as the broker takes them (then live too with
--live). Each meter logs in with its external id and its derived secret
(provision the fleet first: metersim provision, or --provision). Every
delivered reading and injected fault goes to --manifest for metersim verify.
Ctrl-C stops cleanly.`, e.getenv, e.stderr)
	var fc fleetFlags
	fc.register(f, 0)
	var (
		broker, from, to, manifestPath, provisionDB, username, password string
		qos, batch, workers, shared                                     int
		live                                                            bool
		progress                                                        time.Duration
		lc                                                              logConfig
	)
	f.String(&broker, "broker", "METERSIM_BROKER", "mqtt://127.0.0.1:1883", "MQTT broker URL")
	f.Int(&qos, "qos", "METERSIM_QOS", 1, "MQTT QoS, 0 or 1 (verify counts missing QoS 0 readings as dropped, not lost)")
	f.Int(&batch, "batch", "METERSIM_BATCH", 1, "readings per canonical message (a batch per meter); Tasmota meters always send one")
	f.Int(&workers, "workers", "METERSIM_WORKERS", 0, "concurrent publishers (default 8 × CPUs)")
	f.Int(&shared, "shared-connections", "METERSIM_SHARED_CONNECTIONS", 0, "publish over this many shared connections with --username/--password instead of one login per meter (brokers without per-meter auth)")
	f.String(&username, "username", "METERSIM_USERNAME", "", "username of the shared connections")
	f.String(&password, "password", "METERSIM_PASSWORD", "", "password of the shared connections")
	f.String(&from, "from", "METERSIM_FROM", "", "backfill from this time: RFC 3339, or a duration before now such as -720h")
	f.String(&to, "to", "METERSIM_TO", "", "backfill up to this time (default now)")
	f.Bool(&live, "live", "METERSIM_LIVE", false, "publish live after the backfill (always on without --from)")
	f.String(&manifestPath, "manifest", "METERSIM_MANIFEST", "", "write the ground-truth manifest to this file")
	f.String(&provisionDB, "provision", "METERSIM_PROVISION_DB", "", "provision the fleet into this database URL before publishing")
	f.Duration(&progress, "progress", "METERSIM_PROGRESS", 5*time.Second, "how often to print progress (0: never)")
	lc.register(f)
	if err := f.Parse(args); err != nil {
		return err
	}
	log, err := lc.logger(e.stderr)
	if err != nil {
		return err
	}
	if qos != 0 && qos != 1 {
		return fmt.Errorf("--qos must be 0 or 1")
	}
	now := time.Now().UTC()
	fromT, err := parseTime(from, now)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	toT, err := parseTime(to, now)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	start := now.Truncate(fc.interval)
	if !fromT.IsZero() {
		start = fromT.Truncate(time.Second)
	} else {
		live = true
	}
	cfg, err := fc.config(start)
	if err != nil {
		return err
	}
	fleet, err := simulator.New(cfg)
	if err != nil {
		return err
	}
	if provisionDB != "" {
		if err := provision(ctx, e.stdout, provisionDB, fleet); err != nil {
			return err
		}
	}
	var mw *manifest.Writer
	if manifestPath != "" {
		mw, err = manifest.Create(manifestPath, manifest.Header{Fleet: fleet.Config(), Source: "mqtt", QoS: qos, Batch: batch,
			Tool: "metersim run " + version, Created: now}, manifest.WriterOptions{})
		if err != nil {
			return err
		}
		defer func() { _ = mw.Close() }() // after the explicit Close below: a no-op
	}
	pub, err := mqttpub.New(fleet, mqttpub.Config{
		BrokerURL: broker, QoS0: qos == 0, Batch: batch, Workers: workers,
		SharedConnections: shared, Username: username, Password: password,
		From: fromT, To: toT, Live: live, Manifest: mw, Logger: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "metersim: %d meters (seed %d, start %s, interval %v) → %s\n",
		fleet.Len()-cfg.ModbusMeters, cfg.Seed, fleet.Config().Start.Format(time.RFC3339), fleet.Config().Interval, broker)
	if err := pub.Start(ctx); err != nil {
		return err
	}
	var runErr error
	p := newProgress(e.stderr, progress)
	defer p.stop()
loop:
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(e.stderr, "metersim: stopping")
			break loop
		case <-pub.Done():
			break loop
		case runErr = <-pub.Failed():
			break loop
		case <-p.tick():
			p.printMQTT(pub.Stats())
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopBudget)
	defer cancel()
	stopErr := pub.Stop(sctx)
	p.printMQTT(pub.Stats())
	if mw != nil {
		if err := mw.Close(); err != nil {
			stopErr = errors.Join(stopErr, err)
		}
		fmt.Fprintf(e.stderr, "metersim: manifest %s\n", manifestPath)
	}
	return errors.Join(runErr, stopErr)
}

func runModbus(ctx context.Context, e env, args []string) error {
	f := newFlags("modbus", `Usage: metersim modbus [flags]

Serves the fleet's Modbus meters over Modbus TCP: gateway g listens on
--modbus-listen's port + g, with unit ids 1..--units-per-gateway behind it.
Registers follow each meter's model (meter/regmap) and advance with the
clock. By default every meter of the fleet is a Modbus device. Faults:
slow_reply, missing_optional, wrong_word_order, gap, reset, rollover,
replacement, spike, stuck. Ctrl-C stops cleanly.`, e.getenv, e.stderr)
	var fc fleetFlags
	fc.register(f, -1)
	var (
		manifestPath, provisionDB string
		progress                  time.Duration
		lc                        logConfig
	)
	f.String(&manifestPath, "manifest", "METERSIM_MANIFEST", "", "write device faults and meter events to this manifest (metersim verify checks polled readings against the model)")
	f.String(&provisionDB, "provision", "METERSIM_PROVISION_DB", "", "provision the fleet into this database URL before serving")
	f.Duration(&progress, "progress", "METERSIM_PROGRESS", 5*time.Second, "how often to print progress (0: never)")
	lc.register(f)
	if err := f.Parse(args); err != nil {
		return err
	}
	log, err := lc.logger(e.stderr)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	cfg, err := fc.config(now.Truncate(fc.interval))
	if err != nil {
		return err
	}
	fleet, err := simulator.New(cfg)
	if err != nil {
		return err
	}
	if provisionDB != "" {
		if err := provision(ctx, e.stdout, provisionDB, fleet); err != nil {
			return err
		}
	}
	var mw *manifest.Writer
	if manifestPath != "" {
		mw, err = manifest.Create(manifestPath, manifest.Header{Fleet: fleet.Config(), Source: "modbus",
			Tool: "metersim modbus " + version, Created: now}, manifest.WriterOptions{})
		if err != nil {
			return err
		}
		defer func() { _ = mw.Close() }() // after the explicit Close below: a no-op
	}
	srv, err := modbussrv.New(fleet, modbussrv.Config{Manifest: mw, Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "metersim: %d Modbus meters behind %d gateways from %s (seed %d)\n",
		cfg.ModbusMeters, len(fleet.Config().ModbusGateways), fleet.Config().ModbusGateways[0], cfg.Seed)
	p := newProgress(e.stderr, progress)
	defer p.stop()
loop:
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(e.stderr, "metersim: stopping")
			break loop
		case <-p.tick():
			p.printModbus(srv.Stats())
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopBudget)
	defer cancel()
	err = srv.Stop(sctx)
	p.printModbus(srv.Stats())
	if mw != nil {
		err = errors.Join(err, mw.Close())
	}
	return err
}

func runProvision(ctx context.Context, e env, args []string) error {
	f := newFlags("provision", `Usage: metersim provision --db URL [fleet flags]

Creates or updates the fleet's tenant and meters (external id, serial,
model, protocol, settings, MQTT secret hash, expected interval) so the
gateway accepts them. Idempotent. Use the same fleet flags as for run or
modbus.`, e.getenv, e.stderr)
	var fc fleetFlags
	fc.register(f, 0)
	var db string
	f.String(&db, "db", "DATABASE_URL", "", "PostgreSQL URL of a migrated meterd database")
	if err := f.Parse(args); err != nil {
		return err
	}
	if db == "" {
		return errors.New("--db is required")
	}
	cfg, err := fc.config(time.Now().UTC().Truncate(fc.interval))
	if err != nil {
		return err
	}
	fleet, err := simulator.New(cfg)
	if err != nil {
		return err
	}
	return provision(ctx, e.stdout, db, fleet)
}

func provision(ctx context.Context, out io.Writer, url string, fleet *simulator.Fleet) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	t0 := time.Now()
	res, err := simpg.Provision(ctx, pool, fleet)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "provisioned tenant %s (id %d) and %d meters in %v\n", fleet.Config().Tenant, res.TenantID, res.Meters, time.Since(t0).Round(time.Millisecond))
	return nil
}

func runVerify(ctx context.Context, e env, args []string) error {
	f := newFlags("verify", `Usage: metersim verify --db URL --manifest FILE [flags]

Compares the readings table with a run's manifest and reports lost,
duplicated, wrong, wrongly accepted (malformed input that was stored),
unrecorded and unexpected readings. Missing readings that were only sent
at QoS 0 are reported as dropped_qos0 and do not fail the check. Exits 1
on any loss, duplicate, wrong or wrongly accepted reading.`, e.getenv, e.stderr)
	var (
		db, manifestPath string
		strict           bool
		samples          int
	)
	f.String(&db, "db", "DATABASE_URL", "", "PostgreSQL URL of the meterd database")
	f.String(&manifestPath, "manifest", "METERSIM_MANIFEST", "", "the run's manifest")
	f.Bool(&strict, "strict", "METERSIM_STRICT", false, "fail on unexpected readings too")
	f.Int(&samples, "samples", "METERSIM_SAMPLES", 10, "examples to print per category")
	if err := f.Parse(args); err != nil {
		return err
	}
	if db == "" || manifestPath == "" {
		return errors.New("--db and --manifest are required")
	}
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	rep, err := verify.Verify(ctx, simpg.NewStore(pool), manifestPath, verify.Options{Samples: samples, Strict: strict})
	if err != nil {
		return err
	}
	rep.WriteText(e.stdout)
	if rep.Err(strict) != nil {
		return errVerifyFailed
	}
	return nil
}

// progress prints a run's rates at an interval. The caller owns it and
// stops it.
type progress struct {
	w     io.Writer
	t     *time.Ticker
	last  time.Time
	lastN [2]int64
	t0    time.Time
}

func newProgress(w io.Writer, every time.Duration) *progress {
	p := &progress{w: w, last: time.Now(), t0: time.Now()}
	if every > 0 {
		p.t = time.NewTicker(every)
	}
	return p
}

func (p *progress) tick() <-chan time.Time {
	if p.t == nil {
		return nil
	}
	return p.t.C
}

func (p *progress) stop() {
	if p.t != nil {
		p.t.Stop()
	}
}

func (p *progress) rates(a, b int64) (float64, float64) {
	now := time.Now()
	dt := now.Sub(p.last).Seconds()
	if dt <= 0 {
		dt = 1
	}
	ra, rb := float64(a-p.lastN[0])/dt, float64(b-p.lastN[1])/dt
	p.last, p.lastN = now, [2]int64{a, b}
	return ra, rb
}

func (p *progress) printMQTT(s mqttpub.Stats) {
	rm, rr := p.rates(s.Messages, s.Readings)
	through := "-"
	if !s.Through.IsZero() {
		through = s.Through.Format(time.RFC3339)
	}
	fmt.Fprintf(p.w, "metersim: %d msgs (%.0f/s)  %d readings (%.0f/s)  errors %d  refused %d  malformed %d  faults %d  through %s  lag %v  elapsed %v\n",
		s.Messages, rm, s.Readings, rr, s.Errors, s.Refused, s.Malformed, s.Faults, through, s.Lag.Round(time.Second), time.Since(p.t0).Round(time.Second))
}

func (p *progress) printModbus(s modbussrv.Stats) {
	rq, _ := p.rates(s.Requests, 0)
	fmt.Fprintf(p.w, "metersim: %d requests (%.0f/s)  exceptions %d  slow replies %d  offline %d  elapsed %v\n",
		s.Requests, rq, s.Exceptions, s.SlowReplies, s.Offline, time.Since(p.t0).Round(time.Second))
}
