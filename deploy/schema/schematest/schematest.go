// Package schematest gives tests a real, migrated PostgreSQL database of
// their own: one throwaway cluster per test binary (started on first use,
// stopped by Main), and for every test a fresh database cloned from a
// template that was migrated once (pgtestdb). Tests using it may call
// t.Parallel().
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { schematest.Main(m) }
//
// then schematest.New(t) for a pool on a database of the postgres profile,
// or schematest.ForEachProfile to run a test against every profile this
// machine has (the timescale one needs the timescaledb extension installed;
// without it that profile is skipped with a message saying so).
//
// It must only be imported from tests.
package schematest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver pgtestdb uses
	"github.com/peterldowns/pgtestdb"

	"github.com/meterd/meterd/deploy/localpg"
	"github.com/meterd/meterd/deploy/schema"
)

// RollupTimeZone is the rollup zone of test databases: half-hour offset,
// so bucket arithmetic that assumes whole-hour offsets fails loudly.
const RollupTimeZone = "Asia/Kolkata"

var (
	mu        sync.Mutex
	inMain    bool
	cluster   *localpg.Cluster
	startErr  error
	dataRoot  string
	serverLog *os.File
)

// Main runs a package's tests and then stops the cluster if one was
// started. TestMain returns after it, and the testing package exits with
// m.Run's code.
func Main(m *testing.M) {
	mu.Lock()
	inMain = true
	mu.Unlock()
	m.Run()
	mu.Lock()
	if cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_ = cluster.Stop(ctx)
		cancel()
	}
	if serverLog != nil {
		_ = serverLog.Close()
	}
	if dataRoot != "" {
		_ = os.RemoveAll(dataRoot)
	}
	mu.Unlock()
}

// Cluster returns the test binary's cluster, starting it on first use.
func Cluster(t testing.TB) *localpg.Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		t.Fatal("schematest: call schematest.Main(m) from the package's TestMain")
	}
	if cluster == nil && startErr == nil {
		cluster, startErr = start()
	}
	if startErr != nil {
		t.Fatalf("schematest: start PostgreSQL: %v", startErr)
	}
	return cluster
}

func start() (*localpg.Cluster, error) {
	root, err := os.MkdirTemp("", "meterd-test-pg-")
	if err != nil {
		return nil, err
	}
	dataRoot = root
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(root, "server.log"))
	if err != nil {
		return nil, err
	}
	serverLog = logf
	return localpg.Start(context.Background(), localpg.Config{
		DataDir:        filepath.Join(root, "data"),
		Machine:        localpg.Machine{MemoryBytes: 2 << 30, CPUs: 2},
		MaxConnections: 300,
		Log:            logf,
		Settings: map[string]string{
			// Many parallel tests each clone a database; keep the
			// per-test footprint small.
			"shared_buffers":       "128MB",
			"effective_cache_size": "1GB",
			"max_wal_size":         "2GB",
			"checkpoint_timeout":   "30min",
			// Timescale's scheduler would connect to every database
			// with the extension, and CREATE DATABASE … TEMPLATE
			// refuses a template someone is connected to. meterd
			// drives its own upkeep, so the scheduler has no work.
			"timescaledb.max_background_workers": "0",
		},
	})
}

// Timescale reports whether the test cluster has the timescaledb extension.
func Timescale(t testing.TB) bool { return Cluster(t).Timescale() }

// New returns a pool on a fresh database of the postgres profile, closed
// and dropped when the test ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return pool(t, URL(t, schema.ProfilePostgres))
}

// NewProfile is New for a given profile. For the timescale profile it
// skips the test when the extension is not installed.
func NewProfile(t testing.TB, p schema.Profile) *pgxpool.Pool {
	t.Helper()
	return pool(t, URL(t, p))
}

// ForEachProfile runs f as a subtest for each storage profile, each with
// its own fresh database.
func ForEachProfile(t *testing.T, f func(t *testing.T, pool *pgxpool.Pool)) {
	t.Helper()
	for _, p := range []schema.Profile{schema.ProfilePostgres, schema.ProfileTimescale} {
		t.Run(string(p), func(t *testing.T) {
			f(t, NewProfile(t, p))
		})
	}
}

// URL returns the connection URL of a fresh database of profile p, dropped
// when the test ends (if it passed).
func URL(t testing.TB, p schema.Profile) string {
	t.Helper()
	c := Cluster(t)
	if p == schema.ProfileTimescale && !c.Timescale() {
		t.Skip("schematest: the timescaledb extension is not installed on this machine; timescale profile skipped")
	}
	conf := pgtestdb.Config{
		DriverName: "pgx",
		Host:       "127.0.0.1",
		Port:       strconv.Itoa(c.Port()),
		User:       "postgres",
		Database:   "postgres",
		Options:    "sslmode=disable",
		TestRole:   roleFor(p),
	}
	got := pgtestdb.Custom(t, conf, migrator{profile: p})
	return got.URL()
}

// EmptyURL returns the URL of a fresh database with no schema at all, for
// tests of migration itself. The role is an ordinary one, as in production.
func EmptyURL(t testing.TB) string {
	t.Helper()
	c := Cluster(t)
	conf := pgtestdb.Config{
		DriverName: "pgx", Host: "127.0.0.1", Port: strconv.Itoa(c.Port()),
		User: "postgres", Database: "postgres", Options: "sslmode=disable",
		TestRole: &pgtestdb.Role{Username: "meterd_empty", Password: "meterd-test", Capabilities: "NOSUPERUSER NOCREATEDB NOCREATEROLE"},
	}
	return pgtestdb.Custom(t, conf, pgtestdb.NoopMigrator{}).URL()
}

// roleFor returns the role test databases are used by. The postgres
// profile runs as an ordinary role, proving meterd needs no superuser
// rights; creating the timescaledb extension needs one.
func roleFor(p schema.Profile) *pgtestdb.Role {
	if p == schema.ProfileTimescale {
		return &pgtestdb.Role{Username: "meterd_test_ts", Password: "meterd-test", Capabilities: "SUPERUSER"}
	}
	return &pgtestdb.Role{Username: "meterd_test", Password: "meterd-test", Capabilities: "NOSUPERUSER NOCREATEDB NOCREATEROLE"}
}

func pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	// As in meterd: numeric scans into shopspring/decimal exactly.
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgxdecimal.Register(conn.TypeMap())
		return nil
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// migrator migrates pgtestdb's template databases with meterd's real
// migrations.
type migrator struct{ profile schema.Profile }

// Hash identifies the template. Every test binary starts its own cluster,
// so a template never outlives the code that migrated it; the hash only has
// to tell the profiles apart.
func (m migrator) Hash() (string, error) {
	return fmt.Sprintf("meterd-%s", m.profile), nil
}

// Migrate runs schema.Migrate on the template database.
func (m migrator) Migrate(ctx context.Context, _ *sql.DB, conf pgtestdb.Config) error {
	_, err := schema.Migrate(ctx, conf.URL(), schema.Config{Profile: m.profile, RollupTimeZone: RollupTimeZone})
	return err
}
