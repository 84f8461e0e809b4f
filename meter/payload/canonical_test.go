package payload

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meterd/meterd/meter"
)

func TestDecodeCanonical(t *testing.T) {
	const topic = "meters/acme/m-000123/reading"
	all := meter.AllFields
	// Every case runs through the fast path (with its fallback) and through
	// encoding/json alone; both must give the same answer.
	slow := newTestDecoder(t, nil)
	slow.slowOnly = true
	for _, d := range []*Decoder{newTestDecoder(t, nil), slow} {
		runDecodeCases(t, d, canonicalCases(topic, all))
	}
}

func canonicalCases(topic string, all meter.Fields) []decodeCase {
	return []decodeCase{
		{name: "single, every field", topic: topic,
			payload: `{"v":1,"meter":"m-000123","ts":"2026-03-01T12:00:00Z","import_wh":12345678,"export_wh":0,"power_w":1234.5,"voltage_v":230.1,"current_a":5.37,"frequency_hz":50.01,"power_factor":0.97}`,
			want:    []want{{meter: "m-000123", ts: "2026-03-01T12:00:00Z", fields: all, imp: 12345678, powerW: 1234.5, volt: 230.1, amp: 5.37, hz: 50.01, pf: 0.97}}},
		{name: "epoch ms, offset zone, sub-µs digits truncated", topic: topic,
			payload: `{"v":1,"ts":"2026-03-01T17:30:00.1234567+05:30","import_wh":5}`,
			want:    []want{{meter: "m-000123", ts: "2026-03-01T12:00:00.123456Z", fields: meter.FieldImport, imp: 5}}},
		{name: "epoch milliseconds", topic: topic, payload: `{"v":1,"ts":1772366400123,"power_w":-450}`,
			want: []want{{meter: "m-000123", ts: "2026-03-01T12:00:00.123Z", fields: meter.FieldPower, powerW: -450}}},
		{name: "batch", topic: topic,
			payload: `{"v":1,"readings":[{"ts":1772366400000,"import_wh":100},{"ts":"2026-03-01T12:01:00Z","import_wh":110,"voltage_v":null}]}`,
			want: []want{{meter: "m-000123", ts: "2026-03-01T12:00:00Z", fields: meter.FieldImport, imp: 100},
				{meter: "m-000123", ts: "2026-03-01T12:01:00Z", fields: meter.FieldImport, imp: 110}}},
		{name: "unknown fields ignored", topic: topic, payload: `{"v":1,"ts":1772366400000,"import_wh":1,"seq":17,"fw":"1.2"}`,
			want: []want{{meter: "m-000123", ts: "2026-03-01T12:00:00Z", fields: meter.FieldImport, imp: 1}}},
		{name: "escaped meter equal to topic", topic: topic, payload: `{"v":1,"meter":"m-\u0030\u0030\u0030123","ts":1772366400000,"import_wh":1}`,
			want: []want{{meter: "m-000123", ts: "2026-03-01T12:00:00Z", fields: meter.FieldImport, imp: 1}}},
		{name: "negative energy is the validator's business", topic: topic, payload: `{"v":1,"ts":1772366400000,"import_wh":-5}`,
			want: []want{{meter: "m-000123", ts: "2026-03-01T12:00:00Z", fields: meter.FieldImport, imp: -5}}},

		{name: "not JSON", topic: topic, payload: `{"v":1,`, wantReason: meter.ReasonBadJSON},
		{name: "empty", topic: topic, payload: ``, wantReason: meter.ReasonBadJSON},
		{name: "trailing garbage", topic: topic, payload: `{"v":1,"ts":1772366400000,"import_wh":1} x`, wantReason: meter.ReasonBadJSON},
		{name: "top level array", topic: topic, payload: `[1,2]`, wantReason: meter.ReasonWrongType},
		{name: "no version", topic: topic, payload: `{"ts":1772366400000,"import_wh":1}`, wantReason: meter.ReasonMissingField, wantField: "v"},
		{name: "version 2", topic: topic, payload: `{"v":2,"ts":1772366400000,"import_wh":1}`, wantReason: meter.ReasonUnsupportedVersion, wantField: "v"},
		{name: "version as string", topic: topic, payload: `{"v":"1","ts":1772366400000,"import_wh":1}`, wantReason: meter.ReasonWrongType, wantField: "v"},
		{name: "meter mismatch", topic: topic, payload: `{"v":1,"meter":"m-999","ts":1772366400000,"import_wh":1}`, wantReason: meter.ReasonMeterMismatch, wantField: "meter"},
		{name: "meter not a string", topic: topic, payload: `{"v":1,"meter":123,"ts":1772366400000,"import_wh":1}`, wantReason: meter.ReasonWrongType, wantField: "meter"},
		{name: "import as string", topic: topic, payload: `{"v":1,"ts":1772366400000,"import_wh":"12345"}`, wantReason: meter.ReasonWrongType, wantField: "import_wh"},
		{name: "import with a fraction", topic: topic, payload: `{"v":1,"ts":1772366400000,"import_wh":12345.678}`, wantReason: meter.ReasonWrongType, wantField: "import_wh"},
		{name: "import with an exponent", topic: topic, payload: `{"v":1,"ts":1772366400000,"import_wh":1e6}`, wantReason: meter.ReasonWrongType, wantField: "import_wh"},
		{name: "power as bool", topic: topic, payload: `{"v":1,"ts":1772366400000,"power_w":true}`, wantReason: meter.ReasonWrongType, wantField: "power_w"},
		{name: "voltage beyond float32", topic: topic, payload: `{"v":1,"ts":1772366400000,"voltage_v":1e300}`, wantReason: meter.ReasonImpossibleValue, wantField: "voltage_v"},
		{name: "batch item wrong type", topic: topic, payload: `{"v":1,"readings":[{"ts":1772366400000,"import_wh":1},{"ts":1772366400000,"power_w":"x"}]}`, wantReason: meter.ReasonWrongType, wantField: "readings.power_w"},
		{name: "readings not an array", topic: topic, payload: `{"v":1,"readings":{"ts":1772366400000}}`, wantReason: meter.ReasonWrongType, wantField: "readings"},
		{name: "import_kwh", topic: topic, payload: `{"v":1,"ts":1772366400000,"import_kwh":12345.678}`, wantReason: meter.ReasonWrongUnit, wantField: "import_kwh"},
		{name: "power_kw in a batch", topic: topic, payload: `{"v":1,"readings":[{"ts":1772366400000,"power_kw":1.2}]}`, wantReason: meter.ReasonWrongUnit, wantField: "readings.power_kw"},
		{name: "epoch seconds", topic: topic, payload: `{"v":1,"ts":1772366400,"import_wh":1}`, wantReason: meter.ReasonWrongUnit, wantField: "ts"},
		{name: "epoch microseconds", topic: topic, payload: `{"v":1,"ts":1772366400000000,"import_wh":1}`, wantReason: meter.ReasonWrongUnit, wantField: "ts"},
		{name: "fractional epoch", topic: topic, payload: `{"v":1,"ts":1772366400000.5,"import_wh":1}`, wantReason: meter.ReasonWrongType, wantField: "ts"},
		{name: "timestamp without zone", topic: topic, payload: `{"v":1,"ts":"2026-03-01T12:00:00","import_wh":1}`, wantReason: meter.ReasonBadTimestamp, wantField: "ts"},
		{name: "timestamp garbage", topic: topic, payload: `{"v":1,"ts":"yesterday","import_wh":1}`, wantReason: meter.ReasonBadTimestamp, wantField: "ts"},
		{name: "timestamp object", topic: topic, payload: `{"v":1,"ts":{},"import_wh":1}`, wantReason: meter.ReasonWrongType, wantField: "ts"},
		{name: "no timestamp", topic: topic, payload: `{"v":1,"import_wh":1}`, wantReason: meter.ReasonMissingField, wantField: "ts"},
		{name: "no timestamp in batch", topic: topic, payload: `{"v":1,"readings":[{"import_wh":1}]}`, wantReason: meter.ReasonMissingField, wantField: "readings.ts"},
		{name: "no quantity", topic: topic, payload: `{"v":1,"ts":1772366400000}`, wantReason: meter.ReasonMissingField, wantField: "import_wh"},
		{name: "only nulls", topic: topic, payload: `{"v":1,"ts":1772366400000,"import_wh":null}`, wantReason: meter.ReasonMissingField, wantField: "import_wh"},
		{name: "nothing at all", topic: topic, payload: `{"v":1}`, wantReason: meter.ReasonMissingField},
		{name: "empty batch", topic: topic, payload: `{"v":1,"readings":[]}`, wantReason: meter.ReasonMissingField},
		{name: "single and batch", topic: topic, payload: `{"v":1,"ts":1772366400000,"import_wh":1,"readings":[{"ts":1772366400000,"import_wh":1}]}`, wantReason: meter.ReasonUnknownFormat, wantField: "readings"},
		{name: "unknown topic", topic: "meters/acme/m-1/status", payload: `{}`, wantReason: meter.ReasonUnknownFormat, wantField: "topic"},
	}
}

