package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/meter"
)

// The JSON value types below record whether their key was present and give
// precise errors. They return *json.UnmarshalTypeError for a value of the
// wrong JSON type, so that encoding/json fills in the field path
// ("readings.import_wh"), and *meter.RejectError for everything else.

// optInt is an optional JSON integer. A number with a fraction or exponent
// is a wrong type, not something to round: "import_wh": 12.5 means the
// sender has the unit wrong.
type optInt struct {
	v   int64
	set bool
}

func (o *optInt) UnmarshalJSON(b []byte) error {
	*o = optInt{}
	if isNull(b) {
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return typeError(b, reflect.TypeFor[int64]())
	}
	*o = optInt{v: n, set: true}
	return nil
}

// optFloat is an optional JSON number.
type optFloat struct {
	v   float64
	set bool
}

func (o *optFloat) UnmarshalJSON(b []byte) error {
	*o = optFloat{}
	if isNull(b) {
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return typeError(b, reflect.TypeFor[float64]())
	}
	x, err := strconv.ParseFloat(string(b), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return typeError(b, reflect.TypeFor[float64]())
	}
	// ErrRange leaves ±Inf or 0, which validation rejects or accepts as the
	// number it is; a literal like 1e999 is then impossible_value, not a
	// type error.
	*o = optFloat{v: x, set: true}
	return nil
}

// float32 returns o as a float32, or an impossible_value reject naming
// prefix+name when it is out of float32 range (the type readings store
// instantaneous values in). The field name is only built on failure, so the
// happy path does not allocate.
func (o optFloat) float32(prefix, name string) (float32, error) {
	if math.IsInf(o.v, 0) || math.Abs(o.v) > math.MaxFloat32 {
		return 0, meter.Rejectf(meter.ReasonImpossibleValue, prefix+name, "%g is out of range", o.v)
	}
	return float32(o.v), nil
}

// present records that a key occurred with a non-null value. It traps keys
// that signal a unit mistake.
type present bool

func (p *present) UnmarshalJSON(b []byte) error {
	*p = present(!isNull(b))
	return nil
}

// rawString is an optional JSON string, kept as its raw bytes (still
// quoted) so that comparing it costs no allocation. The bytes alias the
// payload and must not outlive the decode call.
type rawString struct {
	raw []byte
}

func (s *rawString) UnmarshalJSON(b []byte) error {
	s.raw = nil
	if isNull(b) {
		return nil
	}
	if b[0] != '"' {
		return typeError(b, reflect.TypeFor[string]())
	}
	s.raw = b
	return nil
}

// equal reports whether s holds exactly the string want.
func (s rawString) equal(want string) bool {
	if bytes.IndexByte(s.raw, '\\') < 0 {
		return string(s.raw[1:len(s.raw)-1]) == want
	}
	var got string
	return json.Unmarshal(s.raw, &got) == nil && got == want
}

// String returns the decoded string.
func (s rawString) String() string {
	if bytes.IndexByte(s.raw, '\\') < 0 {
		return string(s.raw[1 : len(s.raw)-1])
	}
	var got string
	_ = json.Unmarshal(s.raw, &got) // validated by the decoder already
	return got
}

// Epoch-millisecond bounds: below 1e11 ms is before 1973, so the number is
// almost certainly epoch seconds; 1e14 ms is year 5138, so anything above
// is micro- or nanoseconds.
const (
	minEpochMs = 100_000_000_000
	maxEpochMs = 100_000_000_000_000
)

// tsField is a timestamp: an RFC 3339 string with a zone, or integer epoch
// milliseconds.
type tsField struct {
	t   time.Time
	set bool
}

func (f *tsField) UnmarshalJSON(b []byte) error {
	*f = tsField{}
	switch {
	case isNull(b):
		return nil
	case b[0] == '"':
		s := b[1 : len(b)-1]
		if bytes.IndexByte(s, '\\') >= 0 {
			return meter.Rejectf(meter.ReasonBadTimestamp, "ts", "escaped characters in %s", b)
		}
		t, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			return meter.Rejectf(meter.ReasonBadTimestamp, "ts", "%s is not RFC 3339 with a zone", b)
		}
		// No meter reads before 1970 (the epoch path already demands 1973),
		// year 1 is Go's zero time ("unset"), and a zone offset can push
		// 0000 or 9999 out of what RFC 3339 can write back.
		if y := t.UTC().Year(); y < 1970 || y > 9999 {
			return meter.Rejectf(meter.ReasonBadTimestamp, "ts", "%s is outside the years 1970–9999 in UTC", b)
		}
		*f = tsField{t: t, set: true}
		return nil
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9':
		ms, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return typeError(b, reflect.TypeFor[int64]())
		}
		if ms < minEpochMs {
			return meter.Rejectf(meter.ReasonWrongUnit, "ts", "%d looks like epoch seconds; ts must be epoch milliseconds", ms)
		}
		if ms >= maxEpochMs {
			return meter.Rejectf(meter.ReasonWrongUnit, "ts", "%d looks like epoch micro- or nanoseconds; ts must be epoch milliseconds", ms)
		}
		*f = tsField{t: time.UnixMilli(ms), set: true}
		return nil
	}
	return typeError(b, reflect.TypeFor[time.Time]())
}

func isNull(b []byte) bool { return string(b) == "null" }

// typeError describes a JSON value of the wrong type the way encoding/json
// does, so the decoder adds the field path.
func typeError(b []byte, want reflect.Type) error {
	return &json.UnmarshalTypeError{Value: jsonKind(b), Type: want}
}

// jsonKind names a raw JSON value for an error message.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	if len(b) > 32 {
		b = b[:32]
	}
	return "number " + string(b)
}

// typeName names a Go type in JSON terms for error messages.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int64, reflect.Int, reflect.Uint16, reflect.Uint32, reflect.Int32:
		return "integer"
	case reflect.Float64, reflect.Float32:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return "RFC 3339 string or epoch milliseconds"
		}
		return "object"
	case reflect.Map:
		return "object"
	}
	return t.String()
}

// jsonReject turns an encoding/json error into a *meter.RejectError.
func jsonReject(err error) error {
	if err == nil {
		return nil
	}
	if re, ok := errors.AsType[*meter.RejectError](err); ok {
		return re
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		// encoding/json names embedded structs in the path; payloads do not.
		field := strings.ReplaceAll(te.Field, "canonicalReading.", "")
		return meter.Rejectf(meter.ReasonWrongType, field, "got %s, want %s", te.Value, typeName(te.Type))
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return meter.Rejectf(meter.ReasonBadJSON, "", "at byte %d: %v", se.Offset, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return meter.Rejectf(meter.ReasonBadJSON, "", "truncated")
	}
	return meter.Reject(meter.ReasonBadJSON, "", fmt.Errorf("%w", err))
}
