package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/consumption"
)

// Connection is what a bill run reads of a connection, its property and
// owner.
type Connection struct {
	ID               int64
	ConsumerCode     string
	Status           string
	TariffPlan       string // "" when none is assigned
	ConnectionType   string
	SanctionedLoadKW decimal.Decimal
	UsageCategory    string
	WaterClosets     *int
	Toilets          *int
	Taps             *int // municipal_attributes (water slabs)
	PipeSize         *int
	ConnectedAt      time.Time
	DisconnectedAt   *time.Time
	PropertyID       int64
	PropertyLabel    string
	UserID           int64
	ConsumerName     string
}

// MeterSpan is one meter installed on the connection during the period,
// with its register series around the period in daily buckets (and hourly
// ones when the connection's plan asked for them).
type MeterSpan struct {
	MeterID int64
	Serial  string
	Model   string
	Daily   consumption.MeterSeries
	Hourly  *consumption.MeterSeries
}

// UsagePoint is one billed period's consumption, for the usage chart.
type UsagePoint struct {
	From      billing.Date `json:"from"`
	To        billing.Date `json:"to"`
	KWh       string       `json:"kwh"`
	Estimated bool         `json:"estimated"`
}

// Input is everything a bill run needs to bill one connection, read in
// the batch's transaction with the connection locked.
type Input struct {
	Connection Connection
	Meters     []MeterSpan
	// Demands are the connection's open demands and the demand of the
	// period being billed, if any, oldest first.
	Demands []LedgerDemand
	// History is the consumption of up to 12 earlier periods, oldest first.
	History []UsagePoint
	// HistoryDays are earlier periods' measured daily averages for
	// estimating days without readings (one entry per day).
	HistoryDays []consumption.DailyUsage
}

// OutcomeKind is what a bill run did with a connection.
type OutcomeKind uint8

// Outcome kinds.
const (
	Billed    OutcomeKind = iota + 1 // a bill was issued
	Unchanged                        // already billed for the period: nothing new
	Skipped                          // not billable, with a reason
	Failed                           // could not be billed, with a reason
)

// Outcome is the result of billing one connection.
type Outcome struct {
	ConnectionID int64
	Kind         OutcomeKind
	Reason       string
	Issue        *Issue // Billed only
	// Repeat marks an Unchanged connection that this same run billed
	// before (a resumed run): it is not counted again.
	Repeat bool
}

// DemandHeader is the demand row of the period.
type DemandHeader struct {
	Period         billing.Period
	Due            billing.Date
	Plan           string
	ImportWh       int64
	ExportWh       int64
	Estimated      bool
	MeasuredDays   int
	EstimatedDays  int
	PreviousReadWh *int64
	CurrentReadWh  *int64
	MeterSerial    string
}

// Detail sources.
const (
	SourceCalculation   = "calculation"
	SourceRecalculation = "recalculation"
	SourceLateSurcharge = "late_surcharge"
	SourceAdvance       = "advance"
)

// Append is a demand detail to append. DemandID 0 means the issue's own
// demand (created or existing).
type Append struct {
	DemandID int64
	Head     billing.TaxHead
	Category billing.Category
	Amount   decimal.Decimal
	Source   string
}

// DetailRef names a detail: an existing one by ID, or (ID 0) the Append at
// index New of the same Issue.
type DetailRef struct {
	ID  int64
	New int
}

// Collect is a collection to record: advance consumed by the new demand.
type Collect struct {
	Detail DetailRef
	Amount decimal.Decimal
}

// BillDraft is a bill before its number.
type BillDraft struct {
	Lines          []billing.BillLine
	Totals         billing.BillTotals
	TariffVersion  string
	IssueDate      billing.Date
	DueDate        billing.Date
	ConsumptionWh  int64
	Estimated      bool
	UsageHistory   []UsagePoint
	ReplacesBillID int64 // the cancelled bill this one replaces
}

