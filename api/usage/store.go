package usage

import (
	"context"
	"time"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	"github.com/meterd/meterd/meter"
)

// Store is the usage domain's persistence port.
type Store interface {
	// Live returns the latest state of the meters in scope: for an owned
	// scope the meters installed now on the owner's connections, for staff
	// every meter of the tenant; narrowed by f, ordered by meter id.
	Live(ctx context.Context, scope account.Scope, f LiveFilter, p account.Page) ([]Live, error)
	// History returns, in one round trip, the spans a history request may
	// read (a connection's installations; a meter's installations on the
	// owner's connections for an owned scope; one unbounded span of the
	// meter for staff), each with its rollup buckets (hourly for Hour,
	// daily otherwise) that start in [from, to) within the span, in order,
	// and the newest earlier bucket within the span (for the step into the
	// first one). Span bounds are aligned to the buckets in loc. A
	// connection in scope without a meter has no spans; ErrNotFound when
	// nothing is in scope.
	History(ctx context.Context, scope account.Scope, meterID, connectionID int64, g Granularity, from, to time.Time, loc *time.Location) ([]SpanBuckets, error)
	// RollupTimeZone is the zone the rollup buckets follow.
	RollupTimeZone(ctx context.Context) (*time.Location, error)
	// EntryTarget resolves the meter a manual reading at at is for: the
	// meter itself (staff) or the one installed on the connection at that
	// time; for an owned scope it must be installed on the owner's
	// connection then. ErrNotFound otherwise.
	EntryTarget(ctx context.Context, scope account.Scope, meterID, connectionID int64, at time.Time) (Target, error)
	// InsertManual locks the meter, reads its neighbouring readings, calls
	// check with them and, if check succeeds, inserts the reading (and the
	// counter event check returns), updates meter_latest and writes the
	// audit entry, all in one transaction.
	InsertManual(ctx context.Context, t Target, r Manual, check func(prev, next *Sample) (*CounterEvent, error), a audit.Entry) error
}

// LiveFilter narrows Live.
type LiveFilter struct {
	MeterID      int64
	ConnectionID int64
}

// Target is the meter a manual reading goes to.
type Target struct {
	MeterID          int64
	Kind             meter.Kind
	ConnectionID     int64
	SanctionedLoadKW float64
	InstalledAt      time.Time
}

// Manual is a manually entered reading.
type Manual struct {
	Time       time.Time
	ReceivedAt time.Time
	ImportWh   int64
	ExportWh   *int64
	Reset      bool // the entry records a register reset (QualityAfterReset)
}

// Sample is a neighbouring reading's registers.
type Sample struct {
	Time     time.Time
	ImportWh *int64
	ExportWh *int64
}

// CounterEvent is a register step to record in counter_events.
type CounterEvent struct {
	Register      string // import_wh or export_wh
	Kind          int16  // meter.CounterEventKind
	PrevTime      time.Time
	PrevWh        int64
	ValueWh       int64
	DeltaWh       int64
	ConsumptionWh int64
}
