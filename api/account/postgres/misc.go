package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
	"github.com/meterd/meterd/api/outbox"

	"github.com/meterd/meterd/api/internal/sqlwhere"
)

// PutReminder implements account.Store.
func (s *Store) PutReminder(ctx context.Context, r account.Reminder, e audit.Entry) (account.Reminder, error) {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var bill any
		if r.BillID != 0 {
			bill = r.BillID
		}
		var before map[string]any
		var prev int64
		err := tx.QueryRow(ctx, `SELECT id FROM reminder_preferences WHERE user_id = $1 AND bill_id IS NOT DISTINCT FROM $2`, r.UserID, bill).Scan(&prev)
		if err == nil {
			if before, err = auditpg.Snapshot(ctx, tx, "reminder_preferences", "id", prev); err != nil {
				return err
			}
		} else if err != pgx.ErrNoRows {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO reminder_preferences (tenant_id, user_id, bill_id, days_before, channel, enabled)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (user_id, bill_id) DO UPDATE SET days_before = excluded.days_before, channel = excluded.channel,
				enabled = excluded.enabled, updated_at = now()
			RETURNING id, updated_at`, r.TenantID, r.UserID, bill, r.DaysBefore, r.Channel, r.Enabled).Scan(&r.ID, &r.UpdatedAt); err != nil {
			return err
		}
		e.EntityType, e.EntityID = "reminder", strconv.FormatInt(r.ID, 10)
		return writeAudit(ctx, tx, e, before, "reminder_preferences", "id", r.ID)
	})
	return r, translate(err, "put reminder")
}

// ListReminders implements account.Store.
func (s *Store) ListReminders(ctx context.Context, scope account.Scope) ([]account.Reminder, error) {
	var w sqlwhere.Where
	w.Add("tenant_id = ?", scope.TenantID)
	if scope.UserID != 0 {
		w.Add("user_id = ?", scope.UserID)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, user_id, coalesce(bill_id, 0), days_before, channel, enabled, updated_at
		FROM reminder_preferences WHERE `+w.String()+` ORDER BY id LIMIT 500`, w.Args()...)
	if err != nil {
		return nil, translate(err, "list reminders")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.Reminder, error) {
		var m account.Reminder
		err := r.Scan(&m.ID, &m.TenantID, &m.UserID, &m.BillID, &m.DaysBefore, &m.Channel, &m.Enabled, &m.UpdatedAt)
		return m, err
	})
	return list, translate(err, "list reminders")
}

// ListAudit implements account.Store: newest first, Page.After is the
// smallest id of the previous page.
func (s *Store) ListAudit(ctx context.Context, tenantID int64, entityType, entityID string, p account.Page) ([]audit.Entry, error) {
	list, err := auditpg.List(ctx, s.pool, auditpg.Filter{TenantID: tenantID, EntityType: entityType, EntityID: entityID, BeforeID: p.After, Limit: p.Limit})
	return list, translate(err, "list audit")
}

// sealedColumn is a sealed column and how to find its rows' AAD.
type sealedColumn struct {
	table, key, column string
	aad                func(key string) string
	where              string
}

var sealedColumns = []sealedColumn{
	{"user_profiles", "user_id", "email_enc", func(k string) string { return "user_profiles.email_enc:" + k }, ""},
	{"user_profiles", "user_id", "phone_enc", func(k string) string { return "user_profiles.phone_enc:" + k }, ""},
	{"user_profiles", "user_id", "address_enc", func(k string) string { return "user_profiles.address_enc:" + k }, ""},
	{"properties", "id", "address_enc", func(k string) string { return "properties.address:" + k }, ""},
	{"users", "id", "totp_secret", func(k string) string { return "users.totp_secret:" + k }, ""},
	{"notification_outbox", "id", "secret", nil, "status = 'pending'"},
}

// Reseal implements account.Store.
func (s *Store) Reseal(ctx context.Context, needs func([]byte) bool, fn func(aad string, old []byte) ([]byte, error)) (int, error) {
	n := 0
	for _, sc := range sealedColumns {
		where := sc.column + " IS NOT NULL"
		if sc.where != "" {
			where += " AND " + sc.where
		}
		sel := fmt.Sprintf(`SELECT %s, %s, coalesce(dedupe_key, '') FROM %s WHERE %s AND %s > $1 ORDER BY %s LIMIT 500`,
			sc.key, sc.column, sc.table, where, sc.key, sc.key)
		if sc.table != "notification_outbox" {
			sel = fmt.Sprintf(`SELECT %s, %s, '' FROM %s WHERE %s AND %s > $1 ORDER BY %s LIMIT 500`,
				sc.key, sc.column, sc.table, where, sc.key, sc.key)
		}
		upd := fmt.Sprintf(`UPDATE %s SET %s = $2 WHERE %s = $1 AND %s = $3`, sc.table, sc.column, sc.key, sc.column)
		var after int64
		for {
			rows, err := s.pool.Query(ctx, sel, after)
			if err != nil {
				return n, translate(err, "reseal "+sc.table)
			}
			type row struct {
				key    int64
				sealed []byte
				dedupe string
			}
			batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				err := r.Scan(&x.key, &x.sealed, &x.dedupe)
				return x, err
			})
			if err != nil {
				return n, translate(err, "reseal "+sc.table)
			}
			if len(batch) == 0 {
				break
			}
			for _, x := range batch {
				after = x.key
				if !needs(x.sealed) {
					continue
				}
				aad := outbox.SecretAAD(x.dedupe)
				if sc.aad != nil {
					aad = sc.aad(strconv.FormatInt(x.key, 10))
				}
				fresh, err := fn(aad, x.sealed)
				if err != nil {
					return n, fmt.Errorf("reseal %s.%s %d: %w", sc.table, sc.column, x.key, err)
				}
				// Compare-and-set: a concurrent write wins.
				if _, err := s.pool.Exec(ctx, upd, x.key, fresh, x.sealed); err != nil {
					return n, translate(err, "reseal "+sc.table)
				}
				n++
			}
		}
	}
	return n, nil
}