// Issue is what billing one connection writes: the period's demand (new,
// or the existing one recalculated), appended details on it and earlier
// demands, advance consumed, and the bill.
type Issue struct {
	DemandID int64 // existing demand of the period; 0 creates Demand
	Demand   DemandHeader
	Appends  []Append
	Collects []Collect
	Bill     BillDraft
	// CancelBillIDs are bills cancelled because this issue replaces them
	// (a rebill after estimated reads, a reissue).
	CancelBillIDs []int64
	CancelReason  string
	// Rebilled are earlier demands recalculated on actual reads (their
	// consumption columns are updated; their deltas are in Appends).
	Rebilled []DemandUpdate
}

// DemandUpdate is the new consumption of an earlier demand rebilled on
// actual reads.
type DemandUpdate struct {
	DemandID int64
	Header   DemandHeader
}

// BatchCounts is what a committed batch did.
type BatchCounts struct {
	Billed, Unchanged, Skipped int
}

// ErrItemsFailed is returned by BillBatch when the compute step failed for
// some connections: nothing was committed, and the caller retries the
// connections one by one (Failures lists them).
var ErrItemsFailed = errors.New("some connections failed")

// BatchError carries the connections that failed in a batch.
type BatchError struct {
	Failures []Outcome
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%d of the batch's connections failed, first %d: %s", len(e.Failures), e.Failures[0].ConnectionID, e.Failures[0].Reason)
}

// Unwrap makes errors.Is(err, ErrItemsFailed) true.
func (e *BatchError) Unwrap() error { return ErrItemsFailed }

// Loader says what BillBatch must read for a connection's tariff plan.
type Loader struct {
	// Hourly reports whether the plan needs hourly buckets (time of use).
	Hourly func(plan string) bool
}

// BillBatch bills the connections ids of run in one transaction: it locks
// them, reads their inputs, calls compute (pure: inputs to outcomes) and
// writes every billed outcome — demands, details, collections, bills with
// gap-free numbers and their lines, "bill issued" notifications — and the
// run's counts. Connections this run had already counted (a resumed run)
// are not counted again, so counts stay exact. The run's cursor is the
// caller's (AdvanceCursor), since batches may commit out of order. If compute fails any connection, nothing is written and
// the error is a *BatchError (errors.Is ErrItemsFailed); any database
// failure rolls the batch back too. Either way the caller retries the
// connections one by one.
func (s *Store) BillBatch(ctx context.Context, run Run, ids []int64, load Loader, compute func([]Input) []Outcome) (BatchCounts, error) {
	var counts BatchCounts
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		inputs, err := s.loadInputs(ctx, tx, run, ids, load)
		if err != nil {
			return err
		}
		outcomes := compute(inputs)
		var failures []Outcome
		for _, o := range outcomes {
			if o.Kind == Failed {
				failures = append(failures, o)
			}
		}
		if len(failures) > 0 {
			return &BatchError{Failures: failures}
		}
		counts, err = s.write(ctx, tx, run, inputs, outcomes)
		if err != nil {
			return err
		}
		if n := counts.Billed + counts.Unchanged + counts.Skipped; n > 0 {
			_, err = tx.Exec(ctx, `UPDATE bill_runs SET processed = processed + $2, billed = billed + $3, unchanged = unchanged + $4, skipped = skipped + $5
				WHERE id = $1`, run.ID, n, counts.Billed, counts.Unchanged, counts.Skipped)
		}
		return err
	})
	if err != nil {
		var be *BatchError
		if errors.As(err, &be) {
			return BatchCounts{}, err
		}
		return BatchCounts{}, fmt.Errorf("bill batch of run %d: %w", run.ID, classify(err))
	}
	return counts, nil
}

