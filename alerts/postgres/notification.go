package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/alerts"
)

// Scope limits what a caller reaches: a tenant (0: any, for the engine's
// own use) and, for consumers, their own user id.
type Scope struct {
	TenantID int64
	UserID   int64
}

const notificationSelect = `SELECT o.id, o.tenant_id, coalesce(o.user_id, 0), o.event, coalesce(o.channel, ''), o.status,
	o.created_at, o.sent_at, coalesce(o.last_error, '') FROM notification_outbox o`

func scanNotification(row pgx.Row) (alerts.Notification, error) {
	var n alerts.Notification
	var ch string
	err := row.Scan(&n.ID, &n.TenantID, &n.UserID, &n.Event, &ch, &n.Status, &n.CreatedAt, &n.SentAt, &n.LastError)
	n.Channel = alerts.Channel(ch)
	return n, err
}

// scopeWhere returns the conditions limiting outbox rows (alias o) to sc,
// numbering parameters from next.
func scopeWhere(sc Scope, next int) (string, []any) {
	where, args := "", []any{}
	if sc.TenantID != 0 {
		where += fmt.Sprintf(" AND o.tenant_id = $%d", next)
		args = append(args, sc.TenantID)
		next++
	}
	if sc.UserID != 0 {
		where += fmt.Sprintf(" AND (o.user_id = $%d OR EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.outbox_id = o.id AND d.user_id = $%d))", next, next)
		args = append(args, sc.UserID)
	}
	return where, args
}

// Notification returns an outbox row in scope with its deliveries and
// their attempts; alerts.ErrNotificationNotFound when there is none.
// A consumer's scope shows only the deliveries addressed to them.
func (s *Store) Notification(ctx context.Context, sc Scope, id int64) (alerts.Notification, error) {
	where, args := scopeWhere(sc, 2)
	n, err := scanNotification(s.pool.QueryRow(ctx, notificationSelect+` WHERE o.id = $1`+where, append([]any{id}, args...)...))
	if err == pgx.ErrNoRows {
		return n, fmt.Errorf("notification %d: %w", id, alerts.ErrNotificationNotFound)
	}
	if err != nil {
		return n, translate(err, "get notification")
	}
	ds, err := s.deliveries(ctx, []int64{id}, sc.UserID)
	if err != nil {
		return n, err
	}
	n.Deliveries = ds[id]
	return n, nil
}

