package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/payment"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// ApplyEvent implements payment.Store.
func (s *Store) ApplyEvent(ctx context.Context, ev payment.Event, source string) (payment.Outcome, error) {
	var out payment.Outcome
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = s.applyEvent(ctx, tx, ev, source)
		return err
	})
	if err != nil {
		return payment.Outcome{}, fmt.Errorf("%s event %s: %w", ev.Provider, ev.ID, err)
	}
	if out.Result == "anomaly" {
		s.log.Warn("payment event needs attention", "provider", ev.Provider, "event_id", ev.ID, "payment_id", out.PaymentID, "note", out.Note)
	}
	return out, nil
}

// applyEvent stores ev once and applies it, in tx.
func (s *Store) applyEvent(ctx context.Context, tx pgx.Tx, ev payment.Event, source string) (payment.Outcome, error) {
	out := payment.Outcome{EventID: ev.ID}
	var occurred any
	if !ev.OccurredAt.IsZero() {
		occurred = ev.OccurredAt
	}
	var eventRow int64
	err := tx.QueryRow(ctx, `INSERT INTO payment_events (provider, event_id, event_type, source, payload, occurred_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (provider, event_id) DO NOTHING RETURNING id`,
		ev.Provider, ev.ID, ev.Type, source, payment.MaskCardNumbers(ev.Payload), occurred).Scan(&eventRow)
	if errors.Is(err, pgx.ErrNoRows) {
		// Seen before: nothing changes.
		out.Result = "duplicate"
		var pid *int64
		var status *string
		if err := tx.QueryRow(ctx, `SELECT e.payment_id, p.status FROM payment_events e LEFT JOIN payments p ON p.id = e.payment_id
			WHERE e.provider = $1 AND e.event_id = $2`, ev.Provider, ev.ID).Scan(&pid, &status); err != nil {
			return out, fmt.Errorf("duplicate event: %w", err)
		}
		if pid != nil {
			out.PaymentID = *pid
		}
		if status != nil {
			out.Status = payment.Status(*status)
		}
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("store event: %w", err)
	}
	var refundID int64
	switch ev.Kind {
	case payment.EventRefundPending, payment.EventRefundProcessed, payment.EventRefundFailed:
		refundID, err = s.applyRefundEvent(ctx, tx, ev, &out)
	case payment.EventIgnored:
		out.Result, out.Note = "ignored", "not an event meterd acts on"
		var p row
		if ev.OrderID != "" {
			if p, err = loadPayment(ctx, tx, false, `p.provider = $1 AND p.provider_order_id = $2`, ev.Provider, ev.OrderID); err == nil {
				out.PaymentID, out.Status = p.ID, p.Status
			} else if errors.Is(err, payment.ErrNotFound) {
				err = nil
			}
		}
	default:
		err = s.applyPaymentEvent(ctx, tx, ev, &out)
	}
	if err != nil {
		return out, err
	}
	var tenant, pay, rf any
	if out.PaymentID != 0 {
		pay = out.PaymentID
		if err := tx.QueryRow(ctx, `SELECT tenant_id FROM payments WHERE id = $1`, out.PaymentID).Scan(&tenant); err != nil {
			return out, err
		}
	}
	if refundID != 0 {
		rf = refundID
	}
	if _, err := tx.Exec(ctx, `UPDATE payment_events SET tenant_id = $2, payment_id = $3, refund_id = $4, outcome = $5, note = $6 WHERE id = $1`,
		eventRow, tenant, pay, rf, out.Result, out.Note); err != nil {
		return out, fmt.Errorf("event outcome: %w", err)
	}
	return out, nil
}