func (s *Store) loadInputs(ctx context.Context, tx pgx.Tx, run Run, ids []int64, load Loader) ([]Input, error) {
	rows, err := tx.Query(ctx, `SELECT c.id, c.consumer_code, c.status, coalesce(c.tariff_plan, ''), c.connection_type, coalesce(c.sanctioned_load_kw, 0),
			coalesce(c.usage_category, ''), c.water_closets, c.toilets, ma.taps, ma.pipe_size, c.connected_at, c.disconnected_at,
			p.id, p.label, p.user_id, coalesce(up.name, '')
		FROM connections c JOIN properties p ON p.id = c.property_id
		LEFT JOIN user_profiles up ON up.user_id = p.user_id
		LEFT JOIN municipal_attributes ma ON ma.connection_id = c.id
		WHERE c.tenant_id = $1 AND c.id = ANY($2) ORDER BY c.id FOR NO KEY UPDATE OF c`, run.TenantID, ids)
	if err != nil {
		return nil, fmt.Errorf("load connections: %w", err)
	}
	conns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Connection, error) {
		var c Connection
		err := r.Scan(&c.ID, &c.ConsumerCode, &c.Status, &c.TariffPlan, &c.ConnectionType, &c.SanctionedLoadKW, &c.UsageCategory, &c.WaterClosets, &c.Toilets,
			&c.Taps, &c.PipeSize, &c.ConnectedAt, &c.DisconnectedAt, &c.PropertyID, &c.PropertyLabel, &c.UserID, &c.ConsumerName)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("load connections: %w", err)
	}
	inputs := make([]Input, len(conns))
	index := make(map[int64]int, len(conns))
	connIDs := make([]int64, len(conns))
	for i, c := range conns {
		inputs[i].Connection = c
		index[c.ID] = i
		connIDs[i] = c.ID
	}
	demands, err := loadDemands(ctx, tx, connIDs, run.Period)
	if err != nil {
		return nil, err
	}
	// Reads reach back to the oldest estimated period still billed: an
	// actual read now may rebill it.
	loadFrom := run.Period.From
	for id, list := range demands {
		inputs[index[id]].Demands = list
		for _, d := range list {
			if d.Estimated && d.LiveBillID != 0 && d.Period.From.Before(loadFrom) {
				loadFrom = d.Period.From
			}
		}
	}
	start := loadFrom.Start(run.RollupLocation)
	end := run.Period.To.AddDays(1).Start(run.RollupLocation)

	// Meter spans that touch the period.
	rows, err = tx.Query(ctx, `SELECT mi.connection_id, mi.meter_id, m.serial, m.model, m.multiplier, mi.installed_at, mi.removed_at, mi.initial_import_wh, mi.final_import_wh
		FROM meter_installations mi JOIN meters m ON m.id = mi.meter_id
		WHERE mi.connection_id = ANY($1) AND mi.installed_at < $3 AND (mi.removed_at IS NULL OR mi.removed_at > $2)
		ORDER BY mi.connection_id, mi.installed_at`, connIDs, start, end)
	if err != nil {
		return nil, fmt.Errorf("load meters: %w", err)
	}
	type spanRef struct{ input, span int }
	byMeter := map[int64][]spanRef{}
	var meterIDs, hourlyMeterIDs []int64
	var (
		connID, meterID int64
		serial, model   string
		multiplier      decimal.Decimal
		installed       time.Time
		removed         *time.Time
		initial, final  *int64
	)
	_, err = pgx.ForEachRow(rows, []any{&connID, &meterID, &serial, &model, &multiplier, &installed, &removed, &initial, &final}, func() error {
		i := index[connID]
		ms := MeterSpan{MeterID: meterID, Serial: serial, Model: model, Daily: consumption.MeterSeries{Installed: installed, InitialWh: initial, FinalWh: final, Multiplier: multiplier}}
		if removed != nil {
			ms.Daily.Removed = *removed
		}
		if load.Hourly != nil && load.Hourly(inputs[i].Connection.TariffPlan) {
			h := ms.Daily
			ms.Hourly = &h
			hourlyMeterIDs = append(hourlyMeterIDs, meterID)
		}
		inputs[i].Meters = append(inputs[i].Meters, ms)
		byMeter[meterID] = append(byMeter[meterID], spanRef{i, len(inputs[i].Meters) - 1})
		meterIDs = append(meterIDs, meterID)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load meters: %w", err)
	}
	if len(meterIDs) > 0 {
		sort.Slice(meterIDs, func(i, j int) bool { return meterIDs[i] < meterIDs[j] })
		eventsFrom := start
		set := func(m int64, f func(ms *MeterSpan)) {
			for _, r := range byMeter[m] {
				f(&inputs[r.input].Meters[r.span])
			}
		}
		if err := loadBuckets(ctx, tx, "readings_daily", meterIDs, start, end, 48*time.Hour, func(m int64, b consumption.RegisterBucket, base bool) {
			if base && b.LastTime.Before(eventsFrom) {
				eventsFrom = b.LastTime
			}
			set(m, func(ms *MeterSpan) {
				if base {
					bb := b
					ms.Daily.Baseline = &bb
				} else {
					ms.Daily.Buckets = append(ms.Daily.Buckets, b)
				}
			})
		}); err != nil {
			return nil, err
		}
		if len(hourlyMeterIDs) > 0 {
			if err := loadBuckets(ctx, tx, "readings_hourly", hourlyMeterIDs, start, end, 2*time.Hour, func(m int64, b consumption.RegisterBucket, base bool) {
				set(m, func(ms *MeterSpan) {
					if ms.Hourly == nil {
						return
					}
					if base {
						bb := b
						ms.Hourly.Baseline = &bb
					} else {
						ms.Hourly.Buckets = append(ms.Hourly.Buckets, b)
					}
				})
			}); err != nil {
				return nil, err
			}
		}
		rows, err = tx.Query(ctx, `SELECT meter_id, ts, delta_wh, consumption_wh FROM counter_events
			WHERE meter_id = ANY($1) AND register = 'import_wh' AND ts > $2 AND ts < $3 ORDER BY meter_id, ts`, meterIDs, eventsFrom, end)
		if err != nil {
			return nil, fmt.Errorf("load counter events: %w", err)
		}
		var c consumption.StepCorrection
		_, err = pgx.ForEachRow(rows, []any{&meterID, &c.Time, &c.DeltaWh, &c.ConsumptionWh}, func() error {
			set(meterID, func(ms *MeterSpan) {
				ms.Daily.Corrections = append(ms.Daily.Corrections, c)
				if ms.Hourly != nil {
					ms.Hourly.Corrections = append(ms.Hourly.Corrections, c)
				}
			})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load counter events: %w", err)
		}
	}

	rows, err = tx.Query(ctx, `SELECT connection_id, period_from::text, period_to::text, import_wh, estimated, measured_days
		FROM demands WHERE connection_id = ANY($1) AND kind = 'periodic' AND period_from < $2::date AND period_from >= $2::date - 400
		ORDER BY connection_id, period_from`, connIDs, run.Period.From.String())
	if err != nil {
		return nil, fmt.Errorf("load usage history: %w", err)
	}
	var (
		from, to string
		wh       int64
		est      bool
		measured int
	)
	_, err = pgx.ForEachRow(rows, []any{&connID, &from, &to, &wh, &est, &measured}, func() error {
		p, err := parsePeriod(from, to)
		if err != nil {
			return err
		}
		in := &inputs[index[connID]]
		in.History = append(in.History, UsagePoint{From: p.From, To: p.To, KWh: decimal.New(wh, -3).String(), Estimated: est})
		if !est && measured > 0 {
			per := wh / int64(p.Days())
			for d := p.From; !d.After(p.To); d = d.AddDays(1) {
				in.HistoryDays = append(in.HistoryDays, consumption.DailyUsage{Date: d, ImportWh: per})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load usage history: %w", err)
	}
	for i := range inputs {
		if h := inputs[i].History; len(h) > 11 {
			inputs[i].History = h[len(h)-11:]
		}
	}
	return inputs, nil
}

// loadBuckets reads rollup buckets of meters in [start, end) and each
// meter's last bucket before start (base true). The base usually is the
// bucket just before start, read with the window; meters without one there
// (a gap) get theirs looked up one by one.
func loadBuckets(ctx context.Context, tx pgx.Tx, table string, meterIDs []int64, start, end time.Time, lookback time.Duration,
	f func(meter int64, b consumption.RegisterBucket, base bool)) error {
	cols := `bucket, first_ts, last_ts, first_import_wh, last_import_wh`
	rows, err := tx.Query(ctx, `SELECT meter_id, `+cols+` FROM `+table+`
		WHERE meter_id = ANY($1) AND bucket >= $2 AND bucket < $3 AND last_import_wh IS NOT NULL ORDER BY meter_id, bucket`,
		meterIDs, start.Add(-lookback), end)
	if err != nil {
		return fmt.Errorf("load %s: %w", table, err)
	}
	var (
		m    int64
		b    consumption.RegisterBucket
		base = make(map[int64]consumption.RegisterBucket, len(meterIDs))
	)
	_, err = pgx.ForEachRow(rows, []any{&m, &b.Start, &b.FirstTime, &b.LastTime, &b.FirstWh, &b.LastWh}, func() error {
		if b.Start.Before(start) {
			base[m] = b // rows come in bucket order: the last one wins
			return nil
		}
		f(m, b, false)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load %s: %w", table, err)
	}
	var missing []int64
	for _, id := range meterIDs {
		if bb, ok := base[id]; ok {
			f(id, bb, true)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rows, err = tx.Query(ctx, `SELECT m.id, b.`+cols+` FROM unnest($1::bigint[]) AS m(id)
		CROSS JOIN LATERAL (SELECT `+cols+` FROM `+table+` r WHERE r.meter_id = m.id AND r.bucket < $2 AND r.last_import_wh IS NOT NULL
			ORDER BY r.bucket DESC LIMIT 1) b`, missing, start)
	if err != nil {
		return fmt.Errorf("load %s: %w", table, err)
	}
	_, err = pgx.ForEachRow(rows, []any{&m, &b.Start, &b.FirstTime, &b.LastTime, &b.FirstWh, &b.LastWh}, func() error {
		f(m, b, true)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load %s: %w", table, err)
	}
	return nil
}

// write persists the billed outcomes of a batch.
func (s *Store) write(ctx context.Context, tx pgx.Tx, run Run, inputs []Input, outcomes []Outcome) (BatchCounts, error) {
	var counts BatchCounts
	byConn := make(map[int64]*Input, len(inputs))
	for i := range inputs {
		byConn[inputs[i].Connection.ID] = &inputs[i]
	}
	var issued []*Outcome
	var skipped, resolved []int64
	var skipRows [][]any
	for i := range outcomes {
		o := &outcomes[i]
		switch o.Kind {
		case Billed:
			issued = append(issued, o)
			resolved = append(resolved, o.ConnectionID)
			counts.Billed++
		case Unchanged:
			if o.Repeat {
				continue
			}
			resolved = append(resolved, o.ConnectionID)
			counts.Unchanged++
		case Skipped:
			skipped = append(skipped, o.ConnectionID)
			code := ""
			if in := byConn[o.ConnectionID]; in != nil {
				code = in.Connection.ConsumerCode
			}
			skipRows = append(skipRows, []any{run.ID, o.ConnectionID, code, o.Reason})
		}
	}
	if len(skipRows) > 0 {
		// A skip already recorded by this run (a resumed run) counts once.
		tag, err := tx.Exec(ctx, `INSERT INTO bill_run_skips (run_id, connection_id, consumer_code, reason)
			SELECT $1, c, k, r FROM unnest($2::bigint[], $3::text[], $4::text[]) AS x(c, k, r) ON CONFLICT DO NOTHING`,
			run.ID, skipped, column[string](skipRows, 2), column[string](skipRows, 3))
		if err != nil {
			return counts, fmt.Errorf("skips: %w", err)
		}
		counts.Skipped = int(tag.RowsAffected())
	}
	if len(issued) == 0 {
		return counts, s.resolve(ctx, tx, run, resolved)
	}

	// Ids for new demands, details and bills, so rows can be copied.
	var nDemands, nDetails int
	for _, o := range issued {
		if o.Issue.DemandID == 0 {
			nDemands++
		}
		nDetails += len(o.Issue.Appends)
	}
	demandIDs, err := nextIDs(ctx, tx, "demands", nDemands)
	if err != nil {
		return counts, err
	}
	detailIDs, err := nextIDs(ctx, tx, "demand_details", nDetails)
	if err != nil {
		return counts, err
	}
	billIDs, err := nextIDs(ctx, tx, "bills", len(issued))
	if err != nil {
		return counts, err
	}

	var demandRows, detailRows [][]any
	type posting struct {
		conn int64
		cols []PostedCollection
		ref  string
	}
	var postings []posting
	var cancel []int64
	cancelReason := map[int64]string{}
	for _, o := range issued {
		is := o.Issue
		in := byConn[o.ConnectionID]
		h := is.Demand
		if is.DemandID == 0 {
			is.DemandID, demandIDs = demandIDs[0], demandIDs[1:]
			demandRows = append(demandRows, []any{is.DemandID, run.TenantID, o.ConnectionID, run.Service, in.Connection.ConsumerCode,
				day(h.Period.From), day(h.Period.To), day(h.Due), h.Plan, h.ImportWh, h.ExportWh, h.Estimated, h.MeasuredDays, h.EstimatedDays,
				h.PreviousReadWh, h.CurrentReadWh, h.MeterSerial})
		} else {
			if _, err := tx.Exec(ctx, `UPDATE demands SET due_date = $2, tariff_plan = $3, import_wh = $4, export_wh = $5, estimated = $6, measured_days = $7,
				estimated_days = $8, previous_read_wh = $9, current_read_wh = $10, meter_serial = $11, updated_at = now() WHERE id = $1`,
				is.DemandID, h.Due.String(), h.Plan, h.ImportWh, h.ExportWh, h.Estimated, h.MeasuredDays, h.EstimatedDays, h.PreviousReadWh, h.CurrentReadWh, h.MeterSerial); err != nil {
				return counts, fmt.Errorf("update demand %d: %w", is.DemandID, classify(err))
			}
		}
		for _, u := range is.Rebilled {
			h := u.Header
			if _, err := tx.Exec(ctx, `UPDATE demands SET import_wh = $2, export_wh = $3, estimated = $4, measured_days = $5, estimated_days = $6,
				previous_read_wh = $7, current_read_wh = $8, updated_at = now() WHERE id = $1`,
				u.DemandID, h.ImportWh, h.ExportWh, h.Estimated, h.MeasuredDays, h.EstimatedDays, h.PreviousReadWh, h.CurrentReadWh); err != nil {
				return counts, fmt.Errorf("rebill demand %d: %w", u.DemandID, classify(err))
			}
		}
		appended := make([]int64, len(is.Appends))
		for j, a := range is.Appends {
			appended[j], detailIDs = detailIDs[0], detailIDs[1:]
			demand := a.DemandID
			if demand == 0 {
				demand = is.DemandID
			}
			detailRows = append(detailRows, []any{appended[j], demand, string(a.Head), a.Category.String(), a.Amount, a.Source, run.ID})
		}
		if len(is.Collects) > 0 {
			p := posting{conn: o.ConnectionID, ref: fmt.Sprintf("advance:%d:%s", o.ConnectionID, h.Period.From)}
			for _, c := range is.Collects {
				id := c.Detail.ID
				if id == 0 {
					id = appended[c.Detail.New]
				}
				p.cols = append(p.cols, PostedCollection{DetailID: id, Amount: c.Amount})
			}
			postings = append(postings, p)
		}
		for _, b := range is.CancelBillIDs {
			cancel = append(cancel, b)
			cancelReason[b] = is.CancelReason
		}
	}
	if err := copyRows(ctx, tx, "demands", []string{"id", "tenant_id", "connection_id", "service", "consumer_code", "period_from", "period_to", "due_date",
		"tariff_plan", "import_wh", "export_wh", "estimated", "measured_days", "estimated_days", "previous_read_wh", "current_read_wh", "meter_serial"}, demandRows); err != nil {
		return counts, err
	}
	if err := copyRows(ctx, tx, "demand_details", []string{"id", "demand_id", "tax_head", "category", "tax_amount", "source", "bill_run_id"}, detailRows); err != nil {
		return counts, err
	}
	for _, p := range postings {
		var id int64
		sum := decimal.Zero
		for _, c := range p.cols {
			sum = sum.Add(c.Amount)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO collection_postings (tenant_id, connection_id, reference, kind, amount, received_at)
			VALUES ($1, $2, $3, 'advance_adjustment', $4, now()) RETURNING id`, run.TenantID, p.conn, p.ref, sum).Scan(&id); err != nil {
			return counts, fmt.Errorf("advance posting: %w", classify(err))
		}
		if err := insertCollections(ctx, tx, id, p.cols); err != nil {
			return counts, err
		}
	}
	if len(cancel) > 0 {
		for _, b := range cancel {
			if _, err := tx.Exec(ctx, `UPDATE bills SET status = 'cancelled', cancelled_at = now(), cancel_reason = $2, status_changed_at = now() WHERE id = $1 AND status <> 'cancelled'`,
				b, cancelReason[b]); err != nil {
				return counts, fmt.Errorf("cancel bill %d: %w", b, classify(err))
			}
		}
	}
	// The connections' newest postings, under their row locks: payments
	// posted after these count towards the new bills (refreshBills).
	conns := make([]int64, len(issued))
	for k, o := range issued {
		conns[k] = o.ConnectionID
	}
	rows, err := tx.Query(ctx, `SELECT coalesce((SELECT max(p.id) FROM collection_postings p WHERE p.connection_id = x.c), 0)
		FROM unnest($1::bigint[]) WITH ORDINALITY AS x(c, i) ORDER BY x.i`, conns)
	if err != nil {
		return counts, fmt.Errorf("last postings: %w", err)
	}
	lastPostings, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return counts, fmt.Errorf("last postings: %w", err)
	}
	// Numbers last: the counter row stays locked until commit.
	fy := billing.FinancialYearOf(run.IssueDate)
	var last int
	if err := tx.QueryRow(ctx, `INSERT INTO bill_number_counters (tenant_id, financial_year, last_seq) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, financial_year) DO UPDATE SET last_seq = bill_number_counters.last_seq + EXCLUDED.last_seq RETURNING last_seq`,
		run.TenantID, int(fy), len(issued)).Scan(&last); err != nil {
		return counts, fmt.Errorf("bill numbers: %w", err)
	}
	first := last - len(issued) + 1
	prefix := fmt.Sprintf("%s/%s/", upper(run.TenantCode), fy)
	billRows := make([][]any, len(issued))
	msgs := make([]Notification, 0, len(issued))
	for k, o := range issued {
		is, in := o.Issue, byConn[o.ConnectionID]
		c, b, t := in.Connection, is.Bill, is.Bill.Totals
		seq := first + k
		number := fmt.Sprintf("%s%06d", prefix, seq)
		var replaces any
		if b.ReplacesBillID != 0 {
			replaces = b.ReplacesBillID
		}
		var user any
		if c.UserID != 0 {
			user = c.UserID
		}
		hist := b.UsageHistory
		if hist == nil {
			hist = []UsagePoint{}
		}
		lines := make([]lineJSON, len(b.Lines))
		for j, l := range b.Lines {
			lines[j] = toLineJSON(l)
		}
		billRows[k] = []any{billIDs[k], run.TenantID, c.ID, is.DemandID, run.ID, number, int(fy), seq, run.Service, c.ConsumerCode, user, c.ConsumerName,
			c.PropertyID, c.PropertyLabel, is.Demand.MeterSerial, is.Demand.Plan, b.TariffVersion, run.Currency,
			day(is.Demand.Period.From), day(is.Demand.Period.To), day(b.IssueDate), day(b.DueDate),
			is.Demand.PreviousReadWh, is.Demand.CurrentReadWh, b.ConsumptionWh, b.Estimated,
			t.Current, t.Arrears, t.Advance, t.RoundOff, t.Total, t.MinimumPayable, lines, hist, replaces, lastPostings[k]}
		if c.UserID != 0 {
			msgs = append(msgs, Notification{TenantID: run.TenantID, UserID: c.UserID, Event: EventBillIssued, DedupeKey: fmt.Sprintf("%s:%d", EventBillIssued, billIDs[k]),
				Payload: map[string]any{"bill_id": billIDs[k], "number": number, "consumer_code": c.ConsumerCode, "period_from": is.Demand.Period.From.String(),
					"period_to": is.Demand.Period.To.String(), "total": t.Total.StringFixed(2), "due_date": b.DueDate.String(), "currency": run.Currency, "estimated": b.Estimated}})
		}
	}
	if err := copyRows(ctx, tx, "bills", []string{"id", "tenant_id", "connection_id", "demand_id", "bill_run_id", "number", "financial_year", "seq", "service",
		"consumer_code", "consumer_user_id", "consumer_name", "property_id", "property_label", "meter_serial", "tariff_plan", "tariff_version", "currency",
		"period_from", "period_to", "issue_date", "due_date", "previous_read_wh", "current_read_wh", "consumption_wh", "estimated",
		"current_charges", "arrears", "advance", "round_off", "total", "minimum_payable", "lines", "usage_history", "replaces_bill_id", "last_posting_id"}, billRows); err != nil {
		return counts, err
	}
	if s.outbox != nil && len(msgs) > 0 {
		if err := s.outbox.Enqueue(ctx, tx, msgs); err != nil {
			return counts, fmt.Errorf("bill notifications: %w", err)
		}
	}
	return counts, s.resolve(ctx, tx, run, resolved)
}

// resolve closes the open dead letters of connections now billed.
func (s *Store) resolve(ctx context.Context, tx pgx.Tx, run Run, conns []int64) error {
	if len(conns) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE billing_dead_letters SET resolved_at = now(), resolved_by_run_id = $1
		WHERE tenant_id = $2 AND connection_id = ANY($3) AND period_from = $4::date AND resolved_at IS NULL`,
		run.ID, run.TenantID, conns, run.Period.From.String())
	if err != nil {
		return fmt.Errorf("resolve dead letters: %w", err)
	}
	return nil
}

// nextIDs reserves n values of table's identity sequence.
func nextIDs(ctx context.Context, tx pgx.Tx, table string, n int) ([]int64, error) {
	if n == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)`, table, n)
	if err != nil {
		return nil, fmt.Errorf("%s ids: %w", table, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("%s ids: %w", table, err)
	}
	return ids, nil
}

func copyRows(ctx context.Context, tx pgx.Tx, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("write %s: %w", table, classify(err))
	}
	return nil
}

func column[T any](rows [][]any, i int) []T {
	out := make([]T, len(rows))
	for k, r := range rows {
		out[k] = r[i].(T)
	}
	return out
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// day is a date as COPY writes it (binary date from UTC midnight).
func day(d billing.Date) time.Time { return d.Start(time.UTC) }

// lineJSON is a bill line as bills.lines stores it.
type lineJSON struct {
	Section     billing.BillSection `json:"section"`
	Code        string              `json:"code"`
	Description string              `json:"description"`
	Quantity    *decimal.Decimal    `json:"quantity,omitempty"`
	Unit        string              `json:"unit,omitempty"`
	Rate        *decimal.Decimal    `json:"rate,omitempty"`
	Amount      decimal.Decimal     `json:"amount"`
}

func toLineJSON(l billing.BillLine) lineJSON {
	out := lineJSON{Section: l.Section, Code: l.Code, Description: l.Description, Unit: l.Unit, Amount: l.Amount}
	if l.HasQuantity {
		q, r := l.Quantity, l.Rate
		out.Quantity, out.Rate = &q, &r
	}
	return out
}

func (l lineJSON) line() billing.BillLine {
	out := billing.BillLine{Section: l.Section, Code: l.Code, Description: l.Description, Unit: l.Unit, Amount: l.Amount}
	if l.Quantity != nil {
		out.HasQuantity, out.Quantity = true, *l.Quantity
		if l.Rate != nil {
			out.Rate = *l.Rate
		}
	}
	return out
}
