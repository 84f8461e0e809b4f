package ingest_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterd/meterd/deploy/localpg"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/ingest/internal/brokertest"
	"github.com/meterd/meterd/ingest/mqtt"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/postgres"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
	"github.com/meterd/meterd/simulator/mqttpub"
	simpg "github.com/meterd/meterd/simulator/postgres"
	"github.com/meterd/meterd/simulator/verify"
)

// The three restart tests are the gateway's zero-loss, zero-duplicate
// proof: a simulated fleet publishes a backfill at QoS 1 while one part of
// the chain is restarted mid-stream, and the simulator's verify compares
// the database with the ground-truth manifest.

const (
	e2eMeters = 40
	e2eTicks  = 300 // readings per meter: 12 000 in all
)

// e2eRun is one publisher run and its manifest.
type e2eRun struct {
	fleet *simulator.Fleet
	path  string
	mw    *manifest.Writer
	pub   *mqttpub.Publisher
}

func newFleet(t *testing.T, seed uint64) *simulator.Fleet {
	t.Helper()
	start := time.Now().UTC().Add(-12 * time.Hour).Truncate(time.Minute)
	f, err := simulator.New(simulator.Config{Seed: seed, Meters: e2eMeters, Start: start, Interval: time.Minute, Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// publish starts a backfill of the fleet's first e2eTicks ticks at QoS 1,
// one reading per message, each meter over its own connection.
func publish(t *testing.T, f *simulator.Fleet, brokerURL string) *e2eRun {
	t.Helper()
	r := &e2eRun{fleet: f, path: filepath.Join(t.TempDir(), "run.manifest")}
	var err error
	r.mw, err = manifest.Create(r.path, manifest.Header{Fleet: f.Config(), Source: "mqtt", QoS: 1, Batch: 1, Tool: "ingest restart test"}, manifest.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := f.Config().Start
	r.pub, err = mqttpub.New(f, mqttpub.Config{BrokerURL: brokerURL, Workers: 8, From: start, To: start.Add(e2eTicks * time.Minute),
		Manifest: r.mw, PublishTimeout: 5 * time.Second, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.pub.Stop(context.Background()); _ = r.mw.Close() })
	return r
}

// finish waits for the publisher, closes the manifest, waits until the
// database holds as many readings as were sent, and verifies.
func (r *e2eRun) finish(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	select {
	case <-r.pub.Done():
	case err := <-r.pub.Failed():
		t.Fatalf("publisher failed: %v", err)
	case <-time.After(3 * time.Minute):
		var n int64
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM readings`).Scan(&n)
		t.Fatalf("publisher did not finish: %+v; %d readings stored; %s", r.pub.Stats(), n, rejects(pool))
	}
	if err := r.pub.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.mw.Close(); err != nil {
		t.Fatal(err)
	}
	want := int64(e2eMeters * e2eTicks)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n int64
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM readings`).Scan(&n)
		if err == nil && n >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("database holds %d readings, %d were sent (err %v); %s", n, want, err, rejects(pool))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep, err := verify.Verify(context.Background(), simpg.NewStore(pool), r.path, verify.Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteText(&b)
	t.Logf("verify:\n%s", b.String())
	if rep.Expected != want || rep.Lost != 0 || rep.Duplicated != 0 || !rep.OKStrict() {
		t.Fatalf("verify failed: expected %d matched %d lost %d duplicated %d unexpected %d", rep.Expected, rep.Matched, rep.Lost, rep.Duplicated, rep.Unexpected)
	}
}

// waitReadings waits until the database holds at least n readings.
func (r *e2eRun) waitReadings(t *testing.T, pool *pgxpool.Pool, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var got int64
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM readings`).Scan(&got); err == nil && got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d readings after a minute; publisher %+v; %s", n, r.pub.Stats(), rejects(pool))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rejects summarises readings_rejected for failure messages.
func rejects(pool *pgxpool.Pool) string {
	var s string
	_ = pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(reason || ' ' || n, ', '), 'none') FROM
		(SELECT reason, count(*)::text AS n FROM readings_rejected GROUP BY reason) r`).Scan(&s)
	return "rejects: " + s
}

// inProcessGateway is the gateway's components, as cmd wires them.
type inProcessGateway struct {
	res   *ingest.Resolver
	tr    *ingest.Tracker
	pipe  *ingest.Pipeline
	src   *mqtt.Source
	pool  *pgxpool.Pool
	close sync.Once
}

// startInProcess starts a gateway on pool subscribing to brokerAddr.
func startInProcess(t *testing.T, pool *pgxpool.Pool, brokerAddr string) *inProcessGateway {
	t.Helper()
	ctx := context.Background()
	store := postgres.NewStore(pool)
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	g := &inProcessGateway{pool: pool}
	if g.res, err = ingest.NewResolver(store, ingest.ResolverConfig{}, m); err != nil {
		t.Fatal(err)
	}
	if err := g.res.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if g.tr, err = ingest.NewTracker(ingest.TrackerConfig{Flush: 500 * time.Millisecond}, store, nil, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := g.tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if g.pipe, err = ingest.NewPipeline(ingest.PipelineConfig{Linger: 50 * time.Millisecond, RetryMax: time.Second}, store,
		schema.NewUpkeep(pool, st, schema.UpkeepConfig{}), g.tr, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := g.pipe.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := mqtt.Config{ClientID: "gw-restart", Brokers: []string{"mqtt://" + brokerAddr}, BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond}
	dec, err := ingest.NewMessageDecoder(payload.DefaultConfig(), meter.DefaultLimits(), g.res, m)
	if err != nil {
		t.Fatal(err)
	}
	if g.src, err = mqtt.New(cfg, dec, g.pipe, nil); err != nil {
		t.Fatal(err)
	}
	if err := g.src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.src.AwaitConnection(actx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.stop() })
	return g
}

func (g *inProcessGateway) stop() {
	g.close.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.src.Stop(ctx)
		_ = g.pipe.Stop(ctx)
		_ = g.tr.Stop(ctx)
		_ = g.res.Stop(ctx)
	})
}

// buildMeterd builds the meterd binary once per test binary.
var buildMeterd = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "meterd-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "meterd")
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/meterd/meterd/cmd/meterd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build meterd: %v\n%s", err, out)
	}
	return bin, nil
})

