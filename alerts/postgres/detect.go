package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/detect"
	"github.com/meterd/meterd/meter"
)

var _ detect.Store = (*Store)(nil)

// ScanTenants implements detect.Store.
func (s *Store) ScanTenants(ctx context.Context) ([]detect.Tenant, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, time_zone FROM tenants ORDER BY id`)
	if err != nil {
		return nil, translate(err, "tenants")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (detect.Tenant, error) {
		var t detect.Tenant
		var zone string
		err := r.Scan(&t.ID, &zone)
		t.Zone = s.zone(zone)
		return t, err
	})
	return out, translate(err, "tenants")
}

// RollupZone implements detect.Store.
func (s *Store) RollupZone(ctx context.Context) (*time.Location, error) {
	var zone string
	if err := s.pool.QueryRow(ctx, `SELECT rollup_time_zone FROM meterd_storage`).Scan(&zone); err != nil {
		return nil, translate(err, "rollup zone")
	}
	return s.zone(zone), nil
}

// Meters implements detect.Store.
func (s *Store) Meters(ctx context.Context, tenantID int64) ([]detect.Meter, error) {
	rows, err := s.pool.Query(ctx, `SELECT m.id, m.tenant_id, m.external_id, m.model, m.multiplier::float8,
			extract(epoch FROM m.expected_interval)::float8, m.installed_at,
			coalesce(c.id, 0), coalesce(c.service, ''), coalesce(c.tariff_plan, ''), coalesce(c.sanctioned_load_kw, 0)::float8, coalesce(p.user_id, 0)
		FROM meters m
		LEFT JOIN meter_installations mi ON mi.meter_id = m.id AND mi.removed_at IS NULL
		LEFT JOIN connections c ON c.id = mi.connection_id
		LEFT JOIN properties p ON p.id = c.property_id
		WHERE m.tenant_id = $1 AND m.removed_at IS NULL
		ORDER BY m.id`, tenantID)
	if err != nil {
		return nil, translate(err, "meters")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (detect.Meter, error) {
		var m detect.Meter
		var interval float64
		var model string
		err := r.Scan(&m.ID, &m.TenantID, &m.Ref, &model, &m.Multiplier, &interval, &m.InstalledAt, &m.ConnectionID, &m.Service, &m.Plan, &m.SanctionedKW, &m.UserID)
		m.ExpectedInterval = time.Duration(interval * float64(time.Second))
		m.Kind = meter.KindOf(model)
		return m, err
	})
	return out, translate(err, "meters")
}

// Thresholds implements detect.Store.
func (s *Store) Thresholds(ctx context.Context, tenantID int64) (map[[2]string]detect.Thresholds, error) {
	rows, err := s.pool.Query(ctx, `SELECT service, tariff_plan, coalesce(daily_wh, 0), coalesce(monthly_wh, 0) FROM alert_thresholds WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return nil, translate(err, "thresholds")
	}
	out := map[[2]string]detect.Thresholds{}
	for rows.Next() {
		var svc, plan string
		var t detect.Thresholds
		if err := rows.Scan(&svc, &plan, &t.DailyWh, &t.MonthlyWh); err != nil {
			rows.Close()
			return nil, translate(err, "thresholds")
		}
		out[[2]string{svc, plan}] = t
	}
	return out, translate(rows.Err(), "thresholds")
}

// Hours implements detect.Store.
func (s *Store) Hours(ctx context.Context, meterIDs []int64, buckets []time.Time) ([]detect.MeterHour, error) {
	rows, err := s.pool.Query(ctx, `SELECT h.meter_id, h.bucket, coalesce(h.import_delta_wh, 0), coalesce(h.export_delta_wh, 0),
			coalesce(h.max_power_w, 0)::float8, coalesce(h.min_power_w, 0)::float8, coalesce(h.avg_power_w, 0), h.power_samples, h.samples
		FROM readings_hourly h WHERE h.meter_id = ANY($1) AND h.bucket = ANY($2)`, meterIDs, buckets)
	if err != nil {
		return nil, translate(err, "hourly rollups")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (detect.MeterHour, error) {
		var h detect.MeterHour
		err := r.Scan(&h.MeterID, &h.Bucket, &h.ImportWh, &h.ExportWh, &h.MaxPowerW, &h.MinPowerW, &h.AvgPowerW, &h.PowerSamples, &h.Samples)
		h.Bucket = h.Bucket.UTC()
		return h, err
	})
	return out, translate(err, "hourly rollups")
}

