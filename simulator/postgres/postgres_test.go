package postgres

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
	"github.com/meterd/meterd/simulator/verify"
)

func TestMain(m *testing.M) { schematest.Main(m) }

var start = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)

func TestProvision(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	f, err := simulator.New(simulator.Config{Seed: 3, Meters: 20, ModbusMeters: 5, TasmotaShare: 0.5, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Provision(ctx, pool, f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Meters != 20 {
		t.Errorf("provisioned %d meters, want 20", res.Meters)
	}
	again, err := Provision(ctx, pool, f)
	if err != nil {
		t.Fatal(err)
	}
	if again.TenantID != res.TenantID {
		t.Errorf("tenant id changed on re-provisioning: %d → %d", res.TenantID, again.TenantID)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM meters`).Scan(&n); err != nil || n != 20 {
		t.Fatalf("meters rows = %d (%v), want 20 after provisioning twice", n, err)
	}
	rows, _ := pool.Query(ctx, `SELECT m.external_id, m.serial, m.model, m.protocol, coalesce(m.mqtt_secret_hash, ''), m.settings::text,
		extract(epoch FROM m.expected_interval)::int, t.code, t.time_zone, t.currency
		FROM meters m JOIN tenants t ON t.id = m.tenant_id ORDER BY m.external_id`)
	type meterRow struct {
		ref, serial, model, proto, hash, settings string
		interval                                  int
		tenant, zone, currency                    string
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meterRow, error) {
		var m meterRow
		err := r.Scan(&m.ref, &m.serial, &m.model, &m.proto, &m.hash, &m.settings, &m.interval, &m.tenant, &m.zone, &m.currency)
		return m, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		m := f.Meter(i)
		if g.ref != m.ExternalID || g.serial != m.Serial || g.model != m.Model || g.proto != m.Protocol.String() || g.interval != 60 ||
			g.tenant != "sim" || g.zone != "Asia/Kolkata" || g.currency != "INR" {
			t.Errorf("row %d = %+v, meter %+v", i, g, m)
		}
		if m.Protocol == simulator.MQTT && g.hash != simulator.HashSecret(f.Secret(i)) {
			t.Errorf("%s: hash %q does not match the secret", g.ref, g.hash)
		}
		if m.Protocol == simulator.Modbus && g.hash != "" {
			t.Errorf("%s: Modbus meter has an MQTT secret hash", g.ref)
		}
	}
	// Another seed re-provisions the same external ids.
	f2, _ := simulator.New(simulator.Config{Seed: 4, Meters: 20, Start: start})
	if _, err := Provision(ctx, pool, f2); err != nil {
		t.Fatal(err)
	}
	var hash string
	if err := pool.QueryRow(ctx, `SELECT mqtt_secret_hash FROM meters WHERE external_id = 'sim-000001'`).Scan(&hash); err != nil || hash != f2.SecretHash(0) {
		t.Errorf("after re-provisioning with another seed: hash %q (%v), want %q", hash, err, f2.SecretHash(0))
	}
}

func TestProvision100k(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions 100,000 meters")
	}
	t.Parallel()
	pool := schematest.New(t)
	f, err := simulator.New(simulator.Config{Seed: 1, Meters: 100_000, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	res, err := Provision(context.Background(), pool, f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Meters != 100_000 {
		t.Fatalf("provisioned %d", res.Meters)
	}
	t.Logf("provisioned 100,000 meters in %v", time.Since(t0).Round(time.Millisecond))
}

// gateway stores readings the way a gateway would (a plain COPY).
func store(t *testing.T, pool *pgxpool.Pool, rows [][]any) {
	t.Helper()
	ctx := context.Background()
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.NewUpkeep(pool, st, schema.UpkeepConfig{}).EnsurePartitions(ctx, start.Add(-24*time.Hour), time.Now().Add(60*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"meter_id", "ts", "import_wh", "export_wh", "power_w", "source"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
}

// Verify reports exactly the lost, dropped, wrong, duplicated, wrongly
// accepted, unrecorded and unexpected readings arranged in the database.
func TestVerify(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	f, err := simulator.New(simulator.Config{Seed: 8, Meters: 6, Start: start, Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Provision(ctx, pool, f); err != nil {
		t.Fatal(err)
	}
	ids, err := NewStore(pool).MeterIDs(ctx, "sim")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "run.manifest")
	mw, err := manifest.Create(path, manifest.Header{Fleet: f.Config(), Source: "mqtt", QoS: 1, Batch: 1}, manifest.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	row := func(i int, ts time.Time, imp, exp int64, p float32) []any {
		return []any{ids[f.Meter(i).ExternalID], ts, imp, exp, p, int16(meter.SourceMQTT)}
	}
	var rows [][]any
	future := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second).UTC()
	if err := mw.Fault(manifest.Fault{Kind: simulator.KindFutureTime, Meter: 0, At: start, Ref: f.Meter(0).ExternalID, Forbidden: future}); err != nil {
		t.Fatal(err)
	}
	broken := start.Add(30 * time.Second)
	if err := mw.Fault(manifest.Fault{Kind: simulator.KindWrongType, Meter: 2, At: start, Ref: f.Meter(2).ExternalID, Forbidden: broken}); err != nil {
		t.Fatal(err)
	}
	for i := range f.Len() {
		s := f.NewState(i)
		for k, ts := range f.Ticks(start, start.Add(time.Hour)) {
			smp := s.At(ts)
			r := smp.Reading(f.Meter(i).Phases)
			qos := uint8(1)
			if i == 5 {
				qos = 0
			}
			recorded := i != 4 || k != 7 // not recorded: sent, but the simulator died before recording it
			if recorded {
				if err := mw.Message(manifest.Message{Meter: i, QoS: qos, Readings: []manifest.Reading{{Time: ts, ImportWh: r.ImportWh, ExportWh: r.ExportWh, PowerW: r.PowerW}}}); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case i == 1 && k >= 10 && k < 13: // lost
				continue
			case i == 5 && (k == 3 || k == 4): // QoS 0, dropped
				continue
			case i == 2 && k == 20: // stored wrong
				r.ImportWh += 5
			case i == 3 && k == 30: // stored again 17 s later
				rows = append(rows, row(i, ts.Add(17*time.Second), r.ImportWh, r.ExportWh, r.PowerW))
			case i == 4 && k == 40: // garbage
				rows = append(rows, row(i, ts.Add(23*time.Second), 1, 2, 3))
			}
			rows = append(rows, row(i, ts, r.ImportWh, r.ExportWh, r.PowerW))
		}
	}
	rows = append(rows, row(0, future, 1, 0, 1), row(2, broken, 7, 0, 1))
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	store(t, pool, rows)

	rep, err := verify.Verify(ctx, NewStore(pool), path, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out stringsBuilder
	rep.WriteText(&out)
	t.Log("\n" + out.String())
	want := verify.Report{Expected: 6*60 - 1, Lost: 3, DroppedQoS0: 2, Wrong: 1, Duplicated: 1, AcceptedInvalid: 2, Unrecorded: 1, Unexpected: 1}
	want.Matched = want.Expected - want.Lost - want.DroppedQoS0 - want.Wrong
	got := verify.Report{Expected: rep.Expected, Matched: rep.Matched, Lost: rep.Lost, DroppedQoS0: rep.DroppedQoS0, Wrong: rep.Wrong,
		Duplicated: rep.Duplicated, AcceptedInvalid: rep.AcceptedInvalid, Unrecorded: rep.Unrecorded, Unexpected: rep.Unexpected}
	if got.Expected != want.Expected || got.Matched != want.Matched || got.Lost != want.Lost || got.DroppedQoS0 != want.DroppedQoS0 ||
		got.Wrong != want.Wrong || got.Duplicated != want.Duplicated || got.AcceptedInvalid != want.AcceptedInvalid ||
		got.Unrecorded != want.Unrecorded || got.Unexpected != want.Unexpected {
		t.Errorf("report counts\n got %+v\nwant %+v", got, want)
	}
	if rep.OK() || !errors.Is(rep.Err(false), verify.ErrFailed) {
		t.Error("a report with losses is OK")
	}
	if rep.Faults["future_time"] != 1 || rep.Faults["wrong_type"] != 1 {
		t.Errorf("faults %v", rep.Faults)
	}
}

// A database holding exactly what was sent verifies clean.
func TestVerifyClean(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	f, err := simulator.New(simulator.Config{Seed: 9, Meters: 3, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Provision(ctx, pool, f); err != nil {
		t.Fatal(err)
	}
	ids, _ := NewStore(pool).MeterIDs(ctx, "sim")
	path := filepath.Join(t.TempDir(), "run.manifest")
	mw, err := manifest.Create(path, manifest.Header{Fleet: f.Config(), Source: "mqtt", QoS: 1, Batch: 10}, manifest.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for i := range f.Len() {
		s := f.NewState(i)
		var msg manifest.Message
		msg.Meter, msg.QoS = i, 1
		for _, ts := range f.Ticks(start, start.Add(30*time.Minute)) {
			r := s.At(ts).Reading(f.Meter(i).Phases)
			msg.Readings = append(msg.Readings, manifest.Reading{Time: ts, ImportWh: r.ImportWh, ExportWh: r.ExportWh, PowerW: r.PowerW})
			rows = append(rows, []any{ids[f.Meter(i).ExternalID], ts, r.ImportWh, r.ExportWh, r.PowerW, int16(meter.SourceMQTT)})
		}
		if err := mw.Message(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	store(t, pool, rows)
	rep, err := verify.Verify(ctx, NewStore(pool), path, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OKStrict() || rep.Matched != 90 || rep.Expected != 90 {
		var out stringsBuilder
		rep.WriteText(&out)
		t.Errorf("clean run does not verify:\n%s", out.String())
	}
}

type stringsBuilder struct{ b []byte }

func (s *stringsBuilder) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
func (s *stringsBuilder) String() string              { return string(s.b) }

// Polled Modbus readings are checked against the model: what a poller reads
// passes, a device with the wrong word order or a corrupted value fails.
func TestVerifyModbus(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ctx := context.Background()
	f, err := simulator.New(simulator.Config{Seed: 12, Meters: 3, ModbusMeters: 3, Start: start,
		Faults: simulator.Faults{Schedule: []simulator.Scheduled{{Kind: simulator.KindWrongWordOrder, Meter: 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Meter(2).WrongWordOrder {
		t.Fatal("scheduled wrong word order not applied")
	}
	if _, err := Provision(ctx, pool, f); err != nil {
		t.Fatal(err)
	}
	ids, _ := NewStore(pool).MeterIDs(ctx, "sim")
	path := filepath.Join(t.TempDir(), "modbus.manifest")
	mw, err := manifest.Create(path, manifest.Header{Fleet: f.Config(), Source: "modbus"}, manifest.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for i := range 2 {
		s := f.NewState(i)
		for k := range 20 {
			// The poller stamps the block read a little after the server
			// computed it.
			at := start.Add(time.Duration(k)*time.Second*17 + 300*time.Millisecond)
			smp := s.At(at.Add(-200 * time.Millisecond))
			imp := smp.ImportWh
			if i == 1 && k == 5 {
				imp += 100_000
			}
			rows = append(rows, []any{ids[f.Meter(i).ExternalID], at, imp, smp.ExportWh, float32(smp.PowerW), int16(meter.SourceModbus)})
		}
	}
	rows = append(rows, []any{ids[f.Meter(2).ExternalID], start.Add(time.Minute), int64(123), int64(0), float32(1), int16(meter.SourceModbus)})
	store(t, pool, rows)
	rep, err := verify.Verify(ctx, NewStore(pool), path, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ModbusChecked != 39 || rep.Wrong != 2 || rep.Lost != 0 {
		var out stringsBuilder
		rep.WriteText(&out)
		t.Errorf("checked %d wrong %d lost %d, want 39 2 0\n%s", rep.ModbusChecked, rep.Wrong, rep.Lost, out.String())
	}
}
