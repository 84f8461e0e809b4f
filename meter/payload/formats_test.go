package payload

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/meter"
)

func TestDecodeTasmota(t *testing.T) {
	const topic = "tele/tasmota_1A2B3C/SENSOR"
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	arrival := recv.Format(time.RFC3339)
	basic := meter.FieldImport | meter.FieldPower | meter.FieldVoltage | meter.FieldCurrent | meter.FieldFrequency | meter.FieldPowerFactor
	noZone := []decodeCase{
		// evcc meter/tasmota/types_test.go, two channels.
		{name: "evcc example, no zone configured: arrival time", topic: topic,
			payload: `{"Time":"2023-01-09T18:57:39","ENERGY":{"TotalStartTime":"2022-12-27T16:31:03","Total":0.077,"Yesterday":0.000,"Today":0.077,"Power":[8.15,0],"ApparentPower":[5,0],"ReactivePower":[4,0],"Factor":[0.00,0.00],"Frequency":50,"Voltage":237,"Current":[0.000,0.000]}}`,
			// ΣP/ΣS = 8.15/5 is rounding noise, so no power factor.
			want: []want{{meter: "tasmota_1A2B3C", ts: arrival, fields: basic &^ meter.FieldPowerFactor, imp: 77, powerW: 8.15, volt: 237, hz: 50}}},
		{name: "single channel", topic: topic,
			payload: `{"Time":"2026-03-01T17:29:00","ENERGY":{"Total":12345.678,"Power":812,"Factor":0.96,"Voltage":231,"Current":3.662}}`,
			want: []want{{meter: "tasmota_1A2B3C", ts: arrival, fields: meter.FieldImport | meter.FieldPower | meter.FieldPowerFactor | meter.FieldVoltage | meter.FieldCurrent,
				imp: 12345678, powerW: 812, pf: 0.96, volt: 231, amp: 3.662}}},
		{name: "three phases, export", topic: topic,
			payload: `{"Time":"2026-03-01T17:29:00","ENERGY":{"Total":[1.0,2.0,3.0005],"ExportActive":0.5,"Power":[100,200,-50],"Voltage":[230,232,0],"Current":[1,2,3]}}`,
			want: []want{{meter: "tasmota_1A2B3C", ts: arrival, fields: meter.FieldImport | meter.FieldExport | meter.FieldPower | meter.FieldVoltage | meter.FieldCurrent,
				imp: 6001, exp: 500, powerW: 250, volt: 231, amp: 6}}},
		{name: "two channels, factor from apparent power", topic: topic,
			payload: `{"ENERGY":{"Power":[300,100],"ApparentPower":[400,100],"Factor":[0.75,1.00]}}`,
			want:    []want{{meter: "tasmota_1A2B3C", ts: arrival, fields: meter.FieldPower | meter.FieldPowerFactor, powerW: 400, pf: 0.8}}},
		{name: "offset given (SetOption52)", topic: topic,
			payload: `{"Time":"2026-03-01T17:29:00+05:30","ENERGY":{"Total":1}}`,
			want:    []want{{meter: "tasmota_1A2B3C", ts: "2026-03-01T11:59:00Z", fields: meter.FieldImport, imp: 1000}}},
		{name: "unsynced clock", topic: topic,
			payload: `{"Time":"1970-01-01T00:00:05+00:00","ENERGY":{"Total":1}}`,
			want:    []want{{meter: "tasmota_1A2B3C", ts: arrival, fields: meter.FieldImport, imp: 1000, qual: meter.QualityClockSuspect}}},
		{name: "no Time", topic: topic, payload: `{"ENERGY":{"Power":5}}`,
			want: []want{{meter: "tasmota_1A2B3C", ts: arrival, fields: meter.FieldPower, powerW: 5}}},
		{name: "other sensors only", topic: topic, payload: `{"Time":"2026-03-01T17:29:00","DS18B20":{"Temperature":21.5}}`, wantReason: meter.ReasonNoReading, wantField: "ENERGY"},
		{name: "ENERGY without quantities", topic: topic, payload: `{"Time":"2026-03-01T17:29:00","ENERGY":{"TotalStartTime":"2022-12-27T16:31:03"}}`, wantReason: meter.ReasonMissingField, wantField: "ENERGY"},
		{name: "Total as string", topic: topic, payload: `{"ENERGY":{"Total":"1.5"}}`, wantReason: meter.ReasonWrongType, wantField: "ENERGY.Total"},
		{name: "string in array", topic: topic, payload: `{"ENERGY":{"Power":[1,"2,3"]}}`, wantReason: meter.ReasonWrongType, wantField: "ENERGY.Power"},
		{name: "nested array", topic: topic, payload: `{"ENERGY":{"Power":[[1,2]]}}`, wantReason: meter.ReasonWrongType, wantField: "ENERGY.Power"},
		{name: "too many channels", topic: topic, payload: `{"ENERGY":{"Power":[1,2,3,4,5,6,7,8,9]}}`, wantReason: meter.ReasonWrongType, wantField: "ENERGY.Power"},
		{name: "ENERGY not an object", topic: topic, payload: `{"ENERGY":5}`, wantReason: meter.ReasonWrongType, wantField: "ENERGY"},
		{name: "bad Time", topic: topic, payload: `{"Time":"09.01.2023 18:57","ENERGY":{"Total":1}}`, wantReason: meter.ReasonBadTimestamp, wantField: "Time"},
		{name: "Total out of range", topic: topic, payload: `{"ENERGY":{"Total":1e300}}`, wantReason: meter.ReasonImpossibleValue, wantField: "ENERGY.Total"},
		{name: "broken JSON", topic: topic, payload: `{"ENERGY":{"Total":1}`, wantReason: meter.ReasonBadJSON},
	}
	runDecodeCases(t, newTestDecoder(t, nil), noZone)

	withZone := []decodeCase{
		{name: "local time read in the configured zone", topic: topic,
			payload: `{"Time":"2026-03-01T17:29:00","ENERGY":{"Total":1}}`,
			want:    []want{{meter: "tasmota_1A2B3C", ts: "2026-03-01T11:59:00Z", fields: meter.FieldImport, imp: 1000}}},
		{name: "unsynced local clock", topic: topic,
			payload: `{"Time":"1970-01-01T05:30:05","ENERGY":{"Total":1}}`,
			want:    []want{{meter: "tasmota_1A2B3C", ts: arrival, fields: meter.FieldImport, imp: 1000, qual: meter.QualityClockSuspect}}},
	}
	runDecodeCases(t, newTestDecoder(t, func(c *Config) { c.DeviceZone = kolkata }), withZone)
}

