package payload

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/meterd/meterd/meter"
)

// checkMessage asserts what every successful decode guarantees.
func checkMessage(t *testing.T, in Input, msg Message) {
	t.Helper()
	if len(msg.Readings) == 0 {
		t.Fatalf("success without readings: %q", in.Payload)
	}
	for _, r := range msg.Readings {
		if !ValidMeterRef(r.Meter) {
			t.Fatalf("invalid meter ref %q from %q", r.Meter, in.Payload)
		}
		if r.Fields == 0 || r.Fields&^meter.AllFields != 0 {
			t.Fatalf("fields %v from %q", r.Fields, in.Payload)
		}
		if r.Time.IsZero() || r.Time.Location() != time.UTC || r.Time.Nanosecond()%1000 != 0 {
			t.Fatalf("time %v from %q", r.Time, in.Payload)
		}
		if r.Source != meter.SourceMQTT || r.MeterID != 0 {
			t.Fatalf("bookkeeping %+v", r.Reading)
		}
	}
}

// checkReject asserts that a failure is a reject with a known reason.
func checkReject(t *testing.T, err error, msg Message) {
	t.Helper()
	reason, ok := meter.ReasonOf(err)
	if !ok {
		t.Fatalf("error is not a reject: %v", err)
	}
	for _, r := range meter.Reasons() {
		if r == reason {
			if len(msg.Readings) != 0 {
				t.Fatalf("rejected message kept %d readings", len(msg.Readings))
			}
			return
		}
	}
	t.Fatalf("unknown reason %q", reason)
}

func fuzzDecode(t *testing.T, d *Decoder, in Input) (Message, error) {
	t.Helper()
	in.ReceivedAt = recv
	msg, err := d.Decode(in)
	if err != nil {
		checkReject(t, err, msg)
	} else {
		checkMessage(t, in, msg)
	}
	return msg, err
}

func FuzzDecodeCanonical(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"meter":"m-1","ts":"2026-03-01T12:00:00Z","import_wh":12345678,"export_wh":0,"power_w":1234.5,"voltage_v":230.1,"current_a":5.37,"frequency_hz":50.01,"power_factor":0.97}`,
		`{"v":1,"readings":[{"ts":1772366400000,"import_wh":100},{"ts":"2026-03-01T12:01:00+05:30","import_wh":110,"voltage_v":null}]}`,
		`{"v":1,"ts":1772366400,"import_kwh":1.5}`,
		`{"v":2}`, `[]`, `{"v":1,"readings":[{}]}`, `{"v":1,"ts":"\u0032026-03-01T12:00:00Z","power_w":-0.0}`,
	} {
		f.Add([]byte(s))
	}
	d := newTestDecoder(f, nil)
	f.Fuzz(func(t *testing.T, payload []byte) {
		msg, err := fuzzDecode(t, d, Input{Topic: "meters/t/m-1/reading", Payload: payload})
		if err != nil {
			return
		}
		// What decodes must survive a re-encode unchanged.
		rs := make([]meter.Reading, len(msg.Readings))
		for i, r := range msg.Readings {
			rs[i] = r.Reading
		}
		again, err := d.Decode(Input{Topic: "meters/t/m-1/reading", Payload: AppendCanonicalBatch(nil, rs, CanonicalOptions{}), ReceivedAt: recv})
		if err != nil {
			t.Fatalf("re-encoded %q: %v", payload, err)
		}
		if !reflect.DeepEqual(again.Readings, msg.Readings) {
			t.Fatalf("re-encode changed %q:\n%+v\n%+v", payload, msg.Readings, again.Readings)
		}
	})
}

// FuzzCanonicalFastPath checks that the hand-written scanner and
// encoding/json decode every input to the same readings or the same reject.
func FuzzCanonicalFastPath(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"meter":"m-1","ts":"2026-03-01T12:00:00Z","import_wh":1,"power_w":1.5e3}`,
		`{"v":1,"readings":[{"ts":1772366400000,"import_wh":100},{"ts":1772366460000,"export_wh":7,"power_factor":-0.5}]}`,
		` { "v" : 1 , "readings" : [ ] } `, `{"v":1,"v":1,"ts":1772366400000,"import_wh":1}`, `{"v":1,"ts":1772366400000,"import_wh":01}`,
		`{"v":1,"ts":1772366400000,"import_wh":1,}`, `{"v":1,"ts":1772366400000,"Import_WH":1}`, `{"v":true}`,
	} {
		f.Add([]byte(s))
	}
	fast := newTestDecoder(f, nil)
	slow := newTestDecoder(f, nil)
	slow.slowOnly = true
	f.Fuzz(func(t *testing.T, payload []byte) {
		in := Input{Topic: "meters/t/m-1/reading", Payload: payload, ReceivedAt: recv}
		m1, err1 := fast.Decode(in)
		m2, err2 := slow.Decode(in)
		r1, _ := meter.ReasonOf(err1)
		r2, _ := meter.ReasonOf(err2)
		var f1, f2 string
		if re, ok := errors.AsType[*meter.RejectError](err1); ok {
			f1 = re.Field
		}
		if re, ok := errors.AsType[*meter.RejectError](err2); ok {
			f2 = re.Field
		}
		if (err1 == nil) != (err2 == nil) || r1 != r2 || f1 != f2 {
			t.Fatalf("%q: fast %v, encoding/json %v", payload, err1, err2)
		}
		if !reflect.DeepEqual(m1.Readings, m2.Readings) {
			t.Fatalf("%q:\nfast          %+v\nencoding/json %+v", payload, m1.Readings, m2.Readings)
		}
	})
}

