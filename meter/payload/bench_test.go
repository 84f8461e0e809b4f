package payload

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meterd/meterd/meter"
)

// benchReadings returns n realistic readings of one meter, one minute apart.
func benchReadings(n int) []meter.Reading {
	rng := rand.New(rand.NewPCG(7, 8))
	rs := make([]meter.Reading, n)
	t := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	imp := int64(12_345_678)
	for i := range rs {
		p := float32(800 + rng.IntN(3000))
		imp += int64(p / 60)
		rs[i] = meter.Reading{
			Time: t.Add(time.Duration(i) * time.Minute), ImportWh: imp, ExportWh: 0, PowerW: p,
			VoltageV: float32(228 + rng.IntN(40)/10.0), CurrentA: p / 230, FrequencyHz: 50.01, PowerFactor: 0.97,
			Fields: meter.AllFields,
		}
	}
	return rs
}

type benchCase struct {
	name     string
	in       Input
	readings int
}

func benchCases(b *testing.B) []benchCase {
	rs := benchReadings(100)
	single := AppendCanonical(nil, &rs[0], CanonicalOptions{Meter: "m-000123"})
	batch := AppendCanonicalBatch(nil, rs, CanonicalOptions{Meter: "m-000123", Time: TimeEpochMillis})
	tasmota := AppendTasmota(nil, &rs[0], TasmotaOptions{})
	return []benchCase{
		{"canonical-single", Input{Topic: CanonicalTopic("acme", "m-000123"), Payload: single, ReceivedAt: recv}, 1},
		{"canonical-batch100", Input{Topic: CanonicalTopic("acme", "m-000123"), Payload: batch, ReceivedAt: recv}, 100},
		{"tasmota", Input{Topic: TasmotaTopic("m-000123"), Payload: tasmota, ReceivedAt: recv}, 1},
	}
}

// BenchmarkDecode measures decoding throughput next to two baselines over
// the same bytes in the same run: json.Valid (a lower bound for any
// correct JSON decoder: it only scans) and json.Unmarshal into a
// map[string]any (what generic code would do). Report meterd's ns/op as a
// ratio to them; readings/s is per core.
func BenchmarkDecode(b *testing.B) {
	d := newTestDecoder(b, nil)
	for _, c := range benchCases(b) {
		b.Run(c.name+"/meterd", func(b *testing.B) {
			var m Message
			b.SetBytes(int64(len(c.in.Payload)))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.DecodeInto(&m, c.in); err != nil {
					b.Fatal(err)
				}
			}
			if len(m.Readings) != c.readings {
				b.Fatalf("%d readings, want %d", len(m.Readings), c.readings)
			}
			b.ReportMetric(float64(c.readings)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
		b.Run(c.name+"/baseline-json.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(c.in.Payload)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(c.in.Payload) {
					b.Fatal("invalid")
				}
			}
			b.ReportMetric(float64(c.readings)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
		b.Run(c.name+"/baseline-json.Unmarshal-map", func(b *testing.B) {
			b.SetBytes(int64(len(c.in.Payload)))
			b.ReportAllocs()
			for b.Loop() {
				var v map[string]any
				if err := json.Unmarshal(c.in.Payload, &v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.readings)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// BenchmarkEncode measures the encoders the simulator publishes with.
func BenchmarkEncode(b *testing.B) {
	rs := benchReadings(100)
	b.Run("canonical-single", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendCanonical(buf[:0], &rs[0], CanonicalOptions{Meter: "m-000123"})
		}
	})
	b.Run("canonical-batch100", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendCanonicalBatch(buf[:0], rs, CanonicalOptions{Meter: "m-000123", Time: TimeEpochMillis})
		}
		b.ReportMetric(100*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
	})
	b.Run("tasmota", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendTasmota(buf[:0], &rs[0], TasmotaOptions{})
		}
	})
	b.Run("baseline-json.Marshal-single", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&rs[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
