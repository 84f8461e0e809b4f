package schema

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var embedded embed.FS

// Profile is a storage profile.
type Profile string

// Storage profiles.
const (
	ProfileAuto      Profile = "auto" // choose at first migrate: timescale if the extension can be created
	ProfileTimescale Profile = "timescale"
	ProfilePostgres  Profile = "postgres"
)

// advisoryLockID serialises migrations across processes ("meterd" in ASCII).
const advisoryLockID = 0x6d65746572640001

// Config controls migrations. The profile, rollup time zone and partition
// interval apply only when a database is migrated for the first time; after
// that the recorded values win (changing them would need a data migration).
type Config struct {
	// Profile forces a storage profile for a new database. Default auto.
	Profile Profile
	// RollupTimeZone is the IANA zone whose hours and days the rollup
	// buckets follow (tenants' billing days should use the same zone).
	// Default UTC.
	RollupTimeZone string
	// PartitionInterval is the width of readings partitions (postgres) or
	// chunks (timescale), in whole days. Default 24 h.
	PartitionInterval time.Duration
	// PartitionsAhead is how far ahead of now partitions are created.
	// Default 7 days.
	PartitionsAhead time.Duration
	// Logger reports what was applied. Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Profile == "" {
		c.Profile = ProfileAuto
	}
	if c.RollupTimeZone == "" {
		c.RollupTimeZone = "UTC"
	}
	if c.PartitionInterval == 0 {
		c.PartitionInterval = 24 * time.Hour
	}
	if c.PartitionsAhead == 0 {
		c.PartitionsAhead = 7 * 24 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch c.Profile {
	case "", ProfileAuto, ProfileTimescale, ProfilePostgres:
	default:
		return fmt.Errorf("schema: unknown profile %q (want auto, timescale or postgres)", c.Profile)
	}
	if c.RollupTimeZone != "" {
		if _, err := time.LoadLocation(c.RollupTimeZone); err != nil {
			return fmt.Errorf("schema: rollup time zone: %w", err)
		}
	}
	if c.PartitionInterval < 0 || c.PartitionInterval%(24*time.Hour) != 0 {
		return fmt.Errorf("schema: partition interval %v is not a whole number of days", c.PartitionInterval)
	}
	if c.PartitionsAhead < 0 {
		return errors.New("schema: PartitionsAhead must not be negative")
	}
	return nil
}

// Storage is the recorded storage profile of a database.
type Storage struct {
	Profile           Profile
	RollupTimeZone    string
	PartitionInterval time.Duration
	ChosenAt          time.Time
}

// Status describes a database's schema.
type Status struct {
	Storage
	// ProfileReason says why the profile was chosen when Migrate chose it.
	ProfileReason string
	// SchemaVersion and SchemaLatest are the applied and the newest goose
	// versions.
	SchemaVersion, SchemaLatest int64
	// RiverCurrent reports whether River's own schema is up to date.
	RiverCurrent bool
	// TimescaleVersion is the installed extension version, if any.
	TimescaleVersion string
}

// Current reports whether every migration has been applied.
func (s Status) Current() bool { return s.SchemaVersion == s.SchemaLatest && s.RiverCurrent }

// ErrTimescaleNotLoaded means a timescale-profile database is served by a
// server that does not preload the timescaledb library.
var ErrTimescaleNotLoaded = errors.New("schema: timescale profile but timescaledb is not in the server's shared_preload_libraries")

// ErrNotMigrated means the database has no meterd schema yet.
var ErrNotMigrated = errors.New("schema: database not migrated (run meterd migrate)")

// Migrate brings the database at databaseURL up to date: meterd's
// migrations, River's schema and, for the postgres profile, readings
// partitions around now. It holds a session advisory lock throughout, so
// concurrent calls from several processes apply everything exactly once.
func Migrate(ctx context.Context, databaseURL string, cfg Config) (Status, error) {
	pcfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return Status{}, fmt.Errorf("schema: %w", err)
	}
	pcfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return Status{}, fmt.Errorf("schema: %w", err)
	}
	defer pool.Close()
	return MigratePool(ctx, pool, cfg)
}