// randomReading returns a reading with a random subset of quantities and
// float32-exact values, at microsecond precision.
func randomReading(rng *rand.Rand) meter.Reading {
	r := meter.Reading{
		Time:   time.UnixMicro(1_700_000_000_000_000 + rng.Int64N(100_000_000_000_000)).UTC(),
		Fields: meter.Fields(rng.IntN(int(meter.AllFields)) + 1),
	}
	f32 := func() float32 { return float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)-2))) }
	r.ImportWh = rng.Int64N(1 << 50)
	r.ExportWh = rng.Int64N(1 << 40)
	r.PowerW, r.VoltageV, r.CurrentA, r.FrequencyHz, r.PowerFactor = f32(), f32(), f32(), f32(), f32()
	// Absent quantities are zero in a decoded reading.
	zero := func(f meter.Fields, p *float32) {
		if !r.Fields.Has(f) {
			*p = 0
		}
	}
	if !r.Fields.Has(meter.FieldImport) {
		r.ImportWh = 0
	}
	if !r.Fields.Has(meter.FieldExport) {
		r.ExportWh = 0
	}
	zero(meter.FieldPower, &r.PowerW)
	zero(meter.FieldVoltage, &r.VoltageV)
	zero(meter.FieldCurrent, &r.CurrentA)
	zero(meter.FieldFrequency, &r.FrequencyHz)
	zero(meter.FieldPowerFactor, &r.PowerFactor)
	return r
}

