package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// Run triggers.
const (
	TriggerSchedule = "schedule"
	TriggerOfficial = "official"
	TriggerCLI      = "cli"
	TriggerRerun    = "rerun" // the open dead letters of the period only
)

// Run statuses.
const (
	RunQueued    = "queued"
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
)

// Run is a bill run with its progress and the tenant rules it bills by.
type Run struct {
	ID          int64          `json:"id"`
	TenantID    int64          `json:"tenant_id"`
	Service     string         `json:"service"`
	Cycle       string         `json:"cycle"`
	Period      billing.Period `json:"period"`
	IssueDate   billing.Date   `json:"issue_date"`
	Trigger     string         `json:"trigger"`
	RequestedBy int64          `json:"requested_by,omitempty"`
	BatchSize   int            `json:"batch_size"`
	Status      string         `json:"status"`
	Total       int            `json:"total"`
	Processed   int            `json:"processed"`
	Billed      int            `json:"billed"`
	Unchanged   int            `json:"unchanged"`
	Skipped     int            `json:"skipped"`
	Failed      int            `json:"failed"`
	Cursor      int64          `json:"-"`
	Error       string         `json:"error,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	StartedAt   *time.Time     `json:"started_at,omitempty"`
	FinishedAt  *time.Time     `json:"finished_at,omitempty"`

	// Tenant and storage facts the run bills with.
	TenantCode        string          `json:"-"`
	Currency          string          `json:"-"`
	Location          *time.Location  `json:"-"` // tenant zone: issue and due dates
	RollupLocation    *time.Location  `json:"-"` // zone of the daily buckets
	DueAfterDays      int             `json:"-"`
	MinimumPayablePct decimal.Decimal `json:"-"`
}

// Settings are a tenant's billing rules for a service (defaults when the
// tenant has none stored).
type Settings struct {
	TenantID          int64
	Service           string
	Cycle             billing.Cycle
	GenerationDay     int
	Scheduled         bool
	DueAfterDays      int
	MinimumPayablePct decimal.Decimal
	Stored            bool // false: defaults
}

// DefaultSettings are the rules of a tenant without a billing_settings row.
func DefaultSettings(tenantID int64, service string) Settings {
	return Settings{TenantID: tenantID, Service: service, Cycle: billing.CycleMonthly, GenerationDay: 1, DueAfterDays: 15, MinimumPayablePct: decimal.NewFromInt(100)}
}

// Settings returns a tenant's billing rules for service.
func (s *Store) Settings(ctx context.Context, tenantID int64, service string) (Settings, error) {
	st := DefaultSettings(tenantID, service)
	var cycle string
	err := s.pool.QueryRow(ctx, `SELECT cycle, generation_day, scheduled, due_after_days, minimum_payable_pct FROM billing_settings WHERE tenant_id = $1 AND service = $2`,
		tenantID, service).Scan(&cycle, &st.GenerationDay, &st.Scheduled, &st.DueAfterDays, &st.MinimumPayablePct)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("billing settings: %w", err)
	}
	c, err := billing.ParseCycle(cycle)
	if err != nil {
		return Settings{}, err
	}
	st.Cycle, st.Stored = c, true
	return st, nil
}

// PutSettings stores a tenant's billing rules for a service.
func (s *Store) PutSettings(ctx context.Context, st Settings) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO billing_settings (tenant_id, service, cycle, generation_day, scheduled, due_after_days, minimum_payable_pct)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, service) DO UPDATE SET cycle = $3, generation_day = $4, scheduled = $5, due_after_days = $6, minimum_payable_pct = $7, updated_at = now()`,
		st.TenantID, st.Service, st.Cycle.String(), st.GenerationDay, st.Scheduled, st.DueAfterDays, st.MinimumPayablePct)
	if err != nil {
		return fmt.Errorf("billing settings: %w", classify(err))
	}
	return nil
}

// ScheduledSettings returns every stored setting with scheduled runs.
func (s *Store) ScheduledSettings(ctx context.Context) ([]Settings, error) {
	rows, err := s.pool.Query(ctx, `SELECT tenant_id, service, cycle, generation_day, due_after_days, minimum_payable_pct FROM billing_settings WHERE scheduled ORDER BY tenant_id, service`)
	if err != nil {
		return nil, fmt.Errorf("scheduled settings: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Settings, error) {
		st := Settings{Scheduled: true, Stored: true}
		var cycle string
		if err := r.Scan(&st.TenantID, &st.Service, &cycle, &st.GenerationDay, &st.DueAfterDays, &st.MinimumPayablePct); err != nil {
			return st, err
		}
		c, err := billing.ParseCycle(cycle)
		st.Cycle = c
		return st, err
	})
}

