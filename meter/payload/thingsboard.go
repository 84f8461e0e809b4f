package payload

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/meterd/meterd/meter"
)

// ThingsBoard telemetry (FORMAT.md has the full reference).
//
// Device API, topic v1/devices/me/telemetry. The topic names no device: the
// meter is the authenticated publisher (Input.Publisher, the MQTT username
// the broker checked), and a message without one is rejected as
// unknown_meter. Payloads:
//
//	{"import_wh":12345678,"power_w":1234.5}                     // arrival time
//	{"ts":1772366400000,"values":{"import_wh":12345678}}        // epoch ms
//	[{"ts":1772366400000,"values":{…}},{"ts":…,"values":{…}}]   // backfill
//
// Gateway API, topic v1/gateway/telemetry: one message carries readings for
// several meters, keyed by meter reference:
//
//	{"m-000123":[{"ts":1772366400000,"values":{"import_wh":12345678}}],
//	 "m-000124":[{"ts":1772366400000,"values":{"import_kwh":4321.5}}]}
//
// Value keys are the canonical ones (import_wh, export_wh as integers;
// power_w, voltage_v, current_a, frequency_hz, power_factor), plus
// import_kwh and export_kwh as kWh numbers, converted to Wh and rounded.
// Other keys (temperature, rssi …) are ignored; an item with none of ours is
// skipped, and a message with none at all is no_reading.

// tbValues are the telemetry keys meterd reads.
type tbValues struct {
	ImportWh    optInt   `json:"import_wh"`
	ExportWh    optInt   `json:"export_wh"`
	ImportKWh   optFloat `json:"import_kwh"`
	ExportKWh   optFloat `json:"export_kwh"`
	PowerW      optFloat `json:"power_w"`
	VoltageV    optFloat `json:"voltage_v"`
	CurrentA    optFloat `json:"current_a"`
	FrequencyHz optFloat `json:"frequency_hz"`
	PowerFactor optFloat `json:"power_factor"`
}

// tbItem is either {"ts":…,"values":{…}} or a flat values object; both
// shapes decode into it, and hasValues tells them apart.
type tbItem struct {
	TS        tbTime
	flat      tbValues
	hasValues bool
}

func (it *tbItem) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return typeError(b, reflect.TypeFor[map[string]any]())
	}
	var shape struct {
		TS     tbTime          `json:"ts"`
		Values json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(b, &shape); err != nil {
		return err
	}
	it.TS = shape.TS
	if shape.Values != nil && !isNull(shape.Values) {
		it.hasValues = true
		if err := json.Unmarshal(shape.Values, &it.flat); err != nil {
			return wrapField(err, "values")
		}
		return nil
	}
	return json.Unmarshal(b, &it.flat)
}

// tbTime is ThingsBoard's ts: integer epoch milliseconds.
type tbTime struct {
	t   time.Time
	set bool
}

func (f *tbTime) UnmarshalJSON(b []byte) error {
	*f = tbTime{}
	if isNull(b) {
		return nil
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return typeError(b, reflect.TypeFor[int64]())
	}
	if ms < minEpochMs || ms >= maxEpochMs {
		return meter.Rejectf(meter.ReasonWrongUnit, "ts", "%d is not epoch milliseconds", ms)
	}
	*f = tbTime{t: time.UnixMilli(ms), set: true}
	return nil
}

func (d *Decoder) decodeThingsBoard(m *Message, t Topic, in Input) error {
	payload := bytes.TrimSpace(in.Payload)
	if !t.Gateway {
		if in.Publisher == "" {
			return meter.Rejectf(meter.ReasonUnknownMeter, "publisher", "device API telemetry without an authenticated publisher")
		}
		if !ValidMeterRef(in.Publisher) {
			return meter.Rejectf(meter.ReasonUnknownMeter, "publisher", "%q is not a valid meter reference", in.Publisher)
		}
		items, err := tbItems(payload)
		if err != nil {
			return err
		}
		if err := d.appendTB(m, in.Publisher, items, "", &in); err != nil {
			return err
		}
	} else {
		var byMeter map[string]json.RawMessage
		if err := json.Unmarshal(payload, &byMeter); err != nil {
			return jsonReject(err)
		}
		refs := make([]string, 0, len(byMeter))
		for ref := range byMeter {
			refs = append(refs, ref)
		}
		slices.Sort(refs)
		for _, ref := range refs {
			if !ValidMeterRef(ref) {
				return meter.Rejectf(meter.ReasonUnknownMeter, ref, "%q is not a valid meter reference", ref)
			}
			var items []tbItem
			if err := json.Unmarshal(byMeter[ref], &items); err != nil {
				return jsonReject(wrapField(err, ref))
			}
			if err := d.appendTB(m, ref, items, ref+".", &in); err != nil {
				return err
			}
		}
	}
	if len(m.Readings) == 0 {
		return meter.Rejectf(meter.ReasonNoReading, "", "no meter values (import_wh, power_w, …)")
	}
	return nil
}

