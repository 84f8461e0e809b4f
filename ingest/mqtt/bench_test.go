package mqtt_test

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/ingest/internal/brokertest"
	"github.com/meterd/meterd/ingest/mqtt"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/postgres"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/mqttpub"
	simpg "github.com/meterd/meterd/simulator/postgres"
)

// countingSubscriber counts the messages a QoS 1 subscription receives:
// the broker's own rate, the baseline of the end-to-end benchmark.
func countingSubscriber(b *testing.B, addr string) (*atomic.Int64, func()) {
	b.Helper()
	var n atomic.Int64
	u, _ := url.Parse("mqtt://" + addr)
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 30, CleanStartOnInitialConnection: true,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			go func() {
				_, _ = cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "meters/+/+/reading", QoS: 1}}})
			}()
		},
		ClientConfig: paho.ClientConfig{ClientID: "counter", OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(paho.PublishReceived) (bool, error) { n.Add(1); return true, nil }}},
	})
	if err != nil {
		b.Fatal(err)
	}
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	if err := cm.AwaitConnection(actx); err != nil {
		b.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the SUBSCRIBE goroutine
	return &n, func() { _ = cm.Disconnect(context.Background()); cancel() }
}

// runFleet publishes ticks [from, to) of the fleet at QoS 1 with batch
// readings per message and returns once done.
func runFleet(b *testing.B, f *simulator.Fleet, addr string, from, to, batch int) {
	b.Helper()
	start := f.Config().Start
	iv := f.Config().Interval
	p, err := mqttpub.New(f, mqttpub.Config{BrokerURL: "mqtt://" + addr, Batch: batch,
		From: start.Add(time.Duration(from) * iv), To: start.Add(time.Duration(to) * iv)})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-p.Done():
	case err := <-p.Failed():
		b.Fatal(err)
	}
	_ = p.Stop(context.Background())
}

func counterValue(c prometheus.Counter) int64 {
	var d dto.Metric
	_ = c.Write(&d)
	return int64(d.GetCounter().GetValue())
}

// waitCount waits until count() reaches want.
func waitCount(b *testing.B, want int64, count func() int64) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for count() < want {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d after 5 minutes", count(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkEndToEnd measures, against one Mosquitto in the same run, the
// broker's own rate to a subscriber that only counts (the baseline) and
// the gateway's committed rate (simulator → broker → gateway → database),
// with one reading per message, then with 100 readings per message.
//
// It runs on each storage profile this machine has: the postgres profile's
// statement trigger (rollup dirty marks) costs the writer noticeably.
func BenchmarkEndToEnd(b *testing.B) {
	for _, prof := range []schema.Profile{schema.ProfilePostgres, schema.ProfileTimescale} {
		b.Run(string(prof), func(b *testing.B) { benchEndToEnd(b, prof) })
	}
}

func benchEndToEnd(b *testing.B, prof schema.Profile) {
	const meters, ticks, batchTicks = 100, 300, 3000
	mq := brokertest.Start(b)
	pool := schematest.NewProfile(b, prof)
	// Every iteration publishes ticks+ticks+batchTicks minutes of history,
	// all of it in the past (future readings would be rejected).
	history := time.Duration(b.N*(2*ticks+batchTicks)+60) * time.Minute
	f, err := simulator.New(simulator.Config{Seed: 7, Meters: meters, Start: time.Now().UTC().Add(-history).Truncate(time.Hour),
		Interval: time.Minute, Step: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := simpg.Provision(context.Background(), pool, f); err != nil {
		b.Fatal(err)
	}
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	res := newResolver(b, pool)
	st, err := schema.LoadStorage(context.Background(), pool)
	if err != nil {
		b.Fatal(err)
	}
	up := schema.NewUpkeep(pool, st, schema.UpkeepConfig{})
	// Partitions for the whole run exist before the clock starts.
	if _, err := up.EnsurePartitions(context.Background(), f.Config().Start, time.Now()); err != nil {
		b.Fatal(err)
	}
	pipe, err := ingest.NewPipeline(ingest.PipelineConfig{}, postgres.NewStore(pool), up, nil, m, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := pipe.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = pipe.Stop(ctx)
	}()
	dec, err := ingest.NewMessageDecoder(payload.DefaultConfig(), meter.DefaultLimits(), res, m)
	if err != nil {
		b.Fatal(err)
	}

	var brokerT, gwT, batchT time.Duration
	var msgs, batchReadings int64
	tick := 0
	b.ResetTimer()
	for range b.N {
		// Baseline: the broker to a counting subscriber.
		n, stop := countingSubscriber(b, mq.Addr)
		t0 := time.Now()
		runFleet(b, f, mq.Addr, tick, tick+ticks, 1)
		waitCount(b, meters*ticks, n.Load)
		brokerT += time.Since(t0)
		stop()
		tick += ticks

		// The gateway, on the same broker, one reading per message.
		src, err := mqtt.New(mqtt.Config{Brokers: []string{"mqtt://" + mq.Addr}, ClientID: "bench-gw", ShareGroup: "meterd"}, dec, pipe, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := src.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := src.AwaitConnection(actx); err != nil {
			b.Fatal(err)
		}
		cancel()
		base := counterValue(m.Written)
		t0 = time.Now()
		runFleet(b, f, mq.Addr, tick, tick+ticks, 1)
		waitCount(b, base+meters*ticks, func() int64 { return counterValue(m.Written) })
		gwT += time.Since(t0)
		tick += ticks
		msgs += meters * ticks

		// Batched payloads: 100 readings per message.
		base = counterValue(m.Written)
		t0 = time.Now()
		runFleet(b, f, mq.Addr, tick, tick+batchTicks, 100)
		waitCount(b, base+meters*batchTicks, func() int64 { return counterValue(m.Written) })
		batchT += time.Since(t0)
		tick += batchTicks
		batchReadings += meters * batchTicks
		_ = src.Stop(context.Background())
	}
	b.StopTimer()
	b.ReportMetric(float64(msgs)/brokerT.Seconds(), "broker_msgs/s")
	b.ReportMetric(float64(msgs)/gwT.Seconds(), "gateway_msgs/s")
	b.ReportMetric(brokerT.Seconds()/gwT.Seconds(), "gateway/broker")
	b.ReportMetric(float64(batchReadings)/batchT.Seconds(), "batched_readings/s")
}
