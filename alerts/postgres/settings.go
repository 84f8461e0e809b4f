package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/notify"
)

// Preferences returns a user's preference rows ("*" first).
func (s *Store) Preferences(ctx context.Context, tenantID, userID int64) ([]alerts.Preference, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2)`, tenantID, userID).Scan(&exists); err != nil {
		return nil, translate(err, "preferences")
	}
	if !exists {
		return nil, fmt.Errorf("user %d: %w", userID, alerts.ErrDeviceNotFound)
	}
	m, err := loadPreferences(ctx, s.pool, []int64{userID})
	if err != nil {
		return nil, translate(err, "preferences")
	}
	p := m[userID]
	var out []alerts.Preference
	if p.Default.Event != "" {
		out = append(out, p.Default)
	}
	for _, e := range alerts.Events() {
		if x, ok := p.Events[e.Name]; ok {
			out = append(out, x)
		}
	}
	return out, nil
}

// SetPreference stores a user's preference row (validated by the caller),
// replacing the one for the same event; audited.
func (s *Store) SetPreference(ctx context.Context, tenantID, userID int64, p alerts.Preference, now time.Time, actor Actor) error {
	var channels []string
	if p.ChannelsSet {
		channels = make([]string, 0, len(p.Channels))
		for _, c := range p.Channels {
			channels = append(channels, string(c))
		}
	}
	var from, to pgtype.Time
	if p.Quiet != nil {
		from, to = pgTime(p.Quiet.From), pgTime(p.Quiet.To)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO notification_preferences (tenant_id, user_id, event, channels, quiet_from, quiet_to, locale, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8)
			ON CONFLICT (user_id, event) DO UPDATE SET channels = EXCLUDED.channels, quiet_from = EXCLUDED.quiet_from,
				quiet_to = EXCLUDED.quiet_to, locale = EXCLUDED.locale, updated_at = EXCLUDED.updated_at`,
			tenantID, userID, p.Event, channels, from, to, p.Locale, now); err != nil {
			return err
		}
		after := map[string]any{"event": p.Event, "channels": channels, "locale": p.Locale}
		if p.Quiet != nil {
			after["quiet_hours"] = p.Quiet.From.String() + "-" + p.Quiet.To.String()
		}
		return writeAudit(ctx, tx, tenantID, actor, "notification_preference.set", "user", userID, nil, after)
	})
	return translate(err, "set preference")
}

// RegisterDevice stores a push device (its token sealed by the caller with
// notify.DeviceAAD(tokenHash)); a token registered before is moved to this
// user and enabled again.
func (s *Store) RegisterDevice(ctx context.Context, tenantID, userID int64, platform, label string, tokenHash, sealed []byte, now time.Time) (alerts.Device, error) {
	var d alerts.Device
	err := s.pool.QueryRow(ctx, `INSERT INTO push_devices (tenant_id, user_id, platform, label, token_hash, token_enc, created_at, last_seen_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
		ON CONFLICT (token_hash) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, user_id = EXCLUDED.user_id, platform = EXCLUDED.platform,
			label = EXCLUDED.label, token_enc = EXCLUDED.token_enc, last_seen_at = EXCLUDED.last_seen_at, disabled_at = NULL, disabled_reason = NULL
		RETURNING id, tenant_id, user_id, platform, label, created_at, last_seen_at, disabled_at IS NOT NULL`,
		tenantID, userID, platform, label, tokenHash, sealed, now).
		Scan(&d.ID, &d.TenantID, &d.UserID, &d.Platform, &d.Label, &d.CreatedAt, &d.LastSeenAt, &d.Disabled)
	return d, translate(err, "register device")
}

// Devices lists a user's push devices.
func (s *Store) Devices(ctx context.Context, tenantID, userID int64) ([]alerts.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, user_id, platform, label, created_at, last_seen_at, disabled_at IS NOT NULL
		FROM push_devices WHERE tenant_id = $1 AND user_id = $2 ORDER BY id`, tenantID, userID)
	if err != nil {
		return nil, translate(err, "devices")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (alerts.Device, error) {
		var d alerts.Device
		err := r.Scan(&d.ID, &d.TenantID, &d.UserID, &d.Platform, &d.Label, &d.CreatedAt, &d.LastSeenAt, &d.Disabled)
		return d, err
	})
	return out, translate(err, "devices")
}

// RemoveDevice disables a user's push device; alerts.ErrDeviceNotFound when
// it is not theirs.
func (s *Store) RemoveDevice(ctx context.Context, tenantID, userID, id int64, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE push_devices SET disabled_at = coalesce(disabled_at, $4), disabled_reason = coalesce(disabled_reason, 'removed by the user')
		WHERE tenant_id = $1 AND user_id = $2 AND id = $3`, tenantID, userID, id, now)
	if err != nil {
		return translate(err, "remove device")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("device %d: %w", id, alerts.ErrDeviceNotFound)
	}
	return nil
}

// Threshold is a row of alert_thresholds.
type Threshold = alerts.Threshold