func TestCanonicalRoundTrip(t *testing.T) {
	d := newTestDecoder(t, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		n := 1 + rng.IntN(5)
		rs := make([]meter.Reading, n)
		for k := range rs {
			rs[k] = randomReading(rng)
		}
		opt := CanonicalOptions{Time: TimeFormat(i % 2)}
		if i%3 == 0 {
			opt.Meter = "m-1"
		}
		var buf []byte
		if n == 1 && i%4 != 0 {
			buf = AppendCanonical(nil, &rs[0], opt)
		} else {
			buf = AppendCanonicalBatch(nil, rs, opt)
		}
		msg, err := d.Decode(Input{Topic: CanonicalTopic("t", "m-1"), Payload: buf, ReceivedAt: recv})
		if err != nil {
			t.Fatalf("%s: %v", buf, err)
		}
		if len(msg.Readings) != n {
			t.Fatalf("%s: %d readings, want %d", buf, len(msg.Readings), n)
		}
		for k, got := range msg.Readings {
			want := rs[k]
			if opt.Time == TimeEpochMillis {
				want.Time = want.Time.Truncate(time.Millisecond)
			}
			want.ReceivedAt, want.Source = recv, meter.SourceMQTT
			if got.Meter != "m-1" || got.Reading != want {
				t.Fatalf("%s\ngot  %+v\nwant %+v", buf, got.Reading, want)
			}
		}
	}
}

func TestAppendCanonicalExact(t *testing.T) {
	r := meter.Reading{
		Time: time.Date(2026, 3, 1, 12, 0, 0, 123_456_000, time.UTC), ImportWh: 12345678, PowerW: 1234.5,
		VoltageV: float32(math.NaN()), Fields: meter.FieldImport | meter.FieldPower | meter.FieldVoltage,
	}
	got := string(AppendCanonical(nil, &r, CanonicalOptions{Meter: `m"1`}))
	want := `{"v":1,"meter":"m\"1","ts":"2026-03-01T12:00:00.123456Z","import_wh":12345678,"power_w":1234.5}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = string(AppendCanonicalBatch(nil, []meter.Reading{r}, CanonicalOptions{Time: TimeEpochMillis}))
	want = `{"v":1,"readings":[{"ts":1772366400123,"import_wh":12345678,"power_w":1234.5}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
