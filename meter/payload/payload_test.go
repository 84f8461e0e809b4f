package payload

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/meter"
)

var recv = time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)

func newTestDecoder(t testing.TB, mod func(*Config)) *Decoder {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	d, err := NewDecoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// want describes one expected reading compactly.
type want struct {
	meter  string
	ts     string // RFC 3339
	fields meter.Fields
	imp    int64
	exp    int64
	powerW float32
	volt   float32
	amp    float32
	hz     float32
	pf     float32
	qual   meter.Quality
}

func (w want) check(t *testing.T, got Reading) {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, w.ts)
	if err != nil {
		t.Fatal(err)
	}
	r := got.Reading
	if got.Meter != w.meter || !r.Time.Equal(ts) || r.Fields != w.fields || r.Quality != w.qual ||
		r.ImportWh != w.imp || r.ExportWh != w.exp || r.PowerW != w.powerW || r.VoltageV != w.volt ||
		r.CurrentA != w.amp || r.FrequencyHz != w.hz || r.PowerFactor != w.pf {
		t.Errorf("got  %s %s %v q=%d imp=%d exp=%d P=%v V=%v I=%v f=%v pf=%v\nwant %s %s %v q=%d imp=%d exp=%d P=%v V=%v I=%v f=%v pf=%v",
			got.Meter, r.Time.Format(time.RFC3339Nano), r.Fields, r.Quality, r.ImportWh, r.ExportWh, r.PowerW, r.VoltageV, r.CurrentA, r.FrequencyHz, r.PowerFactor,
			w.meter, w.ts, w.fields, w.qual, w.imp, w.exp, w.powerW, w.volt, w.amp, w.hz, w.pf)
	}
	if r.Source != meter.SourceMQTT || !r.ReceivedAt.Equal(recv) || r.ReceivedAt.Location() != time.UTC || r.Time.Location() != time.UTC || r.MeterID != 0 {
		t.Errorf("bookkeeping: source %v received %v meterID %d", r.Source, r.ReceivedAt, r.MeterID)
	}
}

type decodeCase struct {
	name       string
	topic      string
	publisher  string
	payload    string
	want       []want
	wantReason meter.Reason
	wantField  string
}

func runDecodeCases(t *testing.T, d *Decoder, tests []decodeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := d.Decode(Input{Topic: tt.topic, Payload: []byte(tt.payload), ReceivedAt: recv, Publisher: tt.publisher})
			if tt.wantReason != "" {
				reason, ok := meter.ReasonOf(err)
				if !ok || reason != tt.wantReason {
					t.Fatalf("err = %v, want reason %q", err, tt.wantReason)
				}
				re, _ := errors.AsType[*meter.RejectError](err)
				if re.Field != tt.wantField {
					t.Errorf("field %q, want %q (%v)", re.Field, tt.wantField, err)
				}
				if len(msg.Readings) != 0 {
					t.Errorf("rejected message returned %d readings", len(msg.Readings))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(msg.Readings) != len(tt.want) {
				t.Fatalf("%d readings, want %d", len(msg.Readings), len(tt.want))
			}
			for i, w := range tt.want {
				w.check(t, msg.Readings[i])
			}
		})
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		give       string
		want       Topic
		wantReason meter.Reason
	}{
		{"meters/acme/m-000123/reading", Topic{Format: FormatCanonical, Tenant: "acme", Meter: "m-000123"}, ""},
		{"tele/tasmota_1A2B3C/SENSOR", Topic{Format: FormatTasmota, Meter: "tasmota_1A2B3C"}, ""},
		{"shellypro3em-c8f09e8b1234/events/rpc", Topic{Format: FormatShelly, Meter: "shellypro3em-c8f09e8b1234"}, ""},
		{"v1/devices/me/telemetry", Topic{Format: FormatThingsBoard}, ""},
		{"v1/gateway/telemetry", Topic{Format: FormatThingsBoard, Gateway: true}, ""},
		{"meters/acme/m-1/reading/extra", Topic{}, meter.ReasonUnknownFormat},
		{"meters/acme/m-1", Topic{}, meter.ReasonUnknownFormat},
		{"tele/x/STATE", Topic{}, meter.ReasonUnknownFormat},
		{"stat/x/RESULT", Topic{}, meter.ReasonUnknownFormat},
		{"", Topic{}, meter.ReasonUnknownFormat},
		{"a/b/c/d/e/f/g", Topic{}, meter.ReasonUnknownFormat},
		{"meters/ACME/m-1/reading", Topic{}, meter.ReasonUnknownMeter},
		{"meters/acme//reading", Topic{}, meter.ReasonUnknownMeter},
		{"meters/acme/-m/reading", Topic{}, meter.ReasonUnknownMeter},
		{"tele/a b/SENSOR", Topic{}, meter.ReasonUnknownMeter},
		{"tele/" + strings.Repeat("x", 129) + "/SENSOR", Topic{}, meter.ReasonUnknownMeter},
		{"/events/rpc", Topic{}, meter.ReasonUnknownMeter},
	}
	for _, tt := range tests {
		got, err := ParseTopic(tt.give)
		reason, _ := meter.ReasonOf(err)
		if got != tt.want || reason != tt.wantReason {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v, %q", tt.give, got, err, tt.want, tt.wantReason)
		}
	}
	// The builders produce topics ParseTopic accepts.
	for _, topic := range []string{CanonicalTopic("acme", "m-1"), TasmotaTopic("m-1"), ShellyTopic("m-1")} {
		if _, err := ParseTopic(topic); err != nil {
			t.Errorf("%s: %v", topic, err)
		}
	}
}

