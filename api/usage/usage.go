package usage

import (
	"errors"
	"time"

	"github.com/meterd/meterd/meter"
)

// Errors of the usage domain.
var (
	// ErrInvalidReading is wrapped by manual entries that fail validation
	// (InvalidReading).
	ErrInvalidReading = errors.New("invalid reading")
	// ErrMeterConnection: a meter asked for by id has never reported
	// (MeterConnection).
	ErrMeterConnection = errors.New("meter has not reported")
	// ErrNotFound: no such meter or connection in scope.
	ErrNotFound = errors.New("meter or connection not found")
	// ErrDataAccess is wrapped by failures to read or store usage data in
	// the database (DataAccess).
	ErrDataAccess = errors.New("usage data access failed")
)

// Liveness says whether a meter reports as often as expected.
type Liveness string

// Liveness states.
const (
	Online        Liveness = "online"  // heard from within OfflineAfter × expected interval
	Offline       Liveness = "offline" // silent for longer
	NeverReported Liveness = "never_reported"
)

// Live is a meter's latest state.
type Live struct {
	MeterID          int64
	ExternalID       string
	Serial           string
	Kind             meter.Kind // what the registers count: Wh, or litres for a water meter
	Protocol         string
	ExpectedInterval time.Duration
	ConnectionID     int64 // 0 when not installed
	PropertyID       int64
	ConsumerCode     string
	Latest           *Reading // nil when it never reported
	LastSeen         *time.Time
	Liveness         Liveness
	Age              time.Duration // now − latest reading's time
}

// Reading is a reading's values; absent quantities are nil. Registers
// (ImportWh, ExportWh) are in the unit of the meter's kind: Wh, or litres.
type Reading struct {
	Time        time.Time
	ReceivedAt  time.Time
	ImportWh    *int64
	ExportWh    *int64
	PowerW      *float64
	VoltageV    *float64
	CurrentA    *float64
	FrequencyHz *float64
	PowerFactor *float64
	Source      string
}

// Granularity is a history series' bucket size.
type Granularity string

// Granularities.
const (
	Hour  Granularity = "hour"
	Day   Granularity = "day"
	Month Granularity = "month"
)

// Bucket is one rollup row (readings_hourly or readings_daily).
type Bucket struct {
	Start         time.Time
	FirstTime     time.Time
	LastTime      time.Time
	FirstImportWh *int64
	LastImportWh  *int64
	LastExportWh  *int64
	ImportDeltaWh *int64
	ExportDeltaWh *int64
	MaxPowerW     *float64
	PowerSumW     *float64
	PowerSamples  int64
	Samples       int64
}

// Span is a meter installed on a connection over [From, To); To zero is
// open-ended. History reads each meter only within its spans.
type Span struct {
	MeterID          int64
	Kind             meter.Kind
	ConnectionID     int64
	From, To         time.Time
	InitialImportWh  *int64
	SanctionedLoadKW float64 // 0 when unknown
}

// SpanBuckets is a span with its buckets for a history request.
type SpanBuckets struct {
	Span
	Prev    *Bucket
	Buckets []Bucket
}

// Point is one bucket of a history series. Register amounts (…Wh) are in
// the unit of the series' kind: Wh, or litres for water meters.
type Point struct {
	Start         time.Time
	End           time.Time
	ConsumptionWh int64
	ExportWh      int64
	AvgPowerW     *float64
	MaxPowerW     *float64
	LastImportWh  *int64
	Samples       int64
}

// Series is a consumption history.
type Series struct {
	ConnectionID int64
	MeterIDs     []int64
	// Kind is what the series' meters count: water when they all are
	// water meters (litres), electricity (Wh) otherwise.
	Kind          meter.Kind
	Granularity   Granularity
	From, To      time.Time
	TimeZone      string
	Points        []Point
	ConsumptionWh int64
	ExportWh      int64
}