// TenantLocation returns a tenant's code and time zone.
func (s *Store) TenantLocation(ctx context.Context, tenantID int64) (string, *time.Location, error) {
	var code, tz string
	if err := s.pool.QueryRow(ctx, `SELECT code, time_zone FROM tenants WHERE id = $1`, tenantID).Scan(&code, &tz); err != nil {
		return "", nil, fmt.Errorf("tenant %d: %w", tenantID, classify(err))
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return "", nil, fmt.Errorf("tenant %d: time zone %q: %w", tenantID, tz, err)
	}
	return code, loc, nil
}

// TenantByCode returns a tenant's id.
func (s *Store) TenantByCode(ctx context.Context, code string) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT id FROM tenants WHERE code = $1`, code).Scan(&id); err != nil {
		return 0, fmt.Errorf("tenant %q: %w", code, classify(err))
	}
	return id, nil
}

// NewRun is a bill run to create.
type NewRun struct {
	TenantID    int64
	Service     string
	Cycle       billing.Cycle
	Period      billing.Period
	IssueDate   billing.Date
	Trigger     string
	RequestedBy int64
	BatchSize   int
	Audit       *AuditContext
}

// CreateRun records a queued bill run. A run of the same tenant, service
// and period already queued or running fails with billing.ErrConflict.
// enqueue, when not nil, is called in the same transaction (the River job
// insert), so the run and its job commit together.
func (s *Store) CreateRun(ctx context.Context, n NewRun, enqueue func(ctx context.Context, tx pgx.Tx, runID int64) error) (Run, error) {
	if !n.Period.Valid() || n.BatchSize < 1 || n.BatchSize > 10000 {
		return Run{}, fmt.Errorf("create bill run: %w: period and a batch size of 1..10000 are required", billing.ErrInvalidInput)
	}
	var id int64
	var requested *int64
	if n.RequestedBy != 0 {
		requested = &n.RequestedBy
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO bill_runs (tenant_id, service, cycle, period_from, period_to, issue_date, trigger, requested_by, batch_size)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			n.TenantID, n.Service, n.Cycle.String(), n.Period.From.String(), n.Period.To.String(), n.IssueDate.String(), n.Trigger, requested, n.BatchSize).Scan(&id); err != nil {
			return classify(err)
		}
		if s.audit != nil && n.Audit != nil {
			if err := s.audit.Write(ctx, tx, n.Audit.entry(n.TenantID, "bill_run.trigger", "bill_run", fmt.Sprint(id), map[string]any{
				"service": n.Service, "period_from": n.Period.From.String(), "period_to": n.Period.To.String(), "trigger": n.Trigger})); err != nil {
				return err
			}
		}
		if enqueue != nil {
			return enqueue(ctx, tx, id)
		}
		return nil
	})
	if err != nil {
		return Run{}, fmt.Errorf("create bill run: %w", err)
	}
	return s.Run(ctx, n.TenantID, id)
}

const runColumns = `r.id, r.tenant_id, r.service, r.cycle, r.period_from::text, r.period_to::text, r.issue_date::text, r.trigger, coalesce(r.requested_by, 0),
	r.batch_size, r.status, r.total, r.processed, r.billed, r.unchanged, r.skipped, r.failed, r.cursor, coalesce(r.error, ''),
	r.created_at, r.started_at, r.finished_at, t.code, t.currency, t.time_zone, s.rollup_time_zone,
	coalesce(bs.due_after_days, 15), coalesce(bs.minimum_payable_pct, 100)`

const runFrom = ` FROM bill_runs r JOIN tenants t ON t.id = r.tenant_id CROSS JOIN meterd_storage s
	LEFT JOIN billing_settings bs ON bs.tenant_id = r.tenant_id AND bs.service = r.service`

func scanRun(r pgx.CollectableRow) (Run, error) {
	var run Run
	var from, to, issue, tz, rollupTZ string
	if err := r.Scan(&run.ID, &run.TenantID, &run.Service, &run.Cycle, &from, &to, &issue, &run.Trigger, &run.RequestedBy,
		&run.BatchSize, &run.Status, &run.Total, &run.Processed, &run.Billed, &run.Unchanged, &run.Skipped, &run.Failed, &run.Cursor, &run.Error,
		&run.CreatedAt, &run.StartedAt, &run.FinishedAt, &run.TenantCode, &run.Currency, &tz, &rollupTZ,
		&run.DueAfterDays, &run.MinimumPayablePct); err != nil {
		return run, err
	}
	var err error
	if run.Period, err = parsePeriod(from, to); err != nil {
		return run, err
	}
	if run.IssueDate, err = billing.ParseDate(issue); err != nil {
		return run, err
	}
	if run.Location, err = time.LoadLocation(tz); err != nil {
		return run, err
	}
	run.RollupLocation, err = time.LoadLocation(rollupTZ)
	return run, err
}

// Run returns one bill run of a tenant (tenantID 0: any tenant).
func (s *Store) Run(ctx context.Context, tenantID, id int64) (Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+runFrom+` WHERE r.id = $1 AND ($2 = 0 OR r.tenant_id = $2)`, id, tenantID)
	if err != nil {
		return Run{}, fmt.Errorf("bill run %d: %w", id, err)
	}
	run, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if err != nil {
		return Run{}, fmt.Errorf("bill run %d: %w", id, classify(err))
	}
	return run, nil
}

// Runs lists a tenant's bill runs, newest first.
func (s *Store) Runs(ctx context.Context, tenantID int64, limit int) ([]Run, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+runFrom+` WHERE r.tenant_id = $1 ORDER BY r.id DESC LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("bill runs: %w", err)
	}
	return pgx.CollectRows(rows, scanRun)
}

