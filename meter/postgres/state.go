package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/meter"
)

// Latest is a meter's row of meter_latest: its newest reading and when it
// was last heard from.
type Latest struct {
	MeterID int64
	// Reading is the newest reading by source time. Its Fields name the
	// instantaneous values it carried; ImportWh and ExportWh are not used
	// (see Import and Export).
	Reading  meter.Reading
	LastSeen time.Time // newest arrival of any reading
	// ImportWh and ImportTime are the newest value of the import register
	// and its source time; ImportTime is zero when never read. Likewise
	// for export.
	ImportWh   int64
	ImportTime time.Time
	ExportWh   int64
	ExportTime time.Time
}

// UpsertLatest merges states into meter_latest. Each column only moves
// forward: the newest reading by source time wins, last_seen takes the
// latest arrival, and each register keeps its newest value; so concurrent
// gateways and late batches cannot move a meter's state back.
func (s *Store) UpsertLatest(ctx context.Context, states []Latest) error {
	if len(states) == 0 {
		return nil
	}
	n := len(states)
	var (
		ids                       = make([]int64, n)
		ts, recv, seen            = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		imp, exp                  = make([]*int64, n), make([]*int64, n)
		impTS, expTS              = make([]*time.Time, n), make([]*time.Time, n)
		power, volt, curr, fq, pf = make([]*float32, n), make([]*float32, n), make([]*float32, n), make([]*float32, n), make([]*float32, n)
		src                       = make([]int16, n)
	)
	for i := range states {
		l := &states[i]
		r := &l.Reading
		ids[i], ts[i], recv[i], seen[i], src[i] = l.MeterID, r.Time, r.ReceivedAt, l.LastSeen, int16(r.Source)
		if !l.ImportTime.IsZero() {
			imp[i], impTS[i] = &l.ImportWh, &l.ImportTime
		}
		if !l.ExportTime.IsZero() {
			exp[i], expTS[i] = &l.ExportWh, &l.ExportTime
		}
		power[i] = optF(r, meter.FieldPower, &r.PowerW)
		volt[i] = optF(r, meter.FieldVoltage, &r.VoltageV)
		curr[i] = optF(r, meter.FieldCurrent, &r.CurrentA)
		fq[i] = optF(r, meter.FieldFrequency, &r.FrequencyHz)
		pf[i] = optF(r, meter.FieldPowerFactor, &r.PowerFactor)
	}
	_, err := s.pool.Exec(ctx, upsertLatestSQL, ids, ts, recv, seen, imp, impTS, exp, expTS, power, volt, curr, fq, pf, src)
	if err != nil {
		return fmt.Errorf("upsert latest state: %w", classify(err))
	}
	return nil
}

func optF(r *meter.Reading, f meter.Fields, x *float32) *float32 {
	if !r.Fields.Has(f) {
		return nil
	}
	return x
}

