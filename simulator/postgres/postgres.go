package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/verify"
)

// provisionChunk is how many meters one INSERT carries.
const provisionChunk = 10_000

// Settings are what provisioning writes into meters.settings: how the
// gateway reaches the meter.
type Settings struct {
	// MQTT meters.
	Format   string `json:"format,omitempty"`   // "canonical" or "tasmota"
	Topic    string `json:"topic,omitempty"`    // the topic it publishes on
	Username string `json:"username,omitempty"` // its MQTT login (the external id)
	// Modbus meters.
	Address string `json:"address,omitempty"` // host:port of its Modbus TCP gateway
	UnitID  int    `json:"unit_id,omitempty"` // unit id behind the gateway
	// Simulated is always true: the meter belongs to a simulator fleet.
	Simulated bool `json:"simulated"`
}

// SettingsOf returns the settings provisioning stores for meter i.
func SettingsOf(f *simulator.Fleet, i int) Settings {
	m := f.Meter(i)
	s := Settings{Simulated: true}
	if m.Protocol == simulator.Modbus {
		s.Address, s.UnitID = m.Gateway, int(m.Unit)
		return s
	}
	s.Format, s.Username = m.Format.String(), f.Username(i)
	if m.Format == simulator.Tasmota {
		s.Topic = "tele/" + m.ExternalID + "/SENSOR"
	} else {
		s.Topic = "meters/" + f.Config().Tenant + "/" + m.ExternalID + "/reading"
	}
	return s
}

// Provisioned reports what Provision did.
type Provisioned struct {
	TenantID int64
	Meters   int // meters inserted or updated
}

