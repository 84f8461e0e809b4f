package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/payment"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// EventPaymentSucceeded is the notification enqueued when a payment is
// captured, to the bill's consumer: payload {payment_id, receipt_number,
// bill_id, bill_number, amount, currency, method, paid_at}, as the
// notifications component's catalog names it.
const EventPaymentSucceeded = "payment.succeeded"

// Outbox writes notifications in the caller's transaction (cmd implements
// it with the API's notification outbox, as for billing).
type Outbox interface {
	Enqueue(ctx context.Context, tx pgx.Tx, msgs []billingpg.Notification) error
}

// Auditor writes audit entries in the caller's transaction (cmd
// implements it with the API's audit log).
type Auditor interface {
	Write(ctx context.Context, tx pgx.Tx, e billingpg.AuditEntry) error
}

// Deps are the store's collaborators. Ledger is required; Sealer is
// required to save payment methods; a nil Outbox or Auditor writes
// nothing.
type Deps struct {
	Ledger *billingpg.Store
	Outbox Outbox
	Audit  Auditor
	Sealer payment.Sealer
	Logger *slog.Logger
}

// Store is the payments store.
type Store struct {
	pool   *pgxpool.Pool
	ledger *billingpg.Store
	outbox Outbox
	audit  Auditor
	sealer payment.Sealer
	log    *slog.Logger
}

var _ payment.Store = (*Store)(nil)

// New returns the store on pool.
func New(pool *pgxpool.Pool, d Deps) (*Store, error) {
	if d.Ledger == nil {
		return nil, errors.New("payment store: the billing ledger is required")
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{pool: pool, ledger: d.Ledger, outbox: d.Outbox, audit: d.Audit, sealer: d.Sealer, log: log}, nil
}

// queryer is a transaction or the pool.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// notFound translates pgx.ErrNoRows into target, keeping other errors.
func notFound(err, target error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return target
	}
	return err
}

func (s *Store) writeAudit(ctx context.Context, tx pgx.Tx, c *payment.Caller, tenantID int64, action, entityType string, entityID int64, after map[string]any) error {
	if s.audit == nil || c == nil {
		return nil
	}
	return s.audit.Write(ctx, tx, billingpg.AuditEntry{TenantID: tenantID, ActorUserID: c.UserID, ActorRole: c.Role, Action: action,
		EntityType: entityType, EntityID: fmt.Sprint(entityID), After: after, Address: c.Address, RequestID: c.RequestID})
}

// --- payments

const payCols = `p.id, p.tenant_id, p.bill_id, b.number, p.connection_id, b.consumer_code, coalesce(p.consumer_user_id, 0), p.payer_user_id,
	p.provider, p.method, p.amount, p.amount_minor, p.currency, p.status, coalesce(p.provider_order_id, ''), coalesce(p.provider_payment_id, ''),
	p.next_action, p.return_url, coalesce(p.saved_method_id, 0), p.save_method, p.instrument_brand, coalesce(p.instrument_last4, ''),
	p.failure_code, p.failure_reason, coalesce(p.captured_amount, 0), p.refunded_amount, coalesce(r.number, ''), p.captured_at,
	p.created_at, p.updated_at, coalesce(p.posting_reference, '')`

const payFrom = ` FROM payments p JOIN bills b ON b.id = p.bill_id LEFT JOIN receipts r ON r.payment_id = p.id`

// row is a payment with what only the store needs.
type row struct {
	payment.Payment
	postingRef string
}

