package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/notify"
	"github.com/meterd/meterd/alerts/reminder"
	"github.com/meterd/meterd/billing"
)

var (
	_ reminder.Source = (*Store)(nil)
	_ notify.Bills    = (*Store)(nil)
)

// Tenants implements reminder.Source: every tenant with its zone and
// reminder policy (the defaults without a reminder_policies row).
func (s *Store) Tenants(ctx context.Context) ([]reminder.Tenant, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.id, t.time_zone, p.due_days, p.overdue_days, p.second_channel_step, p.staff_step,
			p.staff_role, coalesce(p.staff_department, ''), p.send_at, p.tenant_id IS NOT NULL
		FROM tenants t LEFT JOIN reminder_policies p ON p.tenant_id = t.id ORDER BY t.id`)
	if err != nil {
		return nil, translate(err, "list tenants")
	}
	var out []reminder.Tenant
	for rows.Next() {
		var t reminder.Tenant
		var zone string
		var p policyRow
		if err := rows.Scan(&t.ID, &zone, &p.due, &p.overdue, &p.second, &p.staff, &p.role, &p.dept, &p.sendAt, &p.exists); err != nil {
			rows.Close()
			return nil, translate(err, "list tenants")
		}
		t.Zone, t.Policy = s.zone(zone), p.policy()
		out = append(out, t)
	}
	return out, translate(rows.Err(), "list tenants")
}

type policyRow struct {
	due, overdue  []int32
	second, staff *int32
	role, dept    *string
	sendAt        pgtype.Time
	exists        bool
}

func (p policyRow) policy() reminder.Policy {
	if !p.exists {
		return reminder.DefaultPolicy()
	}
	out := reminder.Policy{SecondChannelStep: int(*p.second), StaffStep: int(*p.staff), StaffRole: *p.role, StaffDepartment: *p.dept, SendAt: timeOfDay(p.sendAt)}
	for _, d := range p.due {
		out.DueDays = append(out.DueDays, int(d))
	}
	for _, d := range p.overdue {
		out.OverdueDays = append(out.OverdueDays, int(d))
	}
	return out
}

// Policy returns a tenant's reminder policy.
func (s *Store) Policy(ctx context.Context, tenantID int64) (reminder.Policy, error) {
	var p policyRow
	err := s.pool.QueryRow(ctx, `SELECT due_days, overdue_days, second_channel_step, staff_step, staff_role, coalesce(staff_department, ''), send_at, true
		FROM reminder_policies WHERE tenant_id = $1`, tenantID).Scan(&p.due, &p.overdue, &p.second, &p.staff, &p.role, &p.dept, &p.sendAt, &p.exists)
	if err == pgx.ErrNoRows {
		return reminder.DefaultPolicy(), nil
	}
	return p.policy(), translate(err, "get reminder policy")
}

// SetPolicy stores a tenant's reminder policy (validated by the caller).
func (s *Store) SetPolicy(ctx context.Context, tenantID int64, p reminder.Policy, now time.Time, actor Actor) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		before, err := s.Policy(ctx, tenantID)
		if err != nil {
			return err
		}
		var dept any
		if p.StaffDepartment != "" {
			dept = p.StaffDepartment
		}
		if _, err := tx.Exec(ctx, `INSERT INTO reminder_policies (tenant_id, due_days, overdue_days, second_channel_step, staff_step, staff_role, staff_department, send_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (tenant_id) DO UPDATE SET due_days = EXCLUDED.due_days, overdue_days = EXCLUDED.overdue_days,
				second_channel_step = EXCLUDED.second_channel_step, staff_step = EXCLUDED.staff_step, staff_role = EXCLUDED.staff_role,
				staff_department = EXCLUDED.staff_department, send_at = EXCLUDED.send_at, updated_at = EXCLUDED.updated_at`,
			tenantID, p.DueDays, p.OverdueDays, p.SecondChannelStep, p.StaffStep, p.StaffRole, dept, pgTime(p.SendAt), now); err != nil {
			return err
		}
		return writeAudit(ctx, tx, tenantID, actor, "reminder_policy.set", "tenant", tenantID, policyMap(before), policyMap(p))
	})
	return translate(err, "set reminder policy")
}

func policyMap(p reminder.Policy) map[string]any {
	return map[string]any{"due_days": p.DueDays, "overdue_days": p.OverdueDays, "second_channel_step": p.SecondChannelStep,
		"staff_step": p.StaffStep, "staff_role": p.StaffRole, "staff_department": p.StaffDepartment, "send_at": p.SendAt.String()}
}

// OpenBills implements reminder.Source on billing's bills table: bills
// issued, partially paid or overdue, due in [from, to].
func (s *Store) OpenBills(ctx context.Context, tenantID int64, from, to billing.Date) ([]reminder.Bill, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, coalesce(consumer_user_id, 0), number, consumer_code, currency, due_date::text,
			(total - paid_amount)::text
		FROM bills WHERE tenant_id = $1 AND status IN ('issued', 'partially_paid', 'overdue') AND due_date BETWEEN $2::date AND $3::date
		ORDER BY id`, tenantID, from.String(), to.String())
	if err != nil {
		return nil, translate(err, "open bills")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (reminder.Bill, error) {
		b := reminder.Bill{TenantID: tenantID}
		var due, amount string
		if err := r.Scan(&b.ID, &b.UserID, &b.Number, &b.ConsumerCode, &b.Currency, &due, &amount); err != nil {
			return b, err
		}
		d, err := billing.ParseDate(due)
		if err != nil {
			return b, err
		}
		b.DueDate, b.AmountDue = d, trimAmount(amount)
		return b, nil
	})
	return out, translate(err, "open bills")
}