// scopeSQL selects the connection ids a run covers, after $4, at most $5.
const scopeSQL = `SELECT c.id FROM connections c
	WHERE c.tenant_id = $1 AND c.service = $2 AND c.id > $4
	  AND (c.status <> 'closed' OR c.disconnected_at >= $3::date)
	  AND ($6 = false OR c.id IN (SELECT connection_id FROM billing_dead_letters dl
	       WHERE dl.tenant_id = $1 AND dl.service = $2 AND dl.period_from = $3::date AND dl.resolved_at IS NULL))
	ORDER BY c.id LIMIT $5`

// StartRun marks a run running and counts its scope on first start; a
// restarted run keeps its counts and cursor.
func (s *Store) StartRun(ctx context.Context, id int64) (Run, error) {
	run, err := s.Run(ctx, 0, id)
	if err != nil {
		return Run{}, err
	}
	if run.Status != RunQueued && run.Status != RunRunning {
		return run, fmt.Errorf("start bill run %d: %w: it is %s", id, billing.ErrConflict, run.Status)
	}
	if run.StartedAt == nil || run.Status == RunQueued {
		var total int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (`+scopeSQL+`) x`, run.TenantID, run.Service, run.Period.From.String(), int64(0), 1<<30, run.Trigger == TriggerRerun).Scan(&total); err != nil {
			return Run{}, fmt.Errorf("start bill run %d: %w", id, err)
		}
		if _, err := s.pool.Exec(ctx, `UPDATE bill_runs SET status = 'running', started_at = coalesce(started_at, now()), total = CASE WHEN started_at IS NULL THEN $2 ELSE total END WHERE id = $1`, id, total); err != nil {
			return Run{}, fmt.Errorf("start bill run %d: %w", id, err)
		}
		return s.Run(ctx, 0, id)
	}
	return run, nil
}

// NextConnections returns up to limit connection ids of the run's scope
// after the given id, ascending.
func (s *Store) NextConnections(ctx context.Context, run Run, after int64, limit int) ([]int64, error) {
	rows, err := s.pool.Query(ctx, scopeSQL, run.TenantID, run.Service, run.Period.From.String(), after, limit, run.Trigger == TriggerRerun)
	if err != nil {
		return nil, fmt.Errorf("bill run %d scope: %w", run.ID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("bill run %d scope: %w", run.ID, err)
	}
	return ids, nil
}

// FinishRun records a run's end and, in the same transaction, enqueues the
// demand generation summary to the tenant's officials and admins.
func (s *Store) FinishRun(ctx context.Context, id int64, failure error) (Run, error) {
	status, msg := RunCompleted, ""
	if failure != nil {
		status, msg = RunFailed, failure.Error()
	}
	run, err := s.Run(ctx, 0, id)
	if err != nil {
		return Run{}, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE bill_runs SET status = $2, error = nullif($3, ''), finished_at = now() WHERE id = $1`, id, status, msg); err != nil {
			return err
		}
		if s.outbox == nil {
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT id FROM users WHERE tenant_id = $1 AND role IN ('official', 'admin') AND status = 'active' ORDER BY id`, run.TenantID)
		if err != nil {
			return err
		}
		users, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		// The first failures with their reasons, for the summary.
		rows, err = tx.Query(ctx, `SELECT consumer_code, reason FROM billing_dead_letters WHERE last_run_id = $1 AND resolved_at IS NULL ORDER BY id LIMIT 50`, id)
		if err != nil {
			return err
		}
		failures, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (map[string]any, error) {
			var code, reason string
			err := r.Scan(&code, &reason)
			return map[string]any{"consumer_code": code, "reason": reason}, err
		})
		if err != nil {
			return err
		}
		// Connections not billable (no tariff plan, masters or slab), with
		// the reason: reported, not dead letters.
		rows, err = tx.Query(ctx, `SELECT consumer_code, reason FROM bill_run_skips WHERE run_id = $1 ORDER BY connection_id LIMIT 50`, id)
		if err != nil {
			return err
		}
		skips, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (map[string]any, error) {
			var code, reason string
			err := r.Scan(&code, &reason)
			return map[string]any{"consumer_code": code, "reason": reason}, err
		})
		if err != nil {
			return err
		}
		msgs := make([]Notification, 0, len(users))
		for _, u := range users {
			msgs = append(msgs, Notification{TenantID: run.TenantID, UserID: u, Event: EventRunSummary, DedupeKey: fmt.Sprintf("%s:%d:%d", EventRunSummary, id, u),
				Payload: map[string]any{"run_id": id, "service": run.Service, "period_from": run.Period.From.String(), "period_to": run.Period.To.String(),
					"total": run.Total, "billed": run.Billed, "unchanged": run.Unchanged, "skipped": run.Skipped, "failed": run.Failed, "status": status, "error": msg,
					"failures": failures, "skips": skips}})
		}
		if len(msgs) == 0 {
			return nil
		}
		return s.outbox.Enqueue(ctx, tx, msgs)
	})
	if err != nil {
		return Run{}, fmt.Errorf("finish bill run %d: %w", id, err)
	}
	return s.Run(ctx, 0, id)
}

// DeadLetter is a connection a run could not bill, until a later run does.
type DeadLetter struct {
	ID            int64          `json:"id"`
	ConnectionID  int64          `json:"connection_id"`
	ConsumerCode  string         `json:"consumer_code"`
	Service       string         `json:"service"`
	Period        billing.Period `json:"period"`
	Reason        string         `json:"reason"`
	Attempts      int            `json:"attempts"`
	FirstRunID    int64          `json:"first_run_id"`
	LastRunID     int64          `json:"last_run_id"`
	LastFailedAt  time.Time      `json:"last_failed_at"`
	ResolvedAt    *time.Time     `json:"resolved_at,omitempty"`
	ResolvedByRun int64          `json:"resolved_by_run_id,omitempty"`
}

// DeadLetters lists a tenant's dead letters (open only, or all), oldest
// first, optionally for one run's period.
func (s *Store) DeadLetters(ctx context.Context, tenantID int64, service string, openOnly bool, limit int) ([]DeadLetter, error) {
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	rows, err := s.pool.Query(ctx, `SELECT id, connection_id, consumer_code, service, period_from::text, period_to::text, reason, attempts,
			first_run_id, last_run_id, last_failed_at, resolved_at, coalesce(resolved_by_run_id, 0)
		FROM billing_dead_letters WHERE tenant_id = $1 AND ($2 = '' OR service = $2) AND (NOT $3 OR resolved_at IS NULL)
		ORDER BY id LIMIT $4`, tenantID, service, openOnly, limit)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		var from, to string
		if err := r.Scan(&d.ID, &d.ConnectionID, &d.ConsumerCode, &d.Service, &from, &to, &d.Reason, &d.Attempts,
			&d.FirstRunID, &d.LastRunID, &d.LastFailedAt, &d.ResolvedAt, &d.ResolvedByRun); err != nil {
			return d, err
		}
		p, err := parsePeriod(from, to)
		d.Period = p
		return d, err
	})
}

// OpenDeadLetters counts open dead letters per tenant and service, for
// the metric.
func (s *Store) OpenDeadLetters(ctx context.Context) (map[[2]string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.code, dl.service, count(*) FROM billing_dead_letters dl JOIN tenants t ON t.id = dl.tenant_id
		WHERE dl.resolved_at IS NULL GROUP BY t.code, dl.service`)
	if err != nil {
		return nil, fmt.Errorf("open dead letters: %w", err)
	}
	out := map[[2]string]int{}
	var code, service string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&code, &service, &n}, func() error {
		out[[2]string{code, service}] = n
		return nil
	})
	return out, err
}

