package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// StoredBill is an issued bill as stored.
type StoredBill struct {
	ID             int64              `json:"id"`
	TenantID       int64              `json:"tenant_id"`
	ConnectionID   int64              `json:"connection_id"`
	DemandID       int64              `json:"demand_id"`
	BillRunID      int64              `json:"bill_run_id,omitempty"`
	Number         string             `json:"number"`
	Service        string             `json:"service"`
	ConsumerCode   string             `json:"consumer_code"`
	ConsumerUserID int64              `json:"consumer_user_id,omitempty"`
	ConsumerName   string             `json:"consumer_name"`
	PropertyID     int64              `json:"property_id,omitempty"`
	PropertyLabel  string             `json:"property_label"`
	MeterSerial    string             `json:"meter_serial"`
	TariffPlan     string             `json:"tariff_plan"`
	TariffVersion  string             `json:"tariff_version"`
	Currency       string             `json:"currency"`
	Period         billing.Period     `json:"period"`
	IssueDate      billing.Date       `json:"issue_date"`
	DueDate        billing.Date       `json:"due_date"`
	IssuedAt       time.Time          `json:"issued_at"`
	PreviousReadWh *int64             `json:"previous_read_wh,omitempty"`
	CurrentReadWh  *int64             `json:"current_read_wh,omitempty"`
	ConsumptionWh  int64              `json:"consumption_wh"`
	Estimated      bool               `json:"estimated"`
	Totals         billing.BillTotals `json:"totals"`
	Status         string             `json:"status"`
	PaidAmount     decimal.Decimal    `json:"paid_amount"`
	CancelledAt    *time.Time         `json:"cancelled_at,omitempty"`
	CancelReason   string             `json:"cancel_reason,omitempty"`
	ReplacesBillID int64              `json:"replaces_bill_id,omitempty"`
	ReplacesNumber string             `json:"replaces_number,omitempty"`
	TenantName     string             `json:"-"`
	UsageHistory   []UsagePoint       `json:"usage_history,omitempty"`
	Lines          []billing.BillLine `json:"lines,omitempty"`
}

const billColumns = `b.id, b.tenant_id, b.connection_id, b.demand_id, coalesce(b.bill_run_id, 0), b.number, b.service, b.consumer_code,
	coalesce(b.consumer_user_id, 0), b.consumer_name, coalesce(b.property_id, 0), b.property_label, b.meter_serial, b.tariff_plan, b.tariff_version,
	b.currency, b.period_from::text, b.period_to::text, b.issue_date::text, b.due_date::text, b.issued_at, b.previous_read_wh, b.current_read_wh,
	b.consumption_wh, b.estimated, b.current_charges, b.arrears, b.advance, b.round_off, b.total, b.minimum_payable, b.status, b.paid_amount,
	b.cancelled_at, coalesce(b.cancel_reason, ''), coalesce(b.replaces_bill_id, 0), coalesce(rb.number, ''), t.name, b.usage_history, b.lines`

const billFrom = ` FROM bills b JOIN tenants t ON t.id = b.tenant_id LEFT JOIN bills rb ON rb.id = b.replaces_bill_id`

func scanBill(r pgx.CollectableRow) (StoredBill, error) {
	var b StoredBill
	var from, to, issue, due string
	var hist, lines []byte
	t := &b.Totals
	if err := r.Scan(&b.ID, &b.TenantID, &b.ConnectionID, &b.DemandID, &b.BillRunID, &b.Number, &b.Service, &b.ConsumerCode,
		&b.ConsumerUserID, &b.ConsumerName, &b.PropertyID, &b.PropertyLabel, &b.MeterSerial, &b.TariffPlan, &b.TariffVersion,
		&b.Currency, &from, &to, &issue, &due, &b.IssuedAt, &b.PreviousReadWh, &b.CurrentReadWh,
		&b.ConsumptionWh, &b.Estimated, &t.Current, &t.Arrears, &t.Advance, &t.RoundOff, &t.Total, &t.MinimumPayable, &b.Status, &b.PaidAmount,
		&b.CancelledAt, &b.CancelReason, &b.ReplacesBillID, &b.ReplacesNumber, &b.TenantName, &hist, &lines); err != nil {
		return b, err
	}
	var err error
	if b.Period, err = parsePeriod(from, to); err != nil {
		return b, err
	}
	if b.IssueDate, err = billing.ParseDate(issue); err != nil {
		return b, err
	}
	if b.DueDate, err = billing.ParseDate(due); err != nil {
		return b, err
	}
	if len(hist) > 0 {
		if err := json.Unmarshal(hist, &b.UsageHistory); err != nil {
			return b, fmt.Errorf("usage history: %w", err)
		}
	}
	var stored []lineJSON
	if err := json.Unmarshal(lines, &stored); err != nil {
		return b, fmt.Errorf("bill lines: %w", err)
	}
	b.Lines = make([]billing.BillLine, len(stored))
	for i, l := range stored {
		b.Lines[i] = l.line()
	}
	return b, nil
}