func TestTasmotaRoundTrip(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	d := newTestDecoder(t, func(c *Config) { c.DeviceZone = berlin })
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		r := randomReading(rng)
		r.Time = r.Time.Truncate(time.Second) // Tasmota writes whole seconds
		// Tasmota carries a single-channel power factor, and Total with
		// three decimals of kWh: exact for any integer Wh.
		opt := TasmotaOptions{Zone: berlin, WithOffset: i%2 == 0}
		buf := AppendTasmota(nil, &r, opt)
		msg, err := d.Decode(Input{Topic: TasmotaTopic("m-1"), Payload: buf, ReceivedAt: recv})
		if err != nil {
			t.Fatalf("%s: %v", buf, err)
		}
		got := msg.Readings[0].Reading
		want := r
		want.ReceivedAt, want.Source = recv, meter.SourceMQTT
		if isDSTFold(r.Time, berlin) && !opt.WithOffset {
			want.Time = got.Time // the hour repeated at the end of DST is ambiguous without an offset
		}
		if got != want {
			t.Fatalf("%s\ngot  %+v\nwant %+v", buf, got, want)
		}
	}
}

// isDSTFold reports whether local wall-clock time t in loc occurs twice.
func isDSTFold(t time.Time, loc *time.Location) bool {
	l := t.In(loc)
	_, off1 := l.Add(-time.Hour).Zone()
	_, off2 := l.Add(time.Hour).Zone()
	return off1 != off2
}

