package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// UpkeepConfig controls storage upkeep. Zero values take the defaults.
type UpkeepConfig struct {
	// PartitionsAhead is how far ahead of now readings partitions exist
	// (postgres profile). Default 7 days.
	PartitionsAhead time.Duration
	// CompressAfter compresses readings chunks older than this (timescale
	// profile). Default 7 days; negative disables compression.
	CompressAfter time.Duration
	// Retention drops raw readings older than this; rollups are kept.
	// Default 0: keep raw readings forever.
	Retention time.Duration
	// RollupBatch is how many dirty buckets one refresh transaction takes
	// (postgres profile). Default 20,000.
	RollupBatch int
}

// Validate checks the configuration.
func (c UpkeepConfig) Validate() error {
	if c.PartitionsAhead < 0 || c.Retention < 0 || c.RollupBatch < 0 {
		return errors.New("schema: upkeep durations and batch size must not be negative")
	}
	if c.Retention > 0 && c.Retention < 48*time.Hour {
		return fmt.Errorf("schema: retention %v is shorter than two days", c.Retention)
	}
	return nil
}

// Upkeep keeps a database's storage in shape: partitions ahead of time,
// rollups current (including late data), old chunks compressed and expired
// raw data dropped. Every method is safe to run concurrently with ingest and
// with itself on other instances.
type Upkeep struct {
	pool *pgxpool.Pool
	st   Storage
	cfg  UpkeepConfig
}

// NewUpkeep returns upkeep for a database with storage profile st.
func NewUpkeep(pool *pgxpool.Pool, st Storage, cfg UpkeepConfig) *Upkeep {
	if cfg.PartitionsAhead == 0 {
		cfg.PartitionsAhead = 7 * 24 * time.Hour
	}
	if cfg.CompressAfter == 0 {
		cfg.CompressAfter = 7 * 24 * time.Hour
	}
	if cfg.RollupBatch == 0 {
		cfg.RollupBatch = 20000
	}
	return &Upkeep{pool: pool, st: st, cfg: cfg}
}

// Storage is the profile this upkeep serves.
func (u *Upkeep) Storage() Storage { return u.st }

// IsMissingPartition reports whether err is PostgreSQL refusing a row
// because no readings partition covers its time. The caller can then
// EnsurePartitions for the rows' time range and retry.
func IsMissingPartition(err error) bool {
	var pgErr *pgconn.PgError
	// 23514 check_violation: "no partition of relation "readings" found for row".
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.TableName == "readings"
}

