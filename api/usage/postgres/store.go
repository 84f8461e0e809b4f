package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
	"github.com/meterd/meterd/api/usage"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/meter"

	"github.com/meterd/meterd/api/internal/sqlwhere"
)

// PartitionEnsurer creates readings partitions for a time range
// (schema.Upkeep.EnsurePartitions).
type PartitionEnsurer func(ctx context.Context, from, to time.Time) error

// Store is usage.Store on a pgx pool.
type Store struct {
	pool       *pgxpool.Pool
	partitions PartitionEnsurer

	tzOnce sync.Once
	tz     *time.Location
	tzErr  error
}

var _ usage.Store = (*Store)(nil)

// New returns a Store. partitions is called when a manual reading falls
// where no readings partition exists yet (postgres profile); nil refuses
// such readings.
func New(pool *pgxpool.Pool, partitions PartitionEnsurer) *Store {
	return &Store{pool: pool, partitions: partitions}
}

func sourceName(s int16) string { return meter.Source(s).String() }

// Live implements usage.Store.
func (s *Store) Live(ctx context.Context, scope account.Scope, f usage.LiveFilter, p account.Page) ([]usage.Live, error) {
	var w sqlwhere.Where
	w.Add("m.tenant_id = ?", scope.TenantID)
	// A consumer's meters are found from their properties (index on
	// properties.user_id), staff's from the tenant's meters.
	from := `meters m
		LEFT JOIN meter_installations i ON i.meter_id = m.id AND i.removed_at IS NULL
		LEFT JOIN connections c ON c.id = i.connection_id
		LEFT JOIN properties pr ON pr.id = c.property_id`
	if scope.UserID != 0 {
		from = `properties pr
		JOIN connections c ON c.property_id = pr.id AND c.status <> 'closed'
		JOIN meter_installations i ON i.connection_id = c.id AND i.removed_at IS NULL
		JOIN meters m ON m.id = i.meter_id`
		w.Add("pr.user_id = ?", scope.UserID)
	}
	if f.MeterID != 0 {
		w.Add("m.id = ?", f.MeterID)
	}
	if f.ConnectionID != 0 {
		w.Add("c.id = ?", f.ConnectionID)
	}
	w.Add("m.id > ?", p.After)
	rows, err := s.pool.Query(ctx, `SELECT m.id, m.external_id, m.serial, m.model, m.protocol, m.expected_interval,
			coalesce(c.id, 0), coalesce(c.property_id, 0), coalesce(c.consumer_code, ''),
			l.ts, l.received_at, l.last_seen, l.import_wh, l.export_wh, l.power_w, l.voltage_v, l.current_a,
			l.frequency_hz, l.power_factor, l.source
		FROM `+from+`
		LEFT JOIN meter_latest l ON l.meter_id = m.id
		WHERE `+w.String()+` ORDER BY m.id LIMIT `+w.Next(p.Limit), w.Args()...)
	if err != nil {
		return nil, fmt.Errorf("%w: live usage: %w", usage.ErrDataAccess, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (usage.Live, error) {
		var l usage.Live
		var ts, recv, seen *time.Time
		var imp, exp *int64
		var pw, v, a, hz, pf *float32
		var src *int16
		var model string
		if err := r.Scan(&l.MeterID, &l.ExternalID, &l.Serial, &model, &l.Protocol, &l.ExpectedInterval,
			&l.ConnectionID, &l.PropertyID, &l.ConsumerCode,
			&ts, &recv, &seen, &imp, &exp, &pw, &v, &a, &hz, &pf, &src); err != nil {
			return l, err
		}
		l.Kind = meter.KindOf(model)
		if ts != nil {
			l.Latest = &usage.Reading{Time: ts.UTC(), ReceivedAt: recv.UTC(), ImportWh: imp, ExportWh: exp,
				PowerW: f64(pw), VoltageV: f64(v), CurrentA: f64(a), FrequencyHz: f64(hz), PowerFactor: f64(pf), Source: sourceName(*src)}
			st := seen.UTC()
			l.LastSeen = &st
		}
		return l, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: live usage: %w", usage.ErrDataAccess, err)
	}
	return list, nil
}

// i64 returns a new pointer to v's value (scan targets are reused).
func i64(v pgtype.Int8) *int64 {
	if !v.Valid {
		return nil
	}
	x := v.Int64
	return &x
}

func f64(p *float32) *float64 {
	if p == nil {
		return nil
	}
	v := float64(*p)
	return &v
}

// History implements usage.Store: the spans and their buckets in one
// query, each span's buckets read from the rollup by its primary key.
func (s *Store) History(ctx context.Context, scope account.Scope, meterID, connectionID int64, g usage.Granularity, from, to time.Time, loc *time.Location) ([]usage.SpanBuckets, error) {
	table, unit := "readings_daily", "day"
	if g == usage.Hour {
		table, unit = "readings_hourly", "hour"
	}
	var spans string
	var w *sqlwhere.Where
	if connectionID == 0 && !scope.Owned() {
		// Staff asking for a meter: its whole history.
		w = &sqlwhere.Where{}
		w.Add("m.tenant_id = ?", scope.TenantID)
		w.Add("m.id = ?", meterID)
		spans = `SELECT m.id AS meter_id, m.model, 0::bigint AS connection_id, NULL::timestamptz AS installed_at,
				NULL::timestamptz AS removed_at, NULL::bigint AS initial_import_wh, 0::float8 AS load
			FROM meters m WHERE ` + w.String()
	} else {
		w = installationScope(scope, meterID, connectionID)
		spans = `SELECT i.meter_id, m.model, i.connection_id, i.installed_at, i.removed_at, i.initial_import_wh,
				coalesce(c.sanctioned_load_kw, 0)::float8 AS load
			FROM meter_installations i
			JOIN meters m ON m.id = i.meter_id
			JOIN connections c ON c.id = i.connection_id
			JOIN properties p ON p.id = c.property_id
			WHERE ` + w.String()
	}
	pFrom, pTo, pTZ := w.Next(from), w.Next(to), w.Next(loc.String())
	cols := `bucket, first_ts, last_ts, first_import_wh, last_import_wh, last_export_wh, import_delta_wh, export_delta_wh,
		max_power_w, power_sum_w, power_samples, samples`
	lo := `greatest(` + pFrom + `::timestamptz, date_trunc('` + unit + `', coalesce(s.installed_at, '-infinity'), ` + pTZ + `))`
	q := `WITH s AS (` + spans + `)
		SELECT s.meter_id, s.model, s.connection_id, s.installed_at, s.removed_at, s.initial_import_wh, s.load, b.*
		FROM s LEFT JOIN LATERAL (
			(SELECT true AS is_prev, ` + cols + ` FROM ` + table + ` r
				WHERE r.meter_id = s.meter_id AND r.bucket >= date_trunc('hour', coalesce(s.installed_at, '-infinity'), ` + pTZ + `) AND r.bucket < ` + lo + `
				ORDER BY r.bucket DESC LIMIT 1)
			UNION ALL
			(SELECT false, ` + cols + ` FROM ` + table + ` r
				WHERE r.meter_id = s.meter_id AND r.bucket >= ` + lo + `
				  AND r.bucket < least(` + pTo + `::timestamptz, coalesce(s.removed_at, 'infinity'))
				ORDER BY r.bucket)
		) b ON true
		ORDER BY s.installed_at NULLS FIRST, s.meter_id, b.is_prev DESC NULLS LAST, b.bucket`
	rows, err := s.pool.Query(ctx, q, w.Args()...)
	if err != nil {
		return nil, fmt.Errorf("%w: history: %w", usage.ErrDataAccess, err)
	}
	defer rows.Close()
	var out []usage.SpanBuckets
	// Value types (no per-column allocations): a month of hourly buckets
	// is hundreds of rows.
	var (
		since, until, start, first, last          pgtype.Timestamptz
		initial, firstImp, lastImp, lastExp       pgtype.Int8
		impDelta, expDelta, powerSamples, samples pgtype.Int8
		load, powerSum                            pgtype.Float8
		maxP                                      pgtype.Float4
		isPrev                                    pgtype.Bool
		model                                     string
	)
	for rows.Next() {
		var sp usage.Span
		if err := rows.Scan(&sp.MeterID, &model, &sp.ConnectionID, &since, &until, &initial, &load,
			&isPrev, &start, &first, &last, &firstImp, &lastImp, &lastExp, &impDelta,
			&expDelta, &maxP, &powerSum, &powerSamples, &samples); err != nil {
			return nil, fmt.Errorf("%w: history: %w", usage.ErrDataAccess, err)
		}
		if since.Valid {
			sp.From = since.Time
		}
		if until.Valid {
			sp.To = until.Time
		}
		sp.Kind = meter.KindOf(model)
		sp.InitialImportWh = i64(initial)
		sp.SanctionedLoadKW = load.Float64
		if n := len(out); n == 0 || out[n-1].MeterID != sp.MeterID || !out[n-1].From.Equal(sp.From) {
			out = append(out, usage.SpanBuckets{Span: sp})
		}
		if !isPrev.Valid {
			continue // a span without buckets
		}
		b := usage.Bucket{Start: start.Time, FirstTime: first.Time, LastTime: last.Time,
			FirstImportWh: i64(firstImp), LastImportWh: i64(lastImp), LastExportWh: i64(lastExp),
			ImportDeltaWh: i64(impDelta), ExportDeltaWh: i64(expDelta), PowerSamples: powerSamples.Int64, Samples: samples.Int64}
		if maxP.Valid {
			v := float64(maxP.Float32)
			b.MaxPowerW = &v
		}
		if powerSum.Valid {
			v := powerSum.Float64
			b.PowerSumW = &v
		}
		cur := &out[len(out)-1]
		if isPrev.Bool {
			bb := b
			cur.Prev = &bb
		} else {
			cur.Buckets = append(cur.Buckets, b)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: history: %w", usage.ErrDataAccess, err)
	}
	if len(out) > 0 {
		return out, nil
	}
	if connectionID != 0 {
		// A connection in scope without a meter has an empty history.
		var w sqlwhere.Where
		w.Add("c.tenant_id = ?", scope.TenantID)
		w.Add("c.id = ?", connectionID)
		if scope.Owned() {
			w.Add("p.user_id = ?", scope.UserID)
		}
		var ok bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connections c JOIN properties p ON p.id = c.property_id WHERE `+w.String()+`)`,
			w.Args()...).Scan(&ok); err != nil {
			return nil, fmt.Errorf("%w: history: %w", usage.ErrDataAccess, err)
		}
		if ok {
			return nil, nil
		}
	}
	return nil, usage.ErrNotFound
}

// installationScope selects the installations of a meter or connection
// (one of them set) that scope reaches.
func installationScope(scope account.Scope, meterID, connectionID int64) *sqlwhere.Where {
	w := &sqlwhere.Where{}
	w.Add("i.tenant_id = ?", scope.TenantID)
	if scope.UserID != 0 {
		w.Add("p.user_id = ?", scope.UserID)
	}
	if meterID != 0 {
		w.Add("i.meter_id = ?", meterID)
	}
	if connectionID != 0 {
		w.Add("i.connection_id = ?", connectionID)
	}
	return w
}

// RollupTimeZone implements usage.Store.
func (s *Store) RollupTimeZone(ctx context.Context) (*time.Location, error) {
	s.tzOnce.Do(func() {
		st, err := schema.LoadStorage(ctx, s.pool)
		if err != nil {
			s.tzErr = err
			return
		}
		s.tz, s.tzErr = time.LoadLocation(st.RollupTimeZone)
	})
	if s.tzErr != nil {
		err := s.tzErr
		s.tzOnce = sync.Once{}
		return nil, fmt.Errorf("%w: rollup time zone: %w", usage.ErrDataAccess, err)
	}
	return s.tz, nil
}

// EntryTarget implements usage.Store.
func (s *Store) EntryTarget(ctx context.Context, scope account.Scope, meterID, connectionID int64, at time.Time) (usage.Target, error) {
	var t usage.Target
	w := installationScope(scope, meterID, connectionID)
	w.Add("i.installed_at <= ?", at)
	w.Add("(i.removed_at IS NULL OR i.removed_at > ?)", at)
	var model string
	err := s.pool.QueryRow(ctx, `SELECT i.meter_id, m.model, i.connection_id, coalesce(c.sanctioned_load_kw, 0)::float8, i.installed_at
		FROM meter_installations i
		JOIN meters m ON m.id = i.meter_id
		JOIN connections c ON c.id = i.connection_id
		JOIN properties p ON p.id = c.property_id
		WHERE `+w.String()+` ORDER BY i.installed_at DESC LIMIT 1`, w.Args()...).
		Scan(&t.MeterID, &model, &t.ConnectionID, &t.SanctionedLoadKW, &t.InstalledAt)
	if err == nil {
		t.Kind = meter.KindOf(model)
		return t, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("%w: entry target: %w", usage.ErrDataAccess, err)
	}
	if scope.Owned() || meterID == 0 {
		return t, usage.ErrNotFound
	}
	// Staff may enter readings for a meter that is not installed.
	err = s.pool.QueryRow(ctx, `SELECT id, model FROM meters WHERE tenant_id = $1 AND id = $2`, scope.TenantID, meterID).Scan(&t.MeterID, &model)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, usage.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("%w: entry target: %w", usage.ErrDataAccess, err)
	}
	t.Kind = meter.KindOf(model)
	return t, nil
}

// InsertManual implements usage.Store.
func (s *Store) InsertManual(ctx context.Context, t usage.Target, m usage.Manual, check func(prev, next *usage.Sample) (*usage.CounterEvent, error), a audit.Entry) error {
	err := s.insertManual(ctx, t, m, check, a)
	if schema.IsMissingPartition(err) && s.partitions != nil {
		if perr := s.partitions(ctx, m.Time, m.Time); perr != nil {
			return fmt.Errorf("manual reading: create partition: %w", perr)
		}
		err = s.insertManual(ctx, t, m, check, a)
	}
	return err
}

func (s *Store) insertManual(ctx context.Context, t usage.Target, m usage.Manual, check func(prev, next *usage.Sample) (*usage.CounterEvent, error), a audit.Entry) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Serialize manual entries per meter, so two cannot both pass the
		// neighbour check.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM meters WHERE id = $1 FOR UPDATE`, t.MeterID); err != nil {
			return err
		}
		prev, err := neighbour(ctx, tx, `SELECT ts, import_wh, export_wh FROM readings
			WHERE meter_id = $1 AND ts <= $2 AND import_wh IS NOT NULL ORDER BY ts DESC LIMIT 1`, t.MeterID, m.Time)
		if err != nil {
			return err
		}
		next, err := neighbour(ctx, tx, `SELECT ts, import_wh, export_wh FROM readings
			WHERE meter_id = $1 AND ts > $2 AND import_wh IS NOT NULL ORDER BY ts LIMIT 1`, t.MeterID, m.Time)
		if err != nil {
			return err
		}
		ev, err := check(prev, next)
		if err != nil {
			return err
		}
		quality := int16(0)
		if m.Reset {
			quality = int16(meter.QualityAfterReset)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO readings (meter_id, ts, received_at, import_wh, export_wh, source, quality)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.MeterID, m.Time, m.ReceivedAt, m.ImportWh, m.ExportWh, int16(meter.SourceManual), quality); err != nil {
			return err
		}
		if ev != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO counter_events (meter_id, register, ts, kind, prev_ts, prev_wh, value_wh, delta_wh, consumption_wh)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
				t.MeterID, ev.Register, m.Time, ev.Kind, ev.PrevTime, ev.PrevWh, ev.ValueWh, ev.DeltaWh, ev.ConsumptionWh); err != nil {
				return err
			}
		}
		// The newest reading by source time wins; a back-dated entry only
		// refreshes last_seen.
		if _, err := tx.Exec(ctx, `INSERT INTO meter_latest (meter_id, ts, received_at, last_seen, import_wh, import_ts, export_wh, export_ts, source)
			VALUES ($1, $2, $3, $3, $4, $2, $5, CASE WHEN $5::bigint IS NOT NULL THEN $2::timestamptz END, $6)
			ON CONFLICT (meter_id) DO UPDATE SET
				last_seen = greatest(meter_latest.last_seen, excluded.last_seen),
				ts = CASE WHEN excluded.ts > meter_latest.ts THEN excluded.ts ELSE meter_latest.ts END,
				received_at = CASE WHEN excluded.ts > meter_latest.ts THEN excluded.received_at ELSE meter_latest.received_at END,
				import_wh = CASE WHEN excluded.ts > coalesce(meter_latest.import_ts, '-infinity') THEN excluded.import_wh ELSE meter_latest.import_wh END,
				import_ts = greatest(meter_latest.import_ts, excluded.import_ts),
				export_wh = CASE WHEN excluded.export_ts > coalesce(meter_latest.export_ts, '-infinity') THEN excluded.export_wh ELSE meter_latest.export_wh END,
				export_ts = greatest(meter_latest.export_ts, excluded.export_ts),
				power_w = CASE WHEN excluded.ts > meter_latest.ts THEN NULL ELSE meter_latest.power_w END,
				voltage_v = CASE WHEN excluded.ts > meter_latest.ts THEN NULL ELSE meter_latest.voltage_v END,
				current_a = CASE WHEN excluded.ts > meter_latest.ts THEN NULL ELSE meter_latest.current_a END,
				frequency_hz = CASE WHEN excluded.ts > meter_latest.ts THEN NULL ELSE meter_latest.frequency_hz END,
				power_factor = CASE WHEN excluded.ts > meter_latest.ts THEN NULL ELSE meter_latest.power_factor END,
				source = CASE WHEN excluded.ts > meter_latest.ts THEN excluded.source ELSE meter_latest.source END,
				updated_at = now()`,
			t.MeterID, m.Time, m.ReceivedAt, m.ImportWh, m.ExportWh, int16(meter.SourceManual)); err != nil {
			return err
		}
		return auditpg.Write(ctx, tx, a)
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.TableName == "readings" {
		v := account.NewValidator(usage.ErrInvalidReading)
		v.Add("ts", "a reading at "+m.Time.UTC().Format(time.RFC3339)+" already exists")
		return v.Err()
	}
	if err != nil && !schema.IsMissingPartition(err) {
		var ve *account.ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return fmt.Errorf("%w: manual reading: %w", usage.ErrDataAccess, err)
	}
	return err
}

func neighbour(ctx context.Context, tx pgx.Tx, q string, meterID int64, at time.Time) (*usage.Sample, error) {
	var smp usage.Sample
	err := tx.QueryRow(ctx, q, meterID, at).Scan(&smp.Time, &smp.ImportWh, &smp.ExportWh)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &smp, nil
}
