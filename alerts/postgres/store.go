package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/alerts"
)

// Store is the alerts and notifications storage on a pgx pool.
type Store struct {
	pool  *pgxpool.Pool
	zones sync.Map // time zone name → *time.Location
}

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// zone returns the location named name (UTC when it does not load: the
// tenants table does not constrain it).
func (s *Store) zone(name string) *time.Location {
	if v, ok := s.zones.Load(name); ok {
		return v.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC
	}
	s.zones.Store(name, loc)
	return loc
}

// inTx runs fn in a transaction.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// translate maps pgx errors to domain errors, with a prefix.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return fmt.Errorf("%s: %w: %s", what, alerts.ErrConflict, pe.ConstraintName)
		case "23503", "23514", "22P02", "22007", "22008":
			return fmt.Errorf("%s: %w: %s", what, alerts.ErrInvalidInput, pe.Message)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