// Usage implements detect.Store: import energy over the time the daily
// rollups span, and the export, per meter.
func (s *Store) Usage(ctx context.Context, meterIDs []int64, from, to time.Time) (map[int64]detect.Usage, error) {
	rows, err := s.pool.Query(ctx, `SELECT meter_id,
			sum(greatest(import_delta_wh, 0))::float8 / greatest(sum(extract(epoch FROM last_ts - first_ts)) / 3600, 1),
			coalesce(sum(greatest(export_delta_wh, 0)), 0)::bigint
		FROM readings_daily WHERE meter_id = ANY($1) AND bucket >= $2 AND bucket < $3 GROUP BY meter_id`, meterIDs, from, to)
	if err != nil {
		return nil, translate(err, "meter usage")
	}
	out := map[int64]detect.Usage{}
	for rows.Next() {
		var id int64
		var u detect.Usage
		if err := rows.Scan(&id, &u.MeanImportW, &u.ExportWh); err != nil {
			rows.Close()
			return nil, translate(err, "meter usage")
		}
		out[id] = u
	}
	return out, translate(rows.Err(), "meter usage")
}

// Days implements detect.Store: the daily rollups of meter ids [lo, hi],
// streamed in (meter, day) order along the primary key. Rows arrive in
// PostgreSQL's binary format and are decoded by hand (rowDecoder): a first
// scan reads millions of them, and pgx's generic Scan would cost more than
// the rules.
func (s *Store) Days(ctx context.Context, lo, hi int64, from, to time.Time, fn func(int64, []detect.Day) error) error {
	rows, err := s.pool.Query(ctx, `SELECT meter_id, bucket, first_ts, last_ts, first_import_wh, last_import_wh,
			first_export_wh, last_export_wh, max_power_w::float8, samples
		FROM readings_daily WHERE meter_id BETWEEN $1 AND $2 AND bucket >= $3 AND bucket < $4
		ORDER BY meter_id, bucket`, lo, hi, from, to)
	if err != nil {
		return translate(err, "daily rollups")
	}
	defer rows.Close()
	binary := true
	for _, fd := range rows.FieldDescriptions() {
		binary = binary && fd.Format == pgx.BinaryFormatCode
	}
	var cur int64 = -1
	var days []detect.Day
	for rows.Next() {
		var id int64
		var d detect.Day
		if binary {
			var ok bool
			if id, d, ok = decodeDay(rows.RawValues()); !ok {
				return fmt.Errorf("daily rollups: unexpected binary row")
			}
		} else if id, d, err = scanDay(rows); err != nil {
			return translate(err, "daily rollups")
		}
		if id != cur {
			if cur >= 0 {
				if err := fn(cur, days); err != nil {
					return err
				}
			}
			cur, days = id, days[:0:0]
		}
		days = append(days, d)
	}
	if err := rows.Err(); err != nil {
		return translate(err, "daily rollups")
	}
	if cur >= 0 {
		return fn(cur, days)
	}
	return nil
}

// pgEpoch is where PostgreSQL's binary timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func i8(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

func ts8(b []byte) (time.Time, bool) {
	us, ok := i8(b)
	return pgEpoch.Add(time.Duration(us) * time.Microsecond), ok
}

// decodeDay decodes a binary row of the Days query: int8, timestamptz ×3,
// int8 ×4 (nullable), float8 (nullable), int8.
func decodeDay(v [][]byte) (int64, detect.Day, bool) {
	var d detect.Day
	if len(v) != 10 {
		return 0, d, false
	}
	id, ok1 := i8(v[0])
	b, ok2 := ts8(v[1])
	f, ok3 := ts8(v[2])
	l, ok4 := ts8(v[3])
	n, ok5 := i8(v[9])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return 0, d, false
	}
	d.Bucket, d.FirstTS, d.LastTS, d.Samples = b, f, l, n
	if v[4] != nil && v[5] != nil {
		d.FirstImport, _ = i8(v[4])
		d.LastImport, _ = i8(v[5])
		d.HasImport = true
	}
	if v[6] != nil && v[7] != nil {
		d.FirstExport, _ = i8(v[6])
		d.LastExport, _ = i8(v[7])
		d.HasExport = true
	}
	if v[8] != nil {
		if len(v[8]) != 8 {
			return 0, d, false
		}
		d.MaxPowerW, d.HasPower = math.Float64frombits(binary.BigEndian.Uint64(v[8])), true
	}
	return id, d, true
}

