package meter

import (
	"fmt"
	"time"
)

// Reading is one timestamped set of register values from a meter.
//
// Energy registers are cumulative integers in watt-hours; instantaneous
// quantities are float32 because meters report them with that precision.
// Optional quantities are present only when the matching bit is set in
// Fields; an absent quantity is stored as NULL, never as zero.
type Reading struct {
	MeterID    int64     // meters.id
	Time       time.Time // source timestamp, UTC
	ReceivedAt time.Time // when the gateway received it, UTC

	ImportWh    int64   // cumulative active energy imported, Wh
	ExportWh    int64   // cumulative active energy exported, Wh
	PowerW      float32 // total active power, W; positive means import
	VoltageV    float32 // phase-to-neutral voltage (phase 1 or average), V
	CurrentA    float32 // current (phase 1 or sum), A
	FrequencyHz float32 // grid frequency, Hz
	PowerFactor float32 // −1..1

	Fields  Fields  // which quantities above are present
	Source  Source  // how the reading arrived
	Quality Quality // quality flags
}

// Fields is a bit set naming the quantities present in a Reading.
type Fields uint16

// The quantities a Reading may carry.
const (
	FieldImport Fields = 1 << iota
	FieldExport
	FieldPower
	FieldVoltage
	FieldCurrent
	FieldFrequency
	FieldPowerFactor
)

// Has reports whether all quantities in q are present.
func (f Fields) Has(q Fields) bool { return f&q == q }

// Source says how a reading reached meterd. The values are stored in the
// database (readings.source smallint), so they must never be renumbered.
type Source int16

// Reading sources.
const (
	SourceMQTT     Source = 1 // pushed by the meter over MQTT
	SourceModbus   Source = 2 // polled over Modbus
	SourceManual   Source = 3 // entered by a person through the API
	SourceImport   Source = 4 // bulk import or backfill
	SourceEstimate Source = 5 // estimated by meterd, not measured
)

func (s Source) String() string {
	switch s {
	case SourceMQTT:
		return "mqtt"
	case SourceModbus:
		return "modbus"
	case SourceManual:
		return "manual"
	case SourceImport:
		return "import"
	case SourceEstimate:
		return "estimate"
	}
	return fmt.Sprintf("source(%d)", int16(s))
}

// Quality is a bit set of quality flags on a reading. The values are stored
// in the database (readings.quality smallint), so they must never change.
type Quality int16

// Quality flags.
const (
	QualityEstimated    Quality = 1 << iota // value estimated, not measured
	QualityClockSuspect                     // source timestamp looked wrong and was corrected
	QualityPartial                          // some optional registers failed to read
	QualityAfterReset                       // first reading after a counter reset or replacement
)