func scanPayment(r pgx.CollectableRow) (row, error) {
	var p row
	var action []byte
	var method, status string
	err := r.Scan(&p.ID, &p.TenantID, &p.BillID, &p.BillNumber, &p.ConnectionID, &p.ConsumerCode, &p.ConsumerUserID, &p.PayerUserID,
		&p.Provider, &method, &p.Amount, &p.AmountMinor, &p.Currency, &status, &p.ProviderOrderID, &p.ProviderPaymentID,
		&action, &p.ReturnURL, &p.SavedMethodID, &p.SaveMethod, &p.Instrument.Brand, &p.Instrument.Last4,
		&p.FailureCode, &p.FailureReason, &p.CapturedAmount, &p.RefundedAmount, &p.ReceiptNumber, &p.CapturedAt,
		&p.CreatedAt, &p.UpdatedAt, &p.postingRef)
	if err != nil {
		return p, err
	}
	p.Method, p.Status = payment.Method(method), payment.Status(status)
	if len(action) > 0 {
		var a payment.NextAction
		if err := json.Unmarshal(action, &a); err != nil {
			return p, fmt.Errorf("next action: %w", err)
		}
		p.NextAction = &a
	}
	if p.CapturedAt != nil {
		t := p.CapturedAt.UTC()
		p.CapturedAt = &t
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, nil
}

// loadPayment reads one payment; lock takes its row lock (in a
// transaction).
func loadPayment(ctx context.Context, q queryer, lock bool, where string, args ...any) (row, error) {
	sql := `SELECT ` + payCols + payFrom + ` WHERE ` + where
	if lock {
		sql += ` FOR UPDATE OF p`
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return row{}, fmt.Errorf("payment: %w", err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanPayment)
	if err != nil {
		return row{}, notFound(err, payment.ErrNotFound)
	}
	return p, nil
}

// PayableBill implements payment.Store.
func (s *Store) PayableBill(ctx context.Context, tenantID, ownerUserID, billID int64) (payment.Bill, error) {
	var b payment.Bill
	err := s.pool.QueryRow(ctx, `SELECT b.id, b.tenant_id, t.code, b.connection_id, coalesce(b.consumer_user_id, 0), b.number, b.consumer_code,
			b.currency, b.status, b.total, b.minimum_payable,
			(SELECT coalesce(sum(dd.tax_amount - dd.collection_amount), 0) FROM demands d JOIN demand_details dd ON dd.demand_id = d.id
			 WHERE d.connection_id = b.connection_id AND d.period_from <= b.period_from)
		FROM bills b JOIN tenants t ON t.id = b.tenant_id
		WHERE b.tenant_id = $1 AND b.id = $2 AND ($3 = 0 OR b.consumer_user_id = $3)`, tenantID, billID, ownerUserID).Scan(
		&b.ID, &b.TenantID, &b.TenantCode, &b.ConnectionID, &b.ConsumerUserID, &b.Number, &b.ConsumerCode,
		&b.Currency, &b.Status, &b.Total, &b.MinimumPayable, &b.Outstanding)
	if err != nil {
		return b, fmt.Errorf("bill %d: %w", billID, notFound(err, payment.ErrBillNotFound))
	}
	return b, nil
}

// Payment implements payment.Store.
func (s *Store) Payment(ctx context.Context, tenantID, ownerUserID, id int64) (payment.Payment, error) {
	p, err := loadPayment(ctx, s.pool, false, `p.tenant_id = $1 AND p.id = $2 AND ($3 = 0 OR p.consumer_user_id = $3)`, tenantID, id, ownerUserID)
	if err != nil {
		return payment.Payment{}, fmt.Errorf("payment %d: %w", id, err)
	}
	return p.Payment, nil
}

// Payments implements payment.Store.
func (s *Store) Payments(ctx context.Context, f payment.Filter) ([]payment.Payment, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+payCols+payFrom+`
		WHERE p.tenant_id = $1 AND ($2 = 0 OR p.consumer_user_id = $2) AND ($3 = 0 OR p.bill_id = $3) AND ($4 = '' OR p.status = $4)
		  AND ($5 = 0 OR p.id < $5)
		ORDER BY p.id DESC LIMIT $6`, f.TenantID, f.OwnerUserID, f.BillID, string(f.Status), f.BeforeID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanPayment)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	out := make([]payment.Payment, len(list))
	for i := range list {
		out[i] = list[i].Payment
	}
	return out, nil
}

// OpenPayments implements payment.Store.
func (s *Store) OpenPayments(ctx context.Context, tenantID int64, olderThan time.Time, limit int) ([]payment.Payment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+payCols+payFrom+`
		WHERE p.status IN ('created', 'pending', 'authorized') AND p.created_at < $1 AND (p.checked_at IS NULL OR p.checked_at < $1)
		  AND ($2 = 0 OR p.tenant_id = $2)
		ORDER BY p.created_at LIMIT $3`, olderThan, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("open payments: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanPayment)
	if err != nil {
		return nil, fmt.Errorf("open payments: %w", err)
	}
	out := make([]payment.Payment, len(list))
	for i := range list {
		out[i] = list[i].Payment
	}
	return out, nil
}

// MarkChecked implements payment.Store.
func (s *Store) MarkChecked(ctx context.Context, paymentID int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE payments SET checked_at = now() WHERE id = $1`, paymentID); err != nil {
		return fmt.Errorf("payment %d: mark checked: %w", paymentID, err)
	}
	return nil
}

// --- receipts

// Receipt implements payment.Store.
func (s *Store) Receipt(ctx context.Context, tenantID, ownerUserID, paymentID int64) (payment.Receipt, error) {
	var r payment.Receipt
	var method string
	var fy int
	var alloc, bills []byte
	err := s.pool.QueryRow(ctx, `SELECT r.id, r.tenant_id, t.name, t.time_zone, r.number, r.financial_year, r.payment_id, r.bill_id, r.bill_number,
			r.connection_id, r.consumer_code, r.consumer_name, coalesce(p.consumer_user_id, 0), r.amount, r.currency, r.method, r.provider,
			r.provider_payment_id, r.instrument, r.paid_at, r.issued_at, r.allocation, r.advance, r.bills
		FROM receipts r JOIN payments p ON p.id = r.payment_id JOIN tenants t ON t.id = r.tenant_id
		WHERE r.tenant_id = $1 AND r.payment_id = $2 AND ($3 = 0 OR p.consumer_user_id = $3)`, tenantID, paymentID, ownerUserID).Scan(
		&r.ID, &r.TenantID, &r.TenantName, &r.TimeZone, &r.Number, &fy, &r.PaymentID, &r.BillID, &r.BillNumber,
		&r.ConnectionID, &r.ConsumerCode, &r.ConsumerName, &r.ConsumerUserID, &r.Amount, &r.Currency, &method, &r.Provider,
		&r.ProviderPaymentID, &r.Instrument, &r.PaidAt, &r.IssuedAt, &alloc, &r.Advance, &bills)
	if err != nil {
		return r, fmt.Errorf("receipt of payment %d: %w", paymentID, notFound(err, payment.ErrNotFound))
	}
	r.Method, r.FinancialYear = payment.Method(method), billing.FinancialYear(fy).String()
	r.PaidAt, r.IssuedAt = r.PaidAt.UTC(), r.IssuedAt.UTC()
	if err := json.Unmarshal(alloc, &r.Allocation); err != nil {
		return r, fmt.Errorf("receipt %s: allocation: %w", r.Number, err)
	}
	if err := json.Unmarshal(bills, &r.Bills); err != nil {
		return r, fmt.Errorf("receipt %s: bills: %w", r.Number, err)
	}
	return r, nil
}

// PurgeKeys implements payment.Store.
func (s *Store) PurgeKeys(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM payment_idempotency_keys WHERE created_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// money is an amount as payloads carry it.
func money(d decimal.Decimal) string { return d.StringFixed(2) }
