package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/billing/payment"
)

// AddMethod implements payment.Store.
func (s *Store) AddMethod(ctx context.Context, c payment.Caller, m payment.NewMethod) (payment.SavedMethod, error) {
	var out payment.SavedMethod
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, err := s.saveMethodID(ctx, tx, c.TenantID, c.UserID, m)
		if err != nil {
			return err
		}
		if err := s.writeAudit(ctx, tx, &c, c.TenantID, "payment_method.add", "saved_payment_method", id, map[string]any{
			"provider": m.Provider, "method": string(m.Method), "brand": m.Brand, "last4": m.Last4}); err != nil {
			return err
		}
		out, err = loadMethod(ctx, tx, c.TenantID, c.UserID, id)
		return err
	})
	if err != nil {
		return payment.SavedMethod{}, fmt.Errorf("save payment method: %w", err)
	}
	return out, nil
}

func (s *Store) saveMethod(ctx context.Context, tx pgx.Tx, tenantID, userID int64, m payment.NewMethod) error {
	_, err := s.saveMethodID(ctx, tx, tenantID, userID, m)
	return err
}

// saveMethodID seals the token under the row's own id and inserts it.
func (s *Store) saveMethodID(ctx context.Context, tx pgx.Tx, tenantID, userID int64, m payment.NewMethod) (int64, error) {
	if s.sealer == nil {
		return 0, errors.New("no sealer configured: tokens are never stored in the clear")
	}
	var id int64
	if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('saved_payment_methods', 'id'))`).Scan(&id); err != nil {
		return 0, fmt.Errorf("method id: %w", err)
	}
	sealed, err := s.sealer.Seal([]byte(m.Token), payment.TokenAAD(id))
	if err != nil {
		return 0, fmt.Errorf("seal token: %w", err)
	}
	var l4 any
	if m.Last4 != "" {
		l4 = m.Last4
	}
	if _, err := tx.Exec(ctx, `INSERT INTO saved_payment_methods (id, tenant_id, user_id, provider, method, token_enc, brand, last4, label)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, tenantID, userID, m.Provider, string(m.Method), sealed, m.Brand, l4, m.Label); err != nil {
		return 0, fmt.Errorf("insert method: %w", err)
	}
	return id, nil
}

const methodCols = `id, tenant_id, user_id, provider, method, brand, coalesce(last4, ''), label, created_at`

func scanMethod(r pgx.CollectableRow) (payment.SavedMethod, error) {
	var m payment.SavedMethod
	var method string
	err := r.Scan(&m.ID, &m.TenantID, &m.UserID, &m.Provider, &method, &m.Brand, &m.Last4, &m.Label, &m.CreatedAt)
	m.Method, m.CreatedAt = payment.Method(method), m.CreatedAt.UTC()
	return m, err
}

func loadMethod(ctx context.Context, q queryer, tenantID, userID, id int64) (payment.SavedMethod, error) {
	rows, err := q.Query(ctx, `SELECT `+methodCols+` FROM saved_payment_methods WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND removed_at IS NULL`,
		tenantID, userID, id)
	if err != nil {
		return payment.SavedMethod{}, err
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanMethod)
	return m, notFound(err, payment.ErrNotFound)
}

// Methods implements payment.Store.
func (s *Store) Methods(ctx context.Context, tenantID, userID int64) ([]payment.SavedMethod, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+methodCols+` FROM saved_payment_methods WHERE tenant_id = $1 AND user_id = $2 AND removed_at IS NULL ORDER BY id`,
		tenantID, userID)
	if err != nil {
		return nil, fmt.Errorf("payment methods: %w", err)
	}
	return pgx.CollectRows(rows, scanMethod)
}

// MethodToken implements payment.Store.
func (s *Store) MethodToken(ctx context.Context, tenantID, userID, id int64) (payment.SavedMethod, string, error) {
	m, err := loadMethod(ctx, s.pool, tenantID, userID, id)
	if err != nil {
		return m, "", fmt.Errorf("payment method %d: %w", id, err)
	}
	if s.sealer == nil {
		return m, "", errors.New("payment method: no sealer configured")
	}
	var sealed []byte
	if err := s.pool.QueryRow(ctx, `SELECT token_enc FROM saved_payment_methods WHERE id = $1`, id).Scan(&sealed); err != nil {
		return m, "", fmt.Errorf("payment method %d: %w", id, notFound(err, payment.ErrNotFound))
	}
	tok, err := s.sealer.Open(sealed, payment.TokenAAD(id))
	if err != nil {
		return m, "", fmt.Errorf("payment method %d: open token: %w", id, err)
	}
	return m, string(tok), nil
}

// RemoveMethod implements payment.Store: the token is erased.
func (s *Store) RemoveMethod(ctx context.Context, c payment.Caller, id int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE saved_payment_methods SET token_enc = NULL, removed_at = now()
			WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND removed_at IS NULL`, c.TenantID, c.UserID, id)
		if err != nil {
			return fmt.Errorf("remove payment method %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("payment method %d: %w", id, payment.ErrNotFound)
		}
		return s.writeAudit(ctx, tx, &c, c.TenantID, "payment_method.remove", "saved_payment_method", id, nil)
	})
}
