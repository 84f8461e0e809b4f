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
)

var _ notify.Store = (*Store)(nil)

// FanOut implements notify.Store.
func (s *Store) FanOut(ctx context.Context, now time.Time, limit int, plan func(notify.Outbox, []notify.Recipient) []notify.NewDelivery) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT o.id, o.tenant_id, coalesce(o.user_id, 0), o.event, coalesce(o.channel, ''), o.payload, o.created_at, t.time_zone
			FROM notification_outbox o JOIN tenants t ON t.id = o.tenant_id
			WHERE o.status = 'pending' AND o.available_at <= $1
			ORDER BY o.available_at, o.id
			LIMIT $2
			FOR UPDATE OF o SKIP LOCKED`, now, limit)
		if err != nil {
			return err
		}
		var claimed []notify.Outbox
		var zones []string
		for rows.Next() {
			var o notify.Outbox
			var ch, zone string
			if err := rows.Scan(&o.ID, &o.TenantID, &o.UserID, &o.Event, &ch, &o.Payload, &o.CreatedAt, &zone); err != nil {
				rows.Close()
				return err
			}
			o.Channel = alerts.Channel(ch)
			claimed = append(claimed, o)
			zones = append(zones, zone)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		n = len(claimed)
		if n == 0 {
			return nil
		}
		// Recipients: the rows' users, and the officials of rows addressed
		// to them.
		recips := make([][]notify.Recipient, n)
		userSet := map[int64]bool{}
		audiences := map[int]string{} // row index → department ("" for all)
		for i := range claimed {
			o := &claimed[i]
			o.Zone = s.zone(zones[i])
			spec, _ := alerts.LookupEvent(o.Event)
			switch {
			case o.UserID != 0:
				userSet[o.UserID] = true
			case spec.Audience == alerts.AudienceOfficials:
				audiences[i] = payloadString(o.Payload, "department")
			default:
				// An address (the email being verified).
				recips[i] = []notify.Recipient{{HasEmail: payloadString(o.Payload, "email") != ""}}
			}
		}
		for i, dept := range audiences {
			ids, err := officials(ctx, tx, claimed[i].TenantID, dept)
			if err != nil {
				return err
			}
			for _, id := range ids {
				userSet[id] = true
				recips[i] = append(recips[i], notify.Recipient{UserID: id})
			}
		}
		users, err := loadRecipients(ctx, tx, keys(userSet))
		if err != nil {
			return err
		}
		for i, o := range claimed {
			if o.UserID != 0 {
				if r, ok := users[o.UserID]; ok {
					recips[i] = []notify.Recipient{r}
				}
			} else if _, ok := audiences[i]; ok {
				for j, r := range recips[i] {
					recips[i][j] = users[r.UserID]
				}
			}
		}
		var dOutbox, dTenant, dUser, dDevice []int64
		var dChannel, dReason, dDeferred []string
		var dNext []time.Time
		var dMax []int32
		var empty []int64
		for i, o := range claimed {
			ds := plan(o, recips[i])
			if len(ds) == 0 {
				empty = append(empty, o.ID)
				continue
			}
			for _, d := range ds {
				dOutbox = append(dOutbox, o.ID)
				dTenant = append(dTenant, o.TenantID)
				dUser = append(dUser, d.UserID)
				dDevice = append(dDevice, d.DeviceID)
				dChannel = append(dChannel, string(d.Channel))
				dReason = append(dReason, d.Reason)
				dDeferred = append(dDeferred, d.DeferredReason)
				dNext = append(dNext, d.NextAttemptAt)
				dMax = append(dMax, int32(d.MaxAttempts))
			}
		}
		if len(dOutbox) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO notification_deliveries (outbox_id, tenant_id, user_id, device_id, channel, reason,
					deferred_reason, next_attempt_at, max_attempts, created_at, updated_at)
				SELECT o, t, nullif(u, 0), nullif(d, 0), c, r, nullif(df, ''), nx, mx, $10, $10
				FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::int[])
					AS x(o, t, u, d, c, r, df, nx, mx)
				ON CONFLICT DO NOTHING`,
				dOutbox, dTenant, dUser, dDevice, dChannel, dReason, dDeferred, dNext, dMax, now); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE notification_outbox SET status = 'sending' WHERE id = ANY($1)`, uniq(dOutbox)); err != nil {
				return err
			}
		}
		if len(empty) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE notification_outbox SET status = 'cancelled',
					last_error = 'no deliverable channel: the recipient muted the event, has no address, or no provider is configured'
				WHERE id = ANY($1)`, empty); err != nil {
				return err
			}
		}
		return nil
	})
	return n, translate(err, "fan out outbox")
}

