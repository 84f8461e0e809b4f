package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing/payment"
)

const refundCols = `r.id, r.tenant_id, r.payment_id, r.amount, r.amount_minor, p.currency, r.reason, r.requested_by, r.status,
	coalesce(r.provider_refund_id, ''), r.failure_reason, r.created_at, r.processed_at`

func scanRefund(rw pgx.CollectableRow) (payment.Refund, error) {
	var r payment.Refund
	var status string
	err := rw.Scan(&r.ID, &r.TenantID, &r.PaymentID, &r.Amount, &r.AmountMinor, &r.Currency, &r.Reason, &r.RequestedBy, &status,
		&r.ProviderRefundID, &r.FailureReason, &r.CreatedAt, &r.ProcessedAt)
	r.Status = payment.RefundStatus(status)
	r.CreatedAt = r.CreatedAt.UTC()
	if r.ProcessedAt != nil {
		t := r.ProcessedAt.UTC()
		r.ProcessedAt = &t
	}
	return r, err
}

func loadRefund(ctx context.Context, q queryer, lock bool, id int64) (payment.Refund, error) {
	sql := `SELECT ` + refundCols + ` FROM payment_refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1`
	if lock {
		sql += ` FOR UPDATE OF r`
	}
	rows, err := q.Query(ctx, sql, id)
	if err != nil {
		return payment.Refund{}, fmt.Errorf("refund %d: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRefund)
	if err != nil {
		return payment.Refund{}, fmt.Errorf("refund %d: %w", id, notFound(err, payment.ErrNotFound))
	}
	return r, nil
}

// ClaimRefund implements payment.Store.
func (s *Store) ClaimRefund(ctx context.Context, k payment.Key, lease time.Duration, nr payment.NewRefund, c payment.Caller) (payment.RefundClaim, error) {
	var out payment.RefundClaim
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ex, found, err := lockKey(ctx, tx, k, lease)
		if err != nil {
			return err
		}
		if !found {
			p, err := loadPayment(ctx, tx, true, `p.tenant_id = $1 AND p.id = $2`, nr.TenantID, nr.PaymentID)
			if err != nil {
				return fmt.Errorf("payment %d: %w", nr.PaymentID, err)
			}
			if p.Status != payment.StatusCaptured {
				return fmt.Errorf("%w: payment %d is %s; only captured payments are refunded", payment.ErrConflict, p.ID, p.Status)
			}
			var open decimal.Decimal
			if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM payment_refunds WHERE payment_id = $1 AND status IN ('created', 'pending')`,
				p.ID).Scan(&open); err != nil {
				return fmt.Errorf("open refunds: %w", err)
			}
			refundable := p.CapturedAmount.Sub(p.RefundedAmount).Sub(open)
			amount := nr.Amount
			if amount.IsZero() {
				amount = refundable
			}
			if !refundable.IsPositive() {
				return fmt.Errorf("%w: nothing is left to refund on payment %d", payment.ErrConflict, p.ID)
			}
			if amount.GreaterThan(refundable) {
				return fmt.Errorf("%w: at most %s of payment %d can be refunded", payment.ErrConflict, money(refundable), p.ID)
			}
			minor, err := payment.ToMinor(amount, p.Currency)
			if err != nil {
				return err
			}
			var id int64
			if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('payment_refunds', 'id'))`).Scan(&id); err != nil {
				return fmt.Errorf("refund id: %w", err)
			}
			ok, err := insertKey(ctx, tx, k, id, lease)
			if err != nil {
				return err
			}
			if ok {
				if _, err := tx.Exec(ctx, `INSERT INTO payment_refunds (id, tenant_id, payment_id, amount, amount_minor, reason, requested_by)
					VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, p.TenantID, p.ID, amount, minor, nr.Reason, c.UserID); err != nil {
					return fmt.Errorf("insert refund: %w", err)
				}
				if err := s.writeAudit(ctx, tx, &c, p.TenantID, "payment.refund", "payment", p.ID, map[string]any{
					"refund_id": id, "amount": money(amount), "currency": p.Currency, "reason": nr.Reason}); err != nil {
					return err
				}
				out.Payment = p.Payment
				out.Refund, err = loadRefund(ctx, tx, false, id)
				return err
			}
			if ex, found, err = lockKey(ctx, tx, k, lease); err != nil {
				return err
			} else if !found {
				return payment.ErrIdempotencyInUse
			}
		}
		if ex.replay != nil {
			r, err := snapshotOf[payment.Refund](ex.replay)
			out.Replay = &r
			return err
		}
		r, err := loadRefund(ctx, tx, false, ex.resourceID)
		if err != nil {
			return err
		}
		p, err := loadPayment(ctx, tx, false, `p.id = $1`, r.PaymentID)
		out.Refund, out.Payment = r, p.Payment
		return err
	})
	if err != nil {
		return payment.RefundClaim{}, fmt.Errorf("claim refund: %w", err)
	}
	return out, nil
}

// CompleteRefund implements payment.Store.
func (s *Store) CompleteRefund(ctx context.Context, k payment.Key, refundID int64, st payment.RefundState) (payment.Refund, error) {
	var out payment.Refund
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := loadRefund(ctx, tx, false, refundID)
		if err != nil {
			return err
		}
		p, err := loadPayment(ctx, tx, true, `p.id = $1`, r.PaymentID)
		if err != nil {
			return err
		}
		if r, err = loadRefund(ctx, tx, true, refundID); err != nil {
			return err
		}
		if _, err := s.applyRefundState(ctx, tx, p, r, st); err != nil {
			return err
		}
		if out, err = loadRefund(ctx, tx, false, refundID); err != nil {
			return err
		}
		return completeKey(ctx, tx, k, out)
	})
	if err != nil {
		return payment.Refund{}, fmt.Errorf("complete refund %d: %w", refundID, err)
	}
	return out, nil
}

// Refunds implements payment.Store.
func (s *Store) Refunds(ctx context.Context, tenantID, ownerUserID, paymentID int64) ([]payment.Refund, error) {
	if _, err := s.Payment(ctx, tenantID, ownerUserID, paymentID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+refundCols+` FROM payment_refunds r JOIN payments p ON p.id = r.payment_id
		WHERE r.payment_id = $1 ORDER BY r.id`, paymentID)
	if err != nil {
		return nil, fmt.Errorf("refunds: %w", err)
	}
	return pgx.CollectRows(rows, scanRefund)
}

// OpenRefunds implements payment.Store.
func (s *Store) OpenRefunds(ctx context.Context, tenantID int64, olderThan time.Time, limit int) ([]payment.RefundClaim, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.id FROM payment_refunds r
		WHERE r.status IN ('created', 'pending') AND r.updated_at < $1 AND ($2 = 0 OR r.tenant_id = $2) ORDER BY r.id LIMIT $3`, olderThan, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("open refunds: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("open refunds: %w", err)
	}
	out := make([]payment.RefundClaim, 0, len(ids))
	for _, id := range ids {
		r, err := loadRefund(ctx, s.pool, false, id)
		if err != nil {
			return nil, err
		}
		p, err := loadPayment(ctx, s.pool, false, `p.id = $1`, r.PaymentID)
		if err != nil {
			return nil, err
		}
		out = append(out, payment.RefundClaim{Refund: r, Payment: p.Payment})
	}
	return out, nil
}
