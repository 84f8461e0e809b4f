package mqttpub

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/simulator"
)

// BenchmarkPublish measures the publisher against an embedded mochi broker
// whose only subscriber counts, at QoS 1 with one connection per meter,
// for single-reading and 100-reading canonical messages. In the same run
// it measures the baseline: raw paho publishes of a fixed payload of the
// same size, over the same number of connections and goroutines, to the
// same broker. It reports msgs/s and readings/s of both and the ratio
// publisher/baseline, the figure to compare the gateway's end-to-end rate
// with later.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct {
		name     string
		batch    int
		messages int
	}{
		{"single", 1, 20_000},
		{"batch100", 100, 4_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const meters, workers = 100, 16
			broker := startBroker(b, nil, false)
			from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			fleet, err := simulator.New(simulator.Config{Seed: 1, Meters: meters, Start: from, Interval: time.Minute, Step: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			ticks := bc.messages * bc.batch / meters
			window := time.Duration(ticks) * time.Minute

			// A typical payload of this size for the baseline.
			s := fleet.NewState(0)
			var rs = make([]simulator.Sample, bc.batch)
			for k := range rs {
				rs[k] = s.At(from.Add(time.Duration(k) * time.Minute))
			}
			body := baselinePayload(rs, fleet.Meter(0).Phases)
			raw := dialRaw(b, broker.url, meters)

			var simTime, rawTime time.Duration
			var simMsgs, rawMsgs int64
			iter := 0
			for b.Loop() {
				// Baseline.
				target := broker.count.Load() + int64(bc.messages)
				t0 := time.Now()
				rawPublish(b, raw, workers, bc.messages, body)
				waitCount(b, broker, target)
				rawTime += time.Since(t0)
				rawMsgs += int64(bc.messages)

				// Publisher, a new window of the fleet each iteration.
				start := from.Add(time.Duration(iter) * window)
				iter++
				target = broker.count.Load() + int64(bc.messages)
				p, err := New(fleet, Config{BrokerURL: broker.url, Batch: bc.batch, Workers: workers, From: start, To: start.Add(window)})
				if err != nil {
					b.Fatal(err)
				}
				t0 = time.Now()
				if err := p.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				<-p.Done()
				waitCount(b, broker, target)
				simTime += time.Since(t0)
				simMsgs += p.Stats().Messages
				if err := p.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			simRate := float64(simMsgs) / simTime.Seconds()
			rawRate := float64(rawMsgs) / rawTime.Seconds()
			b.ReportMetric(simRate, "msgs/s")
			b.ReportMetric(simRate*float64(bc.batch), "readings/s")
			b.ReportMetric(rawRate, "baseline-msgs/s")
			b.ReportMetric(rawRate*float64(bc.batch), "baseline-readings/s")
			b.ReportMetric(simRate/rawRate, "ratio")
		})
	}
}

func baselinePayload(rs []simulator.Sample, phases int) []byte {
	if len(rs) == 1 {
		r := rs[0].Reading(phases)
		return payload.AppendCanonical(nil, &r, payload.CanonicalOptions{})
	}
	readings := make([]meter.Reading, len(rs))
	for k := range rs {
		readings[k] = rs[k].Reading(phases)
	}
	return payload.AppendCanonicalBatch(nil, readings, payload.CanonicalOptions{})
}

func dialRaw(b *testing.B, broker string, n int) []*autopaho.ConnectionManager {
	b.Helper()
	u, err := url.Parse(broker)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]*autopaho.ConnectionManager, n)
	for i := range conns {
		cm, err := autopaho.NewConnection(context.Background(), autopaho.ClientConfig{
			ServerUrls: []*url.URL{u}, KeepAlive: 60, CleanStartOnInitialConnection: true,
			ClientConfig: paho.ClientConfig{ClientID: fmt.Sprintf("baseline-%d", i)},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := cm.AwaitConnection(context.Background()); err != nil {
			b.Fatal(err)
		}
		conns[i] = cm
	}
	b.Cleanup(func() {
		for _, cm := range conns {
			disconnect(context.Background(), cm)
		}
	})
	return conns
}

// rawPublish publishes n copies of body at QoS 1 from workers goroutines,
// each cycling over its share of the connections, like the publisher.
func rawPublish(b *testing.B, conns []*autopaho.ConnectionManager, workers, n int, body []byte) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := 0
			for i := w; i < n; i += workers {
				cm := conns[(w+k*workers)%len(conns)]
				k++
				if _, err := cm.Publish(context.Background(), &paho.Publish{QoS: 1, Topic: fmt.Sprintf("meters/sim/raw-%d/reading", w), Payload: body}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func waitCount(b *testing.B, broker *testBroker, target int64) {
	deadline := time.After(2 * time.Minute)
	for broker.count.Load() < target {
		select {
		case <-broker.wake:
		case <-deadline:
			b.Fatalf("subscriber got %d of %d messages", broker.count.Load(), target)
		}
	}
}
