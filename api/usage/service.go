package usage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	"github.com/meterd/meterd/meter"
)

// Config configures the usage service.
type Config struct {
	// Limits are the plausibility bounds of manual readings. Default
	// meter.DefaultLimits.
	Limits meter.Limits
	// OfflineAfter is how many expected intervals of silence make a meter
	// offline. Default 3.
	OfflineAfter int
	// LoadMargin times the connection's sanctioned load is the most power
	// a register step may imply. Default 2.
	LoadMargin float64
	// DefaultMaxPowerW is that bound when the sanctioned load is unknown.
	// Default 100 kW.
	DefaultMaxPowerW float64
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Limits == (meter.Limits{}) {
		c.Limits = meter.DefaultLimits()
	}
	if c.OfflineAfter == 0 {
		c.OfflineAfter = 3
	}
	if c.LoadMargin == 0 {
		c.LoadMargin = 2
	}
	if c.DefaultMaxPowerW == 0 {
		c.DefaultMaxPowerW = 100_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Limits != (meter.Limits{}) {
		if err := c.Limits.Validate(); err != nil {
			return err
		}
	}
	if c.OfflineAfter < 0 || c.LoadMargin < 0 || c.DefaultMaxPowerW < 0 {
		return errors.New("usage: OfflineAfter, LoadMargin and DefaultMaxPowerW must not be negative")
	}
	return nil
}

// Service is the usage domain's entry point.
type Service struct {
	store Store
	cfg   Config
}

// New returns a Service.
func New(store Store, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Service{store: store, cfg: cfg}, nil
}

// Live returns the latest reading, current power, age and liveness of the
// meters in scope. Asking for one meter (f.MeterID) that has never
// reported is ErrMeterConnection.
func (s *Service) Live(ctx context.Context, scope account.Scope, f LiveFilter, p account.Page) ([]Live, error) {
	list, err := s.store.Live(ctx, scope, f, p.Normalize())
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	for i := range list {
		l := &list[i]
		if l.Latest == nil {
			l.Liveness = NeverReported
		} else {
			l.Age = now.Sub(l.Latest.Time)
			if l.Age < 0 {
				l.Age = 0
			}
			seen := l.Latest.ReceivedAt
			if l.LastSeen != nil {
				seen = *l.LastSeen
			}
			l.Liveness = Online
			if now.Sub(seen) > time.Duration(s.cfg.OfflineAfter)*l.ExpectedInterval {
				l.Liveness = Offline
			}
		}
	}
	if f.MeterID != 0 {
		if len(list) == 0 {
			return nil, ErrNotFound
		}
		if list[0].Latest == nil {
			return nil, fmt.Errorf("%w: meter %s has never sent a reading; check its power, network and credentials", ErrMeterConnection, list[0].ExternalID)
		}
	}
	return list, nil
}

// EntryInput is a manual reading.
type EntryInput struct {
	MeterID      int64
	ConnectionID int64
	Time         time.Time // default now
	ImportWh     *int64
	ExportWh     *int64
	// Reset records that the register was reset (or the display replaced)
	// before this reading, so a lower value is accepted. Staff only.
	Reset bool
}

// Entry is a stored manual reading.
type Entry struct {
	MeterID      int64
	ConnectionID int64
	Time         time.Time
	ImportWh     int64
	ExportWh     *int64
	Reset        bool
	// ConsumptionWh is the energy (litres on a water meter) since the
	// previous reading (0 for the
	// first one).
	ConsumptionWh int64
}

func invalid(field, format string, args ...any) error {
	v := account.NewValidator(ErrInvalidReading)
	v.Add(field, fmt.Sprintf(format, args...))
	return v.Err()
}

// Record validates and stores a manual reading (source manual). It
// refuses, as ErrInvalidReading naming the field: readings without an
// import register, timestamps in the future or too old, impossible values,
// a register lower than the previous reading without a recorded reset, a
// rise the connection cannot draw in the time since the previous reading,
// a reading that would make the following one go backwards, and a second
// reading at the same time.
func (s *Service) Record(ctx context.Context, a account.Actor, scope account.Scope, in EntryInput) (Entry, error) {
	now := s.cfg.Now().UTC()
	if in.Time.IsZero() {
		in.Time = now
	}
	in.Time = meter.NormalizeTime(in.Time)
	if in.MeterID == 0 && in.ConnectionID == 0 {
		v := account.NewValidator(ErrInvalidReading)
		v.Add("meter_id", "meter_id or connection_id is required")
		return Entry{}, v.Err()
	}
	if in.ImportWh == nil {
		return Entry{}, invalid("import_wh", "is required: the import register (Wh, or litres on a water meter)")
	}
	if in.Reset && !a.Role.Staff() {
		return Entry{}, invalid("reset", "only utility staff can record a meter reset")
	}
	r := meter.Reading{Time: in.Time, ReceivedAt: now, ImportWh: *in.ImportWh, Fields: meter.FieldImport, Source: meter.SourceManual}
	if in.ExportWh != nil {
		r.ExportWh, r.Fields = *in.ExportWh, r.Fields|meter.FieldExport
	}
	if err := s.cfg.Limits.Check(&r, now); err != nil {
		var re *meter.RejectError
		if errors.As(err, &re) {
			field := re.Field
			if field == "" {
				field = "import_wh"
			}
			return Entry{}, invalid(field, "%v", re.Err)
		}
		return Entry{}, err
	}
	t, err := s.store.EntryTarget(ctx, scope, in.MeterID, in.ConnectionID, in.Time)
	if err != nil {
		return Entry{}, err
	}
	maxW := s.cfg.DefaultMaxPowerW
	if t.SanctionedLoadKW > 0 {
		maxW = t.SanctionedLoadKW * 1000 * s.cfg.LoadMargin
	}
	e := Entry{MeterID: t.MeterID, ConnectionID: t.ConnectionID, Time: in.Time, ImportWh: *in.ImportWh, ExportWh: in.ExportWh, Reset: in.Reset}
	check := func(prev, next *Sample) (*CounterEvent, error) {
		var ev *CounterEvent
		if prev != nil && prev.Time.Equal(in.Time) {
			return nil, invalid("ts", "a reading at %s already exists", in.Time.Format(time.RFC3339))
		}
		if prev != nil && prev.ImportWh != nil {
			cev, used, err := step("import_wh", t.Kind.Unit(), *prev.ImportWh, prev.Time, *in.ImportWh, in.Time, maxW, in.Reset)
			if err != nil {
				return nil, err
			}
			e.ConsumptionWh, ev = used, cev
		}
		if prev != nil && prev.ExportWh != nil && in.ExportWh != nil {
			if _, _, err := step("export_wh", t.Kind.Unit(), *prev.ExportWh, prev.Time, *in.ExportWh, in.Time, maxW, in.Reset); err != nil {
				return nil, err
			}
		}
		if next != nil && next.ImportWh != nil {
			st, err := meter.StepCounter(meter.CounterSample{Time: in.Time, ValueWh: *in.ImportWh},
				meter.CounterSample{Time: next.Time, ValueWh: *next.ImportWh}, meter.CounterSpec{}, maxW)
			if err != nil {
				return nil, fmt.Errorf("check following reading: %w", err)
			}
			if st.Kind != meter.CounterNormal {
				return nil, invalid("import_wh", "%[1]d %[2]s does not fit before the following reading of %[3]d %[2]s at %[4]s",
					*in.ImportWh, t.Kind.Unit(), *next.ImportWh, next.Time.UTC().Format(time.RFC3339))
			}
		}
		return ev, nil
	}
	m := Manual{Time: in.Time, ReceivedAt: now, ImportWh: *in.ImportWh, ExportWh: in.ExportWh, Reset: in.Reset}
	ae := audit.Entry{TenantID: scope.TenantID, ActorUserID: a.UserID, ActorRole: string(a.Role), Action: "usage.manual_entry",
		EntityType: "meter", EntityID: fmt.Sprint(t.MeterID), Address: a.Address, RequestID: a.RequestID,
		After: map[string]any{"ts": in.Time, "import_wh": *in.ImportWh, "export_wh": in.ExportWh, "reset": in.Reset, "connection_id": t.ConnectionID}}
	if err := s.store.InsertManual(ctx, t, m, check, ae); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// step checks one register step from the previous reading and returns the
// counter event to record (a declared reset) and the consumption; unit is
// the register's (Wh or L) for the messages.
func step(field, unit string, prevWh int64, prevT time.Time, curWh int64, curT time.Time, maxW float64, reset bool) (*CounterEvent, int64, error) {
	st, err := meter.StepCounter(meter.CounterSample{Time: prevT, ValueWh: prevWh}, meter.CounterSample{Time: curT, ValueWh: curWh}, meter.CounterSpec{}, maxW)
	if err != nil {
		return nil, 0, fmt.Errorf("check %s: %w", field, err)
	}
	switch {
	case st.Kind == meter.CounterNormal && !reset:
		return nil, st.ConsumptionWh, nil
	case reset && st.DeltaWh < 0:
		used := curWh
		if used > st.MaxPlausibleWh {
			used = 0
		}
		return &CounterEvent{Register: field, Kind: int16(meter.CounterReset), PrevTime: prevT, PrevWh: prevWh, ValueWh: curWh,
			DeltaWh: st.DeltaWh, ConsumptionWh: used}, used, nil
	case reset:
		return nil, 0, invalid("reset", "the register did not go down (%[1]d %[2]s after %[3]d %[2]s); no reset to record", curWh, unit, prevWh)
	case st.DeltaWh < 0:
		return nil, 0, invalid(field, "%[1]d %[2]s is lower than the previous reading of %[3]d %[2]s at %[4]s: a register cannot go backwards unless the utility records a reset",
			curWh, unit, prevWh, prevT.UTC().Format(time.RFC3339))
	default:
		return nil, 0, invalid(field, "rises by %[1]d %[2]s since %[3]s, more than the connection can draw in that time (at most %[4]d %[2]s)",
			st.DeltaWh, unit, prevT.UTC().Format(time.RFC3339), st.MaxPlausibleWh)
	}
}
