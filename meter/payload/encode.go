package payload

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/meterd/meterd/meter"
)

// TimeFormat selects how an encoder writes timestamps.
type TimeFormat uint8

// Timestamp encodings for canonical JSON.
const (
	TimeRFC3339     TimeFormat = iota // "2026-03-01T12:00:00.123456Z": keeps microseconds
	TimeEpochMillis                   // 1772366400123: sub-millisecond digits are dropped
)

// CanonicalOptions tune the canonical encoders.
type CanonicalOptions struct {
	// Meter, when set, is written as the "meter" field; it must then equal
	// the topic's meter reference.
	Meter string
	Time  TimeFormat
}

// AppendCanonical appends the canonical JSON of one reading to dst and
// returns the extended buffer. Only quantities present in r.Fields are
// written; NaN and infinite values are left out (JSON cannot carry them).
func AppendCanonical(dst []byte, r *meter.Reading, opt CanonicalOptions) []byte {
	dst = appendHeader(dst, opt)
	dst = append(dst, ',')
	dst = appendCanonicalFields(dst, r, opt)
	return append(dst, '}')
}

// AppendCanonicalBatch appends a canonical batch message holding rs (all of
// the same meter) to dst.
func AppendCanonicalBatch(dst []byte, rs []meter.Reading, opt CanonicalOptions) []byte {
	dst = appendHeader(dst, opt)
	dst = append(dst, `,"readings":[`...)
	for i := range rs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		dst = appendCanonicalFields(dst, &rs[i], opt)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

func appendHeader(dst []byte, opt CanonicalOptions) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, CanonicalVersion, 10)
	if opt.Meter != "" {
		dst = append(dst, `,"meter":`...)
		dst = appendString(dst, opt.Meter)
	}
	return dst
}

func appendCanonicalFields(dst []byte, r *meter.Reading, opt CanonicalOptions) []byte {
	dst = append(dst, `"ts":`...)
	if opt.Time == TimeEpochMillis {
		dst = strconv.AppendInt(dst, r.Time.UnixMilli(), 10)
	} else {
		dst = append(dst, '"')
		dst = r.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	if r.Fields.Has(meter.FieldImport) {
		dst = append(dst, `,"import_wh":`...)
		dst = strconv.AppendInt(dst, r.ImportWh, 10)
	}
	if r.Fields.Has(meter.FieldExport) {
		dst = append(dst, `,"export_wh":`...)
		dst = strconv.AppendInt(dst, r.ExportWh, 10)
	}
	dst = appendFloatField(dst, r, meter.FieldPower, `,"power_w":`, r.PowerW)
	dst = appendFloatField(dst, r, meter.FieldVoltage, `,"voltage_v":`, r.VoltageV)
	dst = appendFloatField(dst, r, meter.FieldCurrent, `,"current_a":`, r.CurrentA)
	dst = appendFloatField(dst, r, meter.FieldFrequency, `,"frequency_hz":`, r.FrequencyHz)
	dst = appendFloatField(dst, r, meter.FieldPowerFactor, `,"power_factor":`, r.PowerFactor)
	return dst
}

func appendFloatField(dst []byte, r *meter.Reading, f meter.Fields, key string, x float32) []byte {
	if !r.Fields.Has(f) || !finite32(x) {
		return dst
	}
	return appendFloat32(append(dst, key...), x)
}

func finite32(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }

// appendFloat32 writes x as the shortest decimal that reads back as the
// same float32, in the JSON number syntax encoding/json uses.
func appendFloat32(dst []byte, x float32) []byte {
	abs := math.Abs(float64(x))
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, float64(x), format, -1, 32)
}

// appendString writes s as a JSON string.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			i++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(dst, '"')
}

// appendKWh writes wh as kWh with exactly three decimals, computed in
// integers so that decoding it back gives the same Wh.
func appendKWh(dst []byte, wh int64) []byte {
	if wh < 0 {
		dst = append(dst, '-')
		if wh == math.MinInt64 {
			return append(dst, "9223372036854775.808"...)
		}
		wh = -wh
	}
	dst = strconv.AppendInt(dst, wh/1000, 10)
	frac := wh % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
