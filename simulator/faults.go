package simulator

import (
	"errors"
	"fmt"
	"time"
)

// Kind names a fault the simulator can inject. The String forms are what
// the CLI, the manifest and verify reports use; they never change.
type Kind uint8

// The faults. Each is switched on by a rate in Faults (what the rate counts
// is given per kind) or by an entry in Faults.Schedule.
const (
	KindNone Kind = iota

	// Delivery faults (MQTT), probability per message. The readings stay
	// valid: the database must hold each exactly once.
	KindDuplicate  // the message is published twice
	KindOutOfOrder // the message is held back and published after the meter's next one
	KindLate       // the message is held back for Faults.LateBy further messages of the meter

	// Malformed input (MQTT), probability per message of an extra message
	// next to the valid one. The database must not hold anything from it.
	KindBrokenJSON   // truncated JSON on the meter's topic
	KindWrongType    // import_wh as a string and as a fraction
	KindUnknownMeter // a canonical reading on the topic of a meter that is not provisioned
	KindFutureTime   // a reading stamped 30 days ahead of the wall clock
	KindPastTime     // a reading stamped two years behind the wall clock

	// Meter events, expected number per meter and day (at most one of each
	// kind per meter-day; a rate of 1 means every day). Readings stay valid.
	KindGap         // the meter is offline for Faults.GapLength: nothing sent, no Modbus reply
	KindReset       // both energy registers restart from zero (power loss, "EnergyTotal 0")
	KindReplacement // a new meter (new serial) on the same connection, registers near zero
	KindSpike       // consumption × Faults.SpikeFactor for Faults.SpikeLength
	KindStuck       // zero usage for Faults.StuckLength: power 0, registers frozen

	// Device properties, fraction of eligible meters.
	KindRollover        // energy registers start just below their modulus and wrap after Faults.RolloverAfter (models whose counters wrap: sunspec_203 acc32)
	KindWrongWordOrder  // a Modbus device that writes every multi-register value word-swapped
	KindMissingOptional // a Modbus device that lacks the map's optional registers (exception 2)

	// Modbus request faults, probability per request.
	KindSlowReply // the reply comes Faults.SlowReplyDelay late, past the poller's timeout

	numKinds // keep last
)

var kindNames = [...]string{
	KindNone:            "none",
	KindDuplicate:       "duplicate",
	KindOutOfOrder:      "out_of_order",
	KindLate:            "late",
	KindBrokenJSON:      "broken_json",
	KindWrongType:       "wrong_type",
	KindUnknownMeter:    "unknown_meter",
	KindFutureTime:      "future_time",
	KindPastTime:        "past_time",
	KindGap:             "gap",
	KindReset:           "reset",
	KindReplacement:     "replacement",
	KindSpike:           "spike",
	KindStuck:           "stuck",
	KindRollover:        "rollover",
	KindWrongWordOrder:  "wrong_word_order",
	KindMissingOptional: "missing_optional",
	KindSlowReply:       "slow_reply",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Kinds returns every fault kind, in numeric order.
func Kinds() []Kind {
	ks := make([]Kind, 0, numKinds-1)
	for k := KindNone + 1; k < numKinds; k++ {
		ks = append(ks, k)
	}
	return ks
}

// ErrUnknownKind is returned by ParseKind for a name it does not know.
var ErrUnknownKind = errors.New("unknown fault kind")

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for k := KindNone + 1; k < numKinds; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return KindNone, fmt.Errorf("%w %q", ErrUnknownKind, s)
}

// Malformed reports whether k produces input the gateway must reject.
func (k Kind) Malformed() bool { return k >= KindBrokenJSON && k <= KindPastTime }

// Delivery reports whether k changes how a valid message is delivered.
func (k Kind) Delivery() bool { return k >= KindDuplicate && k <= KindLate }

// Event reports whether k is a meter event with a rate per meter-day.
func (k Kind) Event() bool { return k >= KindGap && k <= KindStuck }