func TestSubscriptionsMatchParseTopic(t *testing.T) {
	examples := map[string]string{
		"meters/+/+/reading":    "meters/t1/m1/reading",
		"tele/+/SENSOR":         "tele/m1/SENSOR",
		"+/events/rpc":          "m1/events/rpc",
		ThingsBoardDeviceTopic:  ThingsBoardDeviceTopic,
		ThingsBoardGatewayTopic: ThingsBoardGatewayTopic,
	}
	for _, filter := range Subscriptions() {
		ex, ok := examples[filter]
		if !ok {
			t.Errorf("no example for filter %q", filter)
			continue
		}
		if _, err := ParseTopic(ex); err != nil {
			t.Errorf("%s (%s): %v", filter, ex, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{}, {MaxPayloadBytes: 1}, {MaxBatch: 1}, {MaxPayloadBytes: -1, MaxBatch: 1}} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: err = %v", c, err)
		}
		if _, err := NewDecoder(c); err == nil {
			t.Errorf("NewDecoder(%+v) accepted", c)
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	d := newTestDecoder(t, func(c *Config) { c.MaxPayloadBytes = 200; c.MaxBatch = 2 })
	runDecodeCases(t, d, []decodeCase{
		{name: "payload too large", topic: "meters/t/m/reading", payload: `{"v":1,"ts":"2026-03-01T12:00:00Z","import_wh":1,"x":"` + strings.Repeat("x", 200) + `"}`,
			wantReason: meter.ReasonTooLarge},
		{name: "batch too large", topic: "meters/t/m/reading", payload: `{"v":1,"readings":[{"ts":1772366400000,"import_wh":1},{"ts":1772366401000,"import_wh":2},{"ts":1772366402000,"import_wh":3}]}`,
			wantReason: meter.ReasonTooLarge, wantField: "readings"},
		{name: "thingsboard batch too large", topic: ThingsBoardGatewayTopic, payload: `{"a":[{"ts":1772366400000,"values":{"import_wh":1}}],"b":[{"ts":1772366400000,"values":{"import_wh":1}},{"ts":1772366401000,"values":{"import_wh":2}}]}`,
			wantReason: meter.ReasonTooLarge},
	})
}

func TestDecodeIntoReuses(t *testing.T) {
	d := newTestDecoder(t, nil)
	var m Message
	in := Input{Topic: "meters/t/m/reading", Payload: []byte(`{"v":1,"readings":[{"ts":1772366400000,"import_wh":1},{"ts":1772366401000,"power_w":2}]}`), ReceivedAt: recv}
	if err := d.DecodeInto(&m, in); err != nil {
		t.Fatal(err)
	}
	first := &m.Readings[0]
	// A second decode must not leak fields from the first (the pooled
	// scratch and the reused slice both hold old values).
	in.Payload = []byte(`{"v":1,"readings":[{"ts":1772366402000,"export_wh":7}]}`)
	if err := d.DecodeInto(&m, in); err != nil {
		t.Fatal(err)
	}
	if len(m.Readings) != 1 || &m.Readings[0] != first {
		t.Fatalf("DecodeInto did not reuse the slice")
	}
	if r := m.Readings[0]; r.Fields != meter.FieldExport || r.ExportWh != 7 || r.ImportWh != 0 {
		t.Errorf("stale fields: %+v", r)
	}
	in.Payload = []byte(`{"v":1,"readings":[{"ts":1772366403000,"power_w":3}]}`)
	if err := d.DecodeInto(&m, in); err != nil || m.Readings[0].Fields != meter.FieldPower {
		t.Errorf("third decode: %v %+v", err, m.Readings)
	}
	in.Payload = []byte(`{`)
	if err := d.DecodeInto(&m, in); err == nil || len(m.Readings) != 0 {
		t.Errorf("failed decode left %d readings", len(m.Readings))
	}
}