func TestAppendTasmotaExact(t *testing.T) {
	r := meter.Reading{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), ImportWh: 12345678, ExportWh: 5, PowerW: 812,
		VoltageV: 231, Fields: meter.FieldImport | meter.FieldExport | meter.FieldPower | meter.FieldVoltage}
	got := string(AppendTasmota(nil, &r, TasmotaOptions{Zone: time.FixedZone("IST", 19800)}))
	want := `{"Time":"2026-03-01T17:30:00","ENERGY":{"Total":12345.678,"ExportActive":0.005,"Power":812,"Voltage":231}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, tt := range []struct {
		give int64
		want string
	}{{0, "0.000"}, {1, "0.001"}, {999, "0.999"}, {1000, "1.000"}, {-1500, "-1.500"}} {
		if got := string(appendKWh(nil, tt.give)); got != tt.want {
			t.Errorf("appendKWh(%d) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

func TestDecodeShelly(t *testing.T) {
	const topic = "shellypro3em-c8f09e8b1234/events/rpc"
	const ref = "shellypro3em-c8f09e8b1234"
	arrival := recv.Format(time.RFC3339)
	runDecodeCases(t, newTestDecoder(t, nil), []decodeCase{
		{name: "pro 3EM full status", topic: topic,
			payload: `{"src":"shellypro3em-c8f09e8b1234","dst":"x/events","method":"NotifyStatus","params":{"ts":1772366400.12,
				"em:0":{"id":0,"a_voltage":230.1,"a_current":5.3,"a_act_power":1200.5,"a_aprt_power":1250,"a_pf":0.96,"a_freq":50,
				        "b_voltage":231,"b_current":4,"b_act_power":900,"c_voltage":229.5,"c_current":6,"c_act_power":1400,
				        "total_current":15.3,"total_act_power":3500.5,"total_aprt_power":3700},
				"emdata:0":{"id":0,"total_act":12345678.6,"total_act_ret":1234.4}}}`,
			want: []want{{meter: ref, ts: "2026-03-01T12:00:00.12Z",
				fields: meter.AllFields, imp: 12345679, exp: 1234, powerW: 3500.5, volt: float32((230.1 + 231 + 229.5) / 3), amp: 15.3, hz: 50,
				pf: float32(3500.5 / 3700.0)}}},
		{name: "partial update: only power changed", topic: topic,
			payload: `{"method":"NotifyStatus","params":{"ts":1772366401,"em:0":{"id":0,"total_act_power":3600}}}`,
			want:    []want{{meter: ref, ts: "2026-03-01T12:00:01Z", fields: meter.FieldPower, powerW: 3600}}},
		{name: "pro EM channels are separate meters", topic: topic,
			payload: `{"method":"NotifyFullStatus","params":{"ts":1772366400,"em1:0":{"id":0,"voltage":234.9,"current":0.08,"act_power":0,"pf":0,"freq":50},
				"em1:1":{"id":1,"voltage":234.9,"current":2.598,"act_power":501.8,"pf":0.84,"freq":50},
				"em1data:1":{"id":1,"total_act_energy":987.6,"total_act_ret_energy":0},"switch:0":{"id":0,"output":true},"sys":{"uptime":5}}}`,
			want: []want{
				{meter: ref + ":em1:0", ts: "2026-03-01T12:00:00Z", fields: meter.FieldVoltage | meter.FieldCurrent | meter.FieldPower | meter.FieldPowerFactor | meter.FieldFrequency,
					volt: 234.9, amp: 0.08, hz: 50},
				{meter: ref + ":em1:1", ts: "2026-03-01T12:00:00Z", fields: meter.AllFields, imp: 988, volt: 234.9, amp: 2.598, powerW: 501.8, pf: 0.84, hz: 50},
			}},
		{name: "no ts", topic: topic, payload: `{"method":"NotifyStatus","params":{"emdata:0":{"total_act":5}}}`,
			want: []want{{meter: ref, ts: arrival, fields: meter.FieldImport, imp: 5}}},
		{name: "null value is absent", topic: topic, payload: `{"method":"NotifyStatus","params":{"em:0":{"a_freq":null,"total_act_power":7}}}`,
			want: []want{{meter: ref, ts: arrival, fields: meter.FieldPower, powerW: 7}}},
		{name: "event, not status", topic: topic, payload: `{"method":"NotifyEvent","params":{"ts":1772366400,"events":[{"component":"sys","event":"ota_progress"}]}}`,
			wantReason: meter.ReasonNoReading, wantField: "method"},
		{name: "status without meter components", topic: topic, payload: `{"method":"NotifyStatus","params":{"ts":1772366400,"wifi":{"rssi":-60}}}`,
			wantReason: meter.ReasonNoReading, wantField: "params"},
		{name: "only id changed", topic: topic, payload: `{"method":"NotifyStatus","params":{"em:0":{"id":0}}}`,
			wantReason: meter.ReasonNoReading, wantField: "params"},
		{name: "not a notification", topic: topic, payload: `{"id":1,"result":{}}`, wantReason: meter.ReasonMissingField, wantField: "method"},
		{name: "voltage as string", topic: topic, payload: `{"method":"NotifyStatus","params":{"em:0":{"a_voltage":"230"}}}`,
			wantReason: meter.ReasonWrongType, wantField: "params.em:0.a_voltage"},
		{name: "component not an object", topic: topic, payload: `{"method":"NotifyStatus","params":{"em:0":[1]}}`,
			wantReason: meter.ReasonWrongType, wantField: "params.em:0"},
		{name: "ts as string", topic: topic, payload: `{"method":"NotifyStatus","params":{"ts":"now","em:0":{"total_act_power":1}}}`,
			wantReason: meter.ReasonWrongType, wantField: "params.ts"},
		{name: "ts in milliseconds", topic: topic, payload: `{"method":"NotifyStatus","params":{"ts":1772366400000,"em:0":{"total_act_power":1}}}`,
			wantReason: meter.ReasonBadTimestamp, wantField: "params.ts"},
		{name: "params not an object", topic: topic, payload: `{"method":"NotifyStatus","params":[]}`,
			wantReason: meter.ReasonWrongType, wantField: "params"},
	})
}

func TestDecodeThingsBoard(t *testing.T) {
	arrival := recv.Format(time.RFC3339)
	runDecodeCases(t, newTestDecoder(t, nil), []decodeCase{
		{name: "flat values, arrival time", topic: ThingsBoardDeviceTopic, publisher: "m-7",
			payload: `{"import_wh":12345678,"power_w":1234.5,"temperature":21}`,
			want:    []want{{meter: "m-7", ts: arrival, fields: meter.FieldImport | meter.FieldPower, imp: 12345678, powerW: 1234.5}}},
		{name: "ts and values", topic: ThingsBoardDeviceTopic, publisher: "m-7",
			payload: `{"ts":1772366400000,"values":{"import_kwh":12345.6785,"voltage_v":230}}`,
			want:    []want{{meter: "m-7", ts: "2026-03-01T12:00:00Z", fields: meter.FieldImport | meter.FieldVoltage, imp: 12345679, volt: 230}}},
		{name: "array backfill skips items without our keys", topic: ThingsBoardDeviceTopic, publisher: "m-7",
			payload: `[{"ts":1772366400000,"values":{"export_wh":5}},{"ts":1772366460000,"values":{"rssi":-70}},{"ts":1772366520000,"values":{"export_wh":6}}]`,
			want: []want{{meter: "m-7", ts: "2026-03-01T12:00:00Z", fields: meter.FieldExport, exp: 5},
				{meter: "m-7", ts: "2026-03-01T12:02:00Z", fields: meter.FieldExport, exp: 6}}},
		{name: "gateway API, several meters", topic: ThingsBoardGatewayTopic,
			payload: `{"m-2":[{"ts":1772366400000,"values":{"import_wh":20}}],"m-1":[{"ts":1772366400000,"values":{"import_wh":10}},{"ts":1772366460000,"values":{"import_wh":11}}]}`,
			want: []want{{meter: "m-1", ts: "2026-03-01T12:00:00Z", fields: meter.FieldImport, imp: 10},
				{meter: "m-1", ts: "2026-03-01T12:01:00Z", fields: meter.FieldImport, imp: 11},
				{meter: "m-2", ts: "2026-03-01T12:00:00Z", fields: meter.FieldImport, imp: 20}}},
		{name: "device API without publisher", topic: ThingsBoardDeviceTopic, payload: `{"import_wh":1}`, wantReason: meter.ReasonUnknownMeter, wantField: "publisher"},
		{name: "device API with a bad publisher", topic: ThingsBoardDeviceTopic, publisher: "A1B2/C3", payload: `{"import_wh":1}`, wantReason: meter.ReasonUnknownMeter, wantField: "publisher"},
		{name: "gateway API bad meter name", topic: ThingsBoardGatewayTopic, payload: `{"Device A":[{"ts":1772366400000,"values":{"import_wh":1}}]}`, wantReason: meter.ReasonUnknownMeter, wantField: "Device A"},
		{name: "no meter values", topic: ThingsBoardDeviceTopic, publisher: "m-7", payload: `{"temperature":21}`, wantReason: meter.ReasonNoReading},
		{name: "values without ts", topic: ThingsBoardDeviceTopic, publisher: "m-7", payload: `{"values":{"import_wh":1}}`, wantReason: meter.ReasonMissingField, wantField: "ts"},
		{name: "ts in seconds", topic: ThingsBoardDeviceTopic, publisher: "m-7", payload: `{"ts":1772366400,"values":{"import_wh":1}}`, wantReason: meter.ReasonWrongUnit, wantField: "ts"},
		{name: "both Wh and kWh", topic: ThingsBoardDeviceTopic, publisher: "m-7", payload: `{"import_wh":1,"import_kwh":0.001}`, wantReason: meter.ReasonWrongUnit, wantField: "import_wh"},
		{name: "fractional Wh", topic: ThingsBoardDeviceTopic, publisher: "m-7", payload: `{"ts":1772366400000,"values":{"import_wh":1.5}}`, wantReason: meter.ReasonWrongType, wantField: "values.import_wh"},
		{name: "string power", topic: ThingsBoardDeviceTopic, publisher: "m-7", payload: `{"power_w":"12"}`, wantReason: meter.ReasonWrongType, wantField: "power_w"},
		{name: "gateway API item not an object", topic: ThingsBoardGatewayTopic, payload: `{"m-1":[5]}`, wantReason: meter.ReasonWrongType, wantField: "m-1"},
		{name: "gateway API not keyed", topic: ThingsBoardGatewayTopic, payload: `[{"ts":1772366400000}]`, wantReason: meter.ReasonWrongType},
		{name: "broken JSON", topic: ThingsBoardDeviceTopic, publisher: "m-7", payload: `{"import_wh":`, wantReason: meter.ReasonBadJSON},
	})
}

func TestEncodersAgreeWithLimits(t *testing.T) {
	// A realistic reading encoded in either format decodes to a reading
	// the default limits accept.
	l := meter.DefaultLimits()
	r := meter.Reading{Time: recv.Add(-time.Minute), ImportWh: 12_345_678, PowerW: 812, VoltageV: 231, CurrentA: 3.6,
		FrequencyHz: 50, PowerFactor: 0.96, Fields: meter.AllFields &^ meter.FieldExport}
	d := newTestDecoder(t, func(c *Config) { c.DeviceZone = time.UTC })
	for _, in := range []Input{
		{Topic: CanonicalTopic("t", "m"), Payload: AppendCanonical(nil, &r, CanonicalOptions{})},
		{Topic: TasmotaTopic("m"), Payload: AppendTasmota(nil, &r, TasmotaOptions{})},
	} {
		in.ReceivedAt = recv
		msg, err := d.Decode(in)
		if err != nil {
			t.Fatalf("%s: %v", in.Payload, err)
		}
		if err := l.Check(&msg.Readings[0].Reading, recv); err != nil {
			t.Errorf("%s: %v", in.Payload, err)
		}
		if !strings.Contains(string(in.Payload), "12345") {
			t.Errorf("%s lacks the energy", in.Payload)
		}
	}
}
