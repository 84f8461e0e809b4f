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
	"github.com/meterd/meterd/billing/tariff"
)

// Heads are the tax heads the ledger treats specially for one service.
type Heads struct {
	Advance       billing.TaxHead // overpayment carried forward (negative details)
	RoundOff      billing.TaxHead
	LateSurcharge billing.TaxHead // electricity only
	// AdvanceReversal is charged when a reversed payment's advance was
	// already consumed by a later demand.
	AdvanceReversal billing.TaxHead
	// Order is the apportionment priority: listed heads first, then the
	// smaller outstanding amount.
	Order billing.HeadOrder
}

// ServiceHeads returns the heads of a service: electricity uses the
// tariff's line codes (round_off) with advance and late_payment_surcharge;
// water and sewerage the municipal heads (WS_/SW_ADVANCE_CARRYFORWARD, …).
func ServiceHeads(service string) Heads {
	switch service {
	case "sewerage", "water":
		svc := municipal.Sewerage()
		if service == "water" {
			svc = municipal.Water()
		}
		return Heads{Advance: svc.Advance, RoundOff: svc.RoundOff, AdvanceReversal: billing.TaxHead(svc.BusinessService + "_ADVANCE_REVERSAL"),
			Order: billing.HeadOrder{svc.Penalty: 0, svc.Interest: 1}}
	}
	return Heads{Advance: "advance", RoundOff: tariff.CodeRoundOff, LateSurcharge: "late_payment_surcharge", AdvanceReversal: "advance_reversal",
		Order: billing.HeadOrder{"late_payment_surcharge": 0}}
}

// Demand kinds: a connection's charge for a billing period, or the
// one-time fee demand of its application (water and sewerage).
const (
	KindPeriodic = "periodic"
	KindFee      = "fee"
)

// LedgerDemand is a stored demand with the ids of its details (Details and
// DetailIDs are parallel, in append order).
type LedgerDemand struct {
	ID           int64
	ConnectionID int64
	Kind         string // KindPeriodic or KindFee
	Period       billing.Period
	Due          billing.Date
	Plan         string
	ImportWh     int64
	Estimated    bool
	LiveBillID   int64 // the bill presenting it, 0 if none
	LiveBillRun  int64 // the run that issued that bill, 0 if none
	Demand       billing.Demand
	DetailIDs    []int64
	Categories   []string
}

// queryer is a transaction or a pool.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadDemands returns the demands of the connections that still have
// something outstanding or were billed on estimated reads, plus any demand
// overlapping also (the period being billed), ordered by connection and
// period. Times of the embedded
// billing.Demand are the period's days at UTC midnight.
func loadDemands(ctx context.Context, q queryer, connIDs []int64, also billing.Period) (map[int64][]LedgerDemand, error) {
	return queryDemands(ctx, q, `d.connection_id = ANY($1) AND ((d.period_from <= $3::date AND d.period_to >= $2::date) OR (d.estimated AND b.id IS NOT NULL) OR EXISTS (
			SELECT 1 FROM demand_details x WHERE x.demand_id = d.id AND x.tax_amount <> x.collection_amount))`, len(connIDs),
		connIDs, also.From.String(), also.To.String())
}

