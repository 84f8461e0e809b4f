package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/municipal"
)

// FeeRequest approves the one-time fees of a water or sewerage
// connection's application.
type FeeRequest struct {
	TenantID     int64
	ConnectionID int64
	// ApplicationNo is the fee demand's consumer code; "" keeps the
	// existing demand's, or makes "<consumer code>/APP".
	ApplicationNo string
	Now           time.Time // zero: time.Now()
	Audit         *AuditContext
}

// FeeResult is the application's fee demand after the request.
type FeeResult struct {
	Created     bool // the fee demand was created now
	Changed     bool // details were appended (created or recalculated)
	Version     string
	Calculation municipal.Calculation
	Appended    []billing.DemandDetail
	Demand      ConnectionDemand
	BillID      int64 // the live bill presenting the demand
	BillNumber  string
}

// IssueFeeDemand creates, or recalculates, the one-time fee demand of a
// connection's application when an official approves it, and issues its
// bill, in one transaction: fees estimated under the connection's plan in
// force today (municipal.FeeEstimates), the demand as municipal.FeeDemand
// makes it (application number as consumer code, the policy's period, a
// real due date, the whole total payable at once), its details, a bill
// with the next gap-free number and a bill.issued notification to the
// owner, audited as fee_demand.issue.
//
// Approving again recalculates: only the differences are appended (fees
// that no longer apply reversed, TV10b) and, when anything changed, the
// live bill is cancelled and a new one replaces it; when nothing changed
// nothing is written.
func (s *Store) IssueFeeDemand(ctx context.Context, r FeeRequest) (FeeResult, error) {
	if r.Now.IsZero() {
		r.Now = time.Now()
	}
	var res FeeResult
	var msgs []Notification
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := municipalConnection(ctx, tx, r.TenantID, 0, r.ConnectionID, true)
		if err != nil {
			return err
		}
		svc, _ := municipal.ForService(c.Service)
		code, loc, err := tenantZone(ctx, tx, r.TenantID)
		if err != nil {
			return err
		}
		pol := MunicipalPolicy(loc)
		today := billing.DateOf(r.Now, loc)
		plans, err := municipalPlans(ctx, tx, r.TenantID, c.Service)
		if err != nil {
			return err
		}
		v, err := masterVersion(plans, c.Service, c.TariffPlan, today, "tariff_plan")
		if err != nil {
			return err
		}
		res.Version = v.Version
		if res.Calculation, err = municipal.FeeEstimates(svc, c.Connection, c.Property, v.Masters, pol); err != nil {
			return err
		}
		var existingID int64
		err = tx.QueryRow(ctx, `SELECT id FROM demands WHERE connection_id = $1 AND kind = 'fee'`, c.ID).Scan(&existingID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var (
			demandID int64
			period   billing.Period
			due      billing.Date
			details  []billing.DemandDetail
			cancel   int64
		)
		if existingID == 0 {
			appNo := r.ApplicationNo
			if appNo == "" {
				appNo = c.ConsumerCode + "/APP"
			}
			c.Connection.ApplicationNo = appNo
			fd := municipal.FeeDemand(svc, c.Connection, res.Calculation, r.Now, pol)
			period = billing.Period{From: billing.DateOf(fd.From, loc), To: billing.DateOf(fd.To, loc)}
			due = billing.DateOf(fd.Due, loc)
			if err := tx.QueryRow(ctx, `INSERT INTO demands (tenant_id, connection_id, service, kind, consumer_code, period_from, period_to, due_date, tariff_plan)
				VALUES ($1, $2, $3, 'fee', $4, $5, $6, $7, $8) RETURNING id`,
				r.TenantID, c.ID, c.Service, appNo, period.From.String(), period.To.String(), due.String(), c.TariffPlan).Scan(&demandID); err != nil {
				return classify(err)
			}
			res.Created, res.Appended = true, fd.Details
			details = fd.Details
		} else {
			all, err := queryDemands(ctx, tx, `d.id = $1`, 1, existingID)
			if err != nil {
				return err
			}
			ex := all[c.ID][0]
			demandID, period, due, cancel = ex.ID, ex.Period, ex.Due, ex.LiveBillID
			res.Appended = municipal.Recalculate(ex.InZone(loc, svc.Advance), res.Calculation, svc.FeeHeads(), svc.FeeRoundOff, pol)
			details = append(append([]billing.DemandDetail(nil), ex.Demand.Details...), res.Appended...)
			if len(res.Appended) == 0 && ex.LiveBillID != 0 {
				res.Demand, err = s.connectionDemand(ctx, tx, demandID)
				res.BillID = ex.LiveBillID
				if err == nil {
					err = tx.QueryRow(ctx, `SELECT number FROM bills WHERE id = $1`, ex.LiveBillID).Scan(&res.BillNumber)
				}
				return err
			}
		}
		source := SourceCalculation
		if !res.Created {
			source = SourceRecalculation
		}
		rows := make([]detailRow, len(res.Appended))
		for i, d := range res.Appended {
			rows[i] = detailRow{demand: demandID, head: d.Head, category: svc.Category(d.Head), amount: d.TaxAmount, source: source}
		}
		if _, err := insertDetails(ctx, tx, rows); err != nil {
			return err
		}
		res.Changed = len(rows) > 0
		if res.Appended == nil {
			res.Appended = []billing.DemandDetail{}
		}

		// The bill: the fee demand alone (fees are not arrears of periodic
		// bills, nor the other way round), payable in full.
		current := billing.Demand{Details: details}
		lines, totals, err := billing.ComposeBill(current, nil, svc.Lines(details, svc.Advance),
			billing.BillHeads{Advance: svc.Advance, RoundOff: svc.FeeRoundOff}, decimal.NewFromInt(100), 2)
		if err != nil {
			return err
		}
		if cancel != 0 {
			if _, err := tx.Exec(ctx, `UPDATE bills SET status = 'cancelled', cancelled_at = now(), cancel_reason = $2, status_changed_at = now()
				WHERE id = $1 AND status <> 'cancelled'`, cancel, "one-time fees recalculated"); err != nil {
				return fmt.Errorf("cancel bill %d: %w", cancel, classify(err))
			}
		}
		b := singleBill{TenantID: r.TenantID, TenantCode: code, ConnectionID: c.ID, DemandID: demandID, Service: c.Service, Plan: c.TariffPlan,
			TariffVersion: v.Version, Period: period, IssueDate: today, DueDate: due, Lines: lines, Totals: totals, ReplacesBillID: cancel}
		if res.BillID, res.BillNumber, msgs, err = insertBill(ctx, tx, b); err != nil {
			return err
		}
		if s.outbox != nil && len(msgs) > 0 {
			if err := s.outbox.Enqueue(ctx, tx, msgs); err != nil {
				return fmt.Errorf("bill notification: %w", err)
			}
		}
		if res.Demand, err = s.connectionDemand(ctx, tx, demandID); err != nil {
			return err
		}
		if s.audit != nil && r.Audit != nil {
			return s.audit.Write(ctx, tx, r.Audit.entry(r.TenantID, "fee_demand.issue", "demand", fmt.Sprint(demandID), map[string]any{
				"connection_id": c.ID, "application_no": res.Demand.ConsumerCode, "created": res.Created, "appended": len(rows),
				"total": totals.Total.StringFixed(2), "bill_id": res.BillID, "bill_number": res.BillNumber, "tariff_version": v.Version}))
		}
		return nil
	})
	if err != nil {
		return FeeResult{}, fmt.Errorf("fee demand of connection %d: %w", r.ConnectionID, err)
	}
	return res, nil
}

