package payload

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/meterd/meterd/meter"
)

// Tasmota SENSOR telemetry (FORMAT.md has the full reference).
//
// Topic: tele/<meter>/SENSOR, where <meter> is the device's MQTT %topic%
// set to its meter reference. Tasmota publishes every TelePeriod (default
// 300 s):
//
//	{"Time":"2023-01-09T18:57:39","ENERGY":{"TotalStartTime":"2023-01-01T00:00:00",
//	 "Total":12345.678,"Yesterday":3.210,"Today":1.234,"Power":[812,0],
//	 "ApparentPower":[850,0],"ReactivePower":[250,0],"Factor":[0.96,0.00],
//	 "Frequency":50,"Voltage":237,"Current":[3.426,0.000]}}
//
// Pitfalls handled here:
//   - Total (and ExportActive) are kWh with three decimals; they become
//     integer Wh, rounded.
//   - Every ENERGY field may be a scalar or an array with one entry per
//     channel or phase. Energy, power and current are summed over the
//     channels; voltage is the mean of the non-zero entries; frequency is the
//     first entry; the power factor is Factor when there is a single
//     channel, else ΣPower/ΣApparentPower when that is a valid ratio.
//   - Time is the device's local time without a zone (unless SetOption52
//     adds one). With an offset it is used as is; without one it is read in
//     Config.DeviceZone, or, when no zone is configured, replaced by the
//     arrival time. A clock that never synced (before 2016) is replaced by
//     the arrival time and the reading flagged meter.QualityClockSuspect.
//   - Counters reset when the device loses power; that is counter
//     arithmetic's business (meter.StepCounter), not the decoder's.
//   - A SENSOR message without ENERGY (a device with only other sensors) is
//     rejected as no_reading.
type tasmotaMessage struct {
	Time   rawString      `json:"Time"`
	Energy *tasmotaEnergy `json:"ENERGY"`
}

type tasmotaEnergy struct {
	Total         numList `json:"Total"`
	ExportActive  numList `json:"ExportActive"`
	Power         numList `json:"Power"`
	ApparentPower numList `json:"ApparentPower"`
	Factor        numList `json:"Factor"`
	Frequency     numList `json:"Frequency"`
	Voltage       numList `json:"Voltage"`
	Current       numList `json:"Current"`
}

// maxChannels bounds Tasmota channel arrays; devices have at most a few
// (3 phases, or 8 relays on a multi-channel board).
const maxChannels = 8

// numList is a JSON number or array of numbers.
type numList struct {
	v   [maxChannels]float64
	n   int
	set bool
}

func (l *numList) UnmarshalJSON(b []byte) error {
	*l = numList{}
	if isNull(b) {
		return nil
	}
	if b[0] != '[' {
		x, err := parseNumber(b)
		if err != nil {
			return err
		}
		l.v[0], l.n, l.set = x, 1, true
		return nil
	}
	// The payload is valid JSON (encoding/json checked it first), so the
	// elements are separated by commas; the first element that is not a
	// number is rejected before a comma inside it could mislead the split.
	rest := bytes.TrimSpace(b[1 : len(b)-1])
	for len(rest) > 0 {
		elem, tail, _ := bytes.Cut(rest, []byte{','})
		elem = bytes.TrimSpace(elem)
		x, err := parseNumber(elem)
		if err != nil {
			return err
		}
		if l.n == maxChannels {
			return &json.UnmarshalTypeError{Value: "array of more than " + strconv.Itoa(maxChannels) + " channels", Type: reflect.TypeFor[[maxChannels]float64]()}
		}
		l.v[l.n] = x
		l.n++
		rest = tail
	}
	l.set = l.n > 0
	return nil
}

func parseNumber(b []byte) (float64, error) {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return 0, typeError(b, reflect.TypeFor[float64]())
	}
	x, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, typeError(b, reflect.TypeFor[float64]())
	}
	return x, nil
}

func (l *numList) sum() float64 {
	s := 0.0
	for _, x := range l.v[:l.n] {
		s += x
	}
	return s
}

// minClockYear: a Tasmota clock showing an earlier year never synced
// (it starts at 1970 and Tasmota itself postdates 2016).
const minClockYear = 2016

