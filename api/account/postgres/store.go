package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
)

// Store is account.Store on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

var _ account.Store = (*Store)(nil)

// New returns a Store.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// tx runs fn in a transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// constraintErrors maps constraint names to domain errors.
var constraintErrors = map[string]error{
	"users_tenant_id_email_key":                       account.ErrEmailTaken,
	"connections_meter_number":                        account.ErrDuplicateProperty,
	"meters_tenant_id_external_id_key":                fmt.Errorf("%w: a meter with this external id exists", account.ErrConflict),
	"meters_tenant_id_serial_key":                     fmt.Errorf("%w: a meter with this serial exists", account.ErrConflict),
	"connections_tenant_id_service_consumer_code_key": fmt.Errorf("%w: the consumer code is taken", account.ErrConflict),
	"meter_installations_meter_spans":                 fmt.Errorf("%w: the meter is installed on another connection over that span", account.ErrConflict),
	"meter_installations_connection_spans":            fmt.Errorf("%w: the connection has another meter over that span", account.ErrConflict),
	"meter_installations_current_meter":               fmt.Errorf("%w: the meter is installed on another connection", account.ErrConflict),
}

// translate turns constraint violations into domain errors and wraps the
// rest with what.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if d, ok := constraintErrors[pe.ConstraintName]; ok {
			return d
		}
	}
	for _, d := range []error{account.ErrEmailTaken, account.ErrDuplicateProperty, account.ErrConflict} {
		if errors.Is(err, d) {
			return err
		}
	}
	var ve *account.ValidationError
	if errors.As(err, &ve) || errors.Is(err, account.ErrInvalidInput) || errors.Is(err, account.ErrUnauthenticated) ||
		errors.Is(err, account.ErrRefreshReuse) || errors.Is(err, account.ErrTokenInvalid) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// notFound returns nf for pgx.ErrNoRows and translate(err) otherwise.
func notFound(err error, nf error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return nf
	}
	return translate(err, what)
}

// writeAudit completes e with before/after snapshots of table's row key=id
// and writes it.
func writeAudit(ctx context.Context, tx pgx.Tx, e audit.Entry, before map[string]any, table, key string, id any) error {
	after, err := auditpg.Snapshot(ctx, tx, table, key, id)
	if err != nil {
		return err
	}
	e.Before = before
	if e.After == nil {
		e.After = after
	} else {
		for k, v := range after {
			if _, ok := e.After[k]; !ok {
				e.After[k] = v
			}
		}
	}
	if e.EntityID == "" {
		e.EntityID = fmt.Sprint(id)
	}
	return auditpg.Write(ctx, tx, e)
}

func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// TenantByCode implements account.Store.
func (s *Store) TenantByCode(ctx context.Context, code string) (account.Tenant, error) {
	return s.tenant(ctx, `code = $1`, code)
}

// EnsureTenant implements account.Store.
func (s *Store) EnsureTenant(ctx context.Context, t account.Tenant) (account.Tenant, error) {
	if t.TimeZone == "" {
		t.TimeZone = "UTC"
	}
	if t.Currency == "" {
		t.Currency = "INR"
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO tenants (code, name, time_zone, currency) VALUES ($1, $2, $3, $4)
		ON CONFLICT (code) DO NOTHING`, t.Code, t.Name, t.TimeZone, t.Currency); err != nil {
		return account.Tenant{}, translate(err, "ensure tenant")
	}
	return s.TenantByCode(ctx, t.Code)
}

// TenantByID implements account.Store.
func (s *Store) TenantByID(ctx context.Context, id int64) (account.Tenant, error) {
	return s.tenant(ctx, `id = $1`, id)
}

func (s *Store) tenant(ctx context.Context, where string, arg any) (account.Tenant, error) {
	var t account.Tenant
	err := s.pool.QueryRow(ctx, `SELECT id, code, name, time_zone, currency FROM tenants WHERE `+where, arg).
		Scan(&t.ID, &t.Code, &t.Name, &t.TimeZone, &t.Currency)
	return t, notFound(err, account.ErrTenantNotFound, "tenant")
}
