package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/alerts"
)

const alertSelect = `SELECT a.id, a.tenant_id, a.meter_id, m.external_id, coalesce(a.connection_id, 0), coalesce(c.consumer_code, ''),
	coalesce(a.user_id, 0), a.kind, a.severity, a.status, a.summary, coalesce(a.observed, 0), coalesce(a.expected, 0), a.unit, a.evidence,
	a.first_seen_at, a.last_seen_at, a.occurrences, a.opened_at, a.updated_at, a.acknowledged_at, coalesce(a.acknowledged_by, 0),
	a.resolved_at, coalesce(a.resolved_by, 0), coalesce(a.resolution, ''), a.note
	FROM alerts a JOIN meters m ON m.id = a.meter_id LEFT JOIN connections c ON c.id = a.connection_id`

func scanAlert(row pgx.Row) (alerts.Alert, error) {
	var a alerts.Alert
	var kind, sev, status string
	var ev []byte
	err := row.Scan(&a.ID, &a.TenantID, &a.MeterID, &a.MeterRef, &a.ConnectionID, &a.ConsumerCode, &a.UserID, &kind, &sev, &status,
		&a.Summary, &a.Observed, &a.Expected, &a.Unit, &ev, &a.FirstSeenAt, &a.LastSeenAt, &a.Occurrences, &a.OpenedAt, &a.UpdatedAt,
		&a.AcknowledgedAt, &a.AcknowledgedBy, &a.ResolvedAt, &a.ResolvedBy, &a.Resolution, &a.Note)
	if err != nil {
		return a, err
	}
	a.Kind, a.Severity, a.Status = alerts.Kind(kind), alerts.Severity(sev), alerts.Status(status)
	if len(ev) > 0 {
		if err := json.Unmarshal(ev, &a.Evidence); err != nil {
			return a, err
		}
	}
	return a, nil
}

// Alerts lists alerts, newest first. f.UserID limits them to a consumer's.
func (s *Store) Alerts(ctx context.Context, f alerts.AlertFilter) ([]alerts.Alert, error) {
	where, args := ` WHERE a.tenant_id = $1`, []any{f.TenantID}
	add := func(cond string, v any) {
		args = append(args, v)
		where += fmt.Sprintf(cond, len(args))
	}
	if f.UserID > 0 {
		add(` AND a.user_id = $%d`, f.UserID)
	}
	if f.MeterID > 0 {
		add(` AND a.meter_id = $%d`, f.MeterID)
	}
	if len(f.Kinds) > 0 {
		ks := make([]string, len(f.Kinds))
		for i, k := range f.Kinds {
			ks[i] = string(k)
		}
		add(` AND a.kind = ANY($%d)`, ks)
	}
	if len(f.Statuses) > 0 {
		ss := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			ss[i] = string(st)
		}
		add(` AND a.status = ANY($%d)`, ss)
	}
	if f.BeforeID > 0 {
		add(` AND a.id < $%d`, f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, alertSelect+where+fmt.Sprintf(` ORDER BY a.id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, translate(err, "list alerts")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (alerts.Alert, error) { return scanAlert(r) })
	return list, translate(err, "list alerts")
}

// Alert returns one alert of a tenant (of a consumer, when userID is not
// 0); alerts.ErrAlertNotFound otherwise.
func (s *Store) Alert(ctx context.Context, tenantID, userID, id int64) (alerts.Alert, error) {
	a, err := scanAlert(s.pool.QueryRow(ctx, alertSelect+` WHERE a.tenant_id = $1 AND a.id = $2 AND ($3 = 0 OR a.user_id = $3)`, tenantID, id, userID))
	if err == pgx.ErrNoRows {
		return a, fmt.Errorf("alert %d: %w", id, alerts.ErrAlertNotFound)
	}
	return a, translate(err, "get alert")
}

// Transition acknowledges or resolves an alert a person acts on (a
// consumer only their own: userID), audited; alerts.ErrInvalidTransition
// when its status does not allow it.
func (s *Store) Transition(ctx context.Context, tenantID, userID, id int64, to alerts.Status, note string, now time.Time, actor Actor) (alerts.Alert, error) {
	var out alerts.Alert
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		a, err := scanAlert(tx.QueryRow(ctx, alertSelect+` WHERE a.tenant_id = $1 AND a.id = $2 AND ($3 = 0 OR a.user_id = $3) FOR UPDATE OF a`, tenantID, id, userID))
		if err == pgx.ErrNoRows {
			return fmt.Errorf("alert %d: %w", id, alerts.ErrAlertNotFound)
		}
		if err != nil {
			return err
		}
		if err := a.Status.CanBecome(to); err != nil {
			return err
		}
		switch to {
		case alerts.StatusAcknowledged:
			_, err = tx.Exec(ctx, `UPDATE alerts SET status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3,
				note = CASE WHEN $4 = '' THEN note ELSE $4 END, updated_at = $2 WHERE id = $1`, id, now, nullID(actor.UserID), note)
		case alerts.StatusResolved:
			_, err = tx.Exec(ctx, `UPDATE alerts SET status = 'resolved', resolved_at = $2, resolved_by = $3, resolution = 'manual',
				note = CASE WHEN $4 = '' THEN note ELSE $4 END, updated_at = $2 WHERE id = $1`, id, now, nullID(actor.UserID), note)
		}
		if err != nil {
			return err
		}
		if err := writeAudit(ctx, tx, tenantID, actor, "alert."+map[alerts.Status]string{alerts.StatusAcknowledged: "acknowledge", alerts.StatusResolved: "resolve"}[to],
			"alert", id, map[string]any{"status": string(a.Status)}, map[string]any{"status": string(to), "note": note}); err != nil {
			return err
		}
		out, err = scanAlert(tx.QueryRow(ctx, alertSelect+` WHERE a.id = $1`, id))
		return err
	})
	return out, translate(err, "alert transition")
}
