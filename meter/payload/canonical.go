package payload

import (
	"encoding/json"

	"github.com/meterd/meterd/meter"
)

// CanonicalVersion is the canonical JSON schema version this package reads
// and writes (the "v" field).
const CanonicalVersion = 1

// Canonical JSON, version 1 (FORMAT.md has the full reference).
//
// Topic: meters/<tenant>/<meter>/reading. One message carries one reading:
//
//	{"v":1,"meter":"m-000123","ts":"2026-03-01T12:00:00Z",
//	 "import_wh":12345678,"export_wh":0,"power_w":1234.5,"voltage_v":230.1,
//	 "current_a":5.37,"frequency_hz":50.01,"power_factor":0.97}
//
// or a batch of readings of the same meter (backfill, store-and-forward):
//
//	{"v":1,"meter":"m-000123","readings":[
//	  {"ts":1772366400000,"import_wh":12345678,"power_w":1234.5},
//	  {"ts":1772366460000,"import_wh":12345699,"power_w":1260.0}]}
//
// Fields:
//   - v: required, the integer 1.
//   - meter: optional; if present it must equal the topic's <meter>.
//   - ts: required per reading; an RFC 3339 string with a zone ("Z" or
//     ±hh:mm, fractional seconds allowed) or integer epoch milliseconds.
//     Kept to the microsecond.
//   - import_wh, export_wh: cumulative active energy in Wh, JSON integers
//     (no fraction, no exponent).
//   - power_w (signed: positive is import), voltage_v (phase-to-neutral,
//     average of phases), current_a (sum of phases), frequency_hz,
//     power_factor (−1..1): JSON numbers.
//   - null means absent. A reading must carry at least one quantity.
//     Unknown fields are ignored, except unit-suffixed look-alikes such as
//     import_kwh or power_kw, which are rejected as wrong_unit.
//
// A message is either one reading or a batch, never both.
type canonicalMessage struct {
	V     optInt    `json:"v"`
	Meter rawString `json:"meter"`
	canonicalReading
	Readings []canonicalReading `json:"readings"`
}

type canonicalReading struct {
	TS          tsField  `json:"ts"`
	ImportWh    optInt   `json:"import_wh"`
	ExportWh    optInt   `json:"export_wh"`
	PowerW      optFloat `json:"power_w"`
	VoltageV    optFloat `json:"voltage_v"`
	CurrentA    optFloat `json:"current_a"`
	FrequencyHz optFloat `json:"frequency_hz"`
	PowerFactor optFloat `json:"power_factor"`

	// Unit mistakes: the canonical format fixes its units in its field
	// names, so these spellings mean the sender converted wrongly.
	ImportKWh present `json:"import_kwh"`
	ExportKWh present `json:"export_kwh"`
	EnergyKWh present `json:"energy_kwh"`
	PowerKW   present `json:"power_kw"`
	VoltageMV present `json:"voltage_mv"`
	CurrentMA present `json:"current_ma"`
}

// hasSingle reports whether any single-reading field (or unit-mistake
// look-alike) is present at the top level.
func (c *canonicalReading) hasSingle() bool {
	return c.TS.set || c.ImportWh.set || c.ExportWh.set || c.PowerW.set || c.VoltageV.set ||
		c.CurrentA.set || c.FrequencyHz.set || c.PowerFactor.set ||
		bool(c.ImportKWh) || bool(c.ExportKWh) || bool(c.EnergyKWh) || bool(c.PowerKW) || bool(c.VoltageMV) || bool(c.CurrentMA)
}

func (d *Decoder) decodeCanonical(m *Message, t Topic, in Input) error {
	cm, _ := d.canonical.Get().(*canonicalMessage)
	if cm == nil {
		cm = new(canonicalMessage)
	}
	defer func() {
		// Drop references into the payload before pooling; keep capacity.
		cm.Meter.raw = nil
		d.canonical.Put(cm)
	}()
	if err := parseCanonical(in.Payload, cm, !d.slowOnly); err != nil {
		return err
	}
	return d.finishCanonical(m, t, &in, cm)
}

// parseCanonical fills cm from payload, with the fast scanner when fast is
// set and it can, else (or on any doubt) with encoding/json.
func parseCanonical(payload []byte, cm *canonicalMessage, fast bool) error {
	resetCanonical(cm)
	if fast && scanCanonical(payload, cm) {
		return nil
	}
	resetCanonical(cm)
	return jsonReject(json.Unmarshal(payload, cm))
}

