package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/billing/payment"
)

// LookupKey implements payment.Store.
func (s *Store) LookupKey(ctx context.Context, k payment.Key) (payment.KeyRecord, bool, error) {
	var rec payment.KeyRecord
	var status string
	err := s.pool.QueryRow(ctx, `SELECT operation, request_hash, resource_id, status, response FROM payment_idempotency_keys
		WHERE tenant_id = $1 AND user_id = $2 AND key = $3`, k.TenantID, k.UserID, k.Key).Scan(&rec.Operation, &rec.Hash, &rec.ResourceID, &status, &rec.Response)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("idempotency key: %w", err)
	}
	rec.Completed = status == "completed"
	return rec, true, nil
}

// existing is what claimKey found for a key that was already there.
type existing struct {
	resourceID int64
	replay     json.RawMessage // set when completed
}

// lockKey locks k's row if it exists and decides what the request may do:
// replay a completed response, resume the resource (taking the lease), or
// fail (ErrIdempotencyMismatch, ErrIdempotencyInUse).
func lockKey(ctx context.Context, tx pgx.Tx, k payment.Key, lease time.Duration) (existing, bool, error) {
	var (
		op       string
		hash     []byte
		id       int64
		status   string
		response []byte
		leased   bool
	)
	err := tx.QueryRow(ctx, `SELECT operation, request_hash, resource_id, status, response, coalesce(locked_until > now(), false)
		FROM payment_idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND key = $3 FOR UPDATE`,
		k.TenantID, k.UserID, k.Key).Scan(&op, &hash, &id, &status, &response, &leased)
	if errors.Is(err, pgx.ErrNoRows) {
		return existing{}, false, nil
	}
	if err != nil {
		return existing{}, false, fmt.Errorf("idempotency key: %w", err)
	}
	switch {
	case op != k.Operation || !bytes.Equal(hash, k.Hash):
		return existing{}, true, payment.ErrIdempotencyMismatch
	case status == "completed":
		return existing{resourceID: id, replay: response}, true, nil
	case leased:
		return existing{}, true, payment.ErrIdempotencyInUse
	}
	if _, err := tx.Exec(ctx, `UPDATE payment_idempotency_keys SET locked_until = now() + $4 WHERE tenant_id = $1 AND user_id = $2 AND key = $3`,
		k.TenantID, k.UserID, k.Key, lease); err != nil {
		return existing{}, true, fmt.Errorf("idempotency key: %w", err)
	}
	return existing{resourceID: id}, true, nil
}

// insertKey claims k for resource id; false when another request claimed
// it first (its transaction has committed by the time this returns).
func insertKey(ctx context.Context, tx pgx.Tx, k payment.Key, id int64, lease time.Duration) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO payment_idempotency_keys (tenant_id, user_id, key, operation, request_hash, resource_id, locked_until)
		VALUES ($1, $2, $3, $4, $5, $6, now() + $7) ON CONFLICT DO NOTHING`, k.TenantID, k.UserID, k.Key, k.Operation, k.Hash, id, lease)
	if err != nil {
		return false, fmt.Errorf("idempotency key: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// completeKey stores the response snapshot under k.
func completeKey(ctx context.Context, tx pgx.Tx, k payment.Key, snapshot any) error {
	if k.Key == "" {
		return nil
	}
	b, err := json.Marshal(snapshot)
	if err != nil {
		return fmt.Errorf("idempotency key: snapshot: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE payment_idempotency_keys SET status = 'completed', response = $4, completed_at = now(), locked_until = NULL
		WHERE tenant_id = $1 AND user_id = $2 AND key = $3`, k.TenantID, k.UserID, k.Key, b); err != nil {
		return fmt.Errorf("idempotency key: %w", err)
	}
	return nil
}

// ReleaseKey implements payment.Store.
func (s *Store) ReleaseKey(ctx context.Context, k payment.Key) error {
	if _, err := s.pool.Exec(ctx, `UPDATE payment_idempotency_keys SET locked_until = now() WHERE tenant_id = $1 AND user_id = $2 AND key = $3 AND status = 'started'`,
		k.TenantID, k.UserID, k.Key); err != nil {
		return fmt.Errorf("idempotency key: %w", err)
	}
	return nil
}

