package meter

import (
	"strings"
	"time"
)

// TimePrecision is the resolution reading timestamps are kept at: PostgreSQL
// timestamptz holds microseconds, so decoders truncate to it. Deduplication in
// Go then sees the same (meter, time) key as the database's primary key.
const TimePrecision = time.Microsecond

// NormalizeTime returns t in UTC truncated to TimePrecision.
func NormalizeTime(t time.Time) time.Time { return t.UTC().Truncate(TimePrecision) }

// String returns the canonical name of a single field ("import_wh",
// "voltage_v", …), or the names of several joined by "|".
func (f Fields) String() string {
	if f == 0 {
		return "none"
	}
	var names []string
	for b := FieldImport; b <= FieldPowerFactor; b <<= 1 {
		if f&b != 0 {
			names = append(names, b.name())
		}
	}
	if rest := f &^ (FieldPowerFactor<<1 - 1); rest != 0 {
		names = append(names, "unknown")
	}
	return strings.Join(names, "|")
}

// name is the canonical JSON field name of a single field bit; the same names
// are used in canonical JSON (meter/payload) and in RejectError.Field.
func (f Fields) name() string {
	switch f {
	case FieldImport:
		return "import_wh"
	case FieldExport:
		return "export_wh"
	case FieldPower:
		return "power_w"
	case FieldVoltage:
		return "voltage_v"
	case FieldCurrent:
		return "current_a"
	case FieldFrequency:
		return "frequency_hz"
	case FieldPowerFactor:
		return "power_factor"
	}
	return "unknown"
}

// AllFields is the set of every quantity a Reading can carry.
const AllFields = FieldImport | FieldExport | FieldPower | FieldVoltage | FieldCurrent | FieldFrequency | FieldPowerFactor