// MigratePool is Migrate on an existing pool, which needs at least two
// connections.
func MigratePool(ctx context.Context, pool *pgxpool.Pool, cfg Config) (Status, error) {
	if err := cfg.Validate(); err != nil {
		return Status{}, err
	}
	cfg.setDefaults()
	log := cfg.Logger

	lock, err := pool.Acquire(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("schema: %w", err)
	}
	defer lock.Release()
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(advisoryLockID)); err != nil {
		return Status{}, fmt.Errorf("schema: take migration lock: %w", err)
	}
	defer func() {
		_, _ = lock.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(advisoryLockID))
	}()

	st, err := loadStorage(ctx, lock.Conn())
	var reason string
	switch {
	case errors.Is(err, ErrNotMigrated):
		st, reason, err = chooseStorage(ctx, lock.Conn(), cfg)
		if err != nil {
			return Status{}, err
		}
		log.Info("chose storage profile", "profile", st.Profile, "reason", reason, "rollup_time_zone", st.RollupTimeZone)
	case err != nil:
		return Status{}, err
	default:
		reason = "recorded at first migrate"
	}

	p, db, err := newProvider(pool, st, log)
	if err != nil {
		return Status{}, err
	}
	defer func() { _ = db.Close() }()
	results, err := p.Up(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("schema: migrate: %w", err)
	}
	for _, r := range results {
		log.Info("applied migration", "version", r.Source.Version, "path", r.Source.Path, "duration", r.Duration)
	}
	rm, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return Status{}, fmt.Errorf("schema: river: %w", err)
	}
	rr, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return Status{}, fmt.Errorf("schema: river migrate: %w", err)
	}
	for _, v := range rr.Versions {
		log.Info("applied river migration", "version", v.Version, "name", v.Name)
	}

	stored, err := loadStorage(ctx, lock.Conn())
	if err != nil {
		return Status{}, err
	}
	if stored.Profile == ProfilePostgres {
		now := time.Now()
		u := NewUpkeep(pool, stored, UpkeepConfig{PartitionsAhead: cfg.PartitionsAhead})
		if _, err := u.EnsurePartitions(ctx, now.Add(-stored.PartitionInterval), now.Add(cfg.PartitionsAhead)); err != nil {
			return Status{}, err
		}
	}
	status, err := check(ctx, pool, p)
	status.ProfileReason = reason
	return status, err
}

// Check reports the schema status of the database without changing it.
// It returns ErrNotMigrated for a database meterd has never migrated.
func Check(ctx context.Context, pool *pgxpool.Pool) (Status, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("schema: %w", err)
	}
	st, err := loadStorage(ctx, conn.Conn())
	conn.Release()
	if err != nil {
		return Status{}, err
	}
	p, db, err := newProvider(pool, st, nil)
	if err != nil {
		return Status{}, err
	}
	defer func() { _ = db.Close() }()
	return check(ctx, pool, p)
}

func check(ctx context.Context, pool *pgxpool.Pool, p *goose.Provider) (Status, error) {
	var s Status
	var err error
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return s, fmt.Errorf("schema: %w", err)
	}
	defer conn.Release()
	if s.Storage, err = loadStorage(ctx, conn.Conn()); err != nil {
		return s, err
	}
	if s.SchemaVersion, s.SchemaLatest, err = p.GetVersions(ctx); err != nil {
		return s, fmt.Errorf("schema: versions: %w", err)
	}
	rm, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return s, fmt.Errorf("schema: river: %w", err)
	}
	vr, err := rm.Validate(ctx, nil)
	if err != nil {
		return s, fmt.Errorf("schema: river validate: %w", err)
	}
	s.RiverCurrent = vr.OK
	if s.Profile == ProfileTimescale {
		// A timescale database served without the preloaded library
		// answers queries silently wrong (compressed rows vanish), so
		// that is a readiness failure, not a detail.
		var preloaded bool
		err := conn.QueryRow(ctx, "SELECT extversion, "+preloadedSQL+" FROM pg_extension WHERE extname = 'timescaledb'").
			Scan(&s.TimescaleVersion, &preloaded)
		if err != nil {
			return s, fmt.Errorf("schema: timescaledb version: %w", err)
		}
		if !preloaded {
			return s, ErrTimescaleNotLoaded
		}
	}
	return s, nil
}