// Rows are sorted by meter id so that concurrent upserts lock in the same
// order and cannot deadlock.
const upsertLatestSQL = `
INSERT INTO meter_latest AS l (meter_id, ts, received_at, last_seen, import_wh, import_ts, export_wh, export_ts,
	power_w, voltage_v, current_a, frequency_hz, power_factor, source)
SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[],
	$5::bigint[], $6::timestamptz[], $7::bigint[], $8::timestamptz[],
	$9::real[], $10::real[], $11::real[], $12::real[], $13::real[], $14::smallint[])
ORDER BY 1
ON CONFLICT (meter_id) DO UPDATE SET
	last_seen    = greatest(l.last_seen, EXCLUDED.last_seen),
	ts           = CASE WHEN EXCLUDED.ts > l.ts THEN EXCLUDED.ts ELSE l.ts END,
	received_at  = CASE WHEN EXCLUDED.ts > l.ts THEN EXCLUDED.received_at ELSE l.received_at END,
	power_w      = CASE WHEN EXCLUDED.ts > l.ts THEN EXCLUDED.power_w ELSE l.power_w END,
	voltage_v    = CASE WHEN EXCLUDED.ts > l.ts THEN EXCLUDED.voltage_v ELSE l.voltage_v END,
	current_a    = CASE WHEN EXCLUDED.ts > l.ts THEN EXCLUDED.current_a ELSE l.current_a END,
	frequency_hz = CASE WHEN EXCLUDED.ts > l.ts THEN EXCLUDED.frequency_hz ELSE l.frequency_hz END,
	power_factor = CASE WHEN EXCLUDED.ts > l.ts THEN EXCLUDED.power_factor ELSE l.power_factor END,
	source       = CASE WHEN EXCLUDED.ts > l.ts THEN EXCLUDED.source ELSE l.source END,
	import_wh    = CASE WHEN EXCLUDED.import_ts > l.import_ts OR l.import_ts IS NULL AND EXCLUDED.import_ts IS NOT NULL
	               THEN EXCLUDED.import_wh ELSE l.import_wh END,
	import_ts    = CASE WHEN EXCLUDED.import_ts > l.import_ts OR l.import_ts IS NULL AND EXCLUDED.import_ts IS NOT NULL
	               THEN EXCLUDED.import_ts ELSE l.import_ts END,
	export_wh    = CASE WHEN EXCLUDED.export_ts > l.export_ts OR l.export_ts IS NULL AND EXCLUDED.export_ts IS NOT NULL
	               THEN EXCLUDED.export_wh ELSE l.export_wh END,
	export_ts    = CASE WHEN EXCLUDED.export_ts > l.export_ts OR l.export_ts IS NULL AND EXCLUDED.export_ts IS NOT NULL
	               THEN EXCLUDED.export_ts ELSE l.export_ts END,
	updated_at   = now()`