// Device reports whether k is a property of a device.
func (k Kind) Device() bool { return k >= KindRollover && k <= KindMissingOptional }

// Faults switches fault injection on. Every rate defaults to 0 (off); the
// lengths have the defaults given. Rates are probabilities per message
// (delivery and malformed kinds), expected events per meter-day (meter
// events), fractions of eligible meters (device properties) or
// probabilities per Modbus request (slow replies).
type Faults struct {
	Duplicate, OutOfOrder, Late float64
	// LateBy is how many further messages of the same meter a late message
	// waits for. Default 10.
	LateBy int

	BrokenJSON, WrongType, UnknownMeter, FutureTime, PastTime float64

	Gap, Reset, Replacement, Spike, Stuck float64
	// GapLength is how long a meter stays offline. Default 30 minutes.
	GapLength time.Duration
	// SpikeLength and SpikeFactor shape a usage spike. Defaults 15
	// minutes and 5.
	SpikeLength time.Duration
	SpikeFactor float64
	// StuckLength is how long a stuck meter records nothing. Default 6 h.
	StuckLength time.Duration

	Rollover, WrongWordOrder, MissingOptional float64
	// RolloverAfter is how long after the fleet's Start a rollover-armed
	// meter's registers wrap. Default 1 h.
	RolloverAfter time.Duration

	SlowReply float64
	// SlowReplyDelay is how late a slow Modbus reply comes. Default 3 s
	// (the gateway's poller should time out sooner).
	SlowReplyDelay time.Duration

	// Schedule injects faults at given times on given meters, in addition
	// to the rates.
	Schedule []Scheduled
}

// Scheduled is one fault at a fixed time on one meter.
type Scheduled struct {
	Kind  Kind
	Meter int // meter index in the fleet (0-based)
	// At is when a meter event starts, or the reading time whose message
	// a delivery or malformed fault applies to (the first message at or
	// after At). Device properties ignore it: the meter has the property
	// for the whole run.
	At time.Time
	// For overrides the kind's default length (meter events with a
	// length); 0 keeps it.
	For time.Duration
}

// Rate returns the configured rate of kind k.
func (f *Faults) Rate(k Kind) float64 {
	switch k {
	case KindDuplicate:
		return f.Duplicate
	case KindOutOfOrder:
		return f.OutOfOrder
	case KindLate:
		return f.Late
	case KindBrokenJSON:
		return f.BrokenJSON
	case KindWrongType:
		return f.WrongType
	case KindUnknownMeter:
		return f.UnknownMeter
	case KindFutureTime:
		return f.FutureTime
	case KindPastTime:
		return f.PastTime
	case KindGap:
		return f.Gap
	case KindReset:
		return f.Reset
	case KindReplacement:
		return f.Replacement
	case KindSpike:
		return f.Spike
	case KindStuck:
		return f.Stuck
	case KindRollover:
		return f.Rollover
	case KindWrongWordOrder:
		return f.WrongWordOrder
	case KindMissingOptional:
		return f.MissingOptional
	case KindSlowReply:
		return f.SlowReply
	}
	return 0
}

// SetRate sets the rate of kind k.
func (f *Faults) SetRate(k Kind, r float64) {
	p := map[Kind]*float64{
		KindDuplicate: &f.Duplicate, KindOutOfOrder: &f.OutOfOrder, KindLate: &f.Late,
		KindBrokenJSON: &f.BrokenJSON, KindWrongType: &f.WrongType, KindUnknownMeter: &f.UnknownMeter,
		KindFutureTime: &f.FutureTime, KindPastTime: &f.PastTime,
		KindGap: &f.Gap, KindReset: &f.Reset, KindReplacement: &f.Replacement, KindSpike: &f.Spike, KindStuck: &f.Stuck,
		KindRollover: &f.Rollover, KindWrongWordOrder: &f.WrongWordOrder, KindMissingOptional: &f.MissingOptional,
		KindSlowReply: &f.SlowReply,
	}[k]
	if p != nil {
		*p = r
	}
}

