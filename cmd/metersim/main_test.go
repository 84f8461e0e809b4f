package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/simulator"
)

func TestMain(m *testing.M) { schematest.Main(m) }

func metersim(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelp(t *testing.T) {
	for _, c := range commands() {
		code, _, stderr := metersim(t, c.Name, "--help")
		if code != 0 || !strings.Contains(stderr, "Usage: metersim "+c.Name) {
			t.Errorf("%s --help: exit %d, output %q", c.Name, code, stderr)
		}
	}
	if code, _, _ := metersim(t); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if code, _, _ := metersim(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code, _, stderr := metersim(t, "run", "--faults", "nonsense=1", "--from", "-1h"); code != 1 || !strings.Contains(stderr, "unknown fault kind") {
		t.Errorf("bad fault: exit %d, %q", code, stderr)
	}
}

// keyAuth checks meters' MQTT logins against the hashes provisioning wrote,
// as the gateway's broker does.
type keyAuth struct {
	mqtt.HookBase
	hashes map[string]string
}

func (h *keyAuth) ID() string { return "db-auth" }
func (h *keyAuth) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (h *keyAuth) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	tenant, ref, _ := strings.Cut(string(pk.Connect.Username), "/")
	return cl.Net.Inline || tenant == "sim" && h.hashes[ref] == simulator.HashSecret(string(pk.Connect.Password))
}
func (h *keyAuth) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	_, u, _ := strings.Cut(string(cl.Properties.Username), "/")
	return cl.Net.Inline || write && (topic == payload.CanonicalTopic("sim", u) || topic == payload.TasmotaTopic(u))
}

// The whole loop a gateway test runs: provision, publish a backfill with
// faults, store what arrived (here the test plays the gateway), verify —
// clean, then with one reading deleted.
func TestProvisionRunVerify(t *testing.T) {
	url := schematest.URL(t, schema.ProfilePostgres)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	start := "2026-05-01T00:00:00Z"
	fleetArgs := []string{"--seed", "5", "--meters", "8", "--start", start, "--tasmota-share", "0.3"}
	if code, out, stderr := metersim(t, append([]string{"provision", "--db", url}, fleetArgs...)...); code != 0 {
		t.Fatalf("provision: exit %d\n%s%s", code, out, stderr)
	}

	hashes := map[string]string{}
	rows, _ := pool.Query(ctx, `SELECT external_id, mqtt_secret_hash FROM meters`)
	for rows.Next() {
		var ref, h string
		if err := rows.Scan(&ref, &h); err != nil {
			t.Fatal(err)
		}
		hashes[ref] = h
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(&keyAuth{hashes: hashes}, nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var msgs []payload.Input
	for id, filter := range []string{"meters/#", "tele/#"} {
		if err := srv.Subscribe(filter, id+1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			mu.Lock()
			msgs = append(msgs, payload.Input{Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload), ReceivedAt: time.Now()})
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close() }()

	manifestPath := filepath.Join(t.TempDir(), "run.manifest")
	code, out, stderr := metersim(t, append([]string{"run", "--broker", "mqtt://" + l.Address(), "--from", start, "--to", "2026-05-01T02:00:00Z",
		"--batch", "10", "--manifest", manifestPath, "--progress", "0", "--faults", "duplicate=0.05,out_of_order=0.05,broken_json=0.02,future_time=0.02"}, fleetArgs...)...)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, stderr)
	}

	// Play the gateway: decode, validate, deduplicate, store.
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.NewUpkeep(pool, st, schema.UpkeepConfig{}).EnsurePartitions(ctx, time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	rows, _ = pool.Query(ctx, `SELECT external_id, id FROM meters`)
	for rows.Next() {
		var ref string
		var id int64
		if err := rows.Scan(&ref, &id); err != nil {
			t.Fatal(err)
		}
		ids[ref] = id
	}
	dec, _ := payload.NewDecoder(payload.DefaultConfig())
	limits := meter.DefaultLimits()
	seen := map[[2]int64]bool{}
	var copyRows [][]any
	mu.Lock()
	for _, in := range msgs {
		m, err := dec.Decode(in)
		if err != nil {
			continue
		}
		for _, r := range m.Readings {
			if limits.Check(&r.Reading, in.ReceivedAt) != nil {
				continue
			}
			k := [2]int64{ids[r.Meter], r.Time.UnixMicro()}
			if seen[k] {
				continue
			}
			seen[k] = true
			copyRows = append(copyRows, []any{ids[r.Meter], r.Time, r.ImportWh, r.ExportWh, r.PowerW, int16(meter.SourceMQTT)})
		}
	}
	mu.Unlock()
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"meter_id", "ts", "import_wh", "export_wh", "power_w", "source"}, pgx.CopyFromRows(copyRows)); err != nil {
		t.Fatal(err)
	}

	code, out, stderr = metersim(t, "verify", "--db", url, "--manifest", manifestPath)
	if code != 0 || !strings.Contains(out, "OK:") {
		t.Fatalf("verify of a complete store: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM readings WHERE (meter_id, ts) = (SELECT meter_id, ts FROM readings ORDER BY ts, meter_id LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	code, out, _ = metersim(t, "verify", "--db", url, "--manifest", manifestPath)
	if code != 1 || !strings.Contains(out, "lost 1") {
		t.Fatalf("verify after deleting a reading: exit %d\n%s", code, out)
	}
}
