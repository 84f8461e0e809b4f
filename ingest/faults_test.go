package ingest_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/ingest/internal/brokertest"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
	"github.com/meterd/meterd/simulator/mqttpub"
	simpg "github.com/meterd/meterd/simulator/postgres"
	"github.com/meterd/meterd/simulator/verify"
)

// TestFaultInjectedRun runs a simulated fleet with faults switched on
// (malformed payloads, duplicate and out-of-order delivery, counter resets,
// meter replacements, register rollovers on SunSpec meters) through
// Mosquitto into the gateway. Nothing valid is lost or stored twice, no
// malformed input is stored as a reading, every malformed message is in
// readings_rejected with its reason, and every reset, replacement and
// rollover shows up as a counter event.
func TestFaultInjectedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end fault run")
	}
	mq := brokertest.Start(t)
	pool := schematest.New(t)
	start := time.Now().UTC().Add(-12 * time.Hour).Truncate(time.Minute)
	f, err := simulator.New(simulator.Config{Seed: 41, Meters: 30, Start: start, Interval: time.Minute, Step: time.Minute,
		Models: []string{"sdm120", "sdm630", "sunspec_203"}, TasmotaShare: 0.2,
		Faults: simulator.Faults{
			Duplicate: 0.01, OutOfOrder: 0.01,
			BrokenJSON: 0.005, WrongType: 0.005, UnknownMeter: 0.005, FutureTime: 0.005, PastTime: 0.005,
			Reset: 1, Replacement: 0.5, // per meter-day
			Rollover: 0.5, RolloverAfter: time.Hour,
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := simpg.Provision(context.Background(), pool, f); err != nil {
		t.Fatal(err)
	}
	gw := startInProcess(t, pool, mq.Addr)
	specs := &ingest.ModelSpecs{}
	models := map[int64]string{}
	ids, err := simpg.NewStore(pool).MeterIDs(context.Background(), f.Config().Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Len() {
		models[ids[f.Meter(i).ExternalID]] = f.Meter(i).Model
	}
	gw.tr.SetSpecFunc(func(id int64, reg meter.Fields) (meter.CounterSpec, bool) { return specs.Spec(models[id], reg) })

	path := filepath.Join(t.TempDir(), "faults.manifest")
	mw, err := manifest.Create(path, manifest.Header{Fleet: f.Config(), Source: "mqtt", QoS: 1, Batch: 1}, manifest.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mqttpub.New(f, mqttpub.Config{BrokerURL: "mqtt://" + mq.Addr, Workers: 8, From: start, To: start.Add(6 * time.Hour), Manifest: mw})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pub.Done():
	case err := <-pub.Failed():
		t.Fatal(err)
	case <-time.After(3 * time.Minute):
		t.Fatal("publisher did not finish")
	}
	_ = pub.Stop(context.Background())
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	var rep *verify.Report
	deadline := time.Now().Add(time.Minute)
	for {
		rep, err = verify.Verify(context.Background(), simpg.NewStore(pool), path, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var b strings.Builder
	rep.WriteText(&b)
	t.Logf("verify:\n%s", b.String())
	if !rep.OK() {
		t.Fatalf("verify failed: %v", rep.Err(false))
	}
	gw.stop() // flushes counter events

	reasons := map[string]meter.Reason{"broken_json": meter.ReasonBadJSON, "wrong_type": meter.ReasonWrongType,
		"unknown_meter": meter.ReasonUnknownMeter, "future_time": meter.ReasonFutureTimestamp, "past_time": meter.ReasonTooOld}
	for fault, reason := range reasons {
		want := rep.Faults[fault]
		got := int64(count(t, pool, `SELECT count(*) FROM readings_rejected WHERE reason = $1 AND payload <> ''`, string(reason)))
		t.Logf("%s: %d injected, %d rejected as %s", fault, want, got, reason)
		if want == 0 {
			t.Errorf("no %s fault injected; raise its rate", fault)
		}
		if got < want {
			t.Errorf("%s: %d injected, only %d rejects with reason %s", fault, want, got, reason)
		}
	}
	events := map[string]int64{}
	rows, err := pool.Query(context.Background(), `SELECT kind, count(*) FROM counter_events GROUP BY kind`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k int16
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		events[meter.CounterEventKind(k).String()] = n
	}
	t.Logf("faults %v; counter events %v", rep.Faults, events)
	if events["rollover"] < rep.Faults["rollover"] {
		t.Errorf("%d rollover-armed meters, %d rollover events", rep.Faults["rollover"], events["rollover"])
	}
	if steps, want := events["reset"]+events["replacement"]+events["jump"], rep.Faults["reset"]+rep.Faults["replacement"]; steps < want || want == 0 {
		t.Errorf("%d resets and replacements injected, %d counter events recorded", want, steps)
	}
}