// officials returns the active officials of a tenant (of one department
// when dept is set) and its admins.
func officials(ctx context.Context, tx pgx.Tx, tenantID int64, dept string) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM users WHERE tenant_id = $1 AND status = 'active'
		AND ((role = 'official' AND ($2 = '' OR department = $2)) OR role = 'admin') ORDER BY id`, tenantID, dept)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// loadRecipients loads users with their address flags, devices and
// preferences.
func loadRecipients(ctx context.Context, tx pgx.Tx, ids []int64) (map[int64]notify.Recipient, error) {
	out := map[int64]notify.Recipient{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT u.id, u.role, p.email_enc IS NOT NULL, p.phone_enc IS NOT NULL
		FROM users u LEFT JOIN user_profiles p ON p.user_id = u.id WHERE u.id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r notify.Recipient
		var profileEmail bool
		if err := rows.Scan(&r.UserID, &r.Role, &profileEmail, &r.HasPhone); err != nil {
			rows.Close()
			return nil, err
		}
		r.HasEmail = true // the login email at least
		out[r.UserID] = r
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT user_id, id FROM push_devices WHERE user_id = ANY($1) AND disabled_at IS NULL ORDER BY id`, ids)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var uid, id int64
		if err := rows.Scan(&uid, &id); err != nil {
			rows.Close()
			return nil, err
		}
		r := out[uid]
		r.Devices = append(r.Devices, id)
		out[uid] = r
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	prefs, err := loadPreferences(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	for id, p := range prefs {
		r := out[id]
		r.Prefs = p
		out[id] = r
	}
	return out, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// loadPreferences loads the preference rows of users.
func loadPreferences(ctx context.Context, q querier, ids []int64) (map[int64]alerts.Preferences, error) {
	rows, err := q.Query(ctx, `SELECT user_id, event, channels, quiet_from, quiet_to, coalesce(locale, '')
		FROM notification_preferences WHERE user_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	out := map[int64]alerts.Preferences{}
	for rows.Next() {
		var uid int64
		var p alerts.Preference
		var channels []string
		var from, to pgtype.Time
		if err := rows.Scan(&uid, &p.Event, &channels, &from, &to, &p.Locale); err != nil {
			rows.Close()
			return nil, err
		}
		if channels != nil {
			p.ChannelsSet = true
			p.Channels = make([]alerts.Channel, len(channels))
			for i, c := range channels {
				p.Channels[i] = alerts.Channel(c)
			}
		}
		if from.Valid && to.Valid {
			p.Quiet = &alerts.QuietHours{From: timeOfDay(from), To: timeOfDay(to)}
		}
		prefs := out[uid]
		if p.Event == alerts.DefaultEvent {
			prefs.Default = p
		} else {
			if prefs.Events == nil {
				prefs.Events = map[string]alerts.Preference{}
			}
			prefs.Events[p.Event] = p
		}
		out[uid] = prefs
	}
	return out, rows.Err()
}

func timeOfDay(t pgtype.Time) alerts.TimeOfDay {
	return alerts.TimeOfDay(t.Microseconds / int64(time.Minute/time.Microsecond))
}

func pgTime(t alerts.TimeOfDay) pgtype.Time {
	return pgtype.Time{Microseconds: int64(t) * int64(time.Minute/time.Microsecond), Valid: true}
}

// Queue implements notify.Store.
func (s *Store) Queue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]notify.Job, error) {
	rows, err := s.pool.Query(ctx, `WITH c AS (
			SELECT id, status FROM notification_deliveries
			WHERE (status = 'pending' AND next_attempt_at <= $1)
			   OR (status IN ('queued', 'sending') AND lease_until <= $1)
			ORDER BY id
			LIMIT $3
			FOR UPDATE SKIP LOCKED)
		UPDATE notification_deliveries d SET status = 'queued', lease_token = gen_random_uuid(), lease_until = $2,
			in_doubt = d.in_doubt OR c.status = 'sending', updated_at = $1
		FROM c WHERE d.id = c.id
		RETURNING d.id, d.lease_token::text`, now, now.Add(lease), limit)
	if err != nil {
		return nil, translate(err, "queue deliveries")
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notify.Job, error) {
		var j notify.Job
		err := r.Scan(&j.DeliveryID, &j.Token)
		return j, err
	})
	return jobs, translate(err, "queue deliveries")
}

// Lease implements notify.Store.
func (s *Store) Lease(ctx context.Context, id int64, token string, now time.Time, lease time.Duration) (notify.Work, bool, error) {
	var w notify.Work
	ok := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var ch, zone string
		var first *time.Time
		err := tx.QueryRow(ctx, `UPDATE notification_deliveries d SET status = 'sending', lease_until = $3, updated_at = $4
			WHERE d.id = $1 AND d.lease_token = $2::uuid AND d.status = 'queued'
			RETURNING d.outbox_id, d.tenant_id, coalesce(d.user_id, 0), d.channel, coalesce(d.device_id, 0), d.reason,
				d.attempts + 1, d.max_attempts, d.in_doubt, d.idempotency_key,
				coalesce((SELECT min(started_at) FROM notification_attempts a WHERE a.delivery_id = d.id), d.created_at)`,
			id, token, now.Add(lease), now).Scan(&w.OutboxID, &w.TenantID, &w.UserID, &ch, &w.DeviceID, &w.Reason,
			&w.Attempt, &w.MaxAttempts, &w.InDoubt, &w.IdempotencyKey, &first)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		w.DeliveryID, w.Channel = id, alerts.Channel(ch)
		w.FirstAttemptAt = now
		if first != nil {
			w.FirstAttemptAt = *first
		}
		if err := tx.QueryRow(ctx, `SELECT o.event, o.payload, o.secret, coalesce(o.dedupe_key, ''), t.code, t.name, t.time_zone, t.currency
			FROM notification_outbox o JOIN tenants t ON t.id = o.tenant_id WHERE o.id = $1`, w.OutboxID).
			Scan(&w.Event, &w.Payload, &w.Secret, &w.DedupeKey, &w.Tenant.Code, &w.Tenant.Name, &zone, &w.Tenant.Currency); err != nil {
			return err
		}
		w.Tenant.ID, w.Tenant.Zone = w.TenantID, s.zone(zone)
		b, err := branding(ctx, tx, w.TenantID)
		if err != nil {
			return err
		}
		w.Branding = b
		if w.UserID != 0 {
			if err := tx.QueryRow(ctx, `SELECT coalesce(p.name, ''), u.role, u.email, p.email_enc, p.phone_enc
				FROM users u LEFT JOIN user_profiles p ON p.user_id = u.id WHERE u.id = $1`, w.UserID).
				Scan(&w.Name, &w.Role, &w.LoginEmail, &w.EmailSealed, &w.PhoneSealed); err != nil {
				return err
			}
			prefs, err := loadPreferences(ctx, tx, []int64{w.UserID})
			if err != nil {
				return err
			}
			spec, _ := alerts.LookupEvent(w.Event)
			res := prefs[w.UserID].Resolve(spec)
			w.Locale, w.Quiet = res.Locale, res.Quiet
		}
		if w.DeviceID != 0 {
			if err := tx.QueryRow(ctx, `SELECT token_enc, token_hash, platform, disabled_at IS NOT NULL FROM push_devices WHERE id = $1`, w.DeviceID).
				Scan(&w.DeviceTokenSealed, &w.DeviceTokenHash, &w.DevicePlatform, &w.DeviceDisabled); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `SELECT locale, source FROM notification_templates WHERE tenant_id = $1 AND event = $2`, w.TenantID, w.Event)
		if err != nil {
			return err
		}
		w.Overrides = map[string]string{}
		for rows.Next() {
			var l, src string
			if err := rows.Scan(&l, &src); err != nil {
				rows.Close()
				return err
			}
			w.Overrides[l] = src
		}
		return rows.Err()
	})
	return w, ok, translate(err, fmt.Sprintf("lease delivery %d", id))
}

func branding(ctx context.Context, q querier, tenantID int64) (*notify.Branding, error) {
	var b notify.Branding
	err := q.QueryRow(ctx, `SELECT display_name, coalesce(from_address, ''), coalesce(reply_to, ''), support_email, support_phone,
			website_url, logo_url, brand_color, footer, default_locale
		FROM notification_branding WHERE tenant_id = $1`, tenantID).
		Scan(&b.DisplayName, &b.FromAddress, &b.ReplyTo, &b.SupportEmail, &b.SupportPhone, &b.WebsiteURL, &b.LogoURL, &b.Color, &b.Footer, &b.DefaultLocale)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// Finish implements notify.Store.
func (s *Store) Finish(ctx context.Context, id int64, token string, r notify.Result) (bool, error) {
	ok := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var outboxID, deviceID int64
		err := tx.QueryRow(ctx, `SELECT outbox_id, coalesce(device_id, 0) FROM notification_deliveries
			WHERE id = $1 AND lease_token = $2::uuid AND status = 'sending' FOR UPDATE`, id, token).Scan(&outboxID, &deviceID)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		called := 0
		if r.Called {
			called = 1
		}
		var status string
		switch r.Outcome {
		case notify.OutcomeSent, notify.OutcomeReconciled:
			status = "sent"
		case notify.OutcomeRetry:
			status = "pending"
		case notify.OutcomeFailed:
			status = "dead"
		case notify.OutcomeCancelled:
			status = "cancelled"
		default:
			return fmt.Errorf("unknown outcome %q", r.Outcome)
		}
		final := status != "pending"
		if _, err := tx.Exec(ctx, `UPDATE notification_deliveries SET
				status = $2::text, attempts = attempts + $3::int, lease_token = NULL, lease_until = NULL,
				in_doubt = CASE WHEN $2 = 'pending' THEN (in_doubt AND NOT $3::int::bool) OR $12::bool ELSE false END,
				next_attempt_at = CASE WHEN $2 = 'pending' THEN $4::timestamptz ELSE next_attempt_at END,
				deferred_reason = $5,
				provider = coalesce(nullif($6, ''), provider),
				provider_message_id = coalesce(nullif($7, ''), provider_message_id),
				last_error = CASE WHEN $2 = 'sent' THEN NULL ELSE coalesce(nullif($8, ''), last_error) END,
				address_hint = coalesce(nullif($9, ''), address_hint),
				sent_at = CASE WHEN $2 = 'sent' THEN $10::timestamptz END,
				finished_at = CASE WHEN $11::bool THEN $10::timestamptz END,
				updated_at = $10::timestamptz
			WHERE id = $1`,
			id, status, called, r.NextAttemptAt, nullString(r.DeferredReason), r.Provider, r.ProviderMessageID, r.Error, r.AddressHint, r.Now, final, r.InDoubt); err != nil {
			return err
		}
		if r.Called {
			outcome := string(r.Outcome)
			if r.Outcome == notify.OutcomeCancelled {
				outcome = "failed"
			}
			if _, err := tx.Exec(ctx, `INSERT INTO notification_attempts (delivery_id, attempt, started_at, finished_at, outcome, provider, error)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, attempt) DO NOTHING`,
				id, r.Attempt, r.StartedAt, r.Now, outcome, r.Provider, nullString(r.Error)); err != nil {
				return err
			}
		}
		if r.DisableDevice && deviceID != 0 {
			if _, err := tx.Exec(ctx, `UPDATE push_devices SET disabled_at = $2, disabled_reason = 'unregistered by the provider'
				WHERE id = $1 AND disabled_at IS NULL`, deviceID, r.Now); err != nil {
				return err
			}
		}
		return settleOutbox(ctx, tx, outboxID)
	})
	return ok, translate(err, fmt.Sprintf("finish delivery %d", id))
}

// settleOutbox keeps the outbox row's status, attempts and last error in
// step with its deliveries: 'sent' once every delivery is final and one
// was sent, 'dead' when none was sent and one is dead, 'cancelled' when
// all were cancelled; 'sending' while any is not final.
func settleOutbox(ctx context.Context, tx pgx.Tx, outboxID int64) error {
	_, err := tx.Exec(ctx, `UPDATE notification_outbox o SET
			status = CASE
				WHEN a.open > 0 THEN 'sending'
				WHEN a.sent > 0 THEN 'sent'
				WHEN a.dead > 0 THEN 'dead'
				ELSE 'cancelled' END,
			attempts = a.attempts,
			last_error = a.last_error,
			sent_at = CASE WHEN a.open = 0 AND a.sent > 0 THEN coalesce(o.sent_at, a.sent_at) ELSE o.sent_at END
		FROM (SELECT count(*) FILTER (WHERE status NOT IN ('sent', 'dead', 'cancelled')) AS open,
				count(*) FILTER (WHERE status = 'sent') AS sent,
				count(*) FILTER (WHERE status = 'dead') AS dead,
				coalesce(sum(attempts), 0)::int AS attempts,
				max(sent_at) AS sent_at,
				(array_agg(last_error ORDER BY updated_at DESC) FILTER (WHERE last_error IS NOT NULL AND status <> 'sent'))[1] AS last_error
			FROM notification_deliveries WHERE outbox_id = $1) a
		WHERE o.id = $1`, outboxID)
	return err
}

func payloadString(raw json.RawMessage, key string) string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	switch v := m[key].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	}
	return ""
}

func keys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func uniq(ids []int64) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