func (d *Decoder) decodeTasmota(m *Message, t Topic, in Input) error {
	var tm tasmotaMessage
	if err := json.Unmarshal(in.Payload, &tm); err != nil {
		return jsonReject(err)
	}
	if tm.Energy == nil {
		return meter.Rejectf(meter.ReasonNoReading, "ENERGY", "SENSOR message without an ENERGY object")
	}
	ts, quality, err := d.tasmotaTime(tm.Time, in.ReceivedAt)
	if err != nil {
		return err
	}
	r := newReading(t.Meter, ts, &in)
	r.Quality |= quality
	e := tm.Energy
	if e.Total.set {
		wh, err := kWhToWh(e.Total.sum(), "ENERGY.Total")
		if err != nil {
			return err
		}
		r.ImportWh, r.Fields = wh, r.Fields|meter.FieldImport
	}
	if e.ExportActive.set {
		wh, err := kWhToWh(e.ExportActive.sum(), "ENERGY.ExportActive")
		if err != nil {
			return err
		}
		r.ExportWh, r.Fields = wh, r.Fields|meter.FieldExport
	}
	set := func(dst *float32, f meter.Fields, x float64, field string) error {
		if math.IsInf(x, 0) || math.Abs(x) > math.MaxFloat32 {
			return meter.Rejectf(meter.ReasonImpossibleValue, field, "%g is out of range", x)
		}
		*dst, r.Fields = float32(x), r.Fields|f
		return nil
	}
	var errs [5]error
	if e.Power.set {
		errs[0] = set(&r.PowerW, meter.FieldPower, e.Power.sum(), "ENERGY.Power")
	}
	if e.Current.set {
		errs[1] = set(&r.CurrentA, meter.FieldCurrent, e.Current.sum(), "ENERGY.Current")
	}
	if e.Voltage.set {
		var sum float64
		n := 0
		for _, v := range e.Voltage.v[:e.Voltage.n] {
			if v != 0 {
				sum += v
				n++
			}
		}
		if n > 0 {
			sum /= float64(n)
		}
		errs[2] = set(&r.VoltageV, meter.FieldVoltage, sum, "ENERGY.Voltage")
	}
	if e.Frequency.set {
		errs[3] = set(&r.FrequencyHz, meter.FieldFrequency, e.Frequency.v[0], "ENERGY.Frequency")
	}
	switch s := e.ApparentPower.sum(); {
	case e.Factor.set && e.Factor.n == 1:
		errs[4] = set(&r.PowerFactor, meter.FieldPowerFactor, e.Factor.v[0], "ENERGY.Factor")
	case e.Power.set && e.ApparentPower.set && s > 0 && math.Abs(e.Power.sum()) <= s:
		// Tasmota rounds P and S separately, so at low load P/S can exceed
		// 1; such a ratio is noise, and the factor is left out.
		errs[4] = set(&r.PowerFactor, meter.FieldPowerFactor, e.Power.sum()/s, "ENERGY.ApparentPower")
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if r.Fields == 0 {
		return meter.Rejectf(meter.ReasonMissingField, "ENERGY", "no Total, Power, Voltage, Current, Frequency or Factor")
	}
	m.Readings = append(m.Readings, r)
	return nil
}

// tasmotaLocalLayout is Tasmota's default Time format: local time, no zone.
const tasmotaLocalLayout = "2006-01-02T15:04:05"

// tasmotaTime returns the source time for a Tasmota Time field and any
// quality flag it earns.
func (d *Decoder) tasmotaTime(s rawString, receivedAt time.Time) (time.Time, meter.Quality, error) {
	if s.raw == nil {
		return receivedAt, 0, nil
	}
	str := s.String()
	var ts time.Time
	if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
		ts = t // SetOption52: the device gave its offset
	} else {
		if d.cfg.DeviceZone == nil {
			if _, err := time.Parse(tasmotaLocalLayout, str); err != nil {
				return time.Time{}, 0, meter.Rejectf(meter.ReasonBadTimestamp, "Time", "%q is not Tasmota's time format", str)
			}
			return receivedAt, 0, nil
		}
		t, err := time.ParseInLocation(tasmotaLocalLayout, str, d.cfg.DeviceZone)
		if err != nil {
			return time.Time{}, 0, meter.Rejectf(meter.ReasonBadTimestamp, "Time", "%q is not Tasmota's time format", str)
		}
		ts = t
	}
	if ts.Year() < minClockYear {
		return receivedAt, meter.QualityClockSuspect, nil
	}
	return ts, 0, nil
}

// kWhToWh converts a kWh value to integer Wh, rounding half away from zero.
func kWhToWh(kwh float64, field string) (int64, error) {
	wh := math.Round(kwh * 1000)
	if math.IsNaN(wh) || math.Abs(wh) >= 1<<62 {
		return 0, meter.Rejectf(meter.ReasonImpossibleValue, field, "%g kWh is out of range", kwh)
	}
	return int64(wh), nil
}

// TasmotaOptions tune AppendTasmota.
type TasmotaOptions struct {
	// Zone is the device's local time zone; nil means UTC.
	Zone *time.Location
	// WithOffset appends the zone offset to Time, as SetOption52 does.
	WithOffset bool
}

// AppendTasmota appends a Tasmota SENSOR message for r to dst, the way a
// single-channel Tasmota energy monitor writes it: Time in local time, Total
// and ExportActive in kWh with three decimals. Quantities absent from
// r.Fields, and non-finite values, are left out.
func AppendTasmota(dst []byte, r *meter.Reading, opt TasmotaOptions) []byte {
	zone := opt.Zone
	if zone == nil {
		zone = time.UTC
	}
	layout := tasmotaLocalLayout
	if opt.WithOffset {
		layout = "2006-01-02T15:04:05-07:00"
	}
	dst = append(dst, `{"Time":"`...)
	dst = r.Time.In(zone).AppendFormat(dst, layout)
	dst = append(dst, `","ENERGY":{`...)
	first := true
	key := func(k string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, k...)
	}
	if r.Fields.Has(meter.FieldImport) {
		key(`"Total":`)
		dst = appendKWh(dst, r.ImportWh)
	}
	if r.Fields.Has(meter.FieldExport) {
		key(`"ExportActive":`)
		dst = appendKWh(dst, r.ExportWh)
	}
	floats := [...]struct {
		f meter.Fields
		k string
		x float32
	}{
		{meter.FieldPower, `"Power":`, r.PowerW},
		{meter.FieldPowerFactor, `"Factor":`, r.PowerFactor},
		{meter.FieldFrequency, `"Frequency":`, r.FrequencyHz},
		{meter.FieldVoltage, `"Voltage":`, r.VoltageV},
		{meter.FieldCurrent, `"Current":`, r.CurrentA},
	}
	for _, f := range floats {
		if r.Fields.Has(f.f) && finite32(f.x) {
			key(f.k)
			dst = appendFloat32(dst, f.x)
		}
	}
	return append(dst, "}}"...)
}