// resetCanonical zeroes cm but keeps the capacity of cm.Readings.
// encoding/json appends into an existing slice without zeroing reused
// elements, so they are cleared here.
func resetCanonical(cm *canonicalMessage) {
	readings := cm.Readings[:cap(cm.Readings)]
	clear(readings)
	*cm = canonicalMessage{Readings: readings[:0]}
}

// finishCanonical checks a parsed message and appends its readings to m.
func (d *Decoder) finishCanonical(m *Message, t Topic, in *Input, cm *canonicalMessage) error {
	switch {
	case !cm.V.set:
		return meter.Rejectf(meter.ReasonMissingField, "v", "no schema version")
	case cm.V.v != CanonicalVersion:
		return meter.Rejectf(meter.ReasonUnsupportedVersion, "v", "version %d (this build reads %d)", cm.V.v, CanonicalVersion)
	}
	if cm.Meter.raw != nil && !cm.Meter.equal(t.Meter) {
		return meter.Rejectf(meter.ReasonMeterMismatch, "meter", "payload names %s, topic names %q", cm.Meter.raw, t.Meter)
	}
	isBatch := len(cm.Readings) > 0
	switch {
	case isBatch && cm.hasSingle():
		return meter.Rejectf(meter.ReasonUnknownFormat, "readings", "a message is one reading or a batch, not both")
	case isBatch && len(cm.Readings) > d.cfg.MaxBatch:
		return meter.Rejectf(meter.ReasonTooLarge, "readings", "%d readings exceed the batch limit of %d", len(cm.Readings), d.cfg.MaxBatch)
	case isBatch:
		for i := range cm.Readings {
			r, err := cm.Readings[i].reading(t.Meter, "readings.", in)
			if err != nil {
				return err
			}
			m.Readings = append(m.Readings, r)
		}
	case cm.hasSingle():
		r, err := cm.reading(t.Meter, "", in)
		if err != nil {
			return err
		}
		m.Readings = append(m.Readings, r)
	default:
		return meter.Rejectf(meter.ReasonMissingField, "", "neither a reading nor a non-empty readings array")
	}
	return nil
}

// reading converts one decoded reading; prefix names its place in errors.
func (c *canonicalReading) reading(ref, prefix string, in *Input) (Reading, error) {
	traps := [...]struct {
		set       present
		name, fix string
	}{
		{c.ImportKWh, "import_kwh", "energy is import_wh in integer Wh"},
		{c.ExportKWh, "export_kwh", "energy is export_wh in integer Wh"},
		{c.EnergyKWh, "energy_kwh", "energy is import_wh/export_wh in integer Wh"},
		{c.PowerKW, "power_kw", "power is power_w in W"},
		{c.VoltageMV, "voltage_mv", "voltage is voltage_v in V"},
		{c.CurrentMA, "current_ma", "current is current_a in A"},
	}
	for _, trap := range traps {
		if trap.set {
			return Reading{}, meter.Rejectf(meter.ReasonWrongUnit, prefix+trap.name, "%s", trap.fix)
		}
	}
	if !c.TS.set {
		return Reading{}, meter.Rejectf(meter.ReasonMissingField, prefix+"ts", "no timestamp")
	}
	r := newReading(ref, c.TS.t, in)
	if c.ImportWh.set {
		r.ImportWh, r.Fields = c.ImportWh.v, r.Fields|meter.FieldImport
	}
	if c.ExportWh.set {
		r.ExportWh, r.Fields = c.ExportWh.v, r.Fields|meter.FieldExport
	}
	floats := [...]struct {
		v     optFloat
		dst   *float32
		field meter.Fields
		name  string
	}{
		{c.PowerW, &r.PowerW, meter.FieldPower, "power_w"},
		{c.VoltageV, &r.VoltageV, meter.FieldVoltage, "voltage_v"},
		{c.CurrentA, &r.CurrentA, meter.FieldCurrent, "current_a"},
		{c.FrequencyHz, &r.FrequencyHz, meter.FieldFrequency, "frequency_hz"},
		{c.PowerFactor, &r.PowerFactor, meter.FieldPowerFactor, "power_factor"},
	}
	for _, f := range floats {
		if !f.v.set {
			continue
		}
		x, err := f.v.float32(prefix, f.name)
		if err != nil {
			return Reading{}, err
		}
		*f.dst = x
		r.Fields |= f.field
	}
	if r.Fields == 0 {
		return Reading{}, meter.Rejectf(meter.ReasonMissingField, prefix+"import_wh", "reading carries no quantity")
	}
	return r, nil
}