// BillFilter selects bills to list. A consumer sees only their own
// (ConsumerUserID set); staff see the tenant's.
type BillFilter struct {
	TenantID       int64
	ConsumerUserID int64        // 0: any consumer
	ConnectionID   int64        // 0: any
	Status         string       // "": any
	From, To       billing.Date // period_from within [From, To]; zero: unbounded
	BeforeID       int64        // keyset: bills with id < BeforeID; 0: newest
	Limit          int          // 1..200, default 50
}

// Bills lists bills newest first (without lines and history) and the
// BeforeID of the next page (0 when this is the last).
func (s *Store) Bills(ctx context.Context, f BillFilter) ([]StoredBill, int64, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	var from, to any
	if !f.From.IsZero() {
		from = f.From.String()
	}
	if !f.To.IsZero() {
		to = f.To.String()
	}
	rows, err := s.pool.Query(ctx, `SELECT `+billColumns+billFrom+`
		WHERE b.tenant_id = $1 AND ($2 = 0 OR b.consumer_user_id = $2) AND ($3 = 0 OR b.connection_id = $3) AND ($4 = '' OR b.status = $4)
		  AND ($5::date IS NULL OR b.period_from >= $5::date) AND ($6::date IS NULL OR b.period_from <= $6::date) AND ($7 = 0 OR b.id < $7)
		ORDER BY b.id DESC LIMIT $8`, f.TenantID, f.ConsumerUserID, f.ConnectionID, f.Status, from, to, f.BeforeID, f.Limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("list bills: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanBill)
	if err != nil {
		return nil, 0, fmt.Errorf("list bills: %w", err)
	}
	var next int64
	if len(list) > f.Limit {
		list = list[:f.Limit]
		next = list[len(list)-1].ID
	}
	for i := range list {
		list[i].UsageHistory, list[i].Lines = nil, nil
	}
	return list, next, nil
}

// Bill returns one bill with its lines. consumerUserID, when not 0,
// restricts it to that consumer's bills: another's bill is
// billing.ErrNotFound, as is a bill of another tenant.
func (s *Store) Bill(ctx context.Context, tenantID, consumerUserID, id int64) (StoredBill, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+billColumns+billFrom+` WHERE b.tenant_id = $1 AND b.id = $2 AND ($3 = 0 OR b.consumer_user_id = $3)`,
		tenantID, id, consumerUserID)
	if err != nil {
		return StoredBill{}, fmt.Errorf("bill %d: %w", id, err)
	}
	b, err := pgx.CollectExactlyOneRow(rows, scanBill)
	if err != nil {
		return StoredBill{}, fmt.Errorf("bill %d: %w", id, classify(err))
	}
	return b, nil
}

// CancelBill cancels an issued bill with a reason (the demand stays; a
// later run or rebill issues its replacement). A cancelled bill cannot be
// cancelled again (billing.ErrImmutable).
func (s *Store) CancelBill(ctx context.Context, tenantID, id int64, reason string, audit *AuditContext) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE bills SET status = 'cancelled', cancelled_at = now(), cancel_reason = $3, status_changed_at = now()
			WHERE tenant_id = $1 AND id = $2`, tenantID, id, reason)
		if err != nil {
			return classify(err)
		}
		if tag.RowsAffected() == 0 {
			return billing.ErrNotFound
		}
		if s.audit != nil && audit != nil {
			return s.audit.Write(ctx, tx, audit.entry(tenantID, "bill.cancel", "bill", fmt.Sprint(id), map[string]any{"reason": reason}))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cancel bill %d: %w", id, err)
	}
	return nil
}

// SealedAddress returns a property's sealed address (AAD
// "properties.address:<id>"), for a bill's PDF; the caller opens it.
func (s *Store) SealedAddress(ctx context.Context, tenantID, propertyID int64) ([]byte, error) {
	var ct []byte
	err := s.pool.QueryRow(ctx, `SELECT address_enc FROM properties WHERE tenant_id = $1 AND id = $2`, tenantID, propertyID).Scan(&ct)
	if err != nil {
		return nil, fmt.Errorf("property %d address: %w", propertyID, classify(err))
	}
	return ct, nil
}