// ThresholdRows lists a tenant's consumption thresholds.
func (s *Store) ThresholdRows(ctx context.Context, tenantID int64) ([]Threshold, error) {
	rows, err := s.pool.Query(ctx, `SELECT service, tariff_plan, coalesce(daily_wh, 0), coalesce(monthly_wh, 0), updated_at
		FROM alert_thresholds WHERE tenant_id = $1 ORDER BY service, tariff_plan`, tenantID)
	if err != nil {
		return nil, translate(err, "thresholds")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Threshold, error) {
		var t Threshold
		err := r.Scan(&t.Service, &t.Plan, &t.DailyWh, &t.MonthlyWh, &t.UpdatedAt)
		return t, err
	})
	return out, translate(err, "thresholds")
}

// SetThreshold stores (or, with both amounts 0, deletes) a plan's
// thresholds; audited.
func (s *Store) SetThreshold(ctx context.Context, tenantID int64, t Threshold, now time.Time, actor Actor) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if t.DailyWh == 0 && t.MonthlyWh == 0 {
			_, err = tx.Exec(ctx, `DELETE FROM alert_thresholds WHERE tenant_id = $1 AND service = $2 AND tariff_plan = $3`, tenantID, t.Service, t.Plan)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO alert_thresholds (tenant_id, service, tariff_plan, daily_wh, monthly_wh, updated_at, updated_by)
				VALUES ($1, $2, $3, nullif($4, 0), nullif($5, 0), $6, $7)
				ON CONFLICT (tenant_id, service, tariff_plan) DO UPDATE SET daily_wh = EXCLUDED.daily_wh, monthly_wh = EXCLUDED.monthly_wh,
					updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
				tenantID, t.Service, t.Plan, t.DailyWh, t.MonthlyWh, now, nullID(actor.UserID))
		}
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, tenantID, actor, "alert_threshold.set", "tenant", tenantID, nil,
			map[string]any{"service": t.Service, "plan": t.Plan, "daily_wh": t.DailyWh, "monthly_wh": t.MonthlyWh})
	})
	return translate(err, "set threshold")
}

// Template is a tenant's template override.
type Template = alerts.TemplateOverride

// Templates lists a tenant's template overrides.
func (s *Store) Templates(ctx context.Context, tenantID int64) ([]Template, error) {
	rows, err := s.pool.Query(ctx, `SELECT event, locale, source, updated_at FROM notification_templates WHERE tenant_id = $1 ORDER BY event, locale`, tenantID)
	if err != nil {
		return nil, translate(err, "templates")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Template, error) {
		var t Template
		err := r.Scan(&t.Event, &t.Locale, &t.Source, &t.UpdatedAt)
		return t, err
	})
	return out, translate(err, "templates")
}

// SetTemplate stores (source "" deletes) a template override (validated
// by the caller); audited.
func (s *Store) SetTemplate(ctx context.Context, tenantID int64, t Template, now time.Time, actor Actor) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if t.Source == "" {
			_, err = tx.Exec(ctx, `DELETE FROM notification_templates WHERE tenant_id = $1 AND event = $2 AND locale = $3`, tenantID, t.Event, t.Locale)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO notification_templates (tenant_id, event, locale, source, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (tenant_id, event, locale) DO UPDATE SET source = EXCLUDED.source, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
				tenantID, t.Event, t.Locale, t.Source, now, nullID(actor.UserID))
		}
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, tenantID, actor, "notification_template.set", "tenant", tenantID, nil,
			map[string]any{"event": t.Event, "locale": t.Locale, "bytes": len(t.Source)})
	})
	return translate(err, "set template")
}

// Branding returns a tenant's branding (the defaults when it has none).
func (s *Store) Branding(ctx context.Context, tenantID int64) (notify.Branding, error) {
	b, err := branding(ctx, s.pool, tenantID)
	if err != nil {
		return notify.Branding{}, translate(err, "branding")
	}
	if b == nil {
		return notify.Branding{Color: "#1f6feb", DefaultLocale: "en"}, nil
	}
	return *b, nil
}

// SetBranding stores a tenant's branding; audited.
func (s *Store) SetBranding(ctx context.Context, tenantID int64, b notify.Branding, now time.Time, actor Actor) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO notification_branding (tenant_id, display_name, from_address, reply_to, support_email, support_phone,
				website_url, logo_url, brand_color, footer, default_locale, updated_at)
			VALUES ($1, $2, nullif($3, ''), nullif($4, ''), $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (tenant_id) DO UPDATE SET display_name = EXCLUDED.display_name, from_address = EXCLUDED.from_address,
				reply_to = EXCLUDED.reply_to, support_email = EXCLUDED.support_email, support_phone = EXCLUDED.support_phone,
				website_url = EXCLUDED.website_url, logo_url = EXCLUDED.logo_url, brand_color = EXCLUDED.brand_color,
				footer = EXCLUDED.footer, default_locale = EXCLUDED.default_locale, updated_at = EXCLUDED.updated_at`,
			tenantID, b.DisplayName, b.FromAddress, b.ReplyTo, b.SupportEmail, b.SupportPhone, b.WebsiteURL, b.LogoURL, b.Color, b.Footer, b.DefaultLocale, now); err != nil {
			return err
		}
		return writeAudit(ctx, tx, tenantID, actor, "notification_branding.set", "tenant", tenantID, nil,
			map[string]any{"display_name": b.DisplayName, "from_address": b.FromAddress, "default_locale": b.DefaultLocale})
	})
	return translate(err, "set branding")
}
