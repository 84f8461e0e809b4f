package schema

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/pressly/goose/v3"
)

// readingsColumns is the readings table shared by both profiles. Energy
// registers are cumulative Wh; instantaneous values are real; absent
// quantities are NULL. source and quality hold meter.Source and
// meter.Quality.
const readingsColumns = `
    meter_id     bigint      NOT NULL,
    ts           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    import_wh    bigint,
    export_wh    bigint,
    power_w      real,
    voltage_v    real,
    current_a    real,
    frequency_hz real,
    power_factor real,
    source       smallint    NOT NULL,
    quality      smallint    NOT NULL DEFAULT 0,
    PRIMARY KEY (meter_id, ts)`

// rollupColumns is readings_hourly and readings_daily in the postgres
// profile; the timescale profile's continuous aggregates have the same
// columns. first/last registers ignore readings that lack the register;
// the deltas are last − first within the bucket (consumption across bucket
// edges is the difference of consecutive buckets' last registers).
// avg_power_w is the mean of the power samples; power_sum_w and
// power_samples let coarser buckets weight it exactly.
const rollupColumns = `
    meter_id        bigint           NOT NULL,
    bucket          timestamptz      NOT NULL,
    first_ts        timestamptz      NOT NULL,
    last_ts         timestamptz      NOT NULL,
    first_import_wh bigint,
    last_import_wh  bigint,
    first_export_wh bigint,
    last_export_wh  bigint,
    import_delta_wh bigint,
    export_delta_wh bigint,
    min_power_w     real,
    max_power_w     real,
    avg_power_w     double precision,
    power_sum_w     double precision,
    power_samples   bigint           NOT NULL,
    samples         bigint           NOT NULL,
    PRIMARY KEY (meter_id, bucket)`

// goMigrations are the migrations whose DDL depends on the storage profile.
// st is the recorded profile, or the one just chosen for a new database.
func goMigrations(st Storage) []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(2,
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return createReadings(ctx, tx, st) }},
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return dropReadings(ctx, tx) }},
		),
		// Continuous aggregates are created outside a transaction block.
		goose.NewGoMigration(3,
			&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return createRollups(ctx, db, st) }},
			&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return dropRollups(ctx, db) }},
		),
	}
}

