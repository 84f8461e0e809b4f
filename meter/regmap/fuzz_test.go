package regmap

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/meterd/meterd/meter"
)

// FuzzDecodeBlock feeds arbitrary register words to every block of every
// embedded map. Decoding must never panic, and whatever it accepts must be a
// finite number (energy an integer Wh by construction).
func FuzzDecodeBlock(f *testing.F) {
	maps, err := LoadAll()
	if err != nil {
		f.Fatal(err)
	}
	type target struct {
		m *Map
		b *Block
	}
	var targets []target
	for _, m := range maps {
		for _, gap := range []int{0, DefaultMaxGap} {
			p, err := m.Plan(PlanOptions{MaxGap: gap})
			if err != nil {
				f.Fatal(err)
			}
			for i := range p.Blocks {
				targets = append(targets, target{m, &p.Blocks[i]})
			}
		}
	}
	// Seeds: each map's realistic image, read back block by block, plus
	// all-zero and all-one words.
	for i, tg := range targets {
		v := sample(tg.m, 12_345_678, 1)
		img := NewImage()
		if err := tg.m.Encode(&v, EncodeOptions{}, img.Put); err != nil {
			f.Fatal(err)
		}
		words, err := img.Read(tg.b.Function, tg.b.Start, tg.b.Count, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(i), wordsToBytes(words))
	}
	f.Add(uint16(0), []byte{})
	f.Add(uint16(3), []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})

	f.Fuzz(func(t *testing.T, which uint16, data []byte) {
		tg := targets[int(which)%len(targets)]
		words := make([]uint16, tg.b.Count)
		for i := range words {
			if 2*i+1 < len(data) {
				words[i] = binary.BigEndian.Uint16(data[2*i:])
			}
		}
		var v meter.Values
		_ = tg.b.Decode(words, &v) // errors are fine; panics are not
		v.Each(func(q meter.Quantity, x float64) {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Errorf("%s %v decoded to %v", tg.m.Model, q, x)
			}
		})
		r := v.Reading()
		_ = meter.DefaultLimits().Check(&r, r.Time)
		// A wrong-length slice must be an error, not a panic.
		if err := tg.b.Decode(words[:len(words)/2], &v); err == nil && len(words) > 1 {
			t.Errorf("short slice accepted")
		}
	})
}

func wordsToBytes(words []uint16) []byte {
	b := make([]byte, 2*len(words))
	for i, w := range words {
		binary.BigEndian.PutUint16(b[2*i:], w)
	}
	return b
}