// scanDay is decodeDay for text-format rows (simple protocol).
func scanDay(rows pgx.Rows) (int64, detect.Day, error) {
	var id int64
	var d detect.Day
	var fi, li, fe, le *int64
	var mp *float64
	if err := rows.Scan(&id, &d.Bucket, &d.FirstTS, &d.LastTS, &fi, &li, &fe, &le, &mp, &d.Samples); err != nil {
		return 0, d, err
	}
	d.Bucket, d.FirstTS, d.LastTS = d.Bucket.UTC(), d.FirstTS.UTC(), d.LastTS.UTC()
	if fi != nil && li != nil {
		d.FirstImport, d.LastImport, d.HasImport = *fi, *li, true
	}
	if fe != nil && le != nil {
		d.FirstExport, d.LastExport, d.HasExport = *fe, *le, true
	}
	if mp != nil {
		d.MaxPowerW, d.HasPower = *mp, true
	}
	return id, d, nil
}

// CounterEvents implements detect.Store.
func (s *Store) CounterEvents(ctx context.Context, tenantID int64, from, to time.Time) (map[int64][]detect.CounterEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT e.meter_id, e.register, e.ts, e.prev_ts, e.kind, e.prev_wh, e.value_wh
		FROM counter_events e JOIN meters m ON m.id = e.meter_id
		WHERE m.tenant_id = $1 AND e.ts BETWEEN $2 AND $3`, tenantID, from, to)
	if err != nil {
		return nil, translate(err, "counter events")
	}
	out := map[int64][]detect.CounterEvent{}
	for rows.Next() {
		var id int64
		var e detect.CounterEvent
		if err := rows.Scan(&id, &e.Register, &e.TS, &e.PrevTS, &e.Kind, &e.PrevWh, &e.ValueWh); err != nil {
			rows.Close()
			return nil, translate(err, "counter events")
		}
		out[id] = append(out[id], e)
	}
	return out, translate(rows.Err(), "counter events")
}

// LastSeen implements detect.Store.
func (s *Store) LastSeen(ctx context.Context, tenantID int64) (map[int64]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT l.meter_id, l.last_seen FROM meter_latest l JOIN meters m ON m.id = l.meter_id WHERE m.tenant_id = $1`, tenantID)
	if err != nil {
		return nil, translate(err, "last seen")
	}
	out := map[int64]time.Time{}
	for rows.Next() {
		var id int64
		var t time.Time
		if err := rows.Scan(&id, &t); err != nil {
			rows.Close()
			return nil, translate(err, "last seen")
		}
		out[id] = t
	}
	return out, translate(rows.Err(), "last seen")
}

// Watermark implements detect.Store.
func (s *Store) Watermark(ctx context.Context, tenantID int64, scan string) (time.Time, bool, error) {
	var t time.Time
	err := s.pool.QueryRow(ctx, `SELECT watermark FROM alert_scan_state WHERE tenant_id = $1 AND scan = $2`, tenantID, scan).Scan(&t)
	if err == pgx.ErrNoRows {
		return t, false, nil
	}
	return t, err == nil, translate(err, "scan watermark")
}