// Provision creates or updates the fleet's tenant (code, name, time zone,
// currency) and its meters (external id, serial, model, protocol,
// settings, MQTT secret hash, expected interval), idempotently: run it
// again with the same fleet and nothing changes; with another seed the
// same external ids get the new serials, models and secrets. Meters are
// written in chunks of 10,000 with unnest, so 100,000 take seconds.
// installed_at is set to the fleet's Start (or kept if earlier), so
// backfilled history falls inside the meter's installation.
func Provision(ctx context.Context, pool *pgxpool.Pool, f *simulator.Fleet) (Provisioned, error) {
	c := f.Config()
	var res Provisioned
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO tenants (code, name, time_zone, currency) VALUES ($1, $2, $3, $4)
			ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone, currency = EXCLUDED.currency
			RETURNING id`, c.Tenant, c.TenantName, c.TimeZone, c.Currency).Scan(&res.TenantID)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", c.Tenant, err)
		}
		for start := 0; start < f.Len(); start += provisionChunk {
			end := min(start+provisionChunk, f.Len())
			n := end - start
			ext, serial, model, proto, settings := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			hashes := make([]*string, n)
			for k := range n {
				i := start + k
				m := f.Meter(i)
				ext[k], serial[k], model[k], proto[k] = m.ExternalID, m.Serial, m.Model, m.Protocol.String()
				b, err := json.Marshal(SettingsOf(f, i))
				if err != nil {
					return err
				}
				settings[k] = string(b)
				if m.Protocol == simulator.MQTT {
					h := f.SecretHash(i)
					hashes[k] = &h
				}
			}
			tag, err := tx.Exec(ctx, `
				INSERT INTO meters (tenant_id, external_id, serial, model, protocol, settings, mqtt_secret_hash, expected_interval, installed_at)
				SELECT $1, u.e, u.s, u.m, u.p, u.st::jsonb, u.h, $2::bigint * interval '1 microsecond', $3
				FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) AS u(e, s, m, p, st, h)
				ON CONFLICT (tenant_id, external_id) DO UPDATE SET
					serial = EXCLUDED.serial, model = EXCLUDED.model, protocol = EXCLUDED.protocol,
					settings = EXCLUDED.settings, mqtt_secret_hash = EXCLUDED.mqtt_secret_hash,
					expected_interval = EXCLUDED.expected_interval,
					installed_at = least(meters.installed_at, EXCLUDED.installed_at),
					removed_at = NULL, updated_at = now()`,
				res.TenantID, c.Interval.Microseconds(), c.Start, ext, serial, model, proto, settings, hashes)
			if err != nil {
				return fmt.Errorf("meters %d..%d: %w", start, end-1, err)
			}
			res.Meters += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return Provisioned{}, fmt.Errorf("provision: %w", err)
	}
	return res, nil
}

// Store reads a meterd database for verify. It implements verify.Store.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var _ verify.Store = (*Store)(nil)

// ErrNoTenant is returned when the tenant does not exist.
var ErrNoTenant = errors.New("tenant not found")

// MeterIDs implements verify.Store.
func (s *Store) MeterIDs(ctx context.Context, tenant string) (map[string]int64, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE code = $1)`, tenant).Scan(&exists); err != nil {
		return nil, fmt.Errorf("meter ids: %w", err)
	}
	if !exists {
		return nil, fmt.Errorf("meter ids: %w: %q (provision the fleet first)", ErrNoTenant, tenant)
	}
	rows, err := s.pool.Query(ctx, `SELECT m.external_id, m.id FROM meters m JOIN tenants t ON t.id = m.tenant_id WHERE t.code = $1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("meter ids: %w", err)
	}
	defer rows.Close()
	ids := map[string]int64{}
	for rows.Next() {
		var ref string
		var id int64
		if err := rows.Scan(&ref, &id); err != nil {
			return nil, fmt.Errorf("meter ids: %w", err)
		}
		ids[ref] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meter ids: %w", err)
	}
	return ids, nil
}

const readingColumns = `meter_id, ts, import_wh, export_wh, power_w`

func scanRow(rows pgx.Rows) (verify.Row, error) {
	var r verify.Row
	var imp, exp *int64
	var p *float32
	if err := rows.Scan(&r.MeterID, &r.Time, &imp, &exp, &p); err != nil {
		return r, err
	}
	r.Time = r.Time.UTC()
	if imp != nil {
		r.ImportWh, r.HasImport = *imp, true
	}
	if exp != nil {
		r.ExportWh, r.HasExport = *exp, true
	}
	if p != nil {
		r.PowerW, r.HasPower = *p, true
	}
	return r, nil
}

// Readings implements verify.Store. It streams one query ordered by the
// primary key.
func (s *Store) Readings(ctx context.Context, meterIDs []int64, from, to time.Time, fn func(verify.Row) error) error {
	if len(meterIDs) == 0 {
		return nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+readingColumns+` FROM readings
		WHERE meter_id = ANY($1) AND ts BETWEEN $2 AND $3 ORDER BY meter_id, ts`, meterIDs, from, to)
	if err != nil {
		return fmt.Errorf("readings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return fmt.Errorf("readings: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("readings: %w", err)
	}
	return nil
}

// ReadingsAt implements verify.Store.
func (s *Store) ReadingsAt(ctx context.Context, keys []verify.Key) ([]verify.Row, error) {
	ids := make([]int64, len(keys))
	ts := make([]time.Time, len(keys))
	for i, k := range keys {
		ids[i], ts[i] = k.MeterID, k.Time
	}
	rows, err := s.pool.Query(ctx, `SELECT r.meter_id, r.ts, r.import_wh, r.export_wh, r.power_w FROM readings r
		JOIN unnest($1::bigint[], $2::timestamptz[]) AS k(id, ts) ON r.meter_id = k.id AND r.ts = k.ts
		ORDER BY r.meter_id, r.ts`, ids, ts)
	if err != nil {
		return nil, fmt.Errorf("readings at: %w", err)
	}
	defer rows.Close()
	var out []verify.Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("readings at: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("readings at: %w", err)
	}
	return out, nil
}