// EnsurePartitions creates the readings partitions covering [from, to]
// that do not exist yet and returns how many it created. Partitions are
// aligned to the partition interval in UTC. It is a no-op in the timescale
// profile, where chunks are created on demand.
func (u *Upkeep) EnsurePartitions(ctx context.Context, from, to time.Time) (int, error) {
	if u.st.Profile != ProfilePostgres {
		return 0, nil
	}
	width := u.st.PartitionInterval
	start := from.UTC().Truncate(width)
	created := 0
	for lo := start; !lo.After(to); lo = lo.Add(width) {
		hi := lo.Add(width)
		name := "readings_p" + lo.Format("20060102")
		var exists bool
		if err := u.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
			return created, fmt.Errorf("schema: check partition %s: %w", name, err)
		}
		if exists {
			continue
		}
		// Identifiers cannot be parameters; name is built from a date
		// format, and the bounds are literals rendered by the server.
		sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF readings FOR VALUES FROM (%s) TO (%s)`,
			pgx.Identifier{name}.Sanitize(), quoteTime(lo), quoteTime(hi))
		if _, err := u.pool.Exec(ctx, sql); err != nil {
			var pgErr *pgconn.PgError
			// Another instance created it between the check and now.
			if errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "42P17") {
				continue
			}
			return created, fmt.Errorf("schema: create partition %s: %w", name, err)
		}
		created++
	}
	return created, nil
}

func quoteTime(t time.Time) string {
	return "'" + t.UTC().Format("2006-01-02 15:04:05Z07:00") + "'"
}

// RefreshStats says what a rollup refresh did.
type RefreshStats struct {
	HourlyBuckets int // (meter, hour) buckets recomputed; 0 in the timescale profile
	DailyBuckets  int // (meter, day) buckets recomputed; 0 in the timescale profile
}

// RefreshRollups brings readings_hourly and readings_daily up to date with
// every reading committed before it started, including late and
// out-of-order ones.
func (u *Upkeep) RefreshRollups(ctx context.Context) (RefreshStats, error) {
	if u.st.Profile == ProfileTimescale {
		// The refresh procedures cannot run inside a transaction block or
		// a pipeline; pool.Exec runs each on its own in autocommit.
		//
		// drop_chunks records the dropped range as an invalidation, and a
		// refresh covering it would delete the rollups of the dropped
		// raw data (and cut the bucket straddling the chunk edge). With
		// retention on, the window therefore starts two days past the
		// retention horizon, so rollups outlive raw data.
		var start *time.Time
		if u.cfg.Retention > 0 {
			s := time.Now().Add(-u.cfg.Retention).Add(48 * time.Hour).UTC().Truncate(24 * time.Hour)
			start = &s
		}
		for _, view := range []string{"readings_hourly", "readings_daily"} {
			if _, err := u.pool.Exec(ctx, `CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz, NULL)`, view, start); err != nil {
				return RefreshStats{}, fmt.Errorf("schema: refresh %s: %w", view, err)
			}
		}
		return RefreshStats{}, nil
	}
	var s RefreshStats
	for {
		var n int
		if err := u.pool.QueryRow(ctx, refreshHourlySQL, u.cfg.RollupBatch, u.st.RollupTimeZone).Scan(&n); err != nil {
			return s, fmt.Errorf("schema: refresh hourly rollups: %w", err)
		}
		s.HourlyBuckets += n
		if n < u.cfg.RollupBatch {
			break
		}
	}
	for {
		var n int
		if err := u.pool.QueryRow(ctx, refreshDailySQL, u.cfg.RollupBatch, u.st.RollupTimeZone).Scan(&n); err != nil {
			return s, fmt.Errorf("schema: refresh daily rollups: %w", err)
		}
		s.DailyBuckets += n
		if n < u.cfg.RollupBatch {
			break
		}
	}
	return s, nil
}

// refreshHourlySQL takes a batch of dirty hours, recomputes them from the
// raw readings and marks their days dirty, all in one statement and so one
// snapshot. A writer that commits meanwhile either conflicts on a dirty key
// this statement deletes (and so waits, then re-inserts it) or inserted a
// key this statement did not see; either way its bucket is recomputed on
// the next run. $1 batch size, $2 rollup time zone.
const refreshHourlySQL = `
WITH d AS (
    DELETE FROM readings_dirty
    WHERE (meter_id, bucket) IN (
        SELECT meter_id, bucket FROM readings_dirty
        ORDER BY meter_id, bucket
        LIMIT $1
        FOR UPDATE SKIP LOCKED)
    RETURNING meter_id, bucket
), agg AS (
    SELECT d.meter_id, d.bucket,
        min(r.ts) AS first_ts,
        max(r.ts) AS last_ts,
        (array_agg(r.import_wh ORDER BY r.ts) FILTER (WHERE r.import_wh IS NOT NULL))[1] AS first_import_wh,
        (array_agg(r.import_wh ORDER BY r.ts DESC) FILTER (WHERE r.import_wh IS NOT NULL))[1] AS last_import_wh,
        (array_agg(r.export_wh ORDER BY r.ts) FILTER (WHERE r.export_wh IS NOT NULL))[1] AS first_export_wh,
        (array_agg(r.export_wh ORDER BY r.ts DESC) FILTER (WHERE r.export_wh IS NOT NULL))[1] AS last_export_wh,
        min(r.power_w) AS min_power_w,
        max(r.power_w) AS max_power_w,
        avg(r.power_w) AS avg_power_w,
        sum(r.power_w::double precision) AS power_sum_w,
        count(r.power_w) AS power_samples,
        count(*) AS samples
    FROM d
    JOIN readings r ON r.meter_id = d.meter_id AND r.ts >= d.bucket AND r.ts < d.bucket + INTERVAL '1 hour'
    GROUP BY d.meter_id, d.bucket
), up AS (
    INSERT INTO readings_hourly AS h (meter_id, bucket, first_ts, last_ts,
        first_import_wh, last_import_wh, first_export_wh, last_export_wh,
        import_delta_wh, export_delta_wh,
        min_power_w, max_power_w, avg_power_w, power_sum_w, power_samples, samples)
    SELECT meter_id, bucket, first_ts, last_ts,
        first_import_wh, last_import_wh, first_export_wh, last_export_wh,
        last_import_wh - first_import_wh, last_export_wh - first_export_wh,
        min_power_w, max_power_w, avg_power_w, power_sum_w, power_samples, samples
    FROM agg
    ON CONFLICT (meter_id, bucket) DO UPDATE SET
        first_ts = EXCLUDED.first_ts, last_ts = EXCLUDED.last_ts,
        first_import_wh = EXCLUDED.first_import_wh, last_import_wh = EXCLUDED.last_import_wh,
        first_export_wh = EXCLUDED.first_export_wh, last_export_wh = EXCLUDED.last_export_wh,
        import_delta_wh = EXCLUDED.import_delta_wh, export_delta_wh = EXCLUDED.export_delta_wh,
        min_power_w = EXCLUDED.min_power_w, max_power_w = EXCLUDED.max_power_w,
        avg_power_w = EXCLUDED.avg_power_w, power_sum_w = EXCLUDED.power_sum_w,
        power_samples = EXCLUDED.power_samples, samples = EXCLUDED.samples
    RETURNING meter_id, bucket
), days AS (
    INSERT INTO readings_dirty_daily (meter_id, bucket)
    SELECT DISTINCT meter_id, date_trunc('day', bucket, $2) FROM up
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING
)
SELECT count(*)::int FROM d`

// refreshDailySQL recomputes a batch of dirty days from the hourly rollups.
// Day ends are computed in the rollup zone so that days of 23 or 25 hours
// (daylight saving) are whole. $1 batch size, $2 rollup time zone.
const refreshDailySQL = `
WITH d AS (
    DELETE FROM readings_dirty_daily
    WHERE (meter_id, bucket) IN (
        SELECT meter_id, bucket FROM readings_dirty_daily
        ORDER BY meter_id, bucket
        LIMIT $1
        FOR UPDATE SKIP LOCKED)
    RETURNING meter_id, bucket
), agg AS (
    SELECT d.meter_id, d.bucket,
        min(h.first_ts) AS first_ts,
        max(h.last_ts) AS last_ts,
        (array_agg(h.first_import_wh ORDER BY h.first_ts) FILTER (WHERE h.first_import_wh IS NOT NULL))[1] AS first_import_wh,
        (array_agg(h.last_import_wh ORDER BY h.last_ts DESC) FILTER (WHERE h.last_import_wh IS NOT NULL))[1] AS last_import_wh,
        (array_agg(h.first_export_wh ORDER BY h.first_ts) FILTER (WHERE h.first_export_wh IS NOT NULL))[1] AS first_export_wh,
        (array_agg(h.last_export_wh ORDER BY h.last_ts DESC) FILTER (WHERE h.last_export_wh IS NOT NULL))[1] AS last_export_wh,
        min(h.min_power_w) AS min_power_w,
        max(h.max_power_w) AS max_power_w,
        sum(h.power_sum_w) / nullif(sum(h.power_samples), 0) AS avg_power_w,
        sum(h.power_sum_w) AS power_sum_w,
        sum(h.power_samples)::bigint AS power_samples,
        sum(h.samples)::bigint AS samples
    FROM d
    JOIN readings_hourly h ON h.meter_id = d.meter_id
        AND h.bucket >= d.bucket
        AND h.bucket < ((d.bucket AT TIME ZONE $2) + INTERVAL '1 day') AT TIME ZONE $2
    GROUP BY d.meter_id, d.bucket
), up AS (
    INSERT INTO readings_daily (meter_id, bucket, first_ts, last_ts,
        first_import_wh, last_import_wh, first_export_wh, last_export_wh,
        import_delta_wh, export_delta_wh,
        min_power_w, max_power_w, avg_power_w, power_sum_w, power_samples, samples)
    SELECT meter_id, bucket, first_ts, last_ts,
        first_import_wh, last_import_wh, first_export_wh, last_export_wh,
        last_import_wh - first_import_wh, last_export_wh - first_export_wh,
        min_power_w, max_power_w, avg_power_w, power_sum_w, power_samples, samples
    FROM agg
    ON CONFLICT (meter_id, bucket) DO UPDATE SET
        first_ts = EXCLUDED.first_ts, last_ts = EXCLUDED.last_ts,
        first_import_wh = EXCLUDED.first_import_wh, last_import_wh = EXCLUDED.last_import_wh,
        first_export_wh = EXCLUDED.first_export_wh, last_export_wh = EXCLUDED.last_export_wh,
        import_delta_wh = EXCLUDED.import_delta_wh, export_delta_wh = EXCLUDED.export_delta_wh,
        min_power_w = EXCLUDED.min_power_w, max_power_w = EXCLUDED.max_power_w,
        avg_power_w = EXCLUDED.avg_power_w, power_sum_w = EXCLUDED.power_sum_w,
        power_samples = EXCLUDED.power_samples, samples = EXCLUDED.samples
)
SELECT count(*)::int FROM d`

// Compress compresses readings chunks older than CompressAfter (timescale
// profile) and returns how many it compressed. Late readings may still be
// written into compressed chunks.
func (u *Upkeep) Compress(ctx context.Context) (int, error) {
	if u.st.Profile != ProfileTimescale || u.cfg.CompressAfter < 0 {
		return 0, nil
	}
	var n int
	err := u.pool.QueryRow(ctx, `
		SELECT count(compress_chunk(c, if_not_compressed => true))::int
		FROM show_chunks('readings', older_than => now() - $1::interval) c`, u.cfg.CompressAfter).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("schema: compress readings: %w", err)
	}
	return n, nil
}

// ApplyRetention drops raw readings older than Retention, whole partitions
// or chunks at a time, and returns how many it dropped. Rollups are kept.
func (u *Upkeep) ApplyRetention(ctx context.Context) (int, error) {
	if u.cfg.Retention <= 0 {
		return 0, nil
	}
	cutoff := time.Now().Add(-u.cfg.Retention)
	if u.st.Profile == ProfileTimescale {
		var n int
		err := u.pool.QueryRow(ctx, `SELECT count(*)::int FROM drop_chunks('readings', older_than => $1::timestamptz)`, cutoff).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("schema: drop readings chunks: %w", err)
		}
		return n, nil
	}
	// The server renders and casts the partition bounds itself, so the
	// session time zone cannot confuse the parse.
	rows, err := u.pool.Query(ctx, `
		SELECT c.relname
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'readings'::regclass
		  AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz <= $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("schema: list partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("schema: list partitions: %w", err)
	}
	dropped := 0
	for _, name := range names {
		if _, err := u.pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("schema: drop partition %s: %w", name, err)
		}
		dropped++
	}
	return dropped, nil
}
