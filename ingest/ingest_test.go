package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/postgres"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// seedMeters creates tenant code with n MQTT meters m-0001… and returns
// their ids.
func seedMeters(t testing.TB, pool *pgxpool.Pool, code string, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var tenant int64
	if err := pool.QueryRow(ctx, `INSERT INTO tenants (code, name) VALUES ($1, $1) RETURNING id`, code).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `INSERT INTO meters (tenant_id, external_id, serial, model, protocol, expected_interval)
		SELECT $1, format('m-%s', lpad(g::text, 4, '0')), format('S%s', g), 'sdm630', 'mqtt', '1 minute'
		FROM generate_series(1, $2) g ORDER BY g RETURNING id`, tenant, n)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
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

func rd(id int64, ts time.Time, wh int64) meter.Reading {
	return meter.Reading{MeterID: id, Time: ts.UTC(), ReceivedAt: ts.UTC(), ImportWh: wh, Fields: meter.FieldImport, Source: meter.SourceMQTT}
}

// metricValue reads a counter or gauge.
func metricValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var d dto.Metric
	if err := (<-ch).Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func newMetrics(t testing.TB) *ingest.Metrics {
	t.Helper()
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func startPipeline(t testing.TB, cfg ingest.PipelineConfig, store ingest.ReadingStore, parts ingest.PartitionMaker, obs ingest.Observer, m *ingest.Metrics) *ingest.Pipeline {
	t.Helper()
	p, err := ingest.NewPipeline(cfg, store, parts, obs, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	return p
}

// submitWait submits envelopes and waits for all their Done calls.
func submitWait(t testing.TB, p *ingest.Pipeline, envs ...*ingest.Envelope) []error {
	t.Helper()
	errs := make([]error, len(envs))
	var wg sync.WaitGroup
	for i, e := range envs {
		wg.Add(1)
		e.Done = func(err error) { errs[i] = err; wg.Done() }
		if err := p.Submit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	return errs
}

func TestPipelineStoresOnceAndDedupes(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ids := seedMeters(t, pool, "t1", 2)
	m := newMetrics(t)
	p := startPipeline(t, ingest.PipelineConfig{BatchSize: 3, Linger: 20 * time.Millisecond}, postgres.NewStore(pool), nil, nil, m)
	now := time.Now().UTC().Truncate(time.Second)
	a := &ingest.Envelope{Readings: []meter.Reading{rd(ids[0], now, 1), rd(ids[0], now, 1), rd(ids[1], now, 5)}}
	b := &ingest.Envelope{Readings: []meter.Reading{rd(ids[0], now, 1), rd(ids[0], now.Add(time.Second), 2)},
		Rejects: []postgres.Reject{{ReceivedAt: now, Source: meter.SourceMQTT, Reason: meter.ReasonBadJSON, Payload: []byte("{")}}}
	for _, err := range submitWait(t, p, a, b) {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Redelivery of both: nothing new.
	a2 := &ingest.Envelope{Readings: a.Readings}
	if errs := submitWait(t, p, a2); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if n := count(t, pool, `SELECT count(*) FROM readings`); n != 3 {
		t.Fatalf("readings = %d, want 3", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM readings_rejected WHERE reason = 'bad_json'`); n != 1 {
		t.Fatalf("rejects = %d, want 1", n)
	}
	if got := metricValue(m.Written); got != 3 {
		t.Fatalf("written metric = %v", got)
	}
	dups := metricValue(m.Duplicates.WithLabelValues("batch")) + metricValue(m.Duplicates.WithLabelValues("database"))
	if dups != 5 { // a: 1 in batch; b: 1 stored; a again: 1 in batch, 2 stored
		t.Fatalf("duplicates metric = %v, want 5", dups)
	}
	if got := metricValue(m.Rejected.WithLabelValues("bad_json")); got != 1 {
		t.Fatalf("rejected metric = %v", got)
	}
}

func TestPipelineCreatesMissingPartitions(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	ids := seedMeters(t, pool, "t1", 1)
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	up := schema.NewUpkeep(pool, st, schema.UpkeepConfig{})
	p := startPipeline(t, ingest.PipelineConfig{Linger: time.Millisecond}, postgres.NewStore(pool), up, nil, newMetrics(t))
	old := time.Now().UTC().AddDate(0, 0, -40)
	if errs := submitWait(t, p, &ingest.Envelope{Readings: []meter.Reading{rd(ids[0], old, 1), rd(ids[0], old.Add(-72*time.Hour), 0)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if n := count(t, pool, `SELECT count(*) FROM readings`); n != 2 {
		t.Fatalf("readings = %d", n)
	}
}

// fakeStore is an in-memory ReadingStore with scripted failures.
type fakeStore struct {
	mu        sync.Mutex
	rows      map[string]bool
	rejects   []postgres.Reject
	transient int            // fail this many writes with ErrTransient first
	poison    map[int64]bool // meter ids whose rows the "database" refuses
	block     chan struct{}  // when set, writes wait for it to close
	calls     int
}

func (f *fakeStore) WriteReadings(ctx context.Context, rows []meter.Reading) (postgres.WriteResult, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return postgres.WriteResult{}, fmt.Errorf("blocked: %w", errors.Join(postgres.ErrTransient, ctx.Err()))
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.transient > 0 {
		f.transient--
		return postgres.WriteResult{}, fmt.Errorf("down: %w", postgres.ErrTransient)
	}
	for _, r := range rows {
		if f.poison[r.MeterID] {
			return postgres.WriteResult{}, fmt.Errorf("numeric field overflow: %w", postgres.ErrBadRow)
		}
	}
	var res postgres.WriteResult
	for _, r := range rows {
		k := fmt.Sprint(r.MeterID, r.Time.UnixMicro())
		if f.rows[k] {
			res.Duplicates++
			continue
		}
		f.rows[k] = true
		res.Inserted++
	}
	return res, nil
}

func (f *fakeStore) WriteRejects(_ context.Context, rs []postgres.Reject) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejects = append(f.rejects, rs...)
	return nil
}

func TestPipelineTriagesBadRows(t *testing.T) {
	t.Parallel()
	f := &fakeStore{rows: map[string]bool{}, poison: map[int64]bool{7: true, 9: true}}
	m := newMetrics(t)
	p := startPipeline(t, ingest.PipelineConfig{BatchSize: 100, Linger: time.Millisecond}, f, nil, nil, m)
	now := time.Now()
	var rows []meter.Reading
	for id := int64(1); id <= 20; id++ {
		rows = append(rows, rd(id, now, id))
	}
	if errs := submitWait(t, p, &ingest.Envelope{Readings: rows}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if len(f.rows) != 18 || len(f.rejects) != 2 {
		t.Fatalf("stored %d rows and %d rejects, want 18 and 2", len(f.rows), len(f.rejects))
	}
	for _, r := range f.rejects {
		if r.Reason != meter.ReasonImpossibleValue || (r.MeterRef != "7" && r.MeterRef != "9") || len(r.Payload) == 0 {
			t.Fatalf("reject = %+v", r)
		}
	}
}

func TestPipelineRetriesTransientErrors(t *testing.T) {
	t.Parallel()
	f := &fakeStore{rows: map[string]bool{}, transient: 3}
	m := newMetrics(t)
	p := startPipeline(t, ingest.PipelineConfig{Linger: time.Millisecond, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond}, f, nil, nil, m)
	if errs := submitWait(t, p, &ingest.Envelope{Readings: []meter.Reading{rd(1, time.Now(), 1)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if f.calls != 4 || len(f.rows) != 1 {
		t.Fatalf("calls %d rows %d", f.calls, len(f.rows))
	}
	if got := metricValue(m.WriteRetries.WithLabelValues("transient")); got != 3 {
		t.Fatalf("retries metric = %v", got)
	}
	if !p.Healthy() {
		t.Fatal("not healthy after recovery")
	}
}

func TestPipelineBackpressureAndStop(t *testing.T) {
	t.Parallel()
	f := &fakeStore{rows: map[string]bool{}, block: make(chan struct{})}
	p, err := ingest.NewPipeline(ingest.PipelineConfig{BatchSize: 2, MaxQueued: 4, Writers: 1, Linger: time.Millisecond}, f, nil, nil, newMetrics(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var stopped atomic.Int32
	done := func(err error) {
		if errors.Is(err, ingest.ErrStopped) {
			stopped.Add(1)
		}
	}
	now := time.Now()
	for i := range 2 {
		e := &ingest.Envelope{Readings: []meter.Reading{rd(1, now.Add(time.Duration(2*i)*time.Second), 1), rd(1, now.Add(time.Duration(2*i+1)*time.Second), 1)}, Done: done}
		if !p.TrySubmit(e) {
			t.Fatalf("envelope %d refused below MaxQueued", i)
		}
	}
	if p.TrySubmit(&ingest.Envelope{Readings: []meter.Reading{rd(2, now, 1)}, Done: done}) {
		t.Fatal("TrySubmit accepted beyond MaxQueued")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Submit(ctx, &ingest.Envelope{Readings: []meter.Reading{rd(2, now, 1)}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit beyond MaxQueued = %v, want to block until the deadline", err)
	}
	// The database never answers: Stop gives up and hands everything back.
	sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	if err := p.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	if got := stopped.Load(); got != 2 {
		t.Fatalf("%d envelopes got ErrStopped, want 2", got)
	}
	if err := p.Submit(context.Background(), &ingest.Envelope{}); !errors.Is(err, ingest.ErrStopped) {
		t.Fatalf("Submit after Stop = %v", err)
	}
}

func newResolver(t testing.TB, pool *pgxpool.Pool, m *ingest.Metrics) *ingest.Resolver {
	t.Helper()
	r, err := ingest.NewResolver(postgres.NewStore(pool), ingest.ResolverConfig{NegativeTTL: time.Hour}, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

func TestMessageDecoder(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ids := seedMeters(t, pool, "t1", 2)
	seedMeters(t, pool, "t2", 1) // m-0001 exists in two tenants
	m := newMetrics(t)
	d, err := ingest.NewMessageDecoder(payload.DefaultConfig(), meter.DefaultLimits(), newResolver(t, pool, m), m)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	ts := now.Format(time.RFC3339)
	future := now.Add(time.Hour).Format(time.RFC3339)
	tests := []struct {
		name        string
		give        ingest.Message
		wantIDs     []int64
		wantReasons []meter.Reason
	}{
		{"canonical", ingest.Message{Topic: "meters/t1/m-0002/reading", Payload: []byte(`{"v":1,"ts":"` + ts + `","import_wh":5}`)}, []int64{ids[1]}, nil},
		{"bad json", ingest.Message{Topic: "meters/t1/m-0002/reading", Payload: []byte(`{"v":1,`)}, nil, []meter.Reason{meter.ReasonBadJSON}},
		{"unknown meter", ingest.Message{Topic: "meters/t1/m-9999/reading", Payload: []byte(`{"v":1,"ts":"` + ts + `","import_wh":5}`)}, nil, []meter.Reason{meter.ReasonUnknownMeter}},
		{"unknown topic", ingest.Message{Topic: "foo/bar", Payload: []byte(`{}`)}, nil, []meter.Reason{meter.ReasonUnknownFormat}},
		{"future", ingest.Message{Topic: "meters/t1/m-0001/reading", Payload: []byte(`{"v":1,"ts":"` + future + `","import_wh":5}`)}, nil, []meter.Reason{meter.ReasonFutureTimestamp}},
		{"batch keeps good readings", ingest.Message{Topic: "meters/t1/m-0001/reading", Payload: []byte(`{"v":1,"readings":[` +
			`{"ts":"` + ts + `","import_wh":5},{"ts":"` + ts + `","voltage_v":5000},{"ts":"` + future + `","import_wh":6}]}`)},
			[]int64{ids[0]}, []meter.Reason{meter.ReasonImpossibleValue, meter.ReasonFutureTimestamp}},
		{"tasmota ambiguous without publisher", ingest.Message{Topic: "tele/m-0001/SENSOR", Payload: []byte(`{"ENERGY":{"Total":1.5}}`)}, nil, []meter.Reason{meter.ReasonUnknownMeter}},
		{"tasmota with publisher", ingest.Message{Topic: "tele/m-0001/SENSOR", Payload: []byte(`{"ENERGY":{"Total":1.5}}`), Publisher: "t1/m-0001"}, []int64{ids[0]}, nil},
		{"tasmota unique", ingest.Message{Topic: "tele/m-0002/SENSOR", Payload: []byte(`{"ENERGY":{"Total":1.5}}`)}, []int64{ids[1]}, nil},
		{"no reading", ingest.Message{Topic: "tele/m-0002/SENSOR", Payload: []byte(`{"Time":"2026-01-01T00:00:00"}`)}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.give.ReceivedAt = now
			env, err := d.Envelope(context.Background(), tt.give)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, r := range env.Readings {
				gotIDs = append(gotIDs, r.MeterID)
			}
			var gotReasons []meter.Reason
			for _, r := range env.Rejects {
				gotReasons = append(gotReasons, r.Reason)
			}
			if fmt.Sprint(gotIDs) != fmt.Sprint(tt.wantIDs) || fmt.Sprint(gotReasons) != fmt.Sprint(tt.wantReasons) {
				t.Fatalf("readings %v rejects %v, want %v %v", gotIDs, gotReasons, tt.wantIDs, tt.wantReasons)
			}
			if len(env.Rejects) > 0 && string(env.Rejects[0].Payload) != string(tt.give.Payload) {
				t.Fatalf("first reject payload %q, want the raw message", env.Rejects[0].Payload)
			}
		})
	}
}

func TestTrackerRecordsCounterEventsAndState(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	ids := seedMeters(t, pool, "t1", 2)
	store := postgres.NewStore(pool)
	m := newMetrics(t)
	tr, err := ingest.NewTracker(ingest.TrackerConfig{Flush: time.Hour, MaxPowerW: 20_000}, store, nil, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tr.SetCounterSpec(ids[1], meter.FieldImport, meter.CounterSpec{ModulusWh: 1 << 32})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	step := time.Minute
	// meter 1: normal, reset (power loss), normal; a late reading that
	// must not move the counter. meter 2: rollover of a uint32 Wh register.
	tr.Observe([]meter.Reading{rd(ids[0], t0, 100_000), rd(ids[0], t0.Add(step), 100_100), rd(ids[1], t0, 1<<32-50)})
	tr.Observe([]meter.Reading{rd(ids[0], t0.Add(3*step), 150), rd(ids[0], t0.Add(2*step), 100_200), rd(ids[1], t0.Add(step), 100)})
	tr.Observe([]meter.Reading{rd(ids[0], t0.Add(4*step), 300), rd(ids[0], t0.Add(3*step-time.Second), 1)})
	if err := tr.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err := store.CounterEvents(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 1 || ev[0].Step.Kind != meter.CounterReset || ev[0].PrevWh != 100_200 || ev[0].ValueWh != 150 || ev[0].Step.ConsumptionWh != 150 {
		t.Fatalf("meter 1 events = %+v", ev)
	}
	ev, err = store.CounterEvents(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 1 || ev[0].Step.Kind != meter.CounterRollover || ev[0].Step.ConsumptionWh != 150 {
		t.Fatalf("meter 2 events = %+v", ev)
	}
	ls, err := store.LatestStates(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].ImportWh != 300 || !ls[0].Reading.Time.Equal(t0.Add(4*step)) {
		t.Fatalf("latest = %+v", ls)
	}
	if got := metricValue(m.CounterEvents.WithLabelValues("reset")); got != 1 {
		t.Fatalf("reset metric = %v", got)
	}

	// A restarted tracker continues from the stored state: a drop from 300
	// is a reset, recorded once however often it is seen.
	tr2, err := ingest.NewTracker(ingest.TrackerConfig{Flush: time.Hour, MaxPowerW: 20_000}, store, nil, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tr2.Observe([]meter.Reading{rd(ids[0], t0.Add(5*step), 10)})
	tr2.Observe([]meter.Reading{rd(ids[0], t0.Add(5*step), 10)})
	if err := tr2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err = store.CounterEvents(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 2 || ev[1].Step.Kind != meter.CounterReset || ev[1].PrevWh != 300 {
		t.Fatalf("after restart events = %+v", ev)
	}
}

// TestPipelineQuietLinger checks when a batch closes before Linger: a lone
// envelope is written once QuietLinger passes with nothing else waiting
// (Linger here is an hour: waiting it out would time the test out), and
// envelopes already waiting join the batch rather than being written one
// by one.
func TestPipelineQuietLinger(t *testing.T) {
	t.Parallel()
	f := &fakeStore{rows: map[string]bool{}}
	p, err := ingest.NewPipeline(ingest.PipelineConfig{BatchSize: 100, Linger: time.Hour, QuietLinger: time.Millisecond}, f, nil, nil, newMetrics(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// Queued before the batcher runs: all waiting when the batch opens.
	var envs []*ingest.Envelope
	for i := range 5 {
		envs = append(envs, &ingest.Envelope{Readings: []meter.Reading{rd(1, now.Add(time.Duration(i)*time.Second), int64(i))}})
	}
	errs := make(chan error, len(envs))
	for _, e := range envs {
		e.Done = func(err error) { errs <- err }
		if err := p.Submit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	for range envs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	calls := f.calls
	f.mu.Unlock()
	if calls != 1 || len(f.rows) != 5 {
		t.Fatalf("%d writes storing %d rows, want the 5 waiting envelopes in 1 write", calls, len(f.rows))
	}
	// A lone envelope on a quiet pipeline.
	if errs := submitWait(t, p, &ingest.Envelope{Readings: []meter.Reading{rd(1, now.Add(time.Minute), 9)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

// failingStates wraps the store and fails the UpsertLatest call numbered
// failAt (from 1), once; it records how many states each call carried.
type failingStates struct {
	*postgres.Store
	failAt int
	calls  []int
}

func (f *failingStates) UpsertLatest(ctx context.Context, states []postgres.Latest) error {
	f.calls = append(f.calls, len(states))
	if len(f.calls) == f.failAt {
		return errors.New("connection reset by peer")
	}
	return f.Store.UpsertLatest(ctx, states)
}

// TestTrackerFlushesInChunks: the latest states go out FlushChunk at a
// time, and when a chunk fails, the states it and the later chunks hold
// stay pending and are written by the next flush.
func TestTrackerFlushesInChunks(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	ids := seedMeters(t, pool, "t1", 10)
	store := &failingStates{Store: postgres.NewStore(pool), failAt: 2}
	tr, err := ingest.NewTracker(ingest.TrackerConfig{Flush: time.Hour, FlushChunk: 3}, store, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var rows []meter.Reading
	for i, id := range ids {
		rows = append(rows, rd(id, t0, int64(1000*(i+1))))
	}
	tr.Observe(rows)
	if err := tr.Flush(ctx); err == nil {
		t.Fatal("flush with a failing chunk returned nil")
	}
	ls, err := store.LatestStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 3 {
		t.Fatalf("after the failed flush %d states stored, want the first chunk's 3", len(ls))
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(store.calls) != "[3 3 3 3 1]" {
		t.Fatalf("statement sizes %v, want [3 3 3 3 1] (3, a failed 3, then the 7 left)", store.calls)
	}
	ls, err = store.LatestStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]int64{}
	for _, l := range ls {
		got[l.MeterID] = l.ImportWh
	}
	for i, id := range ids {
		if got[id] != int64(1000*(i+1)) {
			t.Fatalf("meter %d: stored import %d, want %d (all %v)", id, got[id], 1000*(i+1), got)
		}
	}
}

// TestResolverCache: the directory is loaded at start; a meter provisioned
// later is found by one query and cached; an external id that two tenants
// use resolves only with its tenant; a removed meter disappears at the
// next reload; an unknown reference is remembered as unknown.
func TestResolverCache(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	ids := seedMeters(t, pool, "t1", 2)
	m := newMetrics(t)
	r := newResolver(t, pool, m)
	lookups := func(result string) float64 { return metricValue(m.Lookups.WithLabelValues(result)) }

	got, err := r.Resolve(ctx, "t1", "m-0002")
	if err != nil || got.ID != ids[1] || got.Serial != "S2" || got.Model != "sdm630" || got.ExpectedInterval != time.Minute {
		t.Fatalf("t1/m-0002 = %+v, %v", got, err)
	}
	if got, err := r.Resolve(ctx, "", "m-0001"); err != nil || got.ID != ids[0] {
		t.Fatalf("m-0001 without tenant = %+v, %v", got, err)
	}
	if lookups("hit") != 2 {
		t.Fatalf("hits = %v, want 2", lookups("hit"))
	}

	// t2 is provisioned after the load; its m-0001 is fetched once, then
	// cached, and makes the bare m-0001 ambiguous.
	ids2 := seedMeters(t, pool, "t2", 1)
	for range 2 {
		if got, err := r.Resolve(ctx, "t2", "m-0001"); err != nil || got.ID != ids2[0] || got.TenantCode != "t2" {
			t.Fatalf("t2/m-0001 = %+v, %v", got, err)
		}
	}
	if lookups("miss_found") != 1 {
		t.Fatalf("miss_found = %v, want 1 (then cached)", lookups("miss_found"))
	}
	if _, err := r.Resolve(ctx, "", "m-0001"); !errors.Is(err, ingest.ErrUnknownMeter) {
		t.Fatalf("bare m-0001 used by two tenants: %v, want ErrUnknownMeter", err)
	}
	if got, ok := r.ByID(ids2[0]); !ok || got.ExternalID != "m-0001" {
		t.Fatalf("ByID(%d) = %+v, %v", ids2[0], got, ok)
	}

	// Unknown references are asked for once per NegativeTTL (an hour here).
	for range 3 {
		if _, err := r.Resolve(ctx, "t1", "m-9999"); !errors.Is(err, ingest.ErrUnknownMeter) {
			t.Fatalf("t1/m-9999: %v", err)
		}
	}
	// (The ambiguous bare m-0001 above was the first miss_unknown.)
	if lookups("miss_unknown") != 2 || lookups("negative_hit") != 2 {
		t.Fatalf("miss_unknown %v negative_hit %v, want 2 and 2", lookups("miss_unknown"), lookups("negative_hit"))
	}

	// Removal is seen at the next reload.
	if _, err := pool.Exec(ctx, `UPDATE meters SET removed_at = now() WHERE id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.ByID(ids[1]); ok {
		t.Fatal("removed meter still cached after reload")
	}
	if _, err := r.Resolve(ctx, "t1", "m-0002"); !errors.Is(err, ingest.ErrUnknownMeter) {
		t.Fatalf("removed t1/m-0002: %v, want ErrUnknownMeter", err)
	}
	if got := metricValue(m.ResolverMeters); got != 2 {
		t.Fatalf("resolver_meters = %v, want 2", got)
	}

	// A reload that finds nothing new keeps the cache as it is; one that
	// finds a changed serial or a meter nobody asked for yet takes them.
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.ByID(ids[0]); !ok || got.Serial != "S1" {
		t.Fatalf("after an idle reload ByID(%d) = %+v, %v", ids[0], got, ok)
	}
	if _, err := pool.Exec(ctx, `UPDATE meters SET serial = 'S1-replaced' WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	ids3 := seedMeters(t, pool, "t3", 1)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.ByID(ids[0]); !ok || got.Serial != "S1-replaced" {
		t.Fatalf("after the serial changed ByID(%d) = %+v, %v", ids[0], got, ok)
	}
	if got, ok := r.ByID(ids3[0]); !ok || got.TenantCode != "t3" {
		t.Fatalf("meter provisioned before the reload: ByID(%d) = %+v, %v", ids3[0], got, ok)
	}
	if got, err := r.Resolve(ctx, "t2", "m-0001"); err != nil || got.ID != ids2[0] {
		t.Fatalf("t2/m-0001 after reloads = %+v, %v", got, err)
	}
	if got := metricValue(m.ResolverMeters); got != 3 {
		t.Fatalf("resolver_meters = %v, want 3", got)
	}
}
