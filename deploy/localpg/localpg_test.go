package localpg

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestTune(t *testing.T) {
	tests := []struct {
		name string
		give Machine
		want map[string]string
	}{
		{
			name: "24 GiB, 2 CPUs (this machine class)",
			give: Machine{MemoryBytes: 24 * gib, CPUs: 2},
			want: map[string]string{
				"shared_buffers":                  "6GB",
				"effective_cache_size":            "18GB",
				"maintenance_work_mem":            "1228MB",
				"max_parallel_workers_per_gather": "1",
				"max_parallel_workers":            "2",
				"max_worker_processes":            "5",
				"jit":                             "off",
				"random_page_cost":                "1.1",
			},
		},
		{
			name: "64 GiB caps maintenance_work_mem at 2 GiB",
			give: Machine{MemoryBytes: 64 * gib, CPUs: 8},
			want: map[string]string{
				"shared_buffers":                  "16GB",
				"maintenance_work_mem":            "2GB",
				"max_parallel_workers_per_gather": "4",
				"max_parallel_workers":            "8",
			},
		},
		{
			name: "tiny machine still gets sane floors",
			give: Machine{MemoryBytes: 1, CPUs: 0},
			want: map[string]string{
				"shared_buffers":       "64MB",
				"max_parallel_workers": "1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tune(tt.give, 100, false)
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if _, ok := got["timescaledb.max_background_workers"]; ok {
				t.Error("timescale settings without timescale")
			}
		})
	}
	ts := Tune(Machine{MemoryBytes: 8 * gib, CPUs: 2}, 100, true)
	if ts["timescaledb.max_background_workers"] != "8" || ts["max_worker_processes"] != "13" {
		t.Errorf("timescale workers: %v / %v", ts["timescaledb.max_background_workers"], ts["max_worker_processes"])
	}
}

func TestCgroupCPUs(t *testing.T) {
	tests := []struct {
		give   string
		want   int
		wantOK bool
	}{
		{"max 100000\n", 0, false},
		{"200000 100000\n", 2, true},
		{"150000 100000", 2, true},
		{"50000 100000", 1, true},
		{"garbage", 0, false},
	}
	for _, tt := range tests {
		got, ok := cgroupCPUs(tt.give)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("cgroupCPUs(%q) = %d, %v; want %d, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestClusterLifecycle starts a real cluster, reuses its data on a second
// start and checks that Stop leaves no server behind.
func TestClusterLifecycle(t *testing.T) {
	if _, err := FindBinDir(); errors.Is(err, ErrNoServer) {
		t.Skip(err)
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")
	cfg := Config{DataDir: dir, Password: "s3cret-for-test", Machine: Machine{MemoryBytes: 1 * gib, CPUs: 1}, Log: testWriter{t}}

	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	var sb string
	if err := conn.QueryRow(ctx, "SHOW shared_buffers").Scan(&sb); err != nil || sb != "256MB" {
		t.Errorf("shared_buffers = %q, %v; want the tuned 256MB", sb, err)
	}
	_ = conn.Close(ctx)

	bad := c.URL("postgres")
	if _, err := pgx.Connect(ctx, replacePassword(bad, "wrong")); err == nil {
		t.Error("a wrong password was accepted")
	}

	stopCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.DataDir(), "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid still present after Stop: %v", err)
	}

	c2, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c2.Stop(ctx) }()
	conn, err = pgx.Connect(ctx, c2.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 42 {
		t.Fatalf("data not reused: %d, %v", v, err)
	}
}

func replacePassword(url, pw string) string {
	const old = "s3cret-for-test"
	for i := 0; i+len(old) <= len(url); i++ {
		if url[i:i+len(old)] == old {
			return url[:i] + pw + url[i+len(old):]
		}
	}
	return url
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("postgres: %s", p)
	return len(p), nil
}

// TestClusterRelocatesUnreachableDataDir covers a clone under a directory
// the postgres OS user cannot enter (a 0700 temp dir, /root): the cluster
// lives under /var/tmp and the requested path is a symlink to it.
func TestClusterRelocatesUnreachableDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	if _, err := FindBinDir(); errors.Is(err, ErrNoServer) {
		t.Skip(err)
	}
	ctx := context.Background()
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(private, "pg")
	c, err := Start(ctx, Config{DataDir: dir, Password: "an-old-password", Machine: Machine{MemoryBytes: 1 * gib, CPUs: 1}, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Stop(context.Background())
		_ = os.RemoveAll(c.DataDir())
	})
	if !strings.HasPrefix(c.DataDir(), "/var/tmp/meterd-pg-") {
		t.Errorf("data dir %s, want it relocated under /var/tmp", c.DataDir())
	}
	if target, err := os.Readlink(dir); err != nil || target != c.DataDir() {
		t.Errorf("requested path links to %q (%v), want %q", target, err, c.DataDir())
	}
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)

	// Deleting the data directory (make db-reset) and starting again must
	// give a fresh cluster, not the orphan with its old password.
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	c2, err := Start(ctx, Config{DataDir: dir, Password: "a-new-password", Machine: Machine{MemoryBytes: 1 * gib, CPUs: 1}, Log: testWriter{t}})
	if err != nil {
		t.Fatalf("start after deleting the data directory: %v", err)
	}
	defer func() { _ = c2.Stop(ctx) }()
	conn, err = pgx.Connect(ctx, c2.URL("postgres"))
	if err != nil {
		t.Fatalf("connect with the new password: %v", err)
	}
	_ = conn.Close(ctx)
}
