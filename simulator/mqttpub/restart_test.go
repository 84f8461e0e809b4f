package mqttpub

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
)

// A broker restart mid-run: the publisher reconnects and resends, and every
// reading the manifest lists reached one of the two brokers' subscribers.
func TestBrokerRestart(t *testing.T) {
	fleet, err := simulator.New(simulator.Config{Seed: 21, Meters: 20, Start: testStart, Interval: time.Minute, Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	first := startBroker(t, fleet, true)
	addr := strings.TrimPrefix(first.url, "mqtt://")
	path := filepath.Join(t.TempDir(), "restart.manifest")
	mw, err := manifest.Create(path, manifest.Header{Fleet: fleet.Config(), Source: "mqtt", QoS: 1, Batch: 1}, manifest.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(fleet, Config{BrokerURL: first.url, Workers: 4, From: testStart, To: testStart.Add(24 * time.Hour), Manifest: mw})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for first.count.Load() < 2000 {
		select {
		case <-first.wake:
		case <-deadline:
			t.Fatal("no progress before the restart")
		}
	}
	first.close()
	second := startBrokerAt(t, fleet, addr)
	select {
	case <-p.Done():
	case err := <-p.Failed():
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatalf("publisher did not finish after the restart (stats %+v)", p.Stats())
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	want, _ := readManifest(t, fleet, path)
	dec, _ := payload.NewDecoder(payload.DefaultConfig())
	got := map[key]bool{}
	for _, m := range append(first.messages(), second.messages()...) {
		msg, err := dec.Decode(payload.Input{Topic: m.topic, Payload: m.payload, ReceivedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range msg.Readings {
			got[key{r.Meter, r.Time.UnixMicro()}] = true
		}
	}
	missing := 0
	for k := range want {
		if !got[k] {
			missing++
		}
	}
	if missing > 0 || len(want) != 20*24*60 {
		t.Errorf("%d of %d manifest readings never reached a broker (want %d readings in all)", missing, len(want), 20*24*60)
	}
	t.Logf("first broker %d, second %d messages; publisher errors %d", first.count.Load(), second.count.Load(), p.Stats().Errors)
}