func FuzzDecodeTasmota(f *testing.F) {
	for _, s := range []string{
		`{"Time":"2023-01-09T18:57:39","ENERGY":{"TotalStartTime":"2022-12-27T16:31:03","Total":0.077,"Yesterday":0.000,"Today":0.077,"Power":[8.15,0],"ApparentPower":[5,0],"ReactivePower":[4,0],"Factor":[0.00,0.00],"Frequency":50,"Voltage":237,"Current":[0.000,0.000]}}`,
		`{"Time":"2026-03-01T17:29:00+05:30","ENERGY":{"Total":[1,2,3],"ExportActive":0.5,"Power":[100,200,-50],"Voltage":[230,232,0]}}`,
		`{"Time":"1970-01-01T00:00:05","ENERGY":{"Power":[1,"2,3"]}}`, `{"SML":{"Total_in":1}}`, `{"ENERGY":null}`,
	} {
		f.Add([]byte(s))
	}
	d := newTestDecoder(f, func(c *Config) { c.DeviceZone = time.FixedZone("CET", 3600) })
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, _ = fuzzDecode(t, d, Input{Topic: "tele/m-1/SENSOR", Payload: payload})
	})
}

func FuzzDecodeShelly(f *testing.F) {
	for _, s := range []string{
		`{"src":"x","method":"NotifyStatus","params":{"ts":1772366400.12,"em:0":{"a_voltage":230.1,"a_current":5.3,"a_act_power":1200.5,"total_act_power":3500.5,"total_aprt_power":3700},"emdata:0":{"total_act":12345678.6,"total_act_ret":1234.4}}}`,
		`{"method":"NotifyFullStatus","params":{"em1:1":{"voltage":234.9,"act_power":501.8,"pf":0.84,"freq":50},"em1data:1":{"total_act_energy":987.6}}}`,
		`{"method":"NotifyEvent","params":{"events":[]}}`, `{"method":"NotifyStatus","params":{"em:99":{"a_voltage":1}}}`,
	} {
		f.Add([]byte(s))
	}
	d := newTestDecoder(f, nil)
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, _ = fuzzDecode(t, d, Input{Topic: "m-1/events/rpc", Payload: payload})
	})
}

func FuzzDecodeThingsBoard(f *testing.F) {
	for _, s := range []string{
		`{"import_wh":12345678,"power_w":1234.5}`,
		`[{"ts":1772366400000,"values":{"export_wh":5}},{"ts":1772366460000,"values":{"rssi":-70}}]`,
		`{"m-2":[{"ts":1772366400000,"values":{"import_wh":20}}],"m-1":[{"values":{"import_kwh":1.5}}]}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	d := newTestDecoder(f, nil)
	f.Fuzz(func(t *testing.T, payload []byte, gateway bool) {
		topic := ThingsBoardDeviceTopic
		if gateway {
			topic = ThingsBoardGatewayTopic
		}
		_, _ = fuzzDecode(t, d, Input{Topic: topic, Payload: payload, Publisher: "m-1"})
	})
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"meters/acme/m-1/reading", "tele/x/SENSOR", "x/events/rpc", ThingsBoardDeviceTopic, "a/b/c/d/e", "//", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		tp, err := ParseTopic(topic)
		if err != nil {
			if _, ok := meter.ReasonOf(err); !ok {
				t.Fatalf("%q: %v is not a reject", topic, err)
			}
			return
		}
		if tp.Meter != "" && !ValidMeterRef(tp.Meter) || tp.Tenant != "" && !ValidTenant(tp.Tenant) {
			t.Fatalf("%q: accepted %+v", topic, tp)
		}
	})
}