// queryDemands reads the demands matching where (over demands d and their
// live bill b) with their details, by connection, ordered by period.
func queryDemands(ctx context.Context, q queryer, where string, sizeHint int, args ...any) (map[int64][]LedgerDemand, error) {
	rows, err := q.Query(ctx, `SELECT d.id, d.connection_id, d.kind, d.consumer_code, d.period_from::text, d.period_to::text, d.due_date::text, d.tariff_plan,
			d.import_wh, d.estimated, coalesce(b.id, 0), coalesce(b.bill_run_id, 0), dd.id, dd.tax_head, dd.category, dd.tax_amount, dd.collection_amount
		FROM demands d
		JOIN demand_details dd ON dd.demand_id = d.id
		LEFT JOIN bills b ON b.demand_id = d.id AND b.status <> 'cancelled'
		WHERE `+where+`
		ORDER BY d.connection_id, d.period_from, d.id, dd.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("load demands: %w", err)
	}
	out := make(map[int64][]LedgerDemand, sizeHint)
	var (
		id, conn, bill, billRun, detID  int64
		kind, code, from, to, due, plan string
		importWh                        int64
		estimated                       bool
		head, cat                       string
		taxAmount, collected            decimal.Decimal
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &conn, &kind, &code, &from, &to, &due, &plan, &importWh, &estimated, &bill, &billRun, &detID, &head, &cat, &taxAmount, &collected}, func() error {
		list := out[conn]
		if n := len(list); n == 0 || list[n-1].ID != id {
			p, err := parsePeriod(from, to)
			if err != nil {
				return err
			}
			dd, err := billing.ParseDate(due)
			if err != nil {
				return err
			}
			list = append(list, LedgerDemand{ID: id, ConnectionID: conn, Kind: kind, Period: p, Due: dd, Plan: plan, ImportWh: importWh, Estimated: estimated, LiveBillID: bill, LiveBillRun: billRun,
				Demand: billing.Demand{ConsumerCode: code, From: p.From.Start(time.UTC), To: p.To.Start(time.UTC)}})
		}
		ld := &list[len(list)-1]
		ld.Demand.Details = append(ld.Demand.Details, billing.DemandDetail{Head: billing.TaxHead(head), TaxAmount: taxAmount, CollectionAmount: collected})
		ld.DetailIDs = append(ld.DetailIDs, detID)
		ld.Categories = append(ld.Categories, cat)
		out[conn] = list
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load demands: %w", err)
	}
	return out, nil
}

func parsePeriod(from, to string) (billing.Period, error) {
	f, err := billing.ParseDate(from)
	if err != nil {
		return billing.Period{}, err
	}
	t, err := billing.ParseDate(to)
	return billing.Period{From: f, To: t}, err
}

// Payment is money received for a connection, to post to its ledger.
type Payment struct {
	TenantID int64
	// ConnectionID is the connection paid for; when 0, BillID's connection.
	ConnectionID int64
	// BillID is the bill the payer paid, if any (recorded on the posting).
	BillID int64
	// Reference identifies the payment and makes posting idempotent: a
	// second posting with the same reference returns the first.
	Reference  string
	Amount     decimal.Decimal // > 0
	ReceivedAt time.Time
}

// PostedCollection is an amount recorded against one demand detail.
type PostedCollection struct {
	DemandID int64           `json:"demand_id"`
	DetailID int64           `json:"demand_detail_id"`
	Head     billing.TaxHead `json:"tax_head"`
	Amount   decimal.Decimal `json:"amount"`
}

// BillState is a bill's payment state after a posting.
type BillState struct {
	ID         int64           `json:"id"`
	Number     string          `json:"number"`
	Status     string          `json:"status"`
	PaidAmount decimal.Decimal `json:"paid_amount"`
	Total      decimal.Decimal `json:"total"`
}

// Posting is the ledger's record of a payment or reversal.
type Posting struct {
	ID           int64              `json:"id"`
	ConnectionID int64              `json:"connection_id"`
	Reference    string             `json:"reference"`
	Amount       decimal.Decimal    `json:"amount"`
	Advance      decimal.Decimal    `json:"advance"` // part carried forward as advance
	Collections  []PostedCollection `json:"collections"`
	Bills        []BillState        `json:"bills"`
	// Replayed is true when the reference had been posted before and
	// nothing new was written.
	Replayed bool `json:"replayed"`
}

// ErrNothingToPay is returned (wrapping billing.ErrNotFound) when a
// connection has no demand a payment could be recorded against.
var ErrNothingToPay = fmt.Errorf("%w: the connection has no demand to credit", billing.ErrNotFound)

// PostCollection posts a payment to the ledger inside tx (the payments
// component's transaction, holding its gateway event and receipt): it
// locks the connection, spreads the amount over the outstanding demand
// details oldest period first (billing.ApportionPayment: unconsumed credits
// absorbed first, then heads by the service's order, smaller amounts first)
// and records each share as a collection; what is left over becomes
// advance, a negative advance detail on the newest demand that the next
// demand consumes (TV18). The connection's live bills get their paid amount
// and status (issued → partially_paid → paid; overdue stays overdue until
// paid). A reference already posted returns the earlier posting with
// Replayed set, or billing.ErrConflict if amount or connection differ.
//
// Water and sewerage: interest, penalty and rebate due at ReceivedAt are
// applied to the connection's overdue demands first (as DIGIT refreshes
// them before a payment), and a payment of a bill is spread over the
// demands of that bill's kind only (a one-time fee bill pays the fee
// demand, a periodic bill the periodic ones).
func (s *Store) PostCollection(ctx context.Context, tx pgx.Tx, p Payment) (Posting, error) {
	if p.Reference == "" || !p.Amount.IsPositive() {
		return Posting{}, fmt.Errorf("post collection: %w: reference and a positive amount are required", billing.ErrInvalidInput)
	}
	if p.ReceivedAt.IsZero() {
		p.ReceivedAt = time.Now()
	}
	conn, service, err := lockConnection(ctx, tx, p.TenantID, p.ConnectionID, p.BillID)
	if err != nil {
		return Posting{}, fmt.Errorf("post collection %s: %w", p.Reference, err)
	}
	if prior, ok, err := priorPosting(ctx, tx, p.TenantID, p.Reference); err != nil {
		return Posting{}, err
	} else if ok {
		if prior.ConnectionID != conn || !prior.Amount.Equal(p.Amount) {
			return Posting{}, fmt.Errorf("post collection %s: %w: reference already posted for %s on connection %d", p.Reference, billing.ErrConflict, prior.Amount, prior.ConnectionID)
		}
		prior.Bills, err = billStates(ctx, tx, conn)
		return prior, err
	}
	kind := ""
	if _, ok := municipal.ForService(service); ok {
		if _, err := s.applyTimeBased(ctx, tx, p.TenantID, service, []int64{conn}, p.ReceivedAt); err != nil {
			return Posting{}, fmt.Errorf("post collection %s: %w", p.Reference, err)
		}
		if p.BillID != 0 {
			if err := tx.QueryRow(ctx, `SELECT d.kind FROM bills b JOIN demands d ON d.id = b.demand_id WHERE b.id = $1`, p.BillID).Scan(&kind); err != nil {
				return Posting{}, fmt.Errorf("post collection %s: bill %d: %w", p.Reference, p.BillID, classify(err))
			}
		}
	}
	demands, err := loadDemands(ctx, tx, []int64{conn}, billing.Period{})
	if err != nil {
		return Posting{}, err
	}
	list := ofKind(demands[conn], kind)
	if len(list) == 0 {
		if list, err = newestDemand(ctx, tx, conn, kind); err != nil {
			return Posting{}, err
		}
	}
	if len(list) == 0 {
		return Posting{}, fmt.Errorf("post collection %s: %w", p.Reference, ErrNothingToPay)
	}
	heads := ServiceHeads(service)
	plain := make([]billing.Demand, len(list))
	for i := range list {
		plain[i] = list[i].Demand
	}
	a := billing.ApportionPayment(plain, p.Amount, heads.Order)
	out := Posting{ConnectionID: conn, Reference: p.Reference, Amount: p.Amount, Advance: a.Advance}
	var bill *int64
	if p.BillID != 0 {
		bill = &p.BillID
	}
	if err := tx.QueryRow(ctx, `INSERT INTO collection_postings (tenant_id, connection_id, reference, kind, amount, advance, bill_id, received_at)
		VALUES ($1, $2, $3, 'payment', $4, $5, $6, $7) RETURNING id`, p.TenantID, conn, p.Reference, p.Amount, a.Advance, bill, p.ReceivedAt).Scan(&out.ID); err != nil {
		return Posting{}, fmt.Errorf("post collection %s: %w", p.Reference, classify(err))
	}
	for _, c := range a.Collections {
		d := list[c.Demand]
		out.Collections = append(out.Collections, PostedCollection{DemandID: d.ID, DetailID: d.DetailIDs[c.Detail], Head: d.Demand.Details[c.Detail].Head, Amount: c.Amount})
	}
	if err := insertCollections(ctx, tx, out.ID, out.Collections); err != nil {
		return Posting{}, fmt.Errorf("post collection %s: %w", p.Reference, err)
	}
	if a.Advance.IsPositive() {
		newest := list[len(list)-1]
		if _, err := tx.Exec(ctx, `INSERT INTO demand_details (demand_id, tax_head, category, tax_amount, source) VALUES ($1, $2, 'ADVANCE_COLLECTION', $3, 'advance')`,
			newest.ID, string(heads.Advance), a.Advance.Neg()); err != nil {
			return Posting{}, fmt.Errorf("post collection %s: advance: %w", p.Reference, classify(err))
		}
	}
	if out.Bills, err = refreshBills(ctx, tx, conn); err != nil {
		return Posting{}, fmt.Errorf("post collection %s: %w", p.Reference, err)
	}
	return out, nil
}

// ReverseCollection undoes a posting (a refund or a dishonoured cheque)
// inside tx, as a new posting under reference: every collection of the
// original is recorded again negated, and the advance it created is
// offset if still unconsumed, or charged back under the service's advance
// reversal head if a later demand consumed it. Bills' states are refreshed.
// A posting can be reversed once (billing.ErrConflict after); an unknown
// original fails with billing.ErrNotFound; replaying the same reversal
// reference returns it with Replayed set.
func (s *Store) ReverseCollection(ctx context.Context, tx pgx.Tx, tenantID int64, original, reference string) (Posting, error) {
	if reference == "" {
		return Posting{}, fmt.Errorf("reverse collection: %w: reference required", billing.ErrInvalidInput)
	}
	var origID, conn int64
	var amount, advance decimal.Decimal
	if err := tx.QueryRow(ctx, `SELECT id, connection_id, amount, advance FROM collection_postings WHERE tenant_id = $1 AND reference = $2 AND kind = 'payment'`,
		tenantID, original).Scan(&origID, &conn, &amount, &advance); err != nil {
		return Posting{}, fmt.Errorf("reverse collection %s: %w", original, classify(err))
	}
	_, service, err := lockConnection(ctx, tx, tenantID, conn, 0)
	if err != nil {
		return Posting{}, err
	}
	if prior, ok, err := priorPosting(ctx, tx, tenantID, reference); err != nil {
		return Posting{}, err
	} else if ok {
		prior.Bills, err = billStates(ctx, tx, conn)
		return prior, err
	}
	out := Posting{ConnectionID: conn, Reference: reference, Amount: amount.Neg()}
	if err := tx.QueryRow(ctx, `INSERT INTO collection_postings (tenant_id, connection_id, reference, kind, amount, reverses_posting_id, received_at)
		VALUES ($1, $2, $3, 'reversal', $4, $5, now()) RETURNING id`, tenantID, conn, reference, amount.Neg(), origID).Scan(&out.ID); err != nil {
		return Posting{}, fmt.Errorf("reverse collection %s: %w", original, classify(err))
	}
	rows, err := tx.Query(ctx, `SELECT dd.demand_id, c.demand_detail_id, dd.tax_head, c.amount FROM collections c
		JOIN demand_details dd ON dd.id = c.demand_detail_id WHERE c.posting_id = $1 ORDER BY c.id`, origID)
	if err != nil {
		return Posting{}, fmt.Errorf("reverse collection %s: %w", original, err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PostedCollection, error) {
		var c PostedCollection
		var head string
		err := r.Scan(&c.DemandID, &c.DetailID, &head, &c.Amount)
		c.Head, c.Amount = billing.TaxHead(head), c.Amount.Neg()
		return c, err
	})
	if err != nil {
		return Posting{}, fmt.Errorf("reverse collection %s: %w", original, err)
	}
	out.Collections = cols
	if advance.IsPositive() {
		heads := ServiceHeads(service)
		// The advance detail the original created: the newest negative
		// advance detail of exactly that amount on the connection.
		var detID, demandID int64
		var collected decimal.Decimal
		err := tx.QueryRow(ctx, `SELECT dd.id, dd.demand_id, dd.collection_amount FROM demand_details dd JOIN demands d ON d.id = dd.demand_id
			WHERE d.connection_id = $1 AND dd.tax_head = $2 AND dd.source = 'advance' AND dd.tax_amount = $3 AND dd.created_at <= (SELECT posted_at FROM collection_postings WHERE id = $4)
			ORDER BY dd.id DESC LIMIT 1`, conn, string(heads.Advance), advance.Neg(), origID).Scan(&detID, &demandID, &collected)
		if err != nil {
			return Posting{}, fmt.Errorf("reverse collection %s: advance: %w", original, classify(err))
		}
		if collected.IsZero() {
			// Unconsumed: offset it with a positive twin, both settled.
			var twin int64
			if err := tx.QueryRow(ctx, `INSERT INTO demand_details (demand_id, tax_head, category, tax_amount, source) VALUES ($1, $2, 'ADVANCE_COLLECTION', $3, 'advance') RETURNING id`,
				demandID, string(heads.Advance), advance).Scan(&twin); err != nil {
				return Posting{}, fmt.Errorf("reverse collection %s: %w", original, classify(err))
			}
			out.Collections = append(out.Collections,
				PostedCollection{DemandID: demandID, DetailID: detID, Head: heads.Advance, Amount: advance.Neg()},
				PostedCollection{DemandID: demandID, DetailID: twin, Head: heads.Advance, Amount: advance})
		} else {
			// Consumed by a later demand: the consumer owes it again.
			if _, err := tx.Exec(ctx, `INSERT INTO demand_details (demand_id, tax_head, category, tax_amount, source)
				SELECT id, $2, 'CHARGES', $3, 'adjustment' FROM demands WHERE connection_id = $1 ORDER BY kind = 'periodic' DESC, period_from DESC LIMIT 1`,
				conn, string(heads.AdvanceReversal), advance); err != nil {
				return Posting{}, fmt.Errorf("reverse collection %s: %w", original, classify(err))
			}
		}
	}
	if err := insertCollections(ctx, tx, out.ID, out.Collections); err != nil {
		return Posting{}, fmt.Errorf("reverse collection %s: %w", original, err)
	}
	if out.Bills, err = refreshBills(ctx, tx, conn); err != nil {
		return Posting{}, err
	}
	return out, nil
}

// lockConnection resolves the connection (directly or through a bill) and
// locks its row, serialising postings and bill runs on one connection.
func lockConnection(ctx context.Context, tx pgx.Tx, tenantID, connID, billID int64) (int64, string, error) {
	if connID == 0 && billID != 0 {
		if err := tx.QueryRow(ctx, `SELECT connection_id FROM bills WHERE tenant_id = $1 AND id = $2`, tenantID, billID).Scan(&connID); err != nil {
			return 0, "", fmt.Errorf("bill %d: %w", billID, classify(err))
		}
	}
	var service string
	if err := tx.QueryRow(ctx, `SELECT service FROM connections WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE`, tenantID, connID).Scan(&service); err != nil {
		return 0, "", fmt.Errorf("connection %d: %w", connID, classify(err))
	}
	return connID, service, nil
}

func priorPosting(ctx context.Context, tx pgx.Tx, tenantID int64, reference string) (Posting, bool, error) {
	var p Posting
	err := tx.QueryRow(ctx, `SELECT id, connection_id, reference, amount, advance FROM collection_postings WHERE tenant_id = $1 AND reference = $2`,
		tenantID, reference).Scan(&p.ID, &p.ConnectionID, &p.Reference, &p.Amount, &p.Advance)
	if errors.Is(err, pgx.ErrNoRows) {
		return Posting{}, false, nil
	}
	if err != nil {
		return Posting{}, false, fmt.Errorf("posting %s: %w", reference, err)
	}
	rows, err := tx.Query(ctx, `SELECT dd.demand_id, c.demand_detail_id, dd.tax_head, c.amount FROM collections c
		JOIN demand_details dd ON dd.id = c.demand_detail_id WHERE c.posting_id = $1 ORDER BY c.id`, p.ID)
	if err != nil {
		return Posting{}, false, err
	}
	p.Collections, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PostedCollection, error) {
		var c PostedCollection
		var head string
		err := r.Scan(&c.DemandID, &c.DetailID, &head, &c.Amount)
		c.Head = billing.TaxHead(head)
		return c, err
	})
	p.Replayed = true
	return p, true, err
}

// ofKind returns the demands of kind ("" for all).
func ofKind(list []LedgerDemand, kind string) []LedgerDemand {
	if kind == "" {
		return list
	}
	var out []LedgerDemand
	for _, d := range list {
		if d.Kind == kind {
			out = append(out, d)
		}
	}
	return out
}

// newestDemand returns the connection's newest demand of kind ("" for
// any; fully paid), where an overpayment with nothing outstanding is
// carried as advance.
func newestDemand(ctx context.Context, tx pgx.Tx, conn int64, kind string) ([]LedgerDemand, error) {
	var from string
	err := tx.QueryRow(ctx, `SELECT period_from::text FROM demands WHERE connection_id = $1 AND ($2 = '' OR kind = $2)
		ORDER BY period_from DESC LIMIT 1`, conn, kind).Scan(&from)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d, err := billing.ParseDate(from)
	if err != nil {
		return nil, err
	}
	m, err := loadDemands(ctx, tx, []int64{conn}, billing.Period{From: d, To: d})
	return ofKind(m[conn], kind), err
}

func insertCollections(ctx context.Context, tx pgx.Tx, posting int64, cols []PostedCollection) error {
	if len(cols) == 0 {
		return nil
	}
	ids := make([]int64, len(cols))
	amounts := make([]decimal.Decimal, len(cols))
	for i, c := range cols {
		ids[i], amounts[i] = c.DetailID, c.Amount
	}
	_, err := tx.Exec(ctx, `INSERT INTO collections (posting_id, demand_detail_id, amount)
		SELECT $1, d, a FROM unnest($2::bigint[], $3::numeric[]) AS x(d, a)`, posting, ids, amounts)
	if err != nil {
		return fmt.Errorf("collections: %w", classify(err))
	}
	return nil
}

// refreshBills sets the paid amount and status of the connection's bills
// that are not cancelled. A bill's paid amount is what was collected
// against its demands (its own and the earlier ones of the same kind,
// which it presents as arrears) by the payments posted after it was issued
// (bills.last_posting_id) and the reversals of those payments, capped at
// its total: interest, penalty, surcharge or adhoc amounts appended to
// those demands later do not lower it, and advance moved between demands
// (advance_adjustment postings) is no payment. A bill is paid once that
// reaches its total, or once nothing is outstanding on its demands (a
// correction credited the rest); otherwise partially paid when something
// was paid (overdue stays overdue until paid).
func refreshBills(ctx context.Context, tx pgx.Tx, conn int64) ([]BillState, error) {
	_, err := tx.Exec(ctx, `WITH o AS (
			SELECT b.id, b.total, b.status,
				(SELECT coalesce(sum(dd.tax_amount - dd.collection_amount), 0) FROM demands d JOIN demand_details dd ON dd.demand_id = d.id
				 WHERE d.connection_id = b.connection_id AND d.period_from <= b.period_from AND d.kind = bd.kind) AS remaining,
				(SELECT coalesce(sum(c.amount), 0) FROM collection_postings p
				 JOIN collections c ON c.posting_id = p.id
				 JOIN demand_details dd ON dd.id = c.demand_detail_id
				 JOIN demands d ON d.id = dd.demand_id
				 WHERE p.connection_id = b.connection_id AND d.period_from <= b.period_from AND d.kind = bd.kind
				   AND ((p.kind = 'payment' AND p.id > b.last_posting_id) OR (p.kind = 'reversal' AND p.reverses_posting_id > b.last_posting_id))) AS collected
			FROM bills b JOIN demands bd ON bd.id = b.demand_id WHERE b.connection_id = $1 AND b.status <> 'cancelled'),
		n AS (
			SELECT id, greatest(0, least(total, collected)) AS paid,
				CASE WHEN collected >= total OR remaining <= 0 THEN 'paid'
				     WHEN status = 'overdue' THEN 'overdue'
				     WHEN collected > 0 THEN 'partially_paid'
				     ELSE 'issued' END AS status
			FROM o)
		UPDATE bills b SET paid_amount = n.paid, status = n.status, status_changed_at = CASE WHEN b.status <> n.status THEN now() ELSE b.status_changed_at END
		FROM n WHERE b.id = n.id AND (b.paid_amount, b.status) IS DISTINCT FROM (n.paid, n.status)`, conn)
	if err != nil {
		return nil, fmt.Errorf("refresh bills: %w", classify(err))
	}
	return billStates(ctx, tx, conn)
}

func billStates(ctx context.Context, tx pgx.Tx, conn int64) ([]BillState, error) {
	rows, err := tx.Query(ctx, `SELECT id, number, status, paid_amount, total FROM bills WHERE connection_id = $1 AND status <> 'cancelled' ORDER BY period_from, id`, conn)
	if err != nil {
		return nil, fmt.Errorf("bill states: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (BillState, error) {
		var b BillState
		err := r.Scan(&b.ID, &b.Number, &b.Status, &b.PaidAmount, &b.Total)
		return b, err
	})
}

// NewDemand is a demand to create outside a bill run (a municipal
// calculator's periodic or fee demand, an adjustment period).
type NewDemand struct {
	TenantID     int64
	ConnectionID int64
	Period       billing.Period
	Due          billing.Date
	Plan         string
	Estimates    []billing.Estimate
}

// AddDemand creates a demand with one detail per estimate inside tx and,
// as DIGIT's billing service does on creation, lets unconsumed advance of
// the connection pay it (billing.ApportionAdvance, oldest first): the
// consumed advance details and the paid details get collections under an
// advance_adjustment posting, and advance left over moves to the new
// demand (TV18: advance 50 pays 50 of a new 60 charge). A demand for the
// same connection and period start fails with billing.ErrConflict.
func (s *Store) AddDemand(ctx context.Context, tx pgx.Tx, n NewDemand) (LedgerDemand, error) {
	conn, service, err := lockConnection(ctx, tx, n.TenantID, n.ConnectionID, 0)
	if err != nil {
		return LedgerDemand{}, err
	}
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO demands (tenant_id, connection_id, service, consumer_code, period_from, period_to, due_date, tariff_plan)
		SELECT $1, id, service, consumer_code, $3, $4, $5, $6 FROM connections WHERE id = $2 RETURNING id`,
		n.TenantID, conn, n.Period.From.String(), n.Period.To.String(), n.Due.String(), n.Plan).Scan(&id); err != nil {
		return LedgerDemand{}, fmt.Errorf("add demand: %w", classify(err))
	}
	for _, e := range n.Estimates {
		if _, err := tx.Exec(ctx, `INSERT INTO demand_details (demand_id, tax_head, category, tax_amount, source) VALUES ($1, $2, $3, $4, 'calculation')`,
			id, string(e.Head), e.Category.String(), e.Amount); err != nil {
			return LedgerDemand{}, fmt.Errorf("add demand: %w", classify(err))
		}
	}
	all, err := loadDemands(ctx, tx, []int64{conn}, n.Period)
	if err != nil {
		return LedgerDemand{}, err
	}
	list := all[conn]
	heads := ServiceHeads(service)
	plain := make([]billing.Demand, len(list))
	for i := range list {
		plain[i] = list[i].Demand
	}
	a := billing.ApportionAdvance(plain, heads.Advance, heads.Order)
	if len(a.Collections) > 0 {
		cols := make([]PostedCollection, 0, len(a.Collections))
		sum := decimal.Zero
		for _, c := range a.Collections {
			d := list[c.Demand]
			cols = append(cols, PostedCollection{DemandID: d.ID, DetailID: d.DetailIDs[c.Detail], Head: d.Demand.Details[c.Detail].Head, Amount: c.Amount})
			sum = sum.Add(c.Amount)
		}
		var posting int64
		if err := tx.QueryRow(ctx, `INSERT INTO collection_postings (tenant_id, connection_id, reference, kind, amount, received_at)
			VALUES ($1, $2, $3, 'advance_adjustment', $4, now()) RETURNING id`, n.TenantID, conn, fmt.Sprintf("advance:%d:%s", conn, n.Period.From), sum).Scan(&posting); err != nil {
			return LedgerDemand{}, fmt.Errorf("add demand: %w", classify(err))
		}
		if err := insertCollections(ctx, tx, posting, cols); err != nil {
			return LedgerDemand{}, err
		}
		if a.Advance.IsPositive() {
			if _, err := tx.Exec(ctx, `INSERT INTO demand_details (demand_id, tax_head, category, tax_amount, source) VALUES ($1, $2, 'ADVANCE_COLLECTION', $3, 'advance')`,
				id, string(heads.Advance), a.Advance.Neg()); err != nil {
				return LedgerDemand{}, fmt.Errorf("add demand: %w", classify(err))
			}
		}
	}
	all, err = loadDemands(ctx, tx, []int64{conn}, n.Period)
	if err != nil {
		return LedgerDemand{}, err
	}
	for _, d := range all[conn] {
		if d.ID == id {
			return d, nil
		}
	}
	return LedgerDemand{}, fmt.Errorf("add demand %d: %w", id, billing.ErrNotFound)
}