// trimAmount shows a numeric(20,6) amount with two decimals.
func trimAmount(s string) string {
	if i := len(s) - 4; i > 0 && s[i-3] == '.' && s[i:] == "0000" {
		return s[:i]
	}
	return s
}

// BillSettled implements notify.Bills: paid in full or cancelled (or
// gone).
func (s *Store) BillSettled(ctx context.Context, tenantID, billID int64) (bool, error) {
	var status string
	err := s.pool.QueryRow(ctx, `SELECT status FROM bills WHERE tenant_id = $1 AND id = $2`, tenantID, billID).Scan(&status)
	if err == pgx.ErrNoRows {
		return true, nil
	}
	if err != nil {
		return false, translate(err, "bill status")
	}
	return status == "paid" || status == "cancelled", nil
}

// UserReminders implements reminder.Source.
func (s *Store) UserReminders(ctx context.Context, tenantID int64, userIDs []int64) ([]reminder.UserReminder, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, user_id, coalesce(bill_id, 0), days_before, channel FROM reminder_preferences
		WHERE tenant_id = $1 AND user_id = ANY($2) AND enabled ORDER BY id`, tenantID, userIDs)
	if err != nil {
		return nil, translate(err, "user reminders")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (reminder.UserReminder, error) {
		var u reminder.UserReminder
		var ch string
		err := r.Scan(&u.ID, &u.UserID, &u.BillID, &u.DaysBefore, &ch)
		u.Channel = alerts.Channel(ch)
		return u, err
	})
	return out, translate(err, "user reminders")
}

// Staff implements reminder.Source.
func (s *Store) Staff(ctx context.Context, tenantID int64, role, department string) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM users WHERE tenant_id = $1 AND status = 'active' AND role = $2
		AND ($2 <> 'official' OR $3 = '' OR department = $3) ORDER BY id`, tenantID, role, department)
	if err != nil {
		return nil, translate(err, "staff")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, translate(err, "staff")
}

// Enqueue implements reminder.Source: outbox rows available from the time
// each notice became due, skipping dedupe keys already present.
func (s *Store) Enqueue(ctx context.Context, notices []reminder.Notice) (int, error) {
	var tenants, users []int64
	var events, channels, keys []string
	var payloads [][]byte
	var due []time.Time
	for _, n := range notices {
		p, err := json.Marshal(n.Payload)
		if err != nil {
			return 0, fmt.Errorf("enqueue %s: %w", n.Event, err)
		}
		tenants, users, events = append(tenants, n.TenantID), append(users, n.UserID), append(events, n.Event)
		channels, keys, payloads, due = append(channels, string(n.Channel)), append(keys, n.DedupeKey), append(payloads, p), append(due, n.Due)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO notification_outbox (tenant_id, user_id, event, channel, payload, dedupe_key, available_at)
		SELECT t, nullif(u, 0), e, nullif(c, ''), p::jsonb, k, a
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS x(t, u, e, c, p, k, a)
		ON CONFLICT (dedupe_key) DO NOTHING`, tenants, users, events, channels, toStrings(payloads), keys, due)
	if err != nil {
		return 0, translate(err, "enqueue reminders")
	}
	return int(tag.RowsAffected()), nil
}

func toStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}
