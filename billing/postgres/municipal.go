package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/municipal"
)

// This file holds the water and sewerage side of the store: published
// municipal masters, the connection attributes the calculators read,
// time-based applicables (interest, penalty, rebate) on overdue demands,
// an official's adhoc penalty and rebate, the one-time fee demand of an
// application and its bill, and the reads behind the calculators' API.
// Amounts come from billing/municipal; nothing is computed in SQL.

// SourceAdjustment is the detail source of adhoc amounts.
const SourceAdjustment = "adjustment"

// MunicipalPlans loads a tenant's published masters of service (water or
// sewerage), every plan and version. A stored document that no longer
// decodes fails the whole load: nothing is billed from masters half-read.
func (s *Store) MunicipalPlans(ctx context.Context, tenantID int64, service string) (municipal.Plans, error) {
	return municipalPlans(ctx, s.pool, tenantID, service)
}

func municipalPlans(ctx context.Context, q queryer, tenantID int64, service string) (municipal.Plans, error) {
	rows, err := q.Query(ctx, `SELECT plan, version, effective_from::text, document FROM tariff_versions
		WHERE tenant_id = $1 AND service = $2 AND format = 'municipal' ORDER BY plan, effective_from`, tenantID, service)
	if err != nil {
		return nil, fmt.Errorf("load %s masters: %w", service, err)
	}
	plans := municipal.Plans{}
	var plan, version, eff, doc string
	_, err = pgx.ForEachRow(rows, []any{&plan, &version, &eff, &doc}, func() error {
		m, err := municipal.DecodeMasters([]byte(doc))
		if err != nil {
			return fmt.Errorf("plan %s version %s: %w", plan, version, err)
		}
		d, err := billing.ParseDate(eff)
		if err != nil {
			return err
		}
		plans.Add(municipal.Version{Plan: plan, Version: version, EffectiveFrom: d, Masters: m})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %s masters: %w", service, err)
	}
	return plans, nil
}

// MunicipalPolicy is the calculators' policy for a tenant in zone loc: the
// reference's recommended behaviour (municipal.RecommendedPolicy).
func MunicipalPolicy(loc *time.Location) municipal.Policy { return municipal.RecommendedPolicy(loc) }

// InZone returns the demand as the municipal calculators read it: period
// and due date as instants in the tenant's zone loc (the due date is the
// end of its day, from which penalty days count), without the details of
// head without (the advance head: an unconsumed credit is neither charge
// nor part of the round-off).
func (d LedgerDemand) InZone(loc *time.Location, without billing.TaxHead) billing.Demand {
	out := d.Demand
	out.From = d.Period.From.Start(loc)
	out.To = d.Period.To.AddDays(1).Start(loc).Add(-time.Millisecond)
	out.Due = d.Due.AddDays(1).Start(loc).Add(-time.Millisecond)
	out.Details = make([]billing.DemandDetail, 0, len(d.Demand.Details))
	for _, det := range d.Demand.Details {
		if det.Head != without {
			out.Details = append(out.Details, det)
		}
	}
	return out
}

// TimeBased returns the interest, penalty and rebate details (and the
// round-off correction) to append to a periodic water or sewerage demand
// at now, under the masters of its plan in force on its period's first day
// (nothing for fee demands, or when the plan has no masters then).
func TimeBased(svc municipal.Service, plans municipal.Plans, d LedgerDemand, now time.Time, p municipal.Policy) []billing.DemandDetail {
	if d.Kind != KindPeriodic {
		return nil
	}
	v, ok := plans.At(d.Plan, d.Period.From)
	if !ok {
		return nil
	}
	return municipal.ApplyTimeBased(svc, d.InZone(p.Location, svc.Advance), v.Masters, now, p)
}

// detailRow is a demand detail to insert.
type detailRow struct {
	demand   int64
	head     billing.TaxHead
	category billing.Category
	amount   decimal.Decimal
	source   string
}

func insertDetails(ctx context.Context, tx pgx.Tx, rows []detailRow) ([]int64, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	demands := make([]int64, len(rows))
	heads := make([]string, len(rows))
	cats := make([]string, len(rows))
	amounts := make([]decimal.Decimal, len(rows))
	sources := make([]string, len(rows))
	for i, r := range rows {
		demands[i], heads[i], cats[i], amounts[i], sources[i] = r.demand, string(r.head), r.category.String(), r.amount, r.source
	}
	q, err := tx.Query(ctx, `INSERT INTO demand_details (demand_id, tax_head, category, tax_amount, source)
		SELECT d, h, c, a, s FROM unnest($1::bigint[], $2::text[], $3::text[], $4::numeric[], $5::text[]) WITH ORDINALITY AS x(d, h, c, a, s, n)
		ORDER BY n RETURNING id`, demands, heads, cats, amounts, sources)
	if err != nil {
		return nil, fmt.Errorf("demand details: %w", classify(err))
	}
	ids, err := pgx.CollectRows(q, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("demand details: %w", classify(err))
	}
	return ids, nil
}

// tenantZone returns a tenant's code and zone inside q.
func tenantZone(ctx context.Context, q pgx.Tx, tenantID int64) (string, *time.Location, error) {
	var code, tz string
	if err := q.QueryRow(ctx, `SELECT code, time_zone FROM tenants WHERE id = $1`, tenantID).Scan(&code, &tz); err != nil {
		return "", nil, fmt.Errorf("tenant %d: %w", tenantID, classify(err))
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return "", nil, fmt.Errorf("tenant %d: time zone %q: %w", tenantID, tz, err)
	}
	return code, loc, nil
}

// applyTimeBased appends the time-based details due at now to the overdue
// periodic demands of the connections conns (locked by the caller) of a
// tenant's water or sewerage service, and returns how many it appended.
func (s *Store) applyTimeBased(ctx context.Context, tx pgx.Tx, tenantID int64, service string, conns []int64, now time.Time) (int, error) {
	svc, ok := municipal.ForService(service)
	if !ok {
		return 0, nil
	}
	_, loc, err := tenantZone(ctx, tx, tenantID)
	if err != nil {
		return 0, err
	}
	plans, err := municipalPlans(ctx, tx, tenantID, service)
	if err != nil {
		return 0, err
	}
	if len(plans) == 0 {
		return 0, nil
	}
	pol := MunicipalPolicy(loc)
	demands, err := queryDemands(ctx, tx, `d.connection_id = ANY($1) AND d.kind = 'periodic' AND d.due_date < $2::date`, len(conns),
		conns, billing.DateOf(now, loc).String())
	if err != nil {
		return 0, err
	}
	var rows []detailRow
	for _, list := range demands {
		for _, d := range list {
			for _, add := range TimeBased(svc, plans, d, now, pol) {
				rows = append(rows, detailRow{demand: d.ID, head: add.Head, category: svc.Category(add.Head), amount: add.TaxAmount, source: SourceLateSurcharge})
			}
		}
	}
	if _, err := insertDetails(ctx, tx, rows); err != nil {
		return 0, err
	}
	return len(rows), nil
}

// TimeBasedResult is what a scheduled time-based pass did.
type TimeBasedResult struct {
	Connections int // connections with overdue demands looked at
	Appended    int // details appended
}

// ApplyTimeBased applies interest, penalty and (when the policy says so)
// rebate at now to every overdue periodic water and sewerage demand with
// something outstanding, batchSize connections per transaction. It is the
// scheduler's pass: amounts are set, not added, so running it again the
// same day appends nothing. A batch that fails is reported in the joined
// error after the others ran.
func (s *Store) ApplyTimeBased(ctx context.Context, now time.Time, batchSize int) (TimeBasedResult, error) {
	if batchSize <= 0 {
		batchSize = 500
	}
	rows, err := s.pool.Query(ctx, `SELECT d.tenant_id, d.service, d.connection_id FROM demands d JOIN tenants t ON t.id = d.tenant_id
		WHERE d.service IN ('water', 'sewerage') AND d.kind = 'periodic' AND d.due_date < ($1::timestamptz AT TIME ZONE t.time_zone)::date
		  AND EXISTS (SELECT 1 FROM demand_details x WHERE x.demand_id = d.id AND x.tax_amount <> x.collection_amount)
		GROUP BY d.tenant_id, d.service, d.connection_id ORDER BY d.tenant_id, d.service, d.connection_id`, now)
	if err != nil {
		return TimeBasedResult{}, fmt.Errorf("time-based: %w", err)
	}
	type group struct {
		tenant  int64
		service string
		conns   []int64
	}
	var groups []group
	var tenant, conn int64
	var service string
	_, err = pgx.ForEachRow(rows, []any{&tenant, &service, &conn}, func() error {
		if n := len(groups); n == 0 || groups[n-1].tenant != tenant || groups[n-1].service != service {
			groups = append(groups, group{tenant: tenant, service: service})
		}
		groups[len(groups)-1].conns = append(groups[len(groups)-1].conns, conn)
		return nil
	})
	if err != nil {
		return TimeBasedResult{}, fmt.Errorf("time-based: %w", err)
	}
	var res TimeBasedResult
	var errs []error
	for _, g := range groups {
		for start := 0; start < len(g.conns); start += batchSize {
			batch := g.conns[start:min(start+batchSize, len(g.conns))]
			err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SELECT id FROM connections WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR NO KEY UPDATE`, g.tenant, batch); err != nil {
					return err
				}
				n, err := s.applyTimeBased(ctx, tx, g.tenant, g.service, batch, now)
				res.Appended += n
				return err
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("time-based %s of tenant %d, connections %d..%d: %w", g.service, g.tenant, batch[0], batch[len(batch)-1], err))
				continue
			}
			res.Connections += len(batch)
		}
	}
	return res, errors.Join(errs...)
}

// MunicipalConnection is a water or sewerage connection as the municipal
// calculators read it, with its property and owner.
type MunicipalConnection struct {
	ID           int64
	TenantID     int64
	UserID       int64 // the property's owner
	PropertyID   int64
	Service      string
	ConsumerCode string
	Status       string
	TariffPlan   string
	Connection   municipal.Connection
	Property     municipal.Property
}

// ErrNotMunicipal is returned (wrapping billing.ErrInvalidInput) for an
// electricity connection where a water or sewerage one is needed.
var ErrNotMunicipal = fmt.Errorf("%w: not a water or sewerage connection", billing.ErrInvalidInput)

// MunicipalConnection returns a tenant's water or sewerage connection;
// userID, when not 0, limits it to that owner's (billing.ErrNotFound
// otherwise). An electricity connection is ErrNotMunicipal.
func (s *Store) MunicipalConnection(ctx context.Context, tenantID, userID, id int64) (MunicipalConnection, error) {
	var c MunicipalConnection
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		c, err = municipalConnection(ctx, tx, tenantID, userID, id, false)
		return err
	})
	return c, err
}

func municipalConnection(ctx context.Context, tx pgx.Tx, tenantID, userID, id int64, lock bool) (MunicipalConnection, error) {
	c := MunicipalConnection{ID: id, TenantID: tenantID}
	var road []byte
	var plot *decimal.Decimal
	sql := `SELECT p.user_id, p.id, c.service, c.consumer_code, c.status, coalesce(c.tariff_plan, ''), c.connection_type,
			coalesce(c.usage_category, ''), c.water_closets, c.toilets, ma.taps, ma.pipe_size, c.road_cutting, c.plot_size_m2
		FROM connections c JOIN properties p ON p.id = c.property_id
		LEFT JOIN municipal_attributes ma ON ma.connection_id = c.id
		WHERE c.tenant_id = $1 AND c.id = $2 AND ($3 = 0 OR p.user_id = $3)`
	if lock {
		sql += ` FOR NO KEY UPDATE OF c`
	}
	mc := &c.Connection
	err := tx.QueryRow(ctx, sql, tenantID, id, userID).Scan(&c.UserID, &c.PropertyID, &c.Service, &c.ConsumerCode, &c.Status, &c.TariffPlan,
		&mc.ConnectionType, &c.Property.UsageCategory, &mc.WaterClosets, &mc.Toilets, &mc.Taps, &mc.PipeSize, &road, &plot)
	if err != nil {
		return c, fmt.Errorf("connection %d: %w", id, classify(err))
	}
	if _, ok := municipal.ForService(c.Service); !ok {
		return c, fmt.Errorf("connection %d is %s: %w", id, c.Service, ErrNotMunicipal)
	}
	mc.ConnectionNo = c.ConsumerCode
	c.Property.LandArea = plot
	var rc []struct {
		RoadType string          `json:"road_type"`
		AreaM2   decimal.Decimal `json:"area_m2"`
	}
	if err := json.Unmarshal(road, &rc); err != nil {
		return c, fmt.Errorf("connection %d: road cutting: %w", id, err)
	}
	for _, r := range rc {
		area := r.AreaM2
		mc.RoadCutting = append(mc.RoadCutting, municipal.RoadCutting{RoadType: r.RoadType, Area: &area})
	}
	return c, nil
}

// Attributes are the water-slab counts of a connection that officials set.
type Attributes struct {
	TenantID     int64
	ConnectionID int64
	Taps         *int
	PipeSize     *int
	Audit        *AuditContext
}

// PutMunicipalAttributes stores a water or sewerage connection's taps and
// pipe size (nil clears one), audited.
func (s *Store) PutMunicipalAttributes(ctx context.Context, a Attributes) (MunicipalConnection, error) {
	var c MunicipalConnection
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if c, err = municipalConnection(ctx, tx, a.TenantID, 0, a.ConnectionID, true); err != nil {
			return err
		}
		var by *int64
		if a.Audit != nil && a.Audit.ActorUserID != 0 {
			by = &a.Audit.ActorUserID
		}
		if _, err := tx.Exec(ctx, `INSERT INTO municipal_attributes (connection_id, tenant_id, taps, pipe_size, updated_by) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (connection_id) DO UPDATE SET taps = $3, pipe_size = $4, updated_by = $5, updated_at = now()`,
			a.ConnectionID, a.TenantID, a.Taps, a.PipeSize, by); err != nil {
			return classify(err)
		}
		c.Connection.Taps, c.Connection.PipeSize = a.Taps, a.PipeSize
		if s.audit != nil && a.Audit != nil {
			return s.audit.Write(ctx, tx, a.Audit.entry(a.TenantID, "connection.municipal_attributes", "connection", fmt.Sprint(a.ConnectionID),
				map[string]any{"taps": a.Taps, "pipe_size": a.PipeSize}))
		}
		return nil
	})
	if err != nil {
		return MunicipalConnection{}, fmt.Errorf("municipal attributes: %w", err)
	}
	return c, nil
}

// ConnectionDemand is a stored demand with every detail as appended.
type ConnectionDemand struct {
	ID           int64          `json:"id"`
	Kind         string         `json:"kind"`
	ConsumerCode string         `json:"consumer_code"`
	Period       billing.Period `json:"period"`
	Due          billing.Date   `json:"due"`
	Plan         string         `json:"plan"`
	ImportWh     int64          `json:"import_wh"`
	Estimated    bool           `json:"estimated"`
	LiveBillID   int64          `json:"bill_id,omitempty"`
	Details      []StoredDetail `json:"details"`
}

// StoredDetail is one appended demand detail.
type StoredDetail struct {
	ID               int64           `json:"id"`
	Head             billing.TaxHead `json:"tax_head"`
	Category         string          `json:"category"`
	TaxAmount        decimal.Decimal `json:"tax_amount"`
	CollectionAmount decimal.Decimal `json:"collection_amount"`
	Source           string          `json:"source"`
	BillRunID        int64           `json:"bill_run_id,omitempty"`
	CreatedAt        time.Time       `json:"created_at"`
}

// ConnectionDemands returns a connection's demands (periodic and fee),
// newest period first, with every detail in append order; userID, when
// not 0, limits it to that owner's connection (billing.ErrNotFound).
func (s *Store) ConnectionDemands(ctx context.Context, tenantID, userID, connID int64, limit int) ([]ConnectionDemand, error) {
	if limit <= 0 || limit > 200 {
		limit = 24
	}
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connections c JOIN properties p ON p.id = c.property_id
		WHERE c.tenant_id = $1 AND c.id = $2 AND ($3 = 0 OR p.user_id = $3))`, tenantID, connID, userID).Scan(&ok); err != nil {
		return nil, fmt.Errorf("connection demands: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("connection %d: %w", connID, billing.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `WITH d AS (SELECT * FROM demands WHERE tenant_id = $1 AND connection_id = $2 ORDER BY period_from DESC, id DESC LIMIT $3)
		SELECT d.id, d.kind, d.consumer_code, d.period_from::text, d.period_to::text, d.due_date::text, d.tariff_plan, d.import_wh, d.estimated,
			coalesce((SELECT b.id FROM bills b WHERE b.demand_id = d.id AND b.status <> 'cancelled'), 0),
			dd.id, dd.tax_head, dd.category, dd.tax_amount, dd.collection_amount, dd.source, coalesce(dd.bill_run_id, 0), dd.created_at
		FROM d JOIN demand_details dd ON dd.demand_id = d.id
		ORDER BY d.period_from DESC, d.id DESC, dd.id`, tenantID, connID, limit)
	if err != nil {
		return nil, fmt.Errorf("connection demands: %w", err)
	}
	var out []ConnectionDemand
	var (
		id, bill                             int64
		kind, code, from, to, due, plan, cat string
		importWh                             int64
		est                                  bool
		det                                  StoredDetail
		head                                 string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &kind, &code, &from, &to, &due, &plan, &importWh, &est, &bill,
		&det.ID, &head, &cat, &det.TaxAmount, &det.CollectionAmount, &det.Source, &det.BillRunID, &det.CreatedAt}, func() error {
		if n := len(out); n == 0 || out[n-1].ID != id {
			p, err := parsePeriod(from, to)
			if err != nil {
				return err
			}
			dd, err := billing.ParseDate(due)
			if err != nil {
				return err
			}
			out = append(out, ConnectionDemand{ID: id, Kind: kind, ConsumerCode: code, Period: p, Due: dd, Plan: plan, ImportWh: importWh, Estimated: est, LiveBillID: bill})
		}
		d := det
		d.Head, d.Category = billing.TaxHead(head), cat
		out[len(out)-1].Details = append(out[len(out)-1].Details, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("connection demands: %w", err)
	}
	return out, nil
}

// Adhoc is an official's adhoc penalty and rebate for a connection.
type Adhoc struct {
	TenantID     int64
	ConnectionID int64
	// Penalty and Rebate become the totals of the oldest unpaid demand's
	// adhoc heads (the rebate given positive, stored negative); nil leaves
	// a head alone, zero clears it.
	Penalty *decimal.Decimal
	Rebate  *decimal.Decimal
	Reason  string
	Audit   *AuditContext
}

// AdhocResult is the demand an adhoc change went to and what it appended.
type AdhocResult struct {
	DemandID int64                  `json:"demand_id"`
	Period   billing.Period         `json:"period"`
	Appended []billing.DemandDetail `json:"appended"`
	Total    decimal.Decimal        `json:"total"` // the demand's total after
}

// ErrNothingUnpaid is returned (wrapping billing.ErrConflict) when a
// connection has no unpaid periodic demand for an adhoc amount.
var ErrNothingUnpaid = fmt.Errorf("%w: the connection has no unpaid demand", billing.ErrConflict)

// ApplyAdhoc sets an official's adhoc penalty and rebate on the
// connection's oldest unpaid periodic demand by appending the differences
// and the round-off correction (municipal.ApplyAdhoc), audited as
// demand.adhoc. Repeating the same amounts appends nothing.
func (s *Store) ApplyAdhoc(ctx context.Context, a Adhoc) (AdhocResult, error) {
	if a.Penalty == nil && a.Rebate == nil {
		return AdhocResult{}, fmt.Errorf("adhoc: %w: a penalty or a rebate is required", billing.ErrInvalidInput)
	}
	var res AdhocResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := municipalConnection(ctx, tx, a.TenantID, 0, a.ConnectionID, true)
		if err != nil {
			return err
		}
		svc, _ := municipal.ForService(c.Service)
		_, loc, err := tenantZone(ctx, tx, a.TenantID)
		if err != nil {
			return err
		}
		pol := MunicipalPolicy(loc)
		all, err := loadDemands(ctx, tx, []int64{c.ID}, billing.Period{})
		if err != nil {
			return err
		}
		list := ofKind(all[c.ID], KindPeriodic)
		plain := make([]billing.Demand, len(list))
		for i, d := range list {
			plain[i] = d.InZone(loc, svc.Advance)
		}
		i, ok := billing.OldestUnpaid(plain)
		if !ok {
			return ErrNothingUnpaid
		}
		added := municipal.ApplyAdhoc(svc, plain[i], a.Penalty, a.Rebate, pol)
		rows := make([]detailRow, len(added))
		for k, d := range added {
			rows[k] = detailRow{demand: list[i].ID, head: d.Head, category: svc.Category(d.Head), amount: d.TaxAmount, source: SourceAdjustment}
		}
		if _, err := insertDetails(ctx, tx, rows); err != nil {
			return err
		}
		res = AdhocResult{DemandID: list[i].ID, Period: list[i].Period, Appended: added,
			Total: billing.TotalTax(append(append([]billing.DemandDetail(nil), plain[i].Details...), added...))}
		if res.Appended == nil {
			res.Appended = []billing.DemandDetail{}
		}
		if s.audit != nil && a.Audit != nil {
			after := map[string]any{"demand_id": res.DemandID, "period": res.Period.String(), "reason": a.Reason, "appended": len(added)}
			if a.Penalty != nil {
				after["penalty"] = a.Penalty.String()
			}
			if a.Rebate != nil {
				after["rebate"] = a.Rebate.String()
			}
			return s.audit.Write(ctx, tx, a.Audit.entry(a.TenantID, "demand.adhoc", "demand", fmt.Sprint(res.DemandID), after))
		}
		return nil
	})
	if err != nil {
		return AdhocResult{}, fmt.Errorf("adhoc penalty and rebate of connection %d: %w", a.ConnectionID, err)
	}
	return res, nil
}

// masterVersion returns the version of plan in force on day, or a
// validation error naming field.
func masterVersion(plans municipal.Plans, service, plan string, day billing.Date, field string) (municipal.Version, error) {
	if plan == "" {
		return municipal.Version{}, &billing.ValidationError{Subject: "municipal calculation", Fields: []billing.FieldError{{Path: field, Problem: "no tariff plan: assign one or name it"}}}
	}
	v, ok := plans.At(plan, day)
	if !ok {
		return municipal.Version{}, &billing.ValidationError{Subject: "municipal calculation", Fields: []billing.FieldError{{Path: field,
			Problem: fmt.Sprintf("%s plan %q has no masters in force on %s", service, plan, day)}}}
	}
	return v, nil
}

// FeeEstimateRequest describes a connection to estimate one-time fees for:
// an existing connection (ConnectionID, its owner's when UserID is set), or
// a described one (Service, Plan, Connection, Property).
type FeeEstimateRequest struct {
	TenantID     int64
	UserID       int64
	ConnectionID int64
	Service      string
	Plan         string
	Day          billing.Date // masters in force then; zero: today in the tenant's zone
	Connection   municipal.Connection
	Property     municipal.Property
}

// FeeEstimate is the estimate with the masters it used.
type FeeEstimate struct {
	Service       string
	Plan          string
	Version       string
	EffectiveFrom billing.Date
	Calculation   municipal.Calculation
}

// EstimateFees estimates one-time fees (municipal.FeeEstimates) under the
// plan's masters in force on the day. For an existing connection its
// attributes are used, with the request's adhoc amounts.
func (s *Store) EstimateFees(ctx context.Context, r FeeEstimateRequest) (FeeEstimate, error) {
	out := FeeEstimate{Service: r.Service, Plan: r.Plan}
	conn, prop := r.Connection, r.Property
	if r.ConnectionID != 0 {
		c, err := s.MunicipalConnection(ctx, r.TenantID, r.UserID, r.ConnectionID)
		if err != nil {
			return out, err
		}
		out.Service, out.Plan, prop = c.Service, c.TariffPlan, c.Property
		adhocP, adhocR := conn.AdhocPenalty, conn.AdhocRebate
		conn = c.Connection
		conn.AdhocPenalty, conn.AdhocRebate = adhocP, adhocR
	}
	svc, ok := municipal.ForService(out.Service)
	if !ok {
		return out, &billing.ValidationError{Subject: "fee estimate", Fields: []billing.FieldError{{Path: "service", Problem: "must be water or sewerage"}}}
	}
	_, loc, err := s.TenantLocation(ctx, r.TenantID)
	if err != nil {
		return out, err
	}
	day := r.Day
	if day.IsZero() {
		day = billing.DateOf(time.Now(), loc)
	}
	plans, err := s.MunicipalPlans(ctx, r.TenantID, out.Service)
	if err != nil {
		return out, err
	}
	v, err := masterVersion(plans, out.Service, out.Plan, day, "plan")
	if err != nil {
		return out, err
	}
	out.Version, out.EffectiveFrom = v.Version, v.EffectiveFrom
	out.Calculation, err = municipal.FeeEstimates(svc, conn, prop, v.Masters, MunicipalPolicy(loc))
	return out, err
}

// ChargeRequest asks what a connection's periodic charge for a period is.
type ChargeRequest struct {
	TenantID     int64
	ConnectionID int64
	Period       billing.Period
	// LastReading and CurrentReading (kilolitres) price a metered water
	// connection; without them the period's demand's metered litres are
	// used.
	LastReading    *decimal.Decimal
	CurrentReading *decimal.Decimal
}

// ChargeResult is the periodic charge a connection would be billed for a
// period, the slabs used, and what a recalculation of the period's
// existing demand would append (TV08: only the differences).
type ChargeResult struct {
	Connection    MunicipalConnection
	Period        billing.Period
	Plan          string
	Version       string
	EffectiveFrom billing.Date
	Calculation   municipal.Calculation
	Demand        *ConnectionDemand      // the period's periodic demand, if any
	Deltas        []billing.DemandDetail // what recalculating it would append
}

// CalculateCharge computes (without writing) a connection's periodic
// charge for a period under the masters of its plan in force on the
// period's first day.
func (s *Store) CalculateCharge(ctx context.Context, r ChargeRequest) (ChargeResult, error) {
	out := ChargeResult{Period: r.Period}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := municipalConnection(ctx, tx, r.TenantID, 0, r.ConnectionID, false)
		if err != nil {
			return err
		}
		out.Connection, out.Plan = c, c.TariffPlan
		svc, _ := municipal.ForService(c.Service)
		_, loc, err := tenantZone(ctx, tx, r.TenantID)
		if err != nil {
			return err
		}
		plans, err := municipalPlans(ctx, tx, r.TenantID, c.Service)
		if err != nil {
			return err
		}
		v, err := masterVersion(plans, c.Service, c.TariffPlan, r.Period.From, "tariff_plan")
		if err != nil {
			return err
		}
		out.Version, out.EffectiveFrom = v.Version, v.EffectiveFrom
		all, err := queryDemands(ctx, tx, `d.connection_id = $1 AND d.kind = 'periodic' AND d.period_from <= $3::date AND d.period_to >= $2::date`, 1,
			c.ID, r.Period.From.String(), r.Period.To.String())
		if err != nil {
			return err
		}
		var existing *LedgerDemand
		if list := all[c.ID]; len(list) > 0 {
			existing = &list[0]
		}
		conn := c.Connection
		switch {
		case r.LastReading != nil && r.CurrentReading != nil:
			conn.LastReading, conn.CurrentReading = r.LastReading, r.CurrentReading
		case existing != nil:
			zero, kl := decimal.Zero, municipal.Kilolitres(existing.ImportWh)
			conn.LastReading, conn.CurrentReading = &zero, &kl
		}
		if out.Calculation, err = municipal.PeriodicCharge(svc, conn, c.Property, v.Masters, r.Period.From, MunicipalPolicy(loc)); err != nil {
			return err
		}
		if existing != nil {
			out.Deltas = municipal.Recalculate(existing.InZone(loc, svc.Advance), out.Calculation, svc.PeriodicHeads(), svc.RoundOff, MunicipalPolicy(loc))
			stored, err := s.connectionDemand(ctx, tx, existing.ID)
			if err != nil {
				return err
			}
			out.Demand = &stored
		}
		return nil
	})
	if err != nil {
		return ChargeResult{}, fmt.Errorf("calculate charge of connection %d: %w", r.ConnectionID, err)
	}
	return out, nil
}

// connectionDemand reads one demand with its details.
func (s *Store) connectionDemand(ctx context.Context, tx pgx.Tx, id int64) (ConnectionDemand, error) {
	var tenant, conn int64
	if err := tx.QueryRow(ctx, `SELECT tenant_id, connection_id FROM demands WHERE id = $1`, id).Scan(&tenant, &conn); err != nil {
		return ConnectionDemand{}, classify(err)
	}
	rows, err := tx.Query(ctx, `SELECT dd.id, dd.tax_head, dd.category, dd.tax_amount, dd.collection_amount, dd.source, coalesce(dd.bill_run_id, 0), dd.created_at
		FROM demand_details dd WHERE dd.demand_id = $1 ORDER BY dd.id`, id)
	if err != nil {
		return ConnectionDemand{}, err
	}
	details, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredDetail, error) {
		var d StoredDetail
		var head string
		err := r.Scan(&d.ID, &head, &d.Category, &d.TaxAmount, &d.CollectionAmount, &d.Source, &d.BillRunID, &d.CreatedAt)
		d.Head = billing.TaxHead(head)
		return d, err
	})
	if err != nil {
		return ConnectionDemand{}, err
	}
	var d ConnectionDemand
	var from, to, due string
	if err := tx.QueryRow(ctx, `SELECT d.id, d.kind, d.consumer_code, d.period_from::text, d.period_to::text, d.due_date::text, d.tariff_plan, d.import_wh, d.estimated,
			coalesce((SELECT b.id FROM bills b WHERE b.demand_id = d.id AND b.status <> 'cancelled'), 0)
		FROM demands d WHERE d.id = $1`, id).Scan(&d.ID, &d.Kind, &d.ConsumerCode, &from, &to, &due, &d.Plan, &d.ImportWh, &d.Estimated, &d.LiveBillID); err != nil {
		return ConnectionDemand{}, classify(err)
	}
	if d.Period, err = parsePeriod(from, to); err != nil {
		return d, err
	}
	if d.Due, err = billing.ParseDate(due); err != nil {
		return d, err
	}
	d.Details = details
	return d, nil
}
