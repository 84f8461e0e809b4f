package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrMeterNotFound is returned when a reference resolves to no active meter.
var ErrMeterNotFound = errors.New("meter not found")

// Meter is what the gateway needs to know about an installed meter.
type Meter struct {
	ID         int64
	TenantCode string // tenants.code
	ExternalID string // meters.external_id, the meter reference in topics
	Serial     string
	Model      string
	Protocol   string // mqtt, modbus or manual
	// SecretHash is meters.mqtt_secret_hash ("sha256:<hex>"), empty when
	// the meter has no MQTT login.
	SecretHash       string
	ExpectedInterval time.Duration
	Settings         []byte // meters.settings, raw JSON
}

const (
	meterColumns = `m.id, t.code, m.external_id, m.serial, m.model, m.protocol,
	coalesce(m.mqtt_secret_hash, ''),
	(extract(epoch FROM m.expected_interval) * 1000000)::bigint`
	meterFrom = `
FROM meters m JOIN tenants t ON t.id = m.tenant_id
WHERE m.removed_at IS NULL`
	meterSelect = `SELECT ` + meterColumns + `, m.settings::text` + meterFrom
)

func scanMeter(row pgx.CollectableRow) (Meter, error) {
	var m Meter
	var us int64
	var settings string
	err := row.Scan(&m.ID, &m.TenantCode, &m.ExternalID, &m.Serial, &m.Model, &m.Protocol, &m.SecretHash, &us, &settings)
	m.ExpectedInterval = time.Duration(us) * time.Microsecond
	m.Settings = []byte(settings)
	return m, err
}

// Meters returns every installed meter (removed_at IS NULL).
func (s *Store) Meters(ctx context.Context) ([]Meter, error) {
	rows, err := s.pool.Query(ctx, meterSelect+` ORDER BY m.id`)
	if err != nil {
		return nil, fmt.Errorf("load meters: %w", classify(err))
	}
	ms, err := pgx.CollectRows(rows, scanMeter)
	if err != nil {
		return nil, fmt.Errorf("load meters: %w", classify(err))
	}
	return ms, nil
}

// EachMeter calls fn with every installed meter, in id order and without
// its settings, as the rows arrive: a directory of 100 000 meters is never
// held as a whole. An error from fn stops the walk and is returned.
func (s *Store) EachMeter(ctx context.Context, fn func(Meter) error) error {
	rows, err := s.pool.Query(ctx, `SELECT `+meterColumns+meterFrom+` ORDER BY m.id`)
	if err != nil {
		return fmt.Errorf("load meters: %w", classify(err))
	}
	var (
		m  Meter
		us int64
	)
	_, err = pgx.ForEachRow(rows, []any{&m.ID, &m.TenantCode, &m.ExternalID, &m.Serial, &m.Model, &m.Protocol, &m.SecretHash, &us},
		func() error {
			m.ExpectedInterval = time.Duration(us) * time.Microsecond
			return fn(m)
		})
	if err != nil {
		return fmt.Errorf("load meters: %w", classify(err))
	}
	return nil
}

// MetersByExternalID returns the installed meters with this external id,
// in any tenant (a reference without a tenant is unambiguous only when
// exactly one is returned).
func (s *Store) MetersByExternalID(ctx context.Context, externalID string) ([]Meter, error) {
	rows, err := s.pool.Query(ctx, meterSelect+` AND m.external_id = $1 ORDER BY m.id`, externalID)
	if err != nil {
		return nil, fmt.Errorf("look up meter %s: %w", externalID, classify(err))
	}
	ms, err := pgx.CollectRows(rows, scanMeter)
	if err != nil {
		return nil, fmt.Errorf("look up meter %s: %w", externalID, classify(err))
	}
	return ms, nil
}

// MeterByRef returns the installed meter external_id of tenant code, or an
// error wrapping ErrMeterNotFound.
func (s *Store) MeterByRef(ctx context.Context, tenant, externalID string) (Meter, error) {
	rows, err := s.pool.Query(ctx, meterSelect+` AND t.code = $1 AND m.external_id = $2`, tenant, externalID)
	if err != nil {
		return Meter{}, fmt.Errorf("look up meter %s/%s: %w", tenant, externalID, classify(err))
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanMeter)
	if errors.Is(err, pgx.ErrNoRows) {
		return Meter{}, fmt.Errorf("look up meter %s/%s: %w", tenant, externalID, ErrMeterNotFound)
	}
	if err != nil {
		return Meter{}, fmt.Errorf("look up meter %s/%s: %w", tenant, externalID, classify(err))
	}
	return m, nil
}
