package ingest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/postgres"
)

// benchRound is one polling round: one reading for each of benchMeters
// meters at the same timestamp, as a gateway flushes them.
const (
	benchMeters = 10_000
	benchRounds = 4 // rounds per method per b.N
)

func round(ts time.Time) []meter.Reading {
	rows := make([]meter.Reading, benchMeters)
	for i := range rows {
		rows[i] = meter.Reading{MeterID: int64(i + 1), Time: ts, ReceivedAt: ts, ImportWh: int64(1000 + i), PowerW: 1234.5, VoltageV: 230.1,
			Fields: meter.FieldImport | meter.FieldPower | meter.FieldVoltage, Source: meter.SourceMQTT}
	}
	return rows
}

// BenchmarkWriter compares, on the same table in the same run, a plain
// COPY of 10 000-reading rounds (the baseline) with the gateway's
// idempotent write of the same shape of rounds: the store's optimistic
// COPY with its staged ON CONFLICT fallback, the whole pipeline (Submit to
// commit, with in-batch dedupe), and a full replay of already-stored rounds
// (every row a duplicate: the staged path). Methods alternate round by
// round so table growth and machine noise hit them alike.
func BenchmarkWriter(b *testing.B) {
	pool := schematest.New(b)
	ctx := context.Background()
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	store := postgres.NewStore(pool)
	pipe, err := ingest.NewPipeline(ingest.PipelineConfig{Writers: 1, Linger: time.Millisecond}, store,
		schema.NewUpkeep(pool, st, schema.UpkeepConfig{}), nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := pipe.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = pipe.Stop(ctx) }()

	ts := time.Now().UTC().Add(-6 * time.Hour).Truncate(time.Second)
	next := func() []meter.Reading { ts = ts.Add(time.Second); return round(ts) }
	// Warm up: partitions, staging table, plans.
	if _, err := store.WriteReadings(ctx, next()); err != nil {
		b.Fatal(err)
	}
	var copyT, writeT, pipeT, replayT time.Duration
	var n int
	b.ResetTimer()
	for range b.N {
		for range benchRounds {
			rows := next()
			t0 := time.Now()
			if _, err := store.CopyReadings(ctx, rows); err != nil {
				b.Fatal(err)
			}
			copyT += time.Since(t0)

			rows = next()
			t0 = time.Now()
			res, err := store.WriteReadings(ctx, rows)
			if err != nil || res.Inserted != benchMeters {
				b.Fatalf("write: %+v %v", res, err)
			}
			writeT += time.Since(t0)

			rows = next()
			t0 = time.Now()
			var wg sync.WaitGroup
			wg.Add(1)
			if err := pipe.Submit(ctx, &ingest.Envelope{Readings: rows, Done: func(error) { wg.Done() }}); err != nil {
				b.Fatal(err)
			}
			wg.Wait()
			pipeT += time.Since(t0)

			t0 = time.Now()
			res, err = store.WriteReadings(ctx, rows) // already stored: all duplicates
			if err != nil || res.Duplicates != benchMeters {
				b.Fatalf("replay: %+v %v", res, err)
			}
			replayT += time.Since(t0)
			n += benchMeters
		}
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	b.ReportMetric(rate(copyT), "copy_rows/s")
	b.ReportMetric(rate(writeT), "writer_rows/s")
	b.ReportMetric(rate(pipeT), "pipeline_rows/s")
	b.ReportMetric(rate(replayT), "replay_rows/s")
	b.ReportMetric(copyT.Seconds()/writeT.Seconds(), "writer/copy")
	b.ReportMetric(copyT.Seconds()/pipeT.Seconds(), "pipeline/copy")
	b.ReportMetric(copyT.Seconds()/replayT.Seconds(), "replay/copy")
}
