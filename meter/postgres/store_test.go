package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/postgres"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// seedMeters creates tenant code with n MQTT meters m-0001… and returns
// their ids in order.
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
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func reading(id int64, ts time.Time, wh int64) meter.Reading {
	return meter.Reading{MeterID: id, Time: ts, ReceivedAt: ts.Add(time.Second), ImportWh: wh, PowerW: 100,
		Fields: meter.FieldImport | meter.FieldPower, Source: meter.SourceMQTT}
}

func count(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriteReadingsIdempotent(t *testing.T) {
	t.Parallel()
	schematest.ForEachProfile(t, func(t *testing.T, pool *pgxpool.Pool) {
		ctx := context.Background()
		ids := seedMeters(t, pool, "t1", 3)
		s := postgres.NewStore(pool)
		now := time.Now().UTC().Truncate(time.Minute)
		var batch []meter.Reading
		for i, id := range ids {
			batch = append(batch, reading(id, now, int64(1000+i)))
		}
		res, err := s.WriteReadings(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if want := (postgres.WriteResult{Inserted: 3}); res != want {
			t.Fatalf("first write = %+v, want %+v", res, want)
		}
		// A redelivery plus one new reading: the fallback stores the new one.
		batch = append(batch, reading(ids[0], now.Add(time.Minute), 2000))
		res, err = s.WriteReadings(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if want := (postgres.WriteResult{Inserted: 1, Duplicates: 3, Staged: true}); res != want {
			t.Fatalf("replay = %+v, want %+v", res, want)
		}
		if n := count(t, pool, `SELECT count(*) FROM readings`); n != 4 {
			t.Fatalf("readings = %d, want 4", n)
		}
		// Absent quantities are NULL, present ones stored.
		if n := count(t, pool, `SELECT count(*) FROM readings WHERE voltage_v IS NULL AND power_w = 100 AND export_wh IS NULL`); n != 4 {
			t.Fatalf("NULL mapping wrong: %d rows match", n)
		}
	})
}

func TestWriteReadingsErrors(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	ids := seedMeters(t, pool, "t1", 1)
	s := postgres.NewStore(pool)

	// No partition that far in the future (postgres profile).
	far := time.Now().UTC().AddDate(0, 2, 0)
	_, err := s.WriteReadings(ctx, []meter.Reading{reading(ids[0], far, 1)})
	if !errors.Is(err, postgres.ErrMissingPartition) {
		t.Fatalf("far future: err = %v, want ErrMissingPartition", err)
	}
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.NewUpkeep(pool, st, schema.UpkeepConfig{}).EnsurePartitions(ctx, far, far); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteReadings(ctx, []meter.Reading{reading(ids[0], far, 1)}); err != nil {
		t.Fatalf("after EnsurePartitions: %v", err)
	}

	// A database that cannot be reached is transient.
	pool2, err := pgxpool.New(ctx, pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	pool2.Close()
	_, err = postgres.NewStore(pool2).WriteReadings(ctx, []meter.Reading{reading(ids[0], time.Now().UTC(), 1)})
	if !errors.Is(err, postgres.ErrTransient) {
		t.Fatalf("closed pool: err = %v, want ErrTransient", err)
	}
}

func TestRejects(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	s := postgres.NewStore(pool)
	now := time.Now().UTC()
	err := s.WriteRejects(ctx, []postgres.Reject{
		{ReceivedAt: now, Source: meter.SourceMQTT, Topic: "meters/t1/m\x00x/reading", MeterRef: "m\xffx", Reason: meter.ReasonBadJSON, Detail: "x", Payload: []byte("{\x00\xff")},
		{ReceivedAt: now, Source: meter.SourceModbus, Topic: "127.0.0.1:502/3", Reason: meter.ReasonImpossibleValue},
	})
	if err != nil {
		t.Fatal(err)
	}
	var payload []byte
	var topic string
	if err := pool.QueryRow(ctx, `SELECT payload, topic FROM readings_rejected WHERE reason = 'bad_json'`).Scan(&payload, &topic); err != nil {
		t.Fatal(err)
	}
	if string(payload) != "{\x00\xff" || topic != "meters/t1/m\uFFFDx/reading" {
		t.Fatalf("payload %q topic %q", payload, topic)
	}
	if n := count(t, pool, `SELECT count(*) FROM readings_rejected`); n != 2 {
		t.Fatalf("rejects = %d", n)
	}
}

func TestLatestOnlyMovesForward(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	ids := seedMeters(t, pool, "t1", 2)
	s := postgres.NewStore(pool)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	newer := postgres.Latest{MeterID: ids[0], Reading: reading(ids[0], t0.Add(time.Hour), 0), LastSeen: t0.Add(time.Hour),
		ImportWh: 500, ImportTime: t0.Add(time.Hour)}
	older := postgres.Latest{MeterID: ids[0], Reading: reading(ids[0], t0, 0), LastSeen: t0.Add(2 * time.Hour),
		ImportWh: 400, ImportTime: t0, ExportWh: 7, ExportTime: t0}
	older.Reading.PowerW = 999
	for _, batch := range [][]postgres.Latest{{newer}, {older}} {
		if err := s.UpsertLatest(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.LatestStates(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d states", len(got))
	}
	g := got[0]
	if !g.Reading.Time.Equal(t0.Add(time.Hour)) || g.Reading.PowerW != 100 || g.ImportWh != 500 ||
		!g.LastSeen.Equal(t0.Add(2*time.Hour)) || g.ExportWh != 7 || !g.ExportTime.Equal(t0) {
		t.Fatalf("state = %+v", g)
	}
	if g.Reading.Fields.Has(meter.FieldVoltage) || !g.Reading.Fields.Has(meter.FieldPower) {
		t.Fatalf("fields = %v", g.Reading.Fields)
	}

	// Offline: meter 1 last seen long ago, meter 2 never.
	off, total, err := s.OfflineMeters(ctx, t0.Add(24*time.Hour), 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || len(off) != 2 || off[0].MeterID != ids[1] || !off[0].LastSeen.IsZero() || off[1].MeterID != ids[0] {
		t.Fatalf("offline = %d %+v", total, off)
	}
	off, total, err = s.OfflineMeters(ctx, t0.Add(2*time.Hour+time.Minute), 3, 10)
	if err != nil || total != 1 || off[0].MeterID != ids[1] {
		t.Fatalf("offline soon after = %d %+v %v", total, off, err)
	}
}

func TestCounterEventsIdempotent(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	ids := seedMeters(t, pool, "t1", 1)
	s := postgres.NewStore(pool)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := postgres.CounterEvent{MeterID: ids[0], Register: meter.FieldExport, PrevTime: t0, Time: t0.Add(time.Minute), PrevWh: 900, ValueWh: 3,
		Step: meter.CounterStep{Kind: meter.CounterReset, ConsumptionWh: 3, DeltaWh: -897}}
	for range 2 {
		if err := s.WriteCounterEvents(ctx, []postgres.CounterEvent{ev}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.CounterEvents(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(ev) {
		t.Fatalf("events = %+v, want [%+v]", got, ev)
	}
}

func TestMeterDirectory(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	ids := seedMeters(t, pool, "t1", 2)
	seedMeters(t, pool, "t2", 1)
	s := postgres.NewStore(pool)
	if _, err := pool.Exec(ctx, `UPDATE meters SET mqtt_secret_hash = 'sha256:' || repeat('ab', 32) WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	all, err := s.Meters(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("meters = %d, %v", len(all), err)
	}
	m, err := s.MeterByRef(ctx, "t1", "m-0001")
	if err != nil || m.ID != ids[0] || m.SecretHash == "" || m.ExpectedInterval != time.Minute || m.TenantCode != "t1" {
		t.Fatalf("MeterByRef = %+v, %v", m, err)
	}
	if _, err := s.MeterByRef(ctx, "t1", "nope"); !errors.Is(err, postgres.ErrMeterNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	ms, err := s.MetersByExternalID(ctx, "m-0001")
	if err != nil || len(ms) != 2 {
		t.Fatalf("by external id = %d, %v", len(ms), err)
	}
}

// TestWriteReadingsEncodesLikePgx: the writer's own binary COPY encoding
// stores exactly what pgx's generic encoder stores, for every optional
// quantity present or absent, on the fast path and on the staged one.
func TestWriteReadingsEncodesLikePgx(t *testing.T) {
	t.Parallel()
	schematest.ForEachProfile(t, func(t *testing.T, pool *pgxpool.Pool) {
		ctx := context.Background()
		ids := seedMeters(t, pool, "t1", 2)
		s := postgres.NewStore(pool)
		kolkata, err := time.LoadLocation("Asia/Kolkata")
		if err != nil {
			t.Fatal(err)
		}
		base := time.Now().In(kolkata).Add(-time.Hour).Truncate(time.Minute).Add(123456 * time.Microsecond)
		optional := []meter.Fields{meter.FieldImport, meter.FieldExport, meter.FieldPower, meter.FieldVoltage,
			meter.FieldCurrent, meter.FieldFrequency, meter.FieldPowerFactor}
		var rows []meter.Reading
		for i := range 1 << len(optional) { // every combination of present quantities
			var f meter.Fields
			for b, q := range optional {
				if i&(1<<b) != 0 {
					f |= q
				}
			}
			rows = append(rows, meter.Reading{Time: base.Add(time.Duration(i) * time.Second), ReceivedAt: base.Add(time.Duration(i)*time.Second + 987*time.Microsecond),
				ImportWh: 1<<40 + int64(i), ExportWh: -int64(i), PowerW: -1234.5, VoltageV: 229.87, CurrentA: 0.001, FrequencyHz: 49.98,
				PowerFactor: -0.75, Fields: f, Source: meter.Source(1 + i%3), Quality: meter.Quality(i % 4)})
		}
		with := func(id int64, rs []meter.Reading) []meter.Reading {
			out := slices.Clone(rs)
			for i := range out {
				out[i].MeterID = id
			}
			return out
		}
		// Fast path for the first meter, pgx for the second.
		if res, err := s.WriteReadings(ctx, with(ids[0], rows[:100])); err != nil || res.Staged {
			t.Fatalf("write = %+v, %v", res, err)
		}
		// The rest through the staged path: a batch that repeats one row.
		if res, err := s.WriteReadings(ctx, with(ids[0], rows[99:])); err != nil || !res.Staged || res.Inserted != len(rows)-100 {
			t.Fatalf("staged write = %+v, %v", res, err)
		}
		pgxRows := with(ids[1], rows)
		opt := func(r *meter.Reading, q meter.Fields, v any) any {
			if !r.Fields.Has(q) {
				return nil
			}
			return v
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"meter_id", "ts", "received_at", "import_wh", "export_wh",
			"power_w", "voltage_v", "current_a", "frequency_hz", "power_factor", "source", "quality"},
			pgx.CopyFromSlice(len(pgxRows), func(i int) ([]any, error) {
				r := &pgxRows[i]
				return []any{r.MeterID, r.Time, r.ReceivedAt, opt(r, meter.FieldImport, r.ImportWh), opt(r, meter.FieldExport, r.ExportWh),
					opt(r, meter.FieldPower, r.PowerW), opt(r, meter.FieldVoltage, r.VoltageV), opt(r, meter.FieldCurrent, r.CurrentA),
					opt(r, meter.FieldFrequency, r.FrequencyHz), opt(r, meter.FieldPowerFactor, r.PowerFactor), int16(r.Source), int16(r.Quality)}, nil
			})); err != nil {
			t.Fatal(err)
		}
		const cols = `ts, received_at, import_wh, export_wh, power_w, voltage_v, current_a, frequency_hz, power_factor, source, quality`
		diff := count(t, pool, `SELECT count(*) FROM (
			(SELECT `+cols+` FROM readings WHERE meter_id = $1 EXCEPT ALL SELECT `+cols+` FROM readings WHERE meter_id = $2)
			UNION ALL
			(SELECT `+cols+` FROM readings WHERE meter_id = $2 EXCEPT ALL SELECT `+cols+` FROM readings WHERE meter_id = $1)) d`, ids[0], ids[1])
		if n := count(t, pool, `SELECT count(*) FROM readings WHERE meter_id = $1`, ids[0]); diff != 0 || n != len(rows) {
			t.Fatalf("%d rows differ between the two encoders; %d of %d stored", diff, n, len(rows))
		}
		var ts time.Time
		var exp *int64
		if err := pool.QueryRow(ctx, `SELECT ts, export_wh FROM readings WHERE meter_id = $1 ORDER BY ts LIMIT 1`, ids[0]).Scan(&ts, &exp); err != nil {
			t.Fatal(err)
		}
		if !ts.Equal(base) || exp != nil {
			t.Fatalf("first row ts %v export %v, want %v and NULL", ts, exp, base)
		}
	})
}
