package mqtt_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/ingest/broker"
	"github.com/meterd/meterd/ingest/internal/brokertest"
	"github.com/meterd/meterd/ingest/mqtt"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/postgres"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// seedMeters creates tenant code with n MQTT meters m-0001… whose secret is
// "secret-<external id>", and returns their ids.
func seedMeters(t testing.TB, pool *pgxpool.Pool, code string, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var tenant int64
	if err := pool.QueryRow(ctx, `INSERT INTO tenants (code, name) VALUES ($1, $1) RETURNING id`, code).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := 1; i <= n; i++ {
		ext := fmt.Sprintf("m-%04d", i)
		sum := sha256.Sum256([]byte("secret-" + ext))
		var id int64
		err := pool.QueryRow(ctx, `INSERT INTO meters (tenant_id, external_id, serial, model, protocol, mqtt_secret_hash)
			VALUES ($1, $2, $3, 'sdm630', 'mqtt', $4) RETURNING id`, tenant, ext, "S"+ext, "sha256:"+hex.EncodeToString(sum[:])).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func count(t testing.TB, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes. The readings
// arrive through a broker and a batch commit, so there is no single event
// to wait on; polling the database is the observable signal.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gateway is a pipeline and an MQTT source against one database.
type gateway struct {
	pipe *ingest.Pipeline
	src  *mqtt.Source
}

func (g *gateway) stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.src.Stop(ctx); err != nil {
		t.Error(err)
	}
	if err := g.pipe.Stop(ctx); err != nil {
		t.Error(err)
	}
}

func startGateway(t testing.TB, store ingest.ReadingStore, res *ingest.Resolver, cfg mqtt.Config) *gateway {
	t.Helper()
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := ingest.NewPipeline(ingest.PipelineConfig{Linger: 10 * time.Millisecond, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}, store, nil, nil, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pipe.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	dec, err := ingest.NewMessageDecoder(payload.DefaultConfig(), meter.DefaultLimits(), res, m)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	src, err := mqtt.New(cfg, dec, pipe, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	return &gateway{pipe: pipe, src: src}
}

func newResolver(t testing.TB, pool *pgxpool.Pool) *ingest.Resolver {
	t.Helper()
	r, err := ingest.NewResolver(postgres.NewStore(pool), ingest.ResolverConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

// startBroker runs the embedded broker storing through a pipeline on store.
func startBroker(t testing.TB, store ingest.ReadingStore, res *ingest.Resolver, ackTimeout time.Duration) *broker.Broker {
	t.Helper()
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := ingest.NewPipeline(ingest.PipelineConfig{Linger: 5 * time.Millisecond, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}, store, nil, nil, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pipe.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	dec, err := ingest.NewMessageDecoder(payload.DefaultConfig(), meter.DefaultLimits(), res, m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{Addr: "127.0.0.1:0", Sink: ingest.NewSink(dec, pipe), AckTimeout: ackTimeout}, res, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.Stop(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pipe.Stop(ctx)
	})
	return b
}

// publisher is a meter's MQTT v5 connection.
type publisher struct {
	cm *autopaho.ConnectionManager
}

func connect(t testing.TB, addr, user, pass string, clientID string) (*publisher, error) {
	t.Helper()
	u, _ := url.Parse("mqtt://" + addr)
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 30, ConnectUsername: user, ConnectPassword: []byte(pass),
		CleanStartOnInitialConnection: false, SessionExpiryInterval: 600,
		ReconnectBackoff: autopaho.NewConstantBackoff(50 * time.Millisecond),
		ClientConfig:     paho.ClientConfig{ClientID: clientID},
	})
	if err != nil {
		cancel()
		return nil, err
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		_ = cm.Disconnect(dctx)
		cancel()
	})
	actx, acancel := context.WithTimeout(ctx, 3*time.Second)
	defer acancel()
	if err := cm.AwaitConnection(actx); err != nil {
		return nil, err
	}
	return &publisher{cm: cm}, nil
}

func (p *publisher) publish(topic string, body []byte, props *paho.PublishProperties) (*paho.PublishResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: body, Properties: props})
}

func canonical(ts time.Time, wh int64) []byte {
	r := meter.Reading{Time: ts, ImportWh: wh, Fields: meter.FieldImport}
	return payload.AppendCanonical(nil, &r, payload.CanonicalOptions{})
}

func TestEmbeddedBrokerToDatabase(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ids := seedMeters(t, pool, "t1", 3)
	seedMeters(t, pool, "t2", 1) // m-0001 is ambiguous without a tenant
	res := newResolver(t, pool)
	b := startBroker(t, postgres.NewStore(pool), res, 0)

	now := time.Now().UTC().Truncate(time.Second)
	// m-0001 logs in as "t1/m-0001"; its Tasmota topic names no tenant, so
	// only its login identity resolves it.
	p1, err := connect(t, b.Addr(), "t1/m-0001", "secret-m-0001", "p1")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := connect(t, b.Addr(), "m-0002", "secret-m-0002", "p2")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := p2.publish(payload.CanonicalTopic("t1", "m-0002"), canonical(now.Add(time.Duration(i)*time.Second), int64(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Acknowledged means stored: no waiting needed.
	if n := count(t, pool, `SELECT count(*) FROM readings WHERE meter_id = $1`, ids[1]); n != 10 {
		t.Fatalf("m-0002 has %d readings after 10 acknowledged publishes", n)
	}
	if _, err := p1.publish(payload.TasmotaTopic("m-0001"), []byte(`{"Time":"`+now.Format(time.RFC3339)+`","ENERGY":{"Total":1.234}}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.publish(payload.CanonicalTopic("t1", "m-0002"), []byte(`{"v":1,`), nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, `SELECT count(*) FROM readings WHERE meter_id = $1 AND import_wh = 1234`, ids[0]); n != 1 {
		t.Fatal("Tasmota reading not stored under t1/m-0001")
	}
	if n := count(t, pool, `SELECT count(*) FROM readings_rejected WHERE reason = 'bad_json' AND meter_ref = 'm-0002'`); n != 1 {
		t.Fatalf("bad JSON rejects = %d", n)
	}
}

func TestBrokerAuthAndACL(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	seedMeters(t, pool, "t1", 2)
	res := newResolver(t, pool)
	b := startBroker(t, postgres.NewStore(pool), res, 0)

	if _, err := connect(t, b.Addr(), "m-0001", "wrong", "bad"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := connect(t, b.Addr(), "m-9999", "secret-m-9999", "unknown"); err == nil {
		t.Fatal("unknown meter accepted")
	}
	p, err := connect(t, b.Addr(), "m-0001", "secret-m-0001", "m1")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{payload.CanonicalTopic("t1", "m-0002"), payload.TasmotaTopic("m-0002"), "meters/t2/m-0001/reading", "anything/else", payload.ThingsBoardGatewayTopic} {
		_, err := p.publish(topic, canonical(time.Now(), 1), nil)
		if err == nil {
			t.Errorf("meter m-0001 could publish to %s", topic)
		}
	}
	for _, topic := range []string{payload.CanonicalTopic("t1", "m-0001"), payload.TasmotaTopic("m-0001"), payload.ShellyTopic("m-0001"), payload.ThingsBoardDeviceTopic} {
		if _, err := p.publish(topic, []byte(`{}`), nil); err != nil {
			t.Errorf("meter m-0001 could not publish to its own %s: %v", topic, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	sa, err := p.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "meters/#", QoS: 1}}})
	if err == nil && (sa == nil || len(sa.Reasons) != 1 || sa.Reasons[0] < 0x80) {
		t.Fatalf("a meter may subscribe: %+v", sa)
	}
}

// blockingStore fails every write until released: the database is down.
type blockingStore struct {
	mu   sync.Mutex
	down bool
	next ingest.ReadingStore
}

func (s *blockingStore) setDown(d bool) { s.mu.Lock(); s.down = d; s.mu.Unlock() }

func (s *blockingStore) WriteReadings(ctx context.Context, rows []meter.Reading) (postgres.WriteResult, error) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		return postgres.WriteResult{}, fmt.Errorf("connection refused: %w", postgres.ErrTransient)
	}
	return s.next.WriteReadings(ctx, rows)
}

func (s *blockingStore) WriteRejects(ctx context.Context, rs []postgres.Reject) error {
	return s.next.WriteRejects(ctx, rs)
}

// TestEmbeddedBrokerRefusesWhatItCannotStore: while the database is down
// the embedded broker acknowledges nothing (the meter gets "quota
// exceeded" and keeps the message); once it is back, the resent message is
// stored once.
func TestEmbeddedBrokerRefusesWhatItCannotStore(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ids := seedMeters(t, pool, "t1", 1)
	down := &blockingStore{down: true, next: postgres.NewStore(pool)}
	b := startBroker(t, down, newResolver(t, pool), 300*time.Millisecond)
	p, err := connect(t, b.Addr(), "m-0001", "secret-m-0001", "m1")
	if err != nil {
		t.Fatal(err)
	}
	msg := canonical(time.Now().UTC().Truncate(time.Second), 7)
	if _, err := p.publish(payload.CanonicalTopic("t1", "m-0001"), msg, nil); err == nil {
		t.Fatal("publish acknowledged while the database was down")
	}
	down.setDown(false)
	for i := range 2 { // the resend, and a duplicate of it
		if _, err := p.publish(payload.CanonicalTopic("t1", "m-0001"), msg, nil); err != nil {
			t.Fatalf("publish %d after recovery: %v", i, err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM readings WHERE meter_id = $1`, ids[0]); n != 1 {
		t.Fatalf("%d readings, want 1", n)
	}
}

// TestNoAckWhileDatabaseDown: with an external broker (Mosquitto), while
// writes fail the gateway acknowledges nothing; a gateway restarted with
// the database back gets every message again from its persistent session
// and stores each once.
func TestNoAckWhileDatabaseDown(t *testing.T) {
	t.Parallel()
	addr := brokertest.Start(t).Addr
	pool := schematest.New(t)
	ids := seedMeters(t, pool, "t1", 1)
	res := newResolver(t, pool)
	down := &blockingStore{down: true, next: postgres.NewStore(pool)}
	cfg := mqtt.Config{Brokers: []string{"mqtt://" + addr}, ClientID: "gw-down"}
	g := startGateway(t, down, res, cfg)
	p, err := connect(t, addr, "", "", "m1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	const n = 50
	for i := range n {
		if _, err := p.publish(payload.CanonicalTopic("t1", "m-0001"), canonical(now.Add(time.Duration(i)*time.Second), int64(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the gateway receive them and fail to write them
	g.stop(t)
	if c := count(t, pool, `SELECT count(*) FROM readings`); c != 0 {
		t.Fatalf("%d readings stored while the database was down", c)
	}
	down.setDown(false)
	g2 := startGateway(t, down, res, cfg)
	defer g2.stop(t)
	waitFor(t, 10*time.Second, "redelivered readings", func() bool { return count(t, pool, `SELECT count(*) FROM readings WHERE meter_id = $1`, ids[0]) == n })
}

// TestMosquittoInterop runs the gateway against Debian's Mosquitto
// configured as meterd needs it (persistence, unlimited queues), and shows
// that messages published while the gateway is away are delivered from its
// persistent session, each stored once.
func TestMosquittoInterop(t *testing.T) {
	t.Parallel()
	addr := brokertest.Start(t).Addr
	pool := schematest.New(t)
	ids := seedMeters(t, pool, "t1", 2)
	res := newResolver(t, pool)
	cfg := mqtt.Config{Brokers: []string{"mqtt://" + addr}, ClientID: "gw-mosq", ShareGroup: "meterd"}
	g := startGateway(t, postgres.NewStore(pool), res, cfg)
	p, err := connect(t, addr, "", "", "mosq-pub")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 20 {
		if _, err := p.publish(payload.CanonicalTopic("t1", "m-0001"), canonical(now.Add(time.Duration(i)*time.Second), int64(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "first readings", func() bool { return count(t, pool, `SELECT count(*) FROM readings`) == 20 })
	g.stop(t)
	for i := range 30 { // the gateway is away: Mosquitto queues for its session
		if _, err := p.publish(payload.CanonicalTopic("t1", "m-0002"), canonical(now.Add(time.Duration(i)*time.Second), int64(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	g2 := startGateway(t, postgres.NewStore(pool), res, cfg)
	defer g2.stop(t)
	waitFor(t, 10*time.Second, "queued readings", func() bool { return count(t, pool, `SELECT count(*) FROM readings WHERE meter_id = $1`, ids[1]) == 30 })
}