func createReadings(ctx context.Context, tx *sql.Tx, st Storage) error {
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO meterd_storage (profile, rollup_time_zone, partition_interval) VALUES ($1, $2, $3)`,
		string(st.Profile), st.RollupTimeZone, st.PartitionInterval); err != nil {
		return fmt.Errorf("record storage profile: %w", err)
	}
	var stmts []string
	switch st.Profile {
	case ProfilePostgres:
		stmts = []string{
			`CREATE TABLE readings (` + readingsColumns + `) PARTITION BY RANGE (ts)`,
			// Buckets whose rollups are stale. The trigger fills them in
			// the writer's own transaction; the rollup job drains them.
			`CREATE TABLE readings_dirty (meter_id bigint NOT NULL, bucket timestamptz NOT NULL, PRIMARY KEY (meter_id, bucket))`,
			`CREATE TABLE readings_dirty_daily (meter_id bigint NOT NULL, bucket timestamptz NOT NULL, PRIMARY KEY (meter_id, bucket))`,
			// Keys are inserted in sorted order so that concurrent writers
			// touching the same buckets cannot deadlock.
			`CREATE FUNCTION readings_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				INSERT INTO readings_dirty (meter_id, bucket)
				SELECT DISTINCT n.meter_id, date_trunc('hour', n.ts, s.rollup_time_zone)
				FROM new_rows n CROSS JOIN meterd_storage s
				ORDER BY 1, 2
				ON CONFLICT DO NOTHING;
				RETURN NULL;
			END $$`,
			`CREATE TRIGGER readings_mark_dirty AFTER INSERT ON readings
				REFERENCING NEW TABLE AS new_rows
				FOR EACH STATEMENT EXECUTE FUNCTION readings_mark_dirty()`,
		}
	case ProfileTimescale:
		stmts = []string{
			`CREATE TABLE readings (` + readingsColumns + `)`,
			// The primary key already leads with meter_id; the default
			// (ts DESC) index would cost ingest throughput and WAL.
			fmt.Sprintf(`SELECT create_hypertable('readings', by_range('ts', INTERVAL '%d days'), create_default_indexes => false)`,
				int(st.PartitionInterval/(24*time.Hour))),
			`ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'meter_id', timescaledb.compress_orderby = 'ts')`,
		}
	default:
		return fmt.Errorf("unknown storage profile %q", st.Profile)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create readings (%s): %w", st.Profile, err)
		}
	}
	return nil
}

func dropReadings(ctx context.Context, tx *sql.Tx) error {
	for _, s := range []string{
		`DROP TABLE IF EXISTS readings_dirty_daily`,
		`DROP TABLE IF EXISTS readings_dirty`,
		`DROP TABLE IF EXISTS readings CASCADE`,
		`DROP FUNCTION IF EXISTS readings_mark_dirty()`,
		`DELETE FROM meterd_storage`,
	} {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func createRollups(ctx context.Context, db *sql.DB, st Storage) error {
	var stmts []string
	switch st.Profile {
	case ProfilePostgres:
		stmts = []string{
			`CREATE TABLE readings_hourly (` + rollupColumns + `)`,
			`CREATE TABLE readings_daily (` + rollupColumns + `)`,
		}
	case ProfileTimescale:
		var tz string
		if err := db.QueryRowContext(ctx, `SELECT quote_literal($1)`, st.RollupTimeZone).Scan(&tz); err != nil {
			return err
		}
		stmts = timescaleRollupDDL(tz)
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create rollups (%s): %w", st.Profile, err)
		}
	}
	return nil
}

// timescaleRollupDDL creates the continuous aggregates. Grouping repeats
// the time_bucket expression because TimescaleDB refuses the alias. tzLiteral is a
// quoted SQL literal. The hourly aggregate reads readings; the daily one is
// hierarchical over the hourly one, so a day costs 24 rows, not thousands.
func timescaleRollupDDL(tzLiteral string) []string {
	return []string{
		`CREATE MATERIALIZED VIEW readings_hourly WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
		SELECT meter_id,
			time_bucket(INTERVAL '1 hour', ts, ` + tzLiteral + `) AS bucket,
			min(ts) AS first_ts,
			max(ts) AS last_ts,
			first(import_wh, ts) FILTER (WHERE import_wh IS NOT NULL) AS first_import_wh,
			last(import_wh, ts) FILTER (WHERE import_wh IS NOT NULL) AS last_import_wh,
			first(export_wh, ts) FILTER (WHERE export_wh IS NOT NULL) AS first_export_wh,
			last(export_wh, ts) FILTER (WHERE export_wh IS NOT NULL) AS last_export_wh,
			last(import_wh, ts) FILTER (WHERE import_wh IS NOT NULL) - first(import_wh, ts) FILTER (WHERE import_wh IS NOT NULL) AS import_delta_wh,
			last(export_wh, ts) FILTER (WHERE export_wh IS NOT NULL) - first(export_wh, ts) FILTER (WHERE export_wh IS NOT NULL) AS export_delta_wh,
			min(power_w) AS min_power_w,
			max(power_w) AS max_power_w,
			avg(power_w) AS avg_power_w,
			sum(power_w::double precision) AS power_sum_w,
			count(power_w) AS power_samples,
			count(*) AS samples
		FROM readings
		GROUP BY meter_id, time_bucket(INTERVAL '1 hour', ts, ` + tzLiteral + `)
		WITH NO DATA`,
		`CREATE MATERIALIZED VIEW readings_daily WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
		SELECT meter_id,
			time_bucket(INTERVAL '1 day', bucket, ` + tzLiteral + `) AS bucket,
			min(first_ts) AS first_ts,
			max(last_ts) AS last_ts,
			first(first_import_wh, first_ts) FILTER (WHERE first_import_wh IS NOT NULL) AS first_import_wh,
			last(last_import_wh, last_ts) FILTER (WHERE last_import_wh IS NOT NULL) AS last_import_wh,
			first(first_export_wh, first_ts) FILTER (WHERE first_export_wh IS NOT NULL) AS first_export_wh,
			last(last_export_wh, last_ts) FILTER (WHERE last_export_wh IS NOT NULL) AS last_export_wh,
			last(last_import_wh, last_ts) FILTER (WHERE last_import_wh IS NOT NULL) - first(first_import_wh, first_ts) FILTER (WHERE first_import_wh IS NOT NULL) AS import_delta_wh,
			last(last_export_wh, last_ts) FILTER (WHERE last_export_wh IS NOT NULL) - first(first_export_wh, first_ts) FILTER (WHERE first_export_wh IS NOT NULL) AS export_delta_wh,
			min(min_power_w) AS min_power_w,
			max(max_power_w) AS max_power_w,
			sum(power_sum_w) / nullif(sum(power_samples), 0) AS avg_power_w,
			sum(power_sum_w) AS power_sum_w,
			sum(power_samples)::bigint AS power_samples,
			sum(samples)::bigint AS samples
		FROM readings_hourly
		GROUP BY meter_id, time_bucket(INTERVAL '1 day', bucket, ` + tzLiteral + `)
		WITH NO DATA`,
	}
}

func dropRollups(ctx context.Context, db *sql.DB) error {
	var kind string
	err := db.QueryRowContext(ctx, `SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_matviews WHERE matviewname = 'readings_daily') THEN 'view' ELSE 'table' END`).Scan(&kind)
	if err != nil {
		return err
	}
	for _, name := range []string{"readings_daily", "readings_hourly"} {
		stmt := "DROP TABLE IF EXISTS " + name
		if kind == "view" {
			stmt = "DROP MATERIALIZED VIEW IF EXISTS " + name
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}