// deliveries loads the deliveries (with attempts) of outbox rows, only
// those to userID when it is not 0.
func (s *Store) deliveries(ctx context.Context, outboxIDs []int64, userID int64) (map[int64][]alerts.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT d.id, d.outbox_id, coalesce(d.user_id, 0), d.channel, coalesce(d.device_id, 0), d.reason, d.status,
			d.attempts, d.max_attempts, d.next_attempt_at, d.in_doubt, coalesce(d.provider, ''), coalesce(d.provider_message_id, ''),
			d.address_hint, coalesce(d.deferred_reason, ''), coalesce(d.last_error, ''), d.created_at, d.sent_at, d.finished_at
		FROM notification_deliveries d WHERE d.outbox_id = ANY($1) AND ($2 = 0 OR d.user_id = $2) ORDER BY d.id`, outboxIDs, userID)
	if err != nil {
		return nil, translate(err, "list deliveries")
	}
	out := map[int64][]alerts.Delivery{}
	var ids []int64
	idx := map[int64][2]int{}
	for rows.Next() {
		var d alerts.Delivery
		var ch, st string
		if err := rows.Scan(&d.ID, &d.NotificationID, &d.UserID, &ch, &d.DeviceID, &d.Reason, &st, &d.Attempts, &d.MaxAttempts,
			&d.NextAttemptAt, &d.InDoubt, &d.Provider, &d.ProviderMessageID, &d.AddressHint, &d.DeferredReason, &d.LastError,
			&d.CreatedAt, &d.SentAt, &d.FinishedAt); err != nil {
			rows.Close()
			return nil, translate(err, "list deliveries")
		}
		d.Channel, d.Status = alerts.Channel(ch), alerts.DeliveryStatus(st)
		idx[d.ID] = [2]int{int(d.NotificationID), len(out[d.NotificationID])}
		out[d.NotificationID] = append(out[d.NotificationID], d)
		ids = append(ids, d.ID)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "list deliveries")
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err = s.pool.Query(ctx, `SELECT delivery_id, attempt, started_at, finished_at, outcome, provider, coalesce(error, '')
		FROM notification_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt`, ids)
	if err != nil {
		return nil, translate(err, "list attempts")
	}
	for rows.Next() {
		var id int64
		var a alerts.Attempt
		if err := rows.Scan(&id, &a.N, &a.StartedAt, &a.FinishedAt, &a.Outcome, &a.Provider, &a.Error); err != nil {
			rows.Close()
			return nil, translate(err, "list attempts")
		}
		at := idx[id]
		list := out[int64(at[0])]
		list[at[1]].History = append(list[at[1]].History, a)
	}
	return out, translate(rows.Err(), "list attempts")
}

// Notifications lists outbox rows in scope, newest first, with their
// deliveries. Status "dead" lists rows with a dead delivery (dead letters)
// whatever the row's own status.
func (s *Store) Notifications(ctx context.Context, sc Scope, f alerts.NotificationFilter) ([]alerts.Notification, error) {
	where, args := scopeWhere(sc, 1)
	n := len(args) + 1
	if f.Event != "" {
		where += fmt.Sprintf(" AND o.event = $%d", n)
		args = append(args, f.Event)
		n++
	}
	switch f.Status {
	case "":
	case "dead":
		where += " AND EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.outbox_id = o.id AND d.status = 'dead')"
	default:
		where += fmt.Sprintf(" AND o.status = $%d", n)
		args = append(args, f.Status)
		n++
	}
	if f.BeforeID > 0 {
		where += fmt.Sprintf(" AND o.id < $%d", n)
		args = append(args, f.BeforeID)
		n++
	}
	limit := f.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	q := notificationSelect + ` WHERE true` + where + fmt.Sprintf(` ORDER BY o.id DESC LIMIT $%d`, n)
	rows, err := s.pool.Query(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, translate(err, "list notifications")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (alerts.Notification, error) { return scanNotification(r) })
	if err != nil {
		return nil, translate(err, "list notifications")
	}
	ids := make([]int64, len(list))
	for i, x := range list {
		ids[i] = x.ID
	}
	ds, err := s.deliveries(ctx, ids, sc.UserID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Deliveries = ds[list[i].ID]
	}
	return list, nil
}

// RetryDead gives the dead deliveries of a notification in scope more
// attempts (extra, at least 1) from now, and returns how many. Staff call
// it once a provider outage is over; alerts.ErrConflict when none is dead.
func (s *Store) RetryDead(ctx context.Context, sc Scope, notificationID int64, extra int, now time.Time, actor Actor) (int, error) {
	if extra < 1 {
		extra = 1
	}
	n := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		where, args := scopeWhere(sc, 2)
		var tenantID int64
		err := tx.QueryRow(ctx, `SELECT o.tenant_id FROM notification_outbox o WHERE o.id = $1`+where+` FOR UPDATE`,
			append([]any{notificationID}, args...)...).Scan(&tenantID)
		if err == pgx.ErrNoRows {
			return fmt.Errorf("notification %d: %w", notificationID, alerts.ErrNotificationNotFound)
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE notification_deliveries SET status = 'pending', max_attempts = attempts + $2,
				next_attempt_at = $3, finished_at = NULL, in_doubt = false, updated_at = $3
			WHERE outbox_id = $1 AND status = 'dead'`, notificationID, extra, now)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		if n == 0 {
			return fmt.Errorf("notification %d has no dead delivery: %w", notificationID, alerts.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `UPDATE notification_outbox SET status = 'sending' WHERE id = $1`, notificationID); err != nil {
			return err
		}
		return writeAudit(ctx, tx, tenantID, actor, "notification.retry", "notification", notificationID, nil, map[string]any{"deliveries": n, "extra_attempts": extra})
	})
	return n, translate(err, "retry notification")
}
