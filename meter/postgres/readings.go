package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	n, err := s.copyReadings(ctx, nil, "readings", rows)
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
	n, err := s.copyReadings(ctx, nil, "readings", rows)
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
	if _, err := s.copyReadings(ctx, tx.Conn().PgConn(), "readings_stage", rows); err != nil {
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

// copyReadings copies rows into table (readings or readings_stage) on conn,
// or on a connection from the pool when conn is nil, in COPY's binary
// format encoded here: pgx's generic CopyFrom looks up an encode plan for
// every value, which was a fifth of the gateway's CPU in batched ingest.
func (s *Store) copyReadings(ctx context.Context, conn *pgconn.PgConn, table string, rows []meter.Reading) (int64, error) {
	if conn == nil {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			return 0, err
		}
		defer c.Release()
		conn = c.Conn().PgConn()
	}
	bp := copyBufs.Get().(*[]byte)
	buf := appendCopyBinary((*bp)[:0], rows)
	defer func() {
		if cap(buf) <= maxPooledCopyBuf {
			*bp = buf
			copyBufs.Put(bp)
		}
	}()
	tag, err := conn.CopyFrom(ctx, bytes.NewReader(buf), copyReadingsSQL(table))
	return tag.RowsAffected(), err
}

// Buffers of encoded batches are reused; one of a 10 000-reading batch is
// about 1.1 MB, and larger ones are left to the collector.
const maxPooledCopyBuf = 4 << 20

var copyBufs = sync.Pool{New: func() any { return new([]byte) }}

func copyReadingsSQL(table string) string {
	return "COPY " + pgx.Identifier{table}.Sanitize() + " (" + strings.Join(readingColumns, ", ") + ") FROM STDIN (FORMAT binary)"
}

// pgEpochMicros is 2000-01-01 00:00:00 UTC, where binary timestamps count
// from, in Unix microseconds.
const pgEpochMicros = 946_684_800_000_000

// appendCopyBinary appends rows to buf as a whole COPY binary stream
// (header, one tuple per reading in readingColumns order, trailer).
func appendCopyBinary(buf []byte, rows []meter.Reading) []byte {
	const maxTuple = 2 + 12*4 + 5*8 + 5*4 + 2*2
	buf = slices.Grow(buf, 19+len(rows)*maxTuple+2)
	buf = append(buf, "PGCOPY\n\xff\r\n\x00"...)
	buf = binary.BigEndian.AppendUint32(buf, 0) // flags
	buf = binary.BigEndian.AppendUint32(buf, 0) // header extension length
	i64 := func(b []byte, v int64) []byte {
		b = binary.BigEndian.AppendUint32(b, 8)
		return binary.BigEndian.AppendUint64(b, uint64(v))
	}
	optI64 := func(b []byte, f, q meter.Fields, v int64) []byte {
		if !f.Has(q) {
			return binary.BigEndian.AppendUint32(b, 0xFFFFFFFF) // NULL
		}
		return i64(b, v)
	}
	optF32 := func(b []byte, f, q meter.Fields, v float32) []byte {
		if !f.Has(q) {
			return binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)
		}
		b = binary.BigEndian.AppendUint32(b, 4)
		return binary.BigEndian.AppendUint32(b, math.Float32bits(v))
	}
	i16 := func(b []byte, v int16) []byte {
		b = binary.BigEndian.AppendUint32(b, 2)
		return binary.BigEndian.AppendUint16(b, uint16(v))
	}
	for k := range rows {
		r := &rows[k]
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(readingColumns)))
		buf = i64(buf, r.MeterID)
		buf = i64(buf, r.Time.UnixMicro()-pgEpochMicros)
		buf = i64(buf, r.ReceivedAt.UnixMicro()-pgEpochMicros)
		buf = optI64(buf, r.Fields, meter.FieldImport, r.ImportWh)
		buf = optI64(buf, r.Fields, meter.FieldExport, r.ExportWh)
		buf = optF32(buf, r.Fields, meter.FieldPower, r.PowerW)
		buf = optF32(buf, r.Fields, meter.FieldVoltage, r.VoltageV)
		buf = optF32(buf, r.Fields, meter.FieldCurrent, r.CurrentA)
		buf = optF32(buf, r.Fields, meter.FieldFrequency, r.FrequencyHz)
		buf = optF32(buf, r.Fields, meter.FieldPowerFactor, r.PowerFactor)
		buf = i16(buf, int16(r.Source))
		buf = i16(buf, int16(r.Quality))
	}
	return binary.BigEndian.AppendUint16(buf, 0xFFFF) // trailer: -1
}