// applyPaymentEvent moves the payment ev is about.
func (s *Store) applyPaymentEvent(ctx context.Context, tx pgx.Tx, ev payment.Event, out *payment.Outcome) error {
	var p row
	var err error
	switch {
	case ev.LocalPaymentID != 0:
		p, err = loadPayment(ctx, tx, true, `p.id = $1 AND p.provider = $2`, ev.LocalPaymentID, ev.Provider)
	case ev.OrderID != "":
		p, err = loadPayment(ctx, tx, true, `p.provider = $1 AND p.provider_order_id = $2`, ev.Provider, ev.OrderID)
	default:
		err = payment.ErrNotFound
	}
	if errors.Is(err, payment.ErrNotFound) {
		out.Result, out.Note = "unmatched", "no payment of meterd has this order"
		return nil
	}
	if err != nil {
		return err
	}
	out.PaymentID, out.Status = p.ID, p.Status
	next, moves := payment.Transition(p.Status, ev.Kind)
	switch {
	case ev.Kind == payment.EventCaptured && p.Status.Settled():
		if ev.PaymentID != "" && p.ProviderPaymentID != "" && ev.PaymentID != p.ProviderPaymentID {
			out.Result, out.Note = "anomaly", fmt.Sprintf("a second capture (%s) on an order captured by %s: refund one of them at the provider", ev.PaymentID, p.ProviderPaymentID)
			return nil
		}
		out.Result, out.Note = "ignored", "already captured"
		return nil
	case !moves:
		out.Result, out.Note = "ignored", fmt.Sprintf("%s does not change a %s payment", ev.Kind, p.Status)
		return nil
	case next == payment.StatusCaptured:
		if err := s.capture(ctx, tx, p, ev, out); err != nil {
			return err
		}
		out.Result, out.Status = "applied", payment.StatusCaptured
		return nil
	}
	var code, reason string
	if next == payment.StatusFailed || next == payment.StatusExpired {
		code, reason = ev.FailureCode, ev.FailureReason
		if code == "" {
			code = string(next)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE payments SET status = $2, provider_payment_id = coalesce(nullif($3, ''), provider_payment_id),
			failure_code = $4, failure_reason = $5, instrument_brand = coalesce(nullif($6, ''), instrument_brand),
			instrument_last4 = coalesce(nullif($7, ''), instrument_last4), updated_at = now(), checked_at = now() WHERE id = $1`,
		p.ID, string(next), ev.PaymentID, truncate(code, 100), truncate(reason, 500), truncate(ev.Instrument.Brand, 40), last4(ev.Instrument.Last4)); err != nil {
		return fmt.Errorf("payment %d → %s: %w", p.ID, next, err)
	}
	out.Result, out.Status = "applied", next
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// last4 keeps a last-four value only if it is four digits (never more of a
// card number).
func last4(s string) string {
	if len(s) == 4 && strings.Trim(s, "0123456789") == "" {
		return s
	}
	return ""
}

// capture posts the money, issues the receipt, saves the method if asked
// and enqueues payment.succeeded, all in tx.
func (s *Store) capture(ctx context.Context, tx pgx.Tx, p row, ev payment.Event, out *payment.Outcome) error {
	amount := p.Amount
	if ev.AmountMinor > 0 {
		if ev.Currency != "" && !strings.EqualFold(ev.Currency, p.Currency) {
			return fmt.Errorf("payment %d: captured in %s, not %s", p.ID, ev.Currency, p.Currency)
		}
		amount = payment.FromMinor(ev.AmountMinor, p.Currency)
	}
	at := ev.OccurredAt
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	ref := p.Reference()
	posting, err := s.ledger.PostCollection(ctx, tx, billingpg.Payment{TenantID: p.TenantID, BillID: p.BillID, Reference: ref, Amount: amount, ReceivedAt: at})
	if err != nil {
		return fmt.Errorf("payment %d: post collection: %w", p.ID, err)
	}
	// Receipt number: gap-free per tenant and financial year of the
	// capture in the tenant's zone.
	var tz, consumerName string
	if err := tx.QueryRow(ctx, `SELECT t.time_zone, b.consumer_name FROM tenants t JOIN bills b ON b.tenant_id = t.id WHERE b.id = $1`, p.BillID).Scan(&tz, &consumerName); err != nil {
		return fmt.Errorf("payment %d: tenant: %w", p.ID, err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return fmt.Errorf("payment %d: time zone %q: %w", p.ID, tz, err)
	}
	fy := billing.FinancialYearOf(billing.DateOf(at, loc))
	var seq int
	if err := tx.QueryRow(ctx, `INSERT INTO receipt_number_counters (tenant_id, financial_year, last_seq) VALUES ($1, $2, 1)
		ON CONFLICT (tenant_id, financial_year) DO UPDATE SET last_seq = receipt_number_counters.last_seq + 1 RETURNING last_seq`,
		p.TenantID, int(fy)).Scan(&seq); err != nil {
		return fmt.Errorf("receipt number: %w", err)
	}
	number := fmt.Sprintf("RCPT/%s/%06d", fy, seq)
	alloc, err := allocation(ctx, tx, posting)
	if err != nil {
		return err
	}
	bills := make([]payment.BillState, len(posting.Bills))
	for i, b := range posting.Bills {
		bills[i] = payment.BillState{ID: b.ID, Number: b.Number, Status: b.Status, PaidAmount: b.PaidAmount, Total: b.Total}
	}
	allocJSON, err := json.Marshal(alloc)
	if err != nil {
		return err
	}
	billsJSON, err := json.Marshal(bills)
	if err != nil {
		return err
	}
	instrument := ev.Instrument
	if instrument.Brand == "" && instrument.Last4 == "" {
		instrument.Brand, instrument.Last4 = p.Instrument.Brand, p.Instrument.Last4
	}
	instrument.Last4 = last4(instrument.Last4)
	if _, err := tx.Exec(ctx, `INSERT INTO receipts (tenant_id, payment_id, number, financial_year, seq, bill_id, bill_number, connection_id, consumer_code,
			consumer_name, amount, currency, method, provider, provider_payment_id, instrument, paid_at, allocation, advance, bills)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		p.TenantID, p.ID, number, int(fy), seq, p.BillID, p.BillNumber, posting.ConnectionID, p.ConsumerCode, consumerName, amount, p.Currency,
		string(p.Method), p.Provider, ev.PaymentID, instrument.String(), at, allocJSON, posting.Advance, billsJSON); err != nil {
		return fmt.Errorf("payment %d: receipt: %w", p.ID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE payments SET status = 'captured', captured_at = $2, captured_amount = $3,
			provider_payment_id = coalesce(nullif($4, ''), provider_payment_id), instrument_brand = $5, instrument_last4 = nullif($6, ''),
			failure_code = '', failure_reason = '', posting_reference = $7, updated_at = now(), checked_at = now() WHERE id = $1`,
		p.ID, at, amount, ev.PaymentID, truncate(instrument.Brand, 40), instrument.Last4, ref); err != nil {
		return fmt.Errorf("payment %d: captured: %w", p.ID, err)
	}
	if p.SaveMethod && ev.Instrument.Token != "" && s.sealer != nil {
		if err := s.saveMethod(ctx, tx, p.TenantID, p.PayerUserID, payment.NewMethod{Provider: p.Provider, Method: p.Method, Token: ev.Instrument.Token,
			Brand: truncate(instrument.Brand, 40), Last4: instrument.Last4}); err != nil {
			return err
		}
	}
	if s.outbox != nil {
		user := p.ConsumerUserID
		if user == 0 {
			user = p.PayerUserID
		}
		msg := billingpg.Notification{TenantID: p.TenantID, UserID: user, Event: EventPaymentSucceeded, DedupeKey: EventPaymentSucceeded + ":" + strconv.FormatInt(p.ID, 10),
			Payload: map[string]any{"payment_id": p.ID, "receipt_number": number, "bill_id": p.BillID, "bill_number": p.BillNumber,
				"amount": money(amount), "currency": p.Currency, "method": string(p.Method), "paid_at": at.Format(time.RFC3339)}}
		if err := s.outbox.Enqueue(ctx, tx, []billingpg.Notification{msg}); err != nil {
			return fmt.Errorf("payment %d: notification: %w", p.ID, err)
		}
	}
	out.Note = "receipt " + number
	return nil
}

// allocation describes a posting's collections with their demands'
// periods.
func allocation(ctx context.Context, tx pgx.Tx, posting billingpg.Posting) ([]payment.Allocation, error) {
	ids := make([]int64, 0, len(posting.Collections))
	for _, c := range posting.Collections {
		ids = append(ids, c.DemandID)
	}
	periods := map[int64][2]string{}
	rows, err := tx.Query(ctx, `SELECT id, period_from::text, period_to::text FROM demands WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("allocation: %w", err)
	}
	var id int64
	var from, to string
	if _, err := pgx.ForEachRow(rows, []any{&id, &from, &to}, func() error {
		periods[id] = [2]string{from, to}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("allocation: %w", err)
	}
	out := make([]payment.Allocation, 0, len(posting.Collections))
	// Credits the posting absorbed (a negative round-off, an advance) are
	// listed too, negative, so the lines add up to the amount paid less the
	// advance.
	for _, c := range posting.Collections {
		pr := periods[c.DemandID]
		out = append(out, payment.Allocation{DemandID: c.DemandID, DemandDetailID: c.DetailID, PeriodFrom: pr[0], PeriodTo: pr[1], TaxHead: string(c.Head), Amount: c.Amount})
	}
	return out, nil
}

// refundRef parses meterd's refund reference "meterd-refund-<id>".
func refundRef(ref string) int64 {
	id, err := strconv.ParseInt(strings.TrimPrefix(ref, "meterd-refund-"), 10, 64)
	if err != nil || !strings.HasPrefix(ref, "meterd-refund-") {
		return 0
	}
	return id
}

// applyRefundEvent applies a refund event to the refund it names (by
// meterd's reference, else the provider's refund id).
func (s *Store) applyRefundEvent(ctx context.Context, tx pgx.Tx, ev payment.Event, out *payment.Outcome) (int64, error) {
	if ev.Refund == nil {
		out.Result, out.Note = "ignored", "refund event without a refund"
		return 0, nil
	}
	var refundID, paymentID int64
	err := tx.QueryRow(ctx, `SELECT r.id, r.payment_id FROM payment_refunds r JOIN payments p ON p.id = r.payment_id
		WHERE p.provider = $1 AND (r.id = $2 OR (r.provider_refund_id = $3 AND $3 <> ''))
		ORDER BY (r.id = $2) DESC LIMIT 1`, ev.Provider, refundRef(ev.Refund.Reference), ev.Refund.ID).Scan(&refundID, &paymentID)
	if errors.Is(err, pgx.ErrNoRows) {
		// Not a refund meterd asked for: made at the provider's dashboard.
		var p row
		var perr error
		switch {
		case ev.OrderID != "":
			p, perr = loadPayment(ctx, tx, false, `p.provider = $1 AND p.provider_order_id = $2`, ev.Provider, ev.OrderID)
		case ev.PaymentID != "":
			p, perr = loadPayment(ctx, tx, false, `p.provider = $1 AND p.provider_payment_id = $2`, ev.Provider, ev.PaymentID)
		default:
			perr = payment.ErrNotFound
		}
		if errors.Is(perr, payment.ErrNotFound) {
			out.Result, out.Note = "unmatched", "no refund or payment of meterd"
			return 0, nil
		}
		if perr != nil {
			return 0, perr
		}
		out.PaymentID, out.Status = p.ID, p.Status
		out.Result, out.Note = "anomaly", fmt.Sprintf("refund %s was not made through meterd: the ledger does not show it; refund through meterd or record it", ev.Refund.ID)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("find refund: %w", err)
	}
	p, err := loadPayment(ctx, tx, true, `p.id = $1`, paymentID)
	if err != nil {
		return 0, err
	}
	r, err := loadRefund(ctx, tx, true, refundID)
	if err != nil {
		return 0, err
	}
	changed, err := s.applyRefundState(ctx, tx, p, r, *ev.Refund)
	if err != nil {
		return 0, err
	}
	out.PaymentID = p.ID
	var status string
	if err := tx.QueryRow(ctx, `SELECT status FROM payments WHERE id = $1`, p.ID).Scan(&status); err != nil {
		return 0, err
	}
	out.Status = payment.Status(status)
	if changed {
		out.Result = "applied"
	} else {
		out.Result, out.Note = "ignored", "refund already "+string(r.Status)
	}
	return refundID, nil
}

// applyRefundState moves refund r of payment p (both locked) to what the
// provider reports: a processed refund reverses the payment's ledger
// posting and re-posts what remains captured; a processed or failed refund
// is final. It reports whether anything changed.
func (s *Store) applyRefundState(ctx context.Context, tx pgx.Tx, p row, r payment.Refund, st payment.RefundState) (bool, error) {
	if r.Status == payment.RefundProcessed || r.Status == payment.RefundFailed {
		return false, nil
	}
	switch st.Status {
	case payment.RefundProcessed:
		rev := fmt.Sprintf("refund:%d", r.ID)
		if _, err := s.ledger.ReverseCollection(ctx, tx, p.TenantID, p.postingRef, rev); err != nil {
			return false, fmt.Errorf("refund %d: reverse %s: %w", r.ID, p.postingRef, err)
		}
		refunded := p.RefundedAmount.Add(r.Amount)
		remaining := p.CapturedAmount.Sub(refunded)
		ref := p.postingRef
		if remaining.IsPositive() {
			ref = fmt.Sprintf("payment:%d:after-refund:%d", p.ID, r.ID)
			at := time.Now()
			if p.CapturedAt != nil {
				at = *p.CapturedAt
			}
			if _, err := s.ledger.PostCollection(ctx, tx, billingpg.Payment{TenantID: p.TenantID, BillID: p.BillID, Reference: ref, Amount: remaining, ReceivedAt: at}); err != nil {
				return false, fmt.Errorf("refund %d: re-post %s: %w", r.ID, remaining, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE payments SET refunded_amount = $2, posting_reference = $3,
				status = CASE WHEN $4 THEN 'refunded' ELSE status END, updated_at = now() WHERE id = $1`,
			p.ID, refunded, ref, !remaining.IsPositive()); err != nil {
			return false, fmt.Errorf("refund %d: payment: %w", r.ID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE payment_refunds SET status = 'processed', processed_at = now(), reversal_reference = $2,
				provider_refund_id = coalesce(nullif($3, ''), provider_refund_id), updated_at = now() WHERE id = $1`, r.ID, rev, st.ID); err != nil {
			return false, fmt.Errorf("refund %d: %w", r.ID, err)
		}
	case payment.RefundFailed:
		reason := st.FailureReason
		if reason == "" {
			reason = "the refund failed"
		}
		if _, err := tx.Exec(ctx, `UPDATE payment_refunds SET status = 'failed', failure_reason = $2,
				provider_refund_id = coalesce(nullif($3, ''), provider_refund_id), updated_at = now() WHERE id = $1`, r.ID, truncate(reason, 500), st.ID); err != nil {
			return false, fmt.Errorf("refund %d: %w", r.ID, err)
		}
	default:
		if r.Status == payment.RefundPending && (st.ID == "" || st.ID == r.ProviderRefundID) {
			return false, nil
		}
		if _, err := tx.Exec(ctx, `UPDATE payment_refunds SET status = 'pending', provider_refund_id = coalesce(nullif($2, ''), provider_refund_id),
				updated_at = now() WHERE id = $1`, r.ID, st.ID); err != nil {
			return false, fmt.Errorf("refund %d: %w", r.ID, err)
		}
	}
	return true, nil
}
