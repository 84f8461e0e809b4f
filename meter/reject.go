package meter

import (
	"errors"
	"fmt"
)

// Reason is a stable code saying why an incoming message or reading was
// rejected. The gateway stores it in readings_rejected.reason and uses it as
// the "reason" label of its rejected-readings counter, so the strings must
// never change; add new codes rather than renaming old ones.
type Reason string

// The reject reasons. Every reason any part of meterd records lives in this
// list, including the ones the gateway decides itself (unknown_meter).
const (
	// ReasonBadJSON: the payload is not well-formed JSON (or not UTF-8 text
	// where text is required).
	ReasonBadJSON Reason = "bad_json"
	// ReasonWrongType: a field has the wrong JSON type (a string where a
	// number belongs, a fraction where an integer belongs, an array where an
	// object belongs, …).
	ReasonWrongType Reason = "wrong_type"
	// ReasonWrongUnit: a value is in a unit the format does not allow, e.g.
	// "import_kwh" in canonical JSON (energy is integer Wh) or epoch seconds
	// where epoch milliseconds belong.
	ReasonWrongUnit Reason = "wrong_unit"
	// ReasonMissingField: a required field is absent, or a reading carries
	// no quantity at all.
	ReasonMissingField Reason = "missing_field"
	// ReasonImpossibleValue: a value is outside what a meter can physically
	// report (negative energy, 5 kV phase voltage, power factor 3, a number
	// too large for its register, …). See Limits.
	ReasonImpossibleValue Reason = "impossible_value"
	// ReasonBadTimestamp: a timestamp is present but cannot be parsed.
	ReasonBadTimestamp Reason = "bad_timestamp"
	// ReasonFutureTimestamp: the source timestamp is later than the arrival
	// time plus Limits.MaxFutureSkew.
	ReasonFutureTimestamp Reason = "future_timestamp"
	// ReasonTooOld: the source timestamp is earlier than the arrival time
	// minus Limits.MaxAge.
	ReasonTooOld Reason = "too_old"
	// ReasonUnknownFormat: the topic matches no payload format, or the
	// payload is not the kind of message the topic's format expects.
	ReasonUnknownFormat Reason = "unknown_format"
	// ReasonUnsupportedVersion: the payload declares a schema version this
	// build does not understand.
	ReasonUnsupportedVersion Reason = "unsupported_version"
	// ReasonTooLarge: the payload is longer than the decoder accepts, or a
	// batch holds more readings than allowed.
	ReasonTooLarge Reason = "too_large"
	// ReasonMeterMismatch: the payload names a different meter from the
	// topic it was published on.
	ReasonMeterMismatch Reason = "meter_mismatch"
	// ReasonNoReading: a well-formed message of the topic's format that
	// carries no meter data (a Shelly NotifyEvent, a Tasmota SENSOR message
	// without an ENERGY object). The gateway may count these without storing
	// the payload.
	ReasonNoReading Reason = "no_reading"
	// ReasonUnknownMeter: the meter reference does not resolve to a meter
	// (decided by the gateway), or a topic that needs a publisher identity
	// arrived without one.
	ReasonUnknownMeter Reason = "unknown_meter"
)

// Reasons returns every reject reason, in a new slice, so a metrics
// component can pre-register one counter series per reason.
func Reasons() []Reason {
	return []Reason{
		ReasonBadJSON,
		ReasonWrongType,
		ReasonWrongUnit,
		ReasonMissingField,
		ReasonImpossibleValue,
		ReasonBadTimestamp,
		ReasonFutureTimestamp,
		ReasonTooOld,
		ReasonUnknownFormat,
		ReasonUnsupportedVersion,
		ReasonTooLarge,
		ReasonMeterMismatch,
		ReasonNoReading,
		ReasonUnknownMeter,
	}
}

// RejectError is the error every decoder and validator in meter returns for
// bad input. Errors that are not RejectErrors are bugs or I/O failures, not
// bad data.
type RejectError struct {
	Reason Reason
	// Field names the offending field in the payload's own naming
	// ("readings.import_wh", "ENERGY.Total", "params.em:0.a_voltage") or the
	// Reading field ("voltage_v"); empty when the message as a whole is at
	// fault.
	Field string
	// Err is the detail; it may be nil.
	Err error
}

// Reject returns a RejectError.
func Reject(reason Reason, field string, err error) *RejectError {
	return &RejectError{Reason: reason, Field: field, Err: err}
}

// Rejectf returns a RejectError whose detail is formatted from format and args.
func Rejectf(reason Reason, field, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Field: field, Err: fmt.Errorf(format, args...)}
}

func (e *RejectError) Error() string {
	s := "reject " + string(e.Reason)
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *RejectError) Unwrap() error { return e.Err }

// ReasonOf returns the reason of the first RejectError in err's chain, and
// false if there is none (the error is not about bad input).
func ReasonOf(err error) (Reason, bool) {
	if re, ok := errors.AsType[*RejectError](err); ok {
		return re.Reason, true
	}
	return "", false
}