// LatestStates returns meter_latest rows: those of ids, or every row when
// ids is empty.
func (s *Store) LatestStates(ctx context.Context, ids ...int64) ([]Latest, error) {
	q := `SELECT meter_id, ts, received_at, last_seen, import_wh, import_ts, export_wh, export_ts,
		power_w, voltage_v, current_a, frequency_hz, power_factor, source FROM meter_latest`
	var args []any
	if len(ids) > 0 {
		q += ` WHERE meter_id = ANY($1)`
		args = append(args, ids)
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY meter_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("load latest states: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Latest, error) {
		var l Latest
		var imp, exp *int64
		var impTS, expTS *time.Time
		var p, v, c, f, pf *float32
		var src int16
		r := &l.Reading
		err := row.Scan(&l.MeterID, &r.Time, &r.ReceivedAt, &l.LastSeen, &imp, &impTS, &exp, &expTS, &p, &v, &c, &f, &pf, &src)
		r.MeterID, r.Source = l.MeterID, meter.Source(src)
		r.Time, r.ReceivedAt, l.LastSeen = r.Time.UTC(), r.ReceivedAt.UTC(), l.LastSeen.UTC()
		if imp != nil && impTS != nil {
			l.ImportWh, l.ImportTime = *imp, impTS.UTC()
		}
		if exp != nil && expTS != nil {
			l.ExportWh, l.ExportTime = *exp, expTS.UTC()
		}
		set := func(x *float32, fld meter.Fields, dst *float32) {
			if x != nil {
				*dst = *x
				r.Fields |= fld
			}
		}
		set(p, meter.FieldPower, &r.PowerW)
		set(v, meter.FieldVoltage, &r.VoltageV)
		set(c, meter.FieldCurrent, &r.CurrentA)
		set(f, meter.FieldFrequency, &r.FrequencyHz)
		set(pf, meter.FieldPowerFactor, &r.PowerFactor)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("load latest states: %w", classify(err))
	}
	return out, nil
}

// CounterEvent is a row of counter_events: a step of an energy register
// that is not plain forward counting.
type CounterEvent struct {
	MeterID  int64
	Register meter.Fields // meter.FieldImport or meter.FieldExport
	PrevTime time.Time
	Time     time.Time
	PrevWh   int64
	ValueWh  int64
	Step     meter.CounterStep
}

// WriteCounterEvents stores events; an event already stored (same meter,
// register and time) is skipped.
func (s *Store) WriteCounterEvents(ctx context.Context, evs []CounterEvent) error {
	if len(evs) == 0 {
		return nil
	}
	n := len(evs)
	ids, regs, kinds := make([]int64, n), make([]string, n), make([]int16, n)
	ts, prevTS := make([]time.Time, n), make([]time.Time, n)
	prev, val, delta, cons := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, e := range evs {
		ids[i], regs[i], kinds[i] = e.MeterID, e.Register.String(), int16(e.Step.Kind)
		ts[i], prevTS[i] = e.Time, e.PrevTime
		prev[i], val[i], delta[i], cons[i] = e.PrevWh, e.ValueWh, e.Step.DeltaWh, e.Step.ConsumptionWh
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO counter_events (meter_id, register, kind, ts, prev_ts, prev_wh, value_wh, delta_wh, consumption_wh)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::timestamptz[], $5::timestamptz[],
			$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
		ON CONFLICT DO NOTHING`, ids, regs, kinds, ts, prevTS, prev, val, delta, cons)
	if err != nil {
		return fmt.Errorf("write counter events: %w", classify(err))
	}
	return nil
}

// CounterEvents returns the counter events of a meter, oldest first.
func (s *Store) CounterEvents(ctx context.Context, meterID int64) ([]CounterEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT meter_id, register, kind, ts, prev_ts, prev_wh, value_wh, delta_wh, consumption_wh
		FROM counter_events WHERE meter_id = $1 ORDER BY ts, register`, meterID)
	if err != nil {
		return nil, fmt.Errorf("load counter events: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CounterEvent, error) {
		var e CounterEvent
		var reg string
		var kind int16
		err := row.Scan(&e.MeterID, &reg, &kind, &e.Time, &e.PrevTime, &e.PrevWh, &e.ValueWh, &e.Step.DeltaWh, &e.Step.ConsumptionWh)
		e.Step.Kind = meter.CounterEventKind(kind)
		e.Time, e.PrevTime = e.Time.UTC(), e.PrevTime.UTC()
		e.Register = meter.FieldImport
		if reg == meter.FieldExport.String() {
			e.Register = meter.FieldExport
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("load counter events: %w", classify(err))
	}
	return out, nil
}

// OfflineMeter is an installed meter the gateway has not heard from within
// factor × its expected interval.
type OfflineMeter struct {
	MeterID          int64
	TenantCode       string
	ExternalID       string
	Protocol         string
	ExpectedInterval time.Duration
	LastSeen         time.Time // zero if never seen
}

// OfflineMeters returns up to limit installed MQTT and Modbus meters whose
// last_seen is older than now − factor × expected_interval (or that were
// never seen), longest silent first, and how many there are in all.
func (s *Store) OfflineMeters(ctx context.Context, now time.Time, factor float64, limit int) ([]OfflineMeter, int, error) {
	const where = `FROM meters m JOIN tenants t ON t.id = m.tenant_id
		LEFT JOIN meter_latest l ON l.meter_id = m.id
		WHERE m.removed_at IS NULL AND m.protocol <> 'manual'
		  AND (l.last_seen IS NULL OR l.last_seen < $1::timestamptz - m.expected_interval * $2::float8)`
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) `+where, now, factor).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count offline meters: %w", classify(err))
	}
	rows, err := s.pool.Query(ctx, `SELECT m.id, t.code, m.external_id, m.protocol,
			(extract(epoch FROM m.expected_interval) * 1000000)::bigint, l.last_seen `+where+`
		ORDER BY l.last_seen NULLS FIRST, m.id LIMIT $3`, now, factor, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("list offline meters: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OfflineMeter, error) {
		var o OfflineMeter
		var us int64
		var seen *time.Time
		err := row.Scan(&o.MeterID, &o.TenantCode, &o.ExternalID, &o.Protocol, &us, &seen)
		o.ExpectedInterval = time.Duration(us) * time.Microsecond
		if seen != nil {
			o.LastSeen = seen.UTC()
		}
		return o, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list offline meters: %w", classify(err))
	}
	return out, total, nil
}
