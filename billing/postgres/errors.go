package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meterd/meterd/billing"
)

// classify translates database errors into billing's sentinels, keeping
// the original in the chain.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", billing.ErrNotFound, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "MD001":
			return fmt.Errorf("%w: %s", billing.ErrImmutable, pe.Message)
		case "23505", "23P01":
			return fmt.Errorf("%w: %s (%s)", billing.ErrConflict, pe.Message, pe.ConstraintName)
		}
	}
	return err
}