// SetWatermark implements detect.Store.
func (s *Store) SetWatermark(ctx context.Context, tenantID int64, scan string, to, now time.Time, st detect.ScanStats) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO alert_scan_state (tenant_id, scan, watermark, last_run_at, meters, findings, took_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, scan) DO UPDATE SET watermark = greatest(alert_scan_state.watermark, EXCLUDED.watermark),
			last_run_at = EXCLUDED.last_run_at, meters = EXCLUDED.meters, findings = EXCLUDED.findings, took_ms = EXCLUDED.took_ms`,
		tenantID, scan, to, now, st.Meters, st.Findings, st.Took.Milliseconds())
	return translate(err, "set scan watermark")
}

// meterContext is where a meter is installed, for alerts and messages.
type meterContext struct {
	ref          string
	connectionID int64
	consumerCode string
	userID       int64
	kind         meter.Kind
}

// Apply implements detect.Store.
func (s *Store) Apply(ctx context.Context, now time.Time, findings []alerts.Finding, clears []alerts.Clear) (int, error) {
	if len(findings) == 0 && len(clears) == 0 {
		return 0, nil
	}
	opened := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if len(findings) > 0 {
			n, err := applyFindings(ctx, tx, now, findings)
			if err != nil {
				return err
			}
			opened = n
		}
		byKind := map[alerts.Kind][]alerts.Clear{}
		for _, c := range clears {
			if c.Kind.AutoResolves() {
				byKind[c.Kind] = append(byKind[c.Kind], c)
			}
		}
		for k, cs := range byKind {
			ids := make([]int64, len(cs))
			ats := make([]time.Time, len(cs))
			for i, c := range cs {
				ids[i], ats[i] = c.MeterID, c.At
			}
			if _, err := tx.Exec(ctx, `UPDATE alerts a SET status = 'resolved', resolved_at = $4, resolution = 'auto', updated_at = $4,
					note = CASE WHEN a.note = '' THEN 'resolved automatically: the condition cleared' ELSE a.note END
				FROM unnest($2::bigint[], $3::timestamptz[]) AS c(m, at)
				WHERE a.meter_id = c.m AND a.kind = $1 AND a.status <> 'resolved' AND a.last_seen_at < c.at`, string(k), ids, ats, now); err != nil {
				return err
			}
		}
		return nil
	})
	return opened, translate(err, "apply findings")
}

func applyFindings(ctx context.Context, tx pgx.Tx, now time.Time, findings []alerts.Finding) (int, error) {
	ids := make([]int64, 0, len(findings))
	for _, f := range findings {
		ids = append(ids, f.MeterID)
	}
	rows, err := tx.Query(ctx, `SELECT m.id, m.external_id, m.model, coalesce(mi.connection_id, 0), coalesce(c.consumer_code, ''), coalesce(p.user_id, 0)
		FROM meters m
		LEFT JOIN meter_installations mi ON mi.meter_id = m.id AND mi.removed_at IS NULL
		LEFT JOIN connections c ON c.id = mi.connection_id
		LEFT JOIN properties p ON p.id = c.property_id
		WHERE m.id = ANY($1)`, uniq(ids))
	if err != nil {
		return 0, err
	}
	where := map[int64]meterContext{}
	for rows.Next() {
		var id int64
		var mc meterContext
		var model string
		if err := rows.Scan(&id, &mc.ref, &model, &mc.connectionID, &mc.consumerCode, &mc.userID); err != nil {
			rows.Close()
			return 0, err
		}
		mc.kind = meter.KindOf(model)
		where[id] = mc
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var b pgx.Batch
	for _, f := range findings {
		mc := where[f.MeterID]
		ev, err := json.Marshal(f.Evidence)
		if err != nil {
			return 0, err
		}
		if f.Evidence == nil {
			ev = []byte("{}")
		}
		b.Queue(`INSERT INTO alerts (tenant_id, meter_id, connection_id, user_id, kind, severity, summary, observed, expected, unit, evidence,
				first_seen_at, last_seen_at, opened_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $13)
			ON CONFLICT (meter_id, kind) WHERE status <> 'resolved' DO UPDATE SET
				severity = CASE WHEN EXCLUDED.severity = 'critical' THEN 'critical' ELSE alerts.severity END,
				summary = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.summary ELSE alerts.summary END,
				observed = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.observed ELSE alerts.observed END,
				expected = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.expected ELSE alerts.expected END,
				evidence = CASE WHEN EXCLUDED.last_seen_at >= alerts.last_seen_at THEN EXCLUDED.evidence ELSE alerts.evidence END,
				first_seen_at = least(alerts.first_seen_at, EXCLUDED.first_seen_at),
				last_seen_at = greatest(alerts.last_seen_at, EXCLUDED.last_seen_at),
				occurrences = alerts.occurrences + 1,
				updated_at = EXCLUDED.updated_at
			RETURNING id, xmax = 0`,
			f.TenantID, f.MeterID, nullID(mc.connectionID), nullID(mc.userID), string(f.Kind), string(f.Severity), truncate(f.Summary, 500),
			f.Observed, f.Expected, f.Unit, ev, f.At, now)
	}
	br := tx.SendBatch(ctx, &b)
	type opened struct {
		id int64
		f  alerts.Finding
	}
	var news []opened
	for _, f := range findings {
		var id int64
		var inserted bool
		if err := br.QueryRow().Scan(&id, &inserted); err != nil {
			_ = br.Close()
			return 0, err
		}
		if inserted {
			news = append(news, opened{id, f})
		}
	}
	if err := br.Close(); err != nil {
		return 0, err
	}
	if len(news) == 0 {
		return 0, nil
	}
	// Tell people about the alerts that opened: the consumer about their
	// usage, the metering staff about the device.
	staff := map[int64][]int64{}
	var tenants, users []int64
	var events, keys, payloads []string
	var ats []time.Time
	for _, o := range news {
		mc := where[o.f.MeterID]
		p, err := json.Marshal(map[string]any{"alert_id": o.id, "kind": string(o.f.Kind), "meter_ref": mc.ref, "meter_kind": mc.kind.String(), "consumer_code": mc.consumerCode,
			"summary": o.f.Summary, "observed": o.f.Observed, "expected": o.f.Expected, "unit": o.f.Unit, "at": o.f.At.UTC()})
		if err != nil {
			return 0, err
		}
		add := func(user int64, event, key string) {
			tenants, users, events = append(tenants, o.f.TenantID), append(users, user), append(events, event)
			keys, payloads, ats = append(keys, key), append(payloads, string(p)), append(ats, now)
		}
		if o.f.Kind.ConsumerFacing() && mc.userID != 0 {
			add(mc.userID, alerts.EventUsageAbnormal, fmt.Sprintf("alert:%d:user:%d", o.id, mc.userID))
		}
		if !o.f.Kind.ConsumerFacing() || o.f.Kind == alerts.KindLoadAboveSanctioned {
			ids, ok := staff[o.f.TenantID]
			if !ok {
				if ids, err = meteringStaff(ctx, tx, o.f.TenantID); err != nil {
					return 0, err
				}
				staff[o.f.TenantID] = ids
			}
			for _, u := range ids {
				add(u, alerts.EventMeterAlert, fmt.Sprintf("alert:%d:staff:%d", o.id, u))
			}
		}
	}
	if len(users) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO notification_outbox (tenant_id, user_id, event, payload, dedupe_key, available_at)
			SELECT t, u, e, p::jsonb, k, a FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) AS x(t, u, e, p, k, a)
			ON CONFLICT (dedupe_key) DO NOTHING`, tenants, users, events, payloads, keys, ats); err != nil {
			return 0, err
		}
	}
	return len(news), nil
}

// meteringStaff are the officials of the metering department, or the
// admins when there are none.
func meteringStaff(ctx context.Context, tx pgx.Tx, tenantID int64) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM users WHERE tenant_id = $1 AND status = 'active'
		AND ((role = 'official' AND department = 'metering')
		     OR (role = 'admin' AND NOT EXISTS (SELECT 1 FROM users o WHERE o.tenant_id = $1 AND o.status = 'active' AND o.role = 'official' AND o.department = 'metering')))
		ORDER BY id`, tenantID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// ResolveQuiet implements detect.Store.
func (s *Store) ResolveQuiet(ctx context.Context, tenantID int64, kind alerts.Kind, before, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE alerts SET status = 'resolved', resolved_at = $4, resolution = 'auto', updated_at = $4,
			note = CASE WHEN note = '' THEN 'resolved automatically: not seen again' ELSE note END
		WHERE tenant_id = $1 AND kind = $2 AND status <> 'resolved' AND last_seen_at < $3`, tenantID, string(kind), before, now)
	if err != nil {
		return 0, translate(err, "resolve quiet alerts")
	}
	return int(tag.RowsAffected()), nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
