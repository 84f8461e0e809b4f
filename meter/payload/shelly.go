package payload

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/meter"
)

// Shelly Gen2+ notifications (FORMAT.md has the full reference).
//
// Topic: <prefix>/events/rpc, where <prefix> is the device's MQTT topic
// prefix (by default its device id), set to its meter reference. Energy
// meters (Pro 3EM, 3EM Gen3, Pro EM, EM Gen3) publish JSON-RPC
// notifications:
//
//	{"src":"shellypro3em-c8f09e8b1234","dst":"meters/events","method":"NotifyStatus",
//	 "params":{"ts":1772366400.12,
//	   "em:0":{"id":0,"a_voltage":230.1,"a_current":5.3,"a_act_power":1200.5,"a_aprt_power":1250,"a_pf":0.96,
//	           "b_voltage":231,"c_voltage":229.5,"total_current":15.1,"total_act_power":3500,"total_aprt_power":3700},
//	   "emdata:0":{"id":0,"total_act":12345678.9,"total_act_ret":1234.5}}}
//
// Components and the meter each belongs to:
//   - em:0 and emdata:0 (three-phase profile): meter <prefix>.
//   - em1:N and em1data:N (monophase profile, Pro EM channels): meter
//     <prefix>:em1:N, one meter per channel.
//   - em:N, emdata:N with N > 0: meter <prefix>:em:N.
//
// Fields: *_act_power W, *_voltage V, *_current A, *_pf, *_freq / freq Hz;
// emdata total_act / total_act_ret and em1data total_act_energy /
// total_act_ret_energy are Wh (as floats) and become integer Wh, rounded.
// Per-phase values combine like register maps' (meter.Values.Reading); the
// total power factor is total_act_power / total_aprt_power.
//
// NotifyStatus carries only the fields that changed, so a reading may hold
// only some quantities; the gateway stores what is present (absent is NULL,
// not zero). NotifyFullStatus is read the same way. params.ts (Unix seconds,
// fractional) is the source time; without it the arrival time is used.
// Other methods (NotifyEvent) and notifications without meter components
// are rejected as no_reading.
type shellyMessage struct {
	Method string                     `json:"method"`
	Params map[string]json.RawMessage `json:"params"`
}

// shellyEM is the union of the em and em1 status fields meterd reads.
type shellyEM struct {
	AVoltage       optFloat `json:"a_voltage"`
	BVoltage       optFloat `json:"b_voltage"`
	CVoltage       optFloat `json:"c_voltage"`
	ACurrent       optFloat `json:"a_current"`
	BCurrent       optFloat `json:"b_current"`
	CCurrent       optFloat `json:"c_current"`
	AActPower      optFloat `json:"a_act_power"`
	BActPower      optFloat `json:"b_act_power"`
	CActPower      optFloat `json:"c_act_power"`
	APF            optFloat `json:"a_pf"`
	BPF            optFloat `json:"b_pf"`
	CPF            optFloat `json:"c_pf"`
	AFreq          optFloat `json:"a_freq"`
	TotalCurrent   optFloat `json:"total_current"`
	TotalActPower  optFloat `json:"total_act_power"`
	TotalAprtPower optFloat `json:"total_aprt_power"`

	// em1 (single channel)
	Voltage   optFloat `json:"voltage"`
	Current   optFloat `json:"current"`
	ActPower  optFloat `json:"act_power"`
	AprtPower optFloat `json:"aprt_power"`
	PF        optFloat `json:"pf"`
	Freq      optFloat `json:"freq"`

	// emdata / em1data
	TotalAct          optFloat `json:"total_act"`
	TotalActRet       optFloat `json:"total_act_ret"`
	TotalActEnergy    optFloat `json:"total_act_energy"`
	TotalActRetEnergy optFloat `json:"total_act_ret_energy"`
}