// tbItems decodes a device API payload: one item or an array of them.
func tbItems(payload []byte) ([]tbItem, error) {
	if len(payload) > 0 && payload[0] == '[' {
		var items []tbItem
		if err := json.Unmarshal(payload, &items); err != nil {
			return nil, jsonReject(err)
		}
		return items, nil
	}
	var it tbItem
	if err := json.Unmarshal(payload, &it); err != nil {
		return nil, jsonReject(err)
	}
	return []tbItem{it}, nil
}

func (d *Decoder) appendTB(m *Message, ref string, items []tbItem, prefix string, in *Input) error {
	if len(m.Readings)+len(items) > d.cfg.MaxBatch {
		return meter.Rejectf(meter.ReasonTooLarge, "", "more than %d readings", d.cfg.MaxBatch)
	}
	for i := range items {
		it := &items[i]
		field := prefix
		if it.hasValues {
			field += "values."
		}
		ts := in.ReceivedAt
		if it.TS.set {
			ts = it.TS.t
		} else if it.hasValues {
			return meter.Rejectf(meter.ReasonMissingField, prefix+"ts", "{ts, values} item without ts")
		}
		r := newReading(ref, ts, in)
		v := &it.flat
		if err := setEnergy(&r, meter.FieldImport, v.ImportWh, v.ImportKWh, field, "import"); err != nil {
			return err
		}
		if err := setEnergy(&r, meter.FieldExport, v.ExportWh, v.ExportKWh, field, "export"); err != nil {
			return err
		}
		floats := [...]struct {
			o    optFloat
			dst  *float32
			f    meter.Fields
			name string
		}{
			{v.PowerW, &r.PowerW, meter.FieldPower, "power_w"},
			{v.VoltageV, &r.VoltageV, meter.FieldVoltage, "voltage_v"},
			{v.CurrentA, &r.CurrentA, meter.FieldCurrent, "current_a"},
			{v.FrequencyHz, &r.FrequencyHz, meter.FieldFrequency, "frequency_hz"},
			{v.PowerFactor, &r.PowerFactor, meter.FieldPowerFactor, "power_factor"},
		}
		for _, f := range floats {
			if !f.o.set {
				continue
			}
			x, err := f.o.float32(field, f.name)
			if err != nil {
				return err
			}
			*f.dst, r.Fields = x, r.Fields|f.f
		}
		if r.Fields != 0 {
			m.Readings = append(m.Readings, r)
		}
	}
	return nil
}

// setEnergy sets an energy field from its Wh or kWh key; both at once is
// ambiguous and rejected.
func setEnergy(r *Reading, f meter.Fields, wh optInt, kwh optFloat, field, name string) error {
	switch {
	case wh.set && kwh.set:
		return meter.Rejectf(meter.ReasonWrongUnit, field+name+"_wh", "both %s_wh and %s_kwh given", name, name)
	case wh.set:
		if f == meter.FieldImport {
			r.ImportWh = wh.v
		} else {
			r.ExportWh = wh.v
		}
	case kwh.set:
		if math.IsInf(kwh.v, 0) {
			return meter.Rejectf(meter.ReasonImpossibleValue, field+name+"_kwh", "out of range")
		}
		v, err := kWhToWh(kwh.v, field+name+"_kwh")
		if err != nil {
			return err
		}
		if f == meter.FieldImport {
			r.ImportWh = v
		} else {
			r.ExportWh = v
		}
	default:
		return nil
	}
	r.Fields |= f
	return nil
}