// length returns the duration of meter event k.
func (f *Faults) length(k Kind) time.Duration {
	switch k {
	case KindGap:
		return f.GapLength
	case KindSpike:
		return f.SpikeLength
	case KindStuck:
		return f.StuckLength
	}
	return 0
}

func (f *Faults) setDefaults() {
	if f.LateBy == 0 {
		f.LateBy = 10
	}
	if f.GapLength == 0 {
		f.GapLength = 30 * time.Minute
	}
	if f.SpikeLength == 0 {
		f.SpikeLength = 15 * time.Minute
	}
	if f.SpikeFactor == 0 {
		f.SpikeFactor = 5
	}
	if f.StuckLength == 0 {
		f.StuckLength = 6 * time.Hour
	}
	if f.RolloverAfter == 0 {
		f.RolloverAfter = time.Hour
	}
	if f.SlowReplyDelay == 0 {
		f.SlowReplyDelay = 3 * time.Second
	}
}

func (f *Faults) validate(meters int) []error {
	var errs []error
	for _, k := range Kinds() {
		r := f.Rate(k)
		if !(r >= 0 && r <= 1) {
			errs = append(errs, fmt.Errorf("%w: Faults.%s rate %v outside 0..1", ErrInvalidConfig, k, r))
		}
	}
	if f.Duplicate+f.OutOfOrder+f.Late > 1 {
		errs = append(errs, fmt.Errorf("%w: Faults: duplicate+out_of_order+late rates exceed 1", ErrInvalidConfig))
	}
	if f.LateBy < 1 {
		errs = append(errs, fmt.Errorf("%w: Faults.LateBy must be at least 1, got %d", ErrInvalidConfig, f.LateBy))
	}
	for name, d := range map[string]time.Duration{"GapLength": f.GapLength, "SpikeLength": f.SpikeLength, "StuckLength": f.StuckLength} {
		if d <= 0 || d > 24*time.Hour {
			errs = append(errs, fmt.Errorf("%w: Faults.%s must be in (0, 24h], got %v", ErrInvalidConfig, name, d))
		}
	}
	if !(f.SpikeFactor > 1 && f.SpikeFactor <= 100) {
		errs = append(errs, fmt.Errorf("%w: Faults.SpikeFactor must be in (1, 100], got %v", ErrInvalidConfig, f.SpikeFactor))
	}
	if f.RolloverAfter <= 0 || f.RolloverAfter > 31*24*time.Hour {
		errs = append(errs, fmt.Errorf("%w: Faults.RolloverAfter must be in (0, 31 days], got %v", ErrInvalidConfig, f.RolloverAfter))
	}
	if f.SlowReplyDelay <= 0 {
		errs = append(errs, fmt.Errorf("%w: Faults.SlowReplyDelay must be positive, got %v", ErrInvalidConfig, f.SlowReplyDelay))
	}
	for i, s := range f.Schedule {
		if s.Kind <= KindNone || s.Kind >= numKinds {
			errs = append(errs, fmt.Errorf("%w: Faults.Schedule[%d]: unknown kind %d", ErrInvalidConfig, i, s.Kind))
		}
		if s.Meter < 0 || s.Meter >= meters {
			errs = append(errs, fmt.Errorf("%w: Faults.Schedule[%d]: meter %d outside 0..%d", ErrInvalidConfig, i, s.Meter, meters-1))
		}
		if s.At.IsZero() && !s.Kind.Device() {
			errs = append(errs, fmt.Errorf("%w: Faults.Schedule[%d]: %s needs a time", ErrInvalidConfig, i, s.Kind))
		}
		if s.For < 0 || s.For > 24*time.Hour {
			errs = append(errs, fmt.Errorf("%w: Faults.Schedule[%d]: length %v outside [0, 24h]", ErrInvalidConfig, i, s.For))
		}
	}
	return errs
}

// MarshalText writes the kind's name, so configs and manifests carry names,
// not numbers.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}
