package mqttpub

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
)

var testStart = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type key struct {
	meter string
	ts    int64
}

// readManifest returns the manifest's valid readings by (meter ref, µs)
// and its faults.
func readManifest(t *testing.T, f *simulator.Fleet, path string) (map[key]manifest.Reading, []manifest.Fault) {
	t.Helper()
	rd, err := manifest.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rd.Close() }()
	got := map[key]manifest.Reading{}
	var faults []manifest.Fault
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Message != nil {
			for _, r := range rec.Message.Readings {
				got[key{f.Meter(rec.Message.Meter).ExternalID, r.Time.UnixMicro()}] = r
			}
		} else {
			faults = append(faults, *rec.Fault)
		}
	}
	if !rd.Ended() {
		t.Error("manifest has no end record after a clean stop")
	}
	return got, faults
}

func runToDone(t *testing.T, p *Publisher) {
	t.Helper()
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case err := <-p.Failed():
		t.Fatalf("publisher failed: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("publisher did not finish within 60 s")
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// A backfill with per-meter logins reaches a real broker: every payload
// decodes with meter/payload, the decoded readings are exactly what the
// manifest says was delivered, and the malformed extras are rejected by the
// decoder, meter.Limits or the broker's ACL.
func TestBackfillThroughBroker(t *testing.T) {
	fleet, err := simulator.New(simulator.Config{
		Seed: 42, Meters: 12, Start: testStart, Interval: time.Minute, TasmotaShare: 0.3,
		Faults: simulator.Faults{Duplicate: 0.05, OutOfOrder: 0.05, Late: 0.03, LateBy: 3,
			BrokenJSON: 0.01, WrongType: 0.01, UnknownMeter: 0.01, FutureTime: 0.01, PastTime: 0.01, Reset: 0.5, Gap: 0.5},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, fleet, true)
	path := filepath.Join(t.TempDir(), "run.manifest")
	mw, err := manifest.Create(path, manifest.Header{Fleet: fleet.Config(), Source: "mqtt", QoS: 1, Batch: 5}, manifest.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := testStart.Add(30 * 24 * time.Hour)
	p, err := New(fleet, Config{BrokerURL: b.url, Batch: 5, Workers: 3, From: testStart, To: testStart.Add(4 * time.Hour),
		Manifest: mw, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	runToDone(t, p)
	b.settle(t)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	want, faults := readManifest(t, fleet, path)

	dec, err := payload.NewDecoder(payload.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	limits := meter.DefaultLimits()
	got := map[key]int{}
	rejected := map[meter.Reason]int{}
	for _, m := range b.messages() {
		if isSys(m.topic) {
			continue
		}
		msg, err := dec.Decode(payload.Input{Topic: m.topic, Payload: m.payload, ReceivedAt: now})
		if err != nil {
			reason, ok := meter.ReasonOf(err)
			if !ok {
				t.Fatalf("decode %s: %v is not a reject", m.topic, err)
			}
			rejected[reason]++
			continue
		}
		for _, r := range msg.Readings {
			if err := limits.Check(&r.Reading, now); err != nil {
				reason, _ := meter.ReasonOf(err)
				rejected[reason]++
				continue
			}
			k := key{r.Meter, r.Time.UnixMicro()}
			got[k]++
			w, ok := want[k]
			if !ok {
				t.Errorf("%s at %v: delivered but not in the manifest", r.Meter, r.Time)
				continue
			}
			if r.ImportWh != w.ImportWh || r.ExportWh != w.ExportWh || r.PowerW != w.PowerW {
				t.Errorf("%s at %v: got %d/%d Wh %v W, manifest %d/%d Wh %v W", r.Meter, r.Time, r.ImportWh, r.ExportWh, r.PowerW, w.ImportWh, w.ExportWh, w.PowerW)
			}
		}
	}
	for k := range want {
		if got[k] == 0 {
			t.Errorf("%s at %v: in the manifest but never delivered", k.meter, time.UnixMicro(k.ts))
		}
	}
	byKind := map[simulator.Kind]int{}
	for _, f := range faults {
		byKind[f.Kind]++
	}
	t.Logf("readings %d, messages %d, faults %v, rejected %v", len(want), len(b.messages()), byKind, rejected)
	dups := 0
	for _, n := range got {
		if n > 1 {
			dups++
		}
	}
	if byKind[simulator.KindDuplicate] > 0 && dups == 0 {
		t.Error("duplicate faults recorded but no reading arrived twice")
	}
	if rejected[meter.ReasonBadJSON] != byKind[simulator.KindBrokenJSON] {
		t.Errorf("bad_json rejects %d, broken_json faults %d", rejected[meter.ReasonBadJSON], byKind[simulator.KindBrokenJSON])
	}
	if rejected[meter.ReasonFutureTimestamp] != byKind[simulator.KindFutureTime] || rejected[meter.ReasonTooOld] != byKind[simulator.KindPastTime] {
		t.Errorf("future/too_old rejects %d/%d, faults %d/%d", rejected[meter.ReasonFutureTimestamp], rejected[meter.ReasonTooOld],
			byKind[simulator.KindFutureTime], byKind[simulator.KindPastTime])
	}
	if n := byKind[simulator.KindWrongType]; rejected[meter.ReasonWrongType] != n {
		t.Errorf("wrong_type rejects %d, faults %d", rejected[meter.ReasonWrongType], n)
	}
	for _, f := range faults {
		if f.Kind == simulator.KindUnknownMeter && !contains(f.Detail, "refused") {
			t.Errorf("unknown-meter message was not refused by the ACL: %s", f.Detail)
		}
	}
	for _, k := range []simulator.Kind{simulator.KindDuplicate, simulator.KindOutOfOrder, simulator.KindReset, simulator.KindGap} {
		if byKind[k] == 0 {
			t.Errorf("no %s fault in a run configured for them", k)
		}
	}
	// Every delivered reading is what the model says at its time.
	states := map[string]*simulator.State{}
	for k, w := range want {
		i, _ := fleet.Lookup(k.meter)
		s := states[k.meter]
		if s == nil {
			s = fleet.NewState(i)
			states[k.meter] = s
		}
		smp := s.At(time.UnixMicro(k.ts))
		if smp.ImportWh != w.ImportWh || smp.ExportWh != w.ExportWh {
			t.Errorf("%s at %v: manifest %d/%d Wh, model %d/%d Wh", k.meter, time.UnixMicro(k.ts), w.ImportWh, w.ExportWh, smp.ImportWh, smp.ExportWh)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

// A fleet whose secrets the broker does not know is refused, and the
// publisher reports it instead of retrying forever.
func TestRefusedLogin(t *testing.T) {
	known, err := simulator.New(simulator.Config{Seed: 1, Meters: 2, Start: testStart})
	if err != nil {
		t.Fatal(err)
	}
	other, err := simulator.New(simulator.Config{Seed: 2, Meters: 2, Start: testStart})
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, known, false)
	p, err := New(other, Config{BrokerURL: b.url, From: testStart, To: testStart.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(ctx) }()
	select {
	case err := <-p.Failed():
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("failed with %v, want ErrRefused", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no failure reported for refused logins")
	}
}

// Live mode publishes each tick as the wall clock reaches it.
func TestLive(t *testing.T) {
	start := time.Now().UTC().Truncate(time.Second)
	fleet, err := simulator.New(simulator.Config{Seed: 3, Meters: 3, Start: start, Interval: time.Second, Step: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, fleet, true)
	p, err := New(fleet, Config{BrokerURL: b.url, Live: true, QoS0: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for b.count.Load() < 6 {
		select {
		case <-b.wake:
		case err := <-p.Failed():
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("only %d live messages in 20 s", b.count.Load())
		}
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	dec, _ := payload.NewDecoder(payload.DefaultConfig())
	for _, m := range b.messages() {
		msg, err := dec.Decode(payload.Input{Topic: m.topic, Payload: m.payload, ReceivedAt: time.Now()})
		if err != nil {
			t.Fatalf("%s: %v", m.topic, err)
		}
		for _, r := range msg.Readings {
			if r.Time.Sub(start)%time.Second != 0 || r.Time.After(time.Now()) {
				t.Errorf("live reading at %v is not a past tick", r.Time)
			}
		}
	}
	if s := p.Stats(); s.Messages < 6 || s.Readings != s.Messages {
		t.Errorf("stats %+v", s)
	}
}

// A broker that refuses publishes with "quota exceeded" (meterd's broker
// while no gateway is subscribed) gets them again until it takes them.
func TestQuotaExceededIsRetried(t *testing.T) {
	fleet, err := simulator.New(simulator.Config{Seed: 4, Meters: 3, Start: testStart})
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, fleet, true)
	b.auth.refuse.Store(8)
	p, err := New(fleet, Config{BrokerURL: b.url, From: testStart, To: testStart.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	runToDone(t, p)
	b.settle(t)
	if got := b.count.Load(); got != 3*60 {
		t.Errorf("broker took %d messages, want %d", got, 3*60)
	}
	if s := p.Stats(); s.Errors < 8 || s.Refused != 0 || s.Readings != 3*60 {
		t.Errorf("stats %+v: want ≥ 8 retried errors, nothing given up", s)
	}
}