func (d *Decoder) decodeShelly(m *Message, t Topic, in Input) error {
	var sm shellyMessage
	if err := json.Unmarshal(in.Payload, &sm); err != nil {
		return jsonReject(err)
	}
	switch sm.Method {
	case "NotifyStatus", "NotifyFullStatus":
	case "":
		return meter.Rejectf(meter.ReasonMissingField, "method", "not a Shelly notification")
	default:
		return meter.Rejectf(meter.ReasonNoReading, "method", "%q carries no meter status", sm.Method)
	}
	ts := in.ReceivedAt
	if raw, ok := sm.Params["ts"]; ok {
		var sec optFloat
		if err := json.Unmarshal(raw, &sec); err != nil {
			return jsonReject(wrapField(err, "params.ts"))
		}
		if sec.set {
			if !(sec.v > 0 && sec.v < maxEpochMs/1000) {
				return meter.Rejectf(meter.ReasonBadTimestamp, "params.ts", "%v is not Unix seconds", sec.v)
			}
			whole, frac := math.Modf(sec.v)
			ts = time.Unix(int64(whole), int64(math.Round(frac*1e6))*1e3)
		}
	}

	// Component keys in sorted order, so output order is deterministic.
	keys := make([]string, 0, len(sm.Params))
	for k := range sm.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	type channel struct {
		ref string
		v   meter.Values
		pf  float64 // total power factor computed from total powers, NaN if none
	}
	var channels []*channel
	get := func(ref string) *channel {
		for _, c := range channels {
			if c.ref == ref {
				return c
			}
		}
		c := &channel{ref: ref, pf: math.NaN()}
		channels = append(channels, c)
		return c
	}
	for _, k := range keys {
		kind, id, ok := strings.Cut(k, ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || n > 99 {
			continue
		}
		var ref string
		switch kind {
		case "em", "emdata":
			ref = t.Meter
			if n > 0 {
				ref = t.Meter + ":em:" + id
			}
		case "em1", "em1data":
			ref = t.Meter + ":em1:" + id
		default:
			continue // switch:0, sys, wifi … carry no meter data
		}
		if !ValidMeterRef(ref) {
			return meter.Rejectf(meter.ReasonUnknownMeter, "params."+k, "%q is not a valid meter reference", ref)
		}
		var em shellyEM
		if err := json.Unmarshal(sm.Params[k], &em); err != nil {
			return jsonReject(wrapField(err, "params."+k))
		}
		c := get(ref)
		if err := em.values(&c.v, &c.pf, "params."+k); err != nil {
			return err
		}
	}

	for _, c := range channels {
		r := newReading(c.ref, ts, &in)
		vr := c.v.Reading()
		if !math.IsNaN(c.pf) && !vr.Fields.Has(meter.FieldPowerFactor) {
			vr.PowerFactor, vr.Fields = float32(c.pf), vr.Fields|meter.FieldPowerFactor
		}
		if vr.Fields == 0 {
			continue // e.g. only "id" changed
		}
		vr.Time, vr.ReceivedAt, vr.Source = r.Time, r.ReceivedAt, r.Source
		r.Reading = vr
		m.Readings = append(m.Readings, r)
	}
	if len(m.Readings) == 0 {
		return meter.Rejectf(meter.ReasonNoReading, "params", "no em, em1, emdata or em1data values")
	}
	return nil
}

// values adds the component's fields to v; pf receives the total power
// factor when both total powers are given.
func (em *shellyEM) values(v *meter.Values, pf *float64, field string) error {
	set := func(q meter.Quantity, o optFloat, name string) error {
		if !o.set {
			return nil
		}
		if math.IsInf(o.v, 0) || math.Abs(o.v) > math.MaxFloat32 {
			return meter.Rejectf(meter.ReasonImpossibleValue, field+"."+name, "%g is out of range", o.v)
		}
		v.Set(q, o.v)
		return nil
	}
	setWh := func(q meter.Quantity, o optFloat, name string) error {
		if !o.set {
			return nil
		}
		wh := math.Round(o.v)
		if math.Abs(wh) >= 1<<62 {
			return meter.Rejectf(meter.ReasonImpossibleValue, field+"."+name, "%g Wh is out of range", o.v)
		}
		v.SetWh(q, int64(wh))
		return nil
	}
	fields := [...]struct {
		q    meter.Quantity
		o    optFloat
		name string
	}{
		{meter.QuantityVoltageL1, em.AVoltage, "a_voltage"},
		{meter.QuantityVoltageL2, em.BVoltage, "b_voltage"},
		{meter.QuantityVoltageL3, em.CVoltage, "c_voltage"},
		{meter.QuantityCurrentL1, em.ACurrent, "a_current"},
		{meter.QuantityCurrentL2, em.BCurrent, "b_current"},
		{meter.QuantityCurrentL3, em.CCurrent, "c_current"},
		{meter.QuantityPowerL1, em.AActPower, "a_act_power"},
		{meter.QuantityPowerL2, em.BActPower, "b_act_power"},
		{meter.QuantityPowerL3, em.CActPower, "c_act_power"},
		{meter.QuantityPowerFactorL1, em.APF, "a_pf"},
		{meter.QuantityPowerFactorL2, em.BPF, "b_pf"},
		{meter.QuantityPowerFactorL3, em.CPF, "c_pf"},
		{meter.QuantityFrequency, em.AFreq, "a_freq"},
		{meter.QuantityCurrent, em.TotalCurrent, "total_current"},
		{meter.QuantityPower, em.TotalActPower, "total_act_power"},
		{meter.QuantityVoltage, em.Voltage, "voltage"},
		{meter.QuantityCurrent, em.Current, "current"},
		{meter.QuantityPower, em.ActPower, "act_power"},
		{meter.QuantityPowerFactor, em.PF, "pf"},
		{meter.QuantityFrequency, em.Freq, "freq"},
	}
	for _, f := range fields {
		if err := set(f.q, f.o, f.name); err != nil {
			return err
		}
	}
	energies := [...]struct {
		q    meter.Quantity
		o    optFloat
		name string
	}{
		{meter.QuantityImportEnergy, em.TotalAct, "total_act"},
		{meter.QuantityExportEnergy, em.TotalActRet, "total_act_ret"},
		{meter.QuantityImportEnergy, em.TotalActEnergy, "total_act_energy"},
		{meter.QuantityExportEnergy, em.TotalActRetEnergy, "total_act_ret_energy"},
	}
	for _, f := range energies {
		if err := setWh(f.q, f.o, f.name); err != nil {
			return err
		}
	}
	if em.TotalActPower.set && em.TotalAprtPower.set && em.TotalAprtPower.v > 0 && math.Abs(em.TotalActPower.v) <= em.TotalAprtPower.v {
		*pf = em.TotalActPower.v / em.TotalAprtPower.v
	}
	return nil
}

// wrapField prefixes the field path of a type error from a nested
// json.Unmarshal, which knows only the inner path.
func wrapField(err error, prefix string) error {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		if te.Field == "" {
			te.Field = prefix
		} else {
			te.Field = prefix + "." + te.Field
		}
		return te
	}
	if re, ok := err.(*meter.RejectError); ok && !strings.HasPrefix(re.Field, prefix) {
		if re.Field == "" {
			re.Field = prefix
		} else {
			re.Field = prefix + "." + re.Field
		}
	}
	return err
}
