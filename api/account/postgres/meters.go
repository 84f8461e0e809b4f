package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
)

const meterSelect = `SELECT m.id, m.tenant_id, m.external_id, m.serial, m.model, m.protocol, m.settings, m.multiplier::text,
		m.expected_interval, m.mqtt_secret_hash IS NOT NULL, m.installed_at, m.removed_at,
		i.id, i.connection_id, i.installed_at
	FROM meters m LEFT JOIN meter_installations i ON i.meter_id = m.id AND i.removed_at IS NULL`

func scanMeter(r pgx.Row) (account.Meter, error) {
	var m account.Meter
	var mult string
	var instID, connID *int64
	var since *time.Time
	err := r.Scan(&m.ID, &m.TenantID, &m.ExternalID, &m.Serial, &m.Model, &m.Protocol, &m.Settings, &mult,
		&m.ExpectedInterval, &m.HasMQTTSecret, &m.InstalledAt, &m.RemovedAt, &instID, &connID, &since)
	if err != nil {
		return m, err
	}
	if m.Multiplier, err = decimal.NewFromString(mult); err != nil {
		return m, err
	}
	if instID != nil {
		m.Installation = &account.Installation{ID: *instID, ConnectionID: *connID, MeterID: m.ID,
			MeterExternalID: m.ExternalID, MeterSerial: m.Serial, InstalledAt: *since}
	}
	return m, nil
}

// CreateMeter implements account.Store.
func (s *Store) CreateMeter(ctx context.Context, nm account.NewMeter, e audit.Entry) (account.Meter, error) {
	var m account.Meter
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO meters (tenant_id, external_id, serial, model, protocol, settings,
				mqtt_secret_hash, multiplier, expected_interval)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric, $9) RETURNING id`,
			nm.TenantID, nm.ExternalID, nm.Serial, nm.Model, nm.Protocol, nm.Settings, nullText(nm.SecretHash),
			nm.Multiplier.String(), nm.ExpectedInterval).Scan(&id); err != nil {
			return err
		}
		if err := writeAudit(ctx, tx, e, nil, "meters", "id", id); err != nil {
			return err
		}
		var err error
		m, err = scanMeter(tx.QueryRow(ctx, meterSelect+` WHERE m.id = $1`, id))
		return err
	})
	return m, translate(err, "create meter")
}

// Meter implements account.Store.
func (s *Store) Meter(ctx context.Context, tenantID, id int64) (account.Meter, error) {
	m, err := scanMeter(s.pool.QueryRow(ctx, meterSelect+` WHERE m.tenant_id = $1 AND m.id = $2`, tenantID, id))
	return m, notFound(err, account.ErrMeterNotFound, "meter")
}

// ListMeters implements account.Store.
func (s *Store) ListMeters(ctx context.Context, tenantID int64, p account.Page) ([]account.Meter, error) {
	rows, err := s.pool.Query(ctx, meterSelect+` WHERE m.tenant_id = $1 AND m.id > $2 ORDER BY m.id LIMIT $3`, tenantID, p.After, p.Limit)
	if err != nil {
		return nil, translate(err, "list meters")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.Meter, error) { return scanMeter(r) })
	return list, translate(err, "list meters")
}

// SetMeterSecret implements account.Store.
func (s *Store) SetMeterSecret(ctx context.Context, tenantID, id int64, hash string, e audit.Entry) error {
	return translate(s.tx(ctx, func(tx pgx.Tx) error {
		before, err := auditpg.Snapshot(ctx, tx, "meters", "id", id)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE meters SET mqtt_secret_hash = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2`, tenantID, id, hash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return account.ErrMeterNotFound
		}
		e.After = map[string]any{"mqtt_secret_hash": "[rotated]"}
		return writeAudit(ctx, tx, e, before, "meters", "id", id)
	}), "set meter secret")
}
