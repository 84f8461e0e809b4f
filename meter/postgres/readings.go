package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/meter"
)

// Store is the meter domain's PostgreSQL store. It is safe for concurrent
// use; each call takes a connection from the pool for its duration.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// readingColumns are the columns the writer fills, in COPY order.
var readingColumns = []string{
	"meter_id", "ts", "received_at", "import_wh", "export_wh", "power_w", "voltage_v",
	"current_a", "frequency_hz", "power_factor", "source", "quality",
}

// WriteResult says what a write did.
type WriteResult struct {
	Inserted   int  // rows stored
	Duplicates int  // rows already stored (same meter and time), skipped
	Staged     bool // the batch went through the staging table
}

// WriteReadings stores rows idempotently in one transaction: it first tries
// a plain COPY into readings; if that hits a duplicate key it replays the
// rows through a temporary staging table with INSERT … ON CONFLICT DO
// NOTHING, so already-stored readings are skipped and the rest are stored.
// rows must not repeat a (meter, time) key (dedupe the batch first: ON
// CONFLICT cannot resolve two new rows with the same key either, and COPY
// would report a duplicate that the fallback then drops silently).
//
// Errors wrap ErrTransient, ErrMissingPartition or ErrBadRow; on error
// nothing was stored.
func (s *Store) WriteReadings(ctx context.Context, rows []meter.Reading) (WriteResult, error) {
	if len(rows) == 0 {
		return WriteResult{}, nil
	}
	n, err := s.pool.CopyFrom(ctx, pgx.Identifier{"readings"}, readingColumns, newReadingSource(rows))
	if err == nil {
		return WriteResult{Inserted: int(n)}, nil
	}
	if !isUniqueViolation(err) {
		return WriteResult{}, fmt.Errorf("copy readings: %w", classify(err))
	}
	ins, err := s.writeStaged(ctx, rows)
	if err != nil {
		return WriteResult{}, fmt.Errorf("stage readings: %w", classify(err))
	}
	return WriteResult{Inserted: ins, Duplicates: len(rows) - ins, Staged: true}, nil
}

// CopyReadings is a plain COPY of rows into readings, with no duplicate
// handling: the baseline the writer's benchmark compares itself with.
func (s *Store) CopyReadings(ctx context.Context, rows []meter.Reading) (int64, error) {
	n, err := s.pool.CopyFrom(ctx, pgx.Identifier{"readings"}, readingColumns, newReadingSource(rows))
	if err != nil {
		return n, fmt.Errorf("copy readings: %w", classify(err))
	}
	return n, nil
}

// writeStaged copies rows into a session-local staging table and moves the
// new ones into readings, all in one transaction. The staging table is
// emptied at commit (ON COMMIT DELETE ROWS), so a pooled connection reuses
// it.
func (s *Store) writeStaged(ctx context.Context, rows []meter.Reading) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS readings_stage
		(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
		return 0, err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"readings_stage"}, readingColumns, newReadingSource(rows)); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO readings (meter_id, ts, received_at, import_wh, export_wh, power_w,
			voltage_v, current_a, frequency_hz, power_factor, source, quality)
		SELECT meter_id, ts, received_at, import_wh, export_wh, power_w,
			voltage_v, current_a, frequency_hz, power_factor, source, quality
		FROM readings_stage
		ON CONFLICT DO NOTHING`)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// readingSource feeds readings to COPY. Values reuses one slice: pgx
// encodes each row before asking for the next.
type readingSource struct {
	rows []meter.Reading
	i    int
	vals []any
}

func newReadingSource(rows []meter.Reading) *readingSource {
	return &readingSource{rows: rows, i: -1, vals: make([]any, len(readingColumns))}
}

func (s *readingSource) Next() bool { s.i++; return s.i < len(s.rows) }
func (s *readingSource) Err() error { return nil }

func (s *readingSource) Values() ([]any, error) {
	r := &s.rows[s.i]
	v := s.vals
	v[0], v[1], v[2] = r.MeterID, r.Time, r.ReceivedAt
	v[3], v[4] = optInt(r.Fields, meter.FieldImport, r.ImportWh), optInt(r.Fields, meter.FieldExport, r.ExportWh)
	v[5] = optFloat(r.Fields, meter.FieldPower, r.PowerW)
	v[6] = optFloat(r.Fields, meter.FieldVoltage, r.VoltageV)
	v[7] = optFloat(r.Fields, meter.FieldCurrent, r.CurrentA)
	v[8] = optFloat(r.Fields, meter.FieldFrequency, r.FrequencyHz)
	v[9] = optFloat(r.Fields, meter.FieldPowerFactor, r.PowerFactor)
	v[10], v[11] = int16(r.Source), int16(r.Quality)
	return v, nil
}

func optInt(f, q meter.Fields, x int64) any {
	if !f.Has(q) {
		return nil
	}
	return x
}

func optFloat(f, q meter.Fields, x float32) any {
	if !f.Has(q) {
		return nil
	}
	return x
}