// RecordFailure records that connection could not be billed by run, with
// the reason, as an open dead letter (or another attempt of the open one),
// and counts it in the run, once per run: a resumed run that fails the
// same connection again changes nothing.
func (s *Store) RecordFailure(ctx context.Context, run Run, connID int64, reason string) error {
	if len(reason) > 2000 {
		reason = reason[:2000]
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO billing_dead_letters (tenant_id, service, connection_id, consumer_code, period_from, period_to, reason, first_run_id, last_run_id)
			SELECT $1, $2, $3, coalesce((SELECT consumer_code FROM connections WHERE id = $3), ''), $4, $5, $6, $7, $7
			ON CONFLICT (tenant_id, connection_id, period_from) WHERE resolved_at IS NULL
			DO UPDATE SET reason = EXCLUDED.reason, attempts = billing_dead_letters.attempts + 1, last_run_id = EXCLUDED.last_run_id, last_failed_at = now()
			WHERE billing_dead_letters.last_run_id <> EXCLUDED.last_run_id`,
			run.TenantID, run.Service, connID, run.Period.From.String(), run.Period.To.String(), reason, run.ID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE bill_runs SET processed = processed + 1, failed = failed + 1 WHERE id = $1`, run.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("record dead letter %d: %w", connID, err)
	}
	return nil
}

