package regmap

import (
	"testing"

	"github.com/meterd/meterd/meter"
)

// BenchmarkDecodeSDM630 decodes the SDM630's main 76-register block, what
// the poller does once per device and poll.
func BenchmarkDecodeSDM630(b *testing.B) {
	m, err := Load("sdm630")
	if err != nil {
		b.Fatal(err)
	}
	v := sample(m, 12_345_678, 1)
	img := NewImage()
	if err := m.Encode(&v, EncodeOptions{}, img.Put); err != nil {
		b.Fatal(err)
	}
	p, _ := m.Plan(PlanOptions{MaxGap: DefaultMaxGap})
	blk := &p.Blocks[0]
	words, _ := img.Read(blk.Function, blk.Start, blk.Count, nil)
	var out meter.Values
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		if err := blk.Decode(words, &out); err != nil {
			b.Fatal(err)
		}
	}
	if out.Len() != len(blk.Quantities()) {
		b.Fatalf("decoded %d quantities, want %d", out.Len(), len(blk.Quantities()))
	}
}