// gatewayProcess is 'meterd ingest' as a separate process.
type gatewayProcess struct {
	cmd *exec.Cmd
	log *os.File
}

// startGatewayProcess starts 'meterd ingest' and waits until /readyz says
// it is subscribed (a broker drops messages nobody has subscribed to yet).
func startGatewayProcess(t *testing.T, bin, dbURL, brokerAddr, logPath string) *gatewayProcess {
	t.Helper()
	return startGatewayProcessB(t, bin, dbURL, brokerAddr, logPath)
}

func startGatewayProcessB(t testing.TB, bin, dbURL, brokerAddr, logPath string, extra ...string) *gatewayProcess {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := l.Addr().String()
	_ = l.Close()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "ingest", "--database-url", dbURL, "--mqtt-broker", "mqtt://"+brokerAddr,
		"--mqtt-client-id", "gw-kill9", "--http-addr", httpAddr, "--modbus=false", "--ingest-linger", "50ms", "--log-level", "debug")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &gatewayProcess{cmd: cmd, log: logf}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("gateway not ready after 30 s (%v); log:\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill is kill -9.
func (p *gatewayProcess) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	_ = p.log.Close()
}

// TestKill9Gateway: 'meterd ingest' is killed with SIGKILL mid-stream and
// started again; the broker (Mosquitto with a persistent session for the
// gateway) keeps what was not acknowledged, and nothing is lost or stored
// twice.
func TestKill9Gateway(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end restart test")
	}
	mq := brokertest.Start(t)
	bin, err := buildMeterd()
	if err != nil {
		t.Fatal(err)
	}
	dbURL := schematest.URL(t, schema.ProfilePostgres)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	f := newFleet(t, 31)
	if _, err := simpg.Provision(context.Background(), pool, f); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "gateway.log")
	gw := startGatewayProcess(t, bin, dbURL, mq.Addr, logPath)
	run := publish(t, f, "mqtt://"+mq.Addr)
	run.waitReadings(t, pool, e2eMeters*e2eTicks/4)
	gw.kill()
	time.Sleep(500 * time.Millisecond) // the fleet keeps publishing; the broker queues
	startGatewayProcess(t, bin, dbURL, mq.Addr, logPath)
	run.finish(t, pool)
}

// TestRestartPostgres: the database is stopped mid-stream and started
// again; the gateway stops acknowledging, the broker holds the messages for
// its session, and everything is stored once when the database is back.
func TestRestartPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end restart test")
	}
	mq := brokertest.Start(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // the postgres OS user must reach it
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	pgCfg := localpg.Config{DataDir: filepath.Join(dir, "pg"), Port: port, Machine: localpg.Machine{MemoryBytes: 1 << 30, CPUs: 2},
		Settings: map[string]string{"shared_buffers": "128MB"}}
	ctx := context.Background()
	cl, err := localpg.Start(ctx, pgCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Stop(context.Background()) }()
	if _, err := schema.Migrate(ctx, cl.URL("postgres"), schema.Config{Profile: schema.ProfilePostgres}); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, cl.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	f := newFleet(t, 32)
	if _, err := simpg.Provision(ctx, pool, f); err != nil {
		t.Fatal(err)
	}
	gw := startInProcess(t, pool, mq.Addr)
	run := publish(t, f, "mqtt://"+mq.Addr)
	run.waitReadings(t, pool, e2eMeters*e2eTicks/4)
	if err := cl.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // writes fail, acks stop, the broker fills
	if gw.pipe.Healthy() {
		t.Error("pipeline healthy while PostgreSQL is down")
	}
	cl, err = localpg.Start(ctx, pgCfg)
	if err != nil {
		t.Fatal(err)
	}
	run.finish(t, pool)
}

// TestRestartBroker: Mosquitto is restarted mid-stream (a graceful restart
// writes its persistence file); the gateway and the fleet reconnect to
// their persistent sessions and nothing is lost or stored twice.
func TestRestartBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end restart test")
	}
	mq := brokertest.Start(t)
	pool := schematest.New(t)
	f := newFleet(t, 33)
	if _, err := simpg.Provision(context.Background(), pool, f); err != nil {
		t.Fatal(err)
	}
	startInProcess(t, pool, mq.Addr)
	run := publish(t, f, "mqtt://"+mq.Addr)
	run.waitReadings(t, pool, e2eMeters*e2eTicks/4)
	mq.Restart(t)
	run.finish(t, pool)
}