// ClaimPayment implements payment.Store.
func (s *Store) ClaimPayment(ctx context.Context, k payment.Key, lease time.Duration, np payment.NewPayment, c payment.Caller) (payment.Claim, error) {
	var out payment.Claim
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ex, found, err := lockKey(ctx, tx, k, lease)
		if err != nil {
			return err
		}
		if !found {
			if np.Bill.ID == 0 {
				// A resumed request whose key was purged meanwhile.
				return payment.ErrIdempotencyInUse
			}
			var id int64
			if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('payments', 'id'))`).Scan(&id); err != nil {
				return fmt.Errorf("payment id: %w", err)
			}
			ok, err := insertKey(ctx, tx, k, id, lease)
			if err != nil {
				return err
			}
			if ok {
				return s.insertPayment(ctx, tx, id, np, c, &out)
			}
			// Another request claimed the key meanwhile (and committed).
			if ex, found, err = lockKey(ctx, tx, k, lease); err != nil {
				return err
			} else if !found {
				return payment.ErrIdempotencyInUse
			}
		}
		if ex.replay != nil {
			p, err := snapshotOf[payment.Payment](ex.replay)
			out.Replay = &p
			return err
		}
		p, err := loadPayment(ctx, tx, true, `p.id = $1`, ex.resourceID)
		out.Payment = p.Payment
		return err
	})
	if err != nil {
		return payment.Claim{}, fmt.Errorf("claim payment: %w", err)
	}
	return out, nil
}

func snapshotOf[T any](raw json.RawMessage) (T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("stored response: %w", err)
	}
	return v, nil
}

func (s *Store) insertPayment(ctx context.Context, tx pgx.Tx, id int64, np payment.NewPayment, c payment.Caller, out *payment.Claim) error {
	b := np.Bill
	var consumer, saved any
	if b.ConsumerUserID != 0 {
		consumer = b.ConsumerUserID
	}
	if np.SavedMethodID != 0 {
		saved = np.SavedMethodID
	}
	if _, err := tx.Exec(ctx, `INSERT INTO payments (id, tenant_id, bill_id, connection_id, consumer_user_id, payer_user_id, provider, method,
			amount, amount_minor, currency, saved_method_id, save_method, return_url)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		id, b.TenantID, b.ID, b.ConnectionID, consumer, np.PayerUserID, np.Provider, string(np.Method),
		np.Amount, np.AmountMinor, b.Currency, saved, np.SaveMethod, np.ReturnURL); err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	if err := s.writeAudit(ctx, tx, &c, b.TenantID, "payment.create", "payment", id, map[string]any{
		"bill_id": b.ID, "bill_number": b.Number, "amount": money(np.Amount), "currency": b.Currency, "method": string(np.Method), "provider": np.Provider}); err != nil {
		return err
	}
	p, err := loadPayment(ctx, tx, false, `p.id = $1`, id)
	out.Payment = p.Payment
	return err
}

// CompletePayment implements payment.Store.
func (s *Store) CompletePayment(ctx context.Context, k payment.Key, paymentID int64, o payment.Order) (payment.Payment, error) {
	var out payment.Payment
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := loadPayment(ctx, tx, true, `p.id = $1`, paymentID)
		if err != nil {
			return err
		}
		if o.ID != "" && p.ProviderOrderID == "" {
			action, err := json.Marshal(o.Action)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE payments SET provider_order_id = $2, next_action = $3,
					status = CASE WHEN status = 'created' THEN 'pending' ELSE status END, updated_at = now() WHERE id = $1`,
				p.ID, o.ID, action); err != nil {
				return fmt.Errorf("record order: %w", err)
			}
		}
		if o.Immediate != nil {
			if _, err := s.applyEvent(ctx, tx, payment.StateEvent(p.Provider, *o.Immediate, payment.SourceCreate), payment.SourceCreate); err != nil {
				return err
			}
		}
		done, err := loadPayment(ctx, tx, false, `p.id = $1`, p.ID)
		if err != nil {
			return err
		}
		out = done.Payment
		return completeKey(ctx, tx, k, out)
	})
	if err != nil {
		return payment.Payment{}, fmt.Errorf("complete payment %d: %w", paymentID, err)
	}
	return out, nil
}