// AdvanceCursor moves a run's cursor past ids that were all counted.
func (s *Store) AdvanceCursor(ctx context.Context, runID, to int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE bill_runs SET cursor = greatest(cursor, $2) WHERE id = $1`, runID, to)
	if err != nil {
		return fmt.Errorf("bill run %d cursor: %w", runID, err)
	}
	return nil
}

// HasRun reports whether any run of the tenant's service billed (or is
// billing) the period starting on from, so the scheduler starts one once.
func (s *Store) HasRun(ctx context.Context, tenantID int64, service string, from billing.Date) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM bill_runs WHERE tenant_id = $1 AND service = $2 AND period_from = $3::date AND trigger <> 'rerun' AND status <> 'failed')`,
		tenantID, service, from.String()).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("bill runs: %w", err)
	}
	return ok, nil
}

// MarkOverdue moves issued and partially paid bills whose due date has
// passed in their tenant's zone to overdue, and returns how many moved.
func (s *Store) MarkOverdue(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE bills b SET status = 'overdue', status_changed_at = now() FROM tenants t
		WHERE t.id = b.tenant_id AND b.status IN ('issued', 'partially_paid') AND b.due_date < ($1::timestamptz AT TIME ZONE t.time_zone)::date`, now)
	if err != nil {
		return 0, fmt.Errorf("mark overdue: %w", classify(err))
	}
	return tag.RowsAffected(), nil
}

// RunSkip is a connection a run did not bill, with the reason.
type RunSkip struct {
	ConnectionID int64  `json:"connection_id"`
	ConsumerCode string `json:"consumer_code"`
	Reason       string `json:"reason"`
}

// RunSkips lists the connections run id skipped (tenantID 0: any tenant).
func (s *Store) RunSkips(ctx context.Context, tenantID, id int64) ([]RunSkip, error) {
	rows, err := s.pool.Query(ctx, `SELECT k.connection_id, k.consumer_code, k.reason FROM bill_run_skips k JOIN bill_runs r ON r.id = k.run_id
		WHERE k.run_id = $1 AND ($2 = 0 OR r.tenant_id = $2) ORDER BY k.connection_id`, id, tenantID)
	if err != nil {
		return nil, fmt.Errorf("bill run %d skips: %w", id, err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[RunSkip])
}