// LoadStorage returns the recorded storage profile, or ErrNotMigrated.
func LoadStorage(ctx context.Context, pool *pgxpool.Pool) (Storage, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Storage{}, fmt.Errorf("schema: %w", err)
	}
	defer conn.Release()
	return loadStorage(ctx, conn.Conn())
}

func loadStorage(ctx context.Context, conn *pgx.Conn) (Storage, error) {
	var s Storage
	var profile string
	err := conn.QueryRow(ctx, `SELECT profile, rollup_time_zone, partition_interval, chosen_at FROM meterd_storage`).
		Scan(&profile, &s.RollupTimeZone, &s.PartitionInterval, &s.ChosenAt)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
		return Storage{}, ErrNotMigrated
	case err != nil:
		return Storage{}, fmt.Errorf("schema: load storage profile: %w", err)
	}
	s.Profile = Profile(profile)
	return s, nil
}

// chooseStorage decides the profile of a database migrated for the first
// time. With ProfileAuto the timescale profile is used exactly when
// CREATE EXTENSION timescaledb succeeds.
func chooseStorage(ctx context.Context, conn *pgx.Conn, cfg Config) (Storage, string, error) {
	// The zone is checked by the server too: it is baked into SQL.
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)", cfg.RollupTimeZone).Scan(&ok); err != nil {
		return Storage{}, "", fmt.Errorf("schema: check time zone: %w", err)
	}
	if !ok {
		return Storage{}, "", fmt.Errorf("schema: PostgreSQL does not know time zone %q", cfg.RollupTimeZone)
	}
	st := Storage{RollupTimeZone: cfg.RollupTimeZone, PartitionInterval: cfg.PartitionInterval}
	if cfg.Profile == ProfilePostgres {
		st.Profile = ProfilePostgres
		return st, "postgres profile requested", nil
	}
	// Without the library preloaded, CREATE EXTENSION timescaledb raises
	// a FATAL error that closes this connection (and with it the
	// migration lock), so look before leaping.
	var available, preloaded bool
	err := conn.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
		`+preloadedSQL).Scan(&available, &preloaded)
	if err != nil {
		return Storage{}, "", fmt.Errorf("schema: look for timescaledb: %w", err)
	}
	var why error
	switch {
	case !available:
		why = errors.New("the timescaledb extension is not installed on the server")
	case !preloaded:
		why = errors.New("timescaledb is installed but not in shared_preload_libraries")
	default:
		if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS timescaledb"); err != nil {
			why = err
		}
	}
	if why == nil {
		st.Profile = ProfileTimescale
		return st, "CREATE EXTENSION timescaledb succeeded", nil
	}
	if cfg.Profile == ProfileTimescale {
		return Storage{}, "", fmt.Errorf("schema: timescale profile requested: %w", why)
	}
	st.Profile = ProfilePostgres
	return st, fmt.Sprintf("timescaledb unavailable: %v", why), nil
}

// preloadedSQL is true when the server preloads the timescaledb library:
// only its preloaded loader defines this postmaster-level setting, which any
// role may read (unlike shared_preload_libraries, which needs
// pg_read_all_settings).
const preloadedSQL = `current_setting('timescaledb.bgw_launcher_poll_time', true) IS NOT NULL`

func newProvider(pool *pgxpool.Pool, st Storage, log *slog.Logger) (*goose.Provider, interface{ Close() error }, error) {
	fsys, err := fs.Sub(embedded, "migrations")
	if err != nil {
		return nil, nil, fmt.Errorf("schema: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		// Each area of meterd numbers its migrations in its own range
		// (see migrations/README.md), so versions land out of order.
		goose.WithAllowOutofOrder(true),
		goose.WithGoMigrations(goMigrations(st)...),
	}
	if log != nil {
		opts = append(opts, goose.WithSlog(log))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, opts...)
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("schema: %w", err)
	}
	return p, db, nil
}
