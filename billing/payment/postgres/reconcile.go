package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/billing/payment"
)

const reconCols = `id, coalesce(tenant_id, 0), trigger, coalesce(requested_by, 0), started_at, finished_at, checked, settled, failed, expired, refunds, errors, error`

func scanRecon(r pgx.CollectableRow) (payment.Reconciliation, error) {
	var x payment.Reconciliation
	err := r.Scan(&x.ID, &x.TenantID, &x.Trigger, &x.RequestedBy, &x.StartedAt, &x.FinishedAt, &x.Checked, &x.Settled, &x.Failed, &x.Expired,
		&x.Refunds, &x.Errors, &x.Error)
	x.StartedAt = x.StartedAt.UTC()
	if x.FinishedAt != nil {
		t := x.FinishedAt.UTC()
		x.FinishedAt = &t
	}
	return x, err
}

// StartReconciliation implements payment.Store.
func (s *Store) StartReconciliation(ctx context.Context, tenantID int64, trigger string, c *payment.Caller) (payment.Reconciliation, error) {
	var out payment.Reconciliation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var tenant, by any
		if tenantID != 0 {
			tenant = tenantID
		}
		if c != nil && c.UserID != 0 {
			by = c.UserID
		}
		rows, err := tx.Query(ctx, `INSERT INTO payment_reconciliations (tenant_id, trigger, requested_by) VALUES ($1, $2, $3) RETURNING `+reconCols,
			tenant, trigger, by)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectExactlyOneRow(rows, scanRecon); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, c, tenantID, "payment.reconcile", "payment_reconciliation", out.ID, map[string]any{"trigger": trigger})
	})
	if err != nil {
		return out, fmt.Errorf("start reconciliation: %w", err)
	}
	return out, nil
}

// FinishReconciliation implements payment.Store.
func (s *Store) FinishReconciliation(ctx context.Context, r payment.Reconciliation) error {
	_, err := s.pool.Exec(ctx, `UPDATE payment_reconciliations SET finished_at = coalesce($2, now()), checked = $3, settled = $4, failed = $5,
		expired = $6, refunds = $7, errors = $8, error = $9 WHERE id = $1`,
		r.ID, r.FinishedAt, r.Checked, r.Settled, r.Failed, r.Expired, r.Refunds, r.Errors, r.Error)
	if err != nil {
		return fmt.Errorf("finish reconciliation %d: %w", r.ID, err)
	}
	return nil
}

// Reconciliations implements payment.Store: the tenant's runs and the
// all-tenant ones, newest first.
func (s *Store) Reconciliations(ctx context.Context, tenantID int64, limit int) ([]payment.Reconciliation, error) {
	if limit <= 0 || limit > 200 {
		limit = 20
	}
	rows, err := s.pool.Query(ctx, `SELECT `+reconCols+` FROM payment_reconciliations WHERE tenant_id = $1 OR tenant_id IS NULL ORDER BY id DESC LIMIT $2`,
		tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("reconciliations: %w", err)
	}
	return pgx.CollectRows(rows, scanRecon)
}