// singleBill is one bill issued outside a bill run.
type singleBill struct {
	TenantID       int64
	TenantCode     string
	ConnectionID   int64
	DemandID       int64
	Service        string
	Plan           string
	TariffVersion  string
	Period         billing.Period
	IssueDate      billing.Date
	DueDate        billing.Date
	Lines          []billing.BillLine
	Totals         billing.BillTotals
	ReplacesBillID int64
}

// insertBill numbers (gap-free, the counter row locked until commit) and
// inserts one bill, and returns its bill.issued notification. The caller
// holds the connection's row lock (the bill's last_posting_id is read
// under it).
func insertBill(ctx context.Context, tx pgx.Tx, b singleBill) (int64, string, []Notification, error) {
	fy := billing.FinancialYearOf(b.IssueDate)
	var seq int
	if err := tx.QueryRow(ctx, `INSERT INTO bill_number_counters (tenant_id, financial_year, last_seq) VALUES ($1, $2, 1)
		ON CONFLICT (tenant_id, financial_year) DO UPDATE SET last_seq = bill_number_counters.last_seq + 1 RETURNING last_seq`,
		b.TenantID, int(fy)).Scan(&seq); err != nil {
		return 0, "", nil, fmt.Errorf("bill number: %w", err)
	}
	number := fmt.Sprintf("%s/%s/%06d", upper(b.TenantCode), fy, seq)
	lines := make([]lineJSON, len(b.Lines))
	for i, l := range b.Lines {
		lines[i] = toLineJSON(l)
	}
	var replaces *int64
	if b.ReplacesBillID != 0 {
		replaces = &b.ReplacesBillID
	}
	t := b.Totals
	var id int64
	var user *int64
	var consumerCode, currency string
	err := tx.QueryRow(ctx, `INSERT INTO bills (tenant_id, connection_id, demand_id, number, financial_year, seq, service, consumer_code, consumer_user_id,
			consumer_name, property_id, property_label, meter_serial, tariff_plan, tariff_version, currency, period_from, period_to, issue_date, due_date,
			current_charges, arrears, advance, round_off, total, minimum_payable, lines, replaces_bill_id, last_posting_id)
		SELECT $1, c.id, d.id, $4, $5, $6, $7, d.consumer_code, p.user_id, coalesce(up.name, ''), p.id, p.label, '', $8, $9, t.currency,
			d.period_from, d.period_to, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
			(SELECT coalesce(max(cp.id), 0) FROM collection_postings cp WHERE cp.connection_id = c.id)
		FROM demands d JOIN connections c ON c.id = d.connection_id JOIN properties p ON p.id = c.property_id JOIN tenants t ON t.id = d.tenant_id
		LEFT JOIN user_profiles up ON up.user_id = p.user_id
		WHERE d.id = $3 AND d.tenant_id = $1 AND c.id = $2
		RETURNING id, consumer_user_id, consumer_code, currency`,
		b.TenantID, b.ConnectionID, b.DemandID, number, int(fy), seq, b.Service, b.Plan, b.TariffVersion, b.IssueDate.String(), b.DueDate.String(),
		t.Current, t.Arrears, t.Advance, t.RoundOff, t.Total, t.MinimumPayable, lines, replaces).Scan(&id, &user, &consumerCode, &currency)
	if err != nil {
		return 0, "", nil, fmt.Errorf("insert bill: %w", classify(err))
	}
	var msgs []Notification
	if user != nil {
		msgs = append(msgs, Notification{TenantID: b.TenantID, UserID: *user, Event: EventBillIssued, DedupeKey: fmt.Sprintf("%s:%d", EventBillIssued, id),
			Payload: map[string]any{"bill_id": id, "number": number, "consumer_code": consumerCode, "period_from": b.Period.From.String(),
				"period_to": b.Period.To.String(), "total": t.Total.StringFixed(2), "due_date": b.DueDate.String(), "currency": currency, "estimated": false}})
	}
	return id, number, msgs, nil
}
