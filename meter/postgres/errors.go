package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meterd/meterd/deploy/schema"
)

// Sentinels wrapped by the errors this package returns, so that callers can
// choose between retrying, repairing and triaging with errors.Is.
var (
	// ErrTransient: the database could not be reached or refused the work
	// for a reason that passes (connection lost, server starting or shutting
	// down, deadlock, serialization failure, resources exhausted, a
	// statement timeout). Retry with backoff.
	ErrTransient = errors.New("transient database error")
	// ErrMissingPartition: a reading's time has no readings partition
	// (postgres profile). Create the partitions for the batch's time range
	// and retry.
	ErrMissingPartition = errors.New("no readings partition for a reading's time")
	// ErrBadRow: the database rejected a row's data (SQLSTATE class 22 or
	// 23 other than a duplicate key). Retrying the same rows fails again;
	// split the batch to find the row.
	ErrBadRow = errors.New("database rejected a row")
)

// classify wraps err in the sentinel that says what to do about it. Errors
// that are neither transient nor about the data (a missing table, a
// permission problem) are reported as transient too: the writer retries
// them with backoff and an alert fires, instead of discarding readings as
// if they were bad.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if schema.IsMissingPartition(err) {
		return errors.Join(ErrMissingPartition, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23":
			return errors.Join(ErrBadRow, err)
		}
		return errors.Join(ErrTransient, err)
	}
	// Connection-level failures (refused, reset, EOF, timeouts, our own
	// per-attempt deadlines) and anything else.
	return errors.Join(ErrTransient, err)
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
