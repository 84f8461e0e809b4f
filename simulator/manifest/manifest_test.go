package manifest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meterd/meterd/simulator"
)

func testHeader() Header {
	return Header{Fleet: simulator.Config{Seed: 7, Meters: 3, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}.WithDefaults(),
		Source: "mqtt", QoS: 1, Batch: 2, Tool: "test", Created: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
}

func writeSample(t *testing.T, path string) ([]Message, []Fault) {
	t.Helper()
	w, err := Create(path, testHeader(), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	msgs := []Message{
		{Meter: 0, QoS: 1, Readings: []Reading{{Time: t0, ImportWh: 123456789, ExportWh: 0, PowerW: 1234.5}, {Time: t0.Add(time.Minute), ImportWh: 123456800, PowerW: -3.25}}},
		{Meter: 2, QoS: 0, Flags: FlagResend, Readings: []Reading{{Time: t0.Add(time.Microsecond), ImportWh: 1, ExportWh: 1 << 40, PowerW: 0}}},
	}
	faults := []Fault{
		{Kind: simulator.KindReset, Meter: 1, At: t0.Add(time.Hour), Detail: `{"before_import_wh":5}`},
		{Kind: simulator.KindUnknownMeter, Meter: -1, At: t0, Ref: "sim-x000001", Forbidden: t0.Add(time.Second)},
	}
	for _, m := range msgs {
		if err := w.Message(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range faults {
		if err := w.Fault(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return msgs, faults
}

func readAll(t *testing.T, path string) (*Reader, []Message, []Fault, error) {
	t.Helper()
	rd, err := Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	t.Cleanup(func() { _ = rd.Close() })
	var ms []Message
	var fs []Fault
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rd, ms, fs, nil
		}
		if err != nil {
			return rd, ms, fs, err
		}
		if rec.Message != nil {
			m := *rec.Message
			m.Readings = append([]Reading(nil), m.Readings...)
			ms = append(ms, m)
		} else {
			fs = append(fs, *rec.Fault)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.manifest")
	wantM, wantF := writeSample(t, path)
	rd, ms, fs, err := readAll(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if h := rd.Header(); h.Fleet.Seed != 7 || h.QoS != 1 || !h.Fleet.Start.Equal(testHeader().Fleet.Start) || h.Fleet.Faults.LateBy != 10 {
		t.Errorf("header = %+v", h)
	}
	if !rd.Ended() || rd.Torn() {
		t.Errorf("ended=%v torn=%v, want a clean end", rd.Ended(), rd.Torn())
	}
	if len(ms) != len(wantM) || len(fs) != len(wantF) {
		t.Fatalf("got %d messages %d faults, want %d %d", len(ms), len(fs), len(wantM), len(wantF))
	}
	for i := range ms {
		if ms[i].Meter != wantM[i].Meter || ms[i].QoS != wantM[i].QoS || ms[i].Flags != wantM[i].Flags || len(ms[i].Readings) != len(wantM[i].Readings) {
			t.Errorf("message %d = %+v, want %+v", i, ms[i], wantM[i])
			continue
		}
		for j, r := range ms[i].Readings {
			w := wantM[i].Readings[j]
			if !r.Time.Equal(w.Time) || r.ImportWh != w.ImportWh || r.ExportWh != w.ExportWh || r.PowerW != w.PowerW {
				t.Errorf("message %d reading %d = %+v, want %+v", i, j, r, w)
			}
		}
	}
	for i := range fs {
		g, w := fs[i], wantF[i]
		if g.Kind != w.Kind || g.Meter != w.Meter || !g.At.Equal(w.At) || g.Ref != w.Ref || !g.Forbidden.Equal(w.Forbidden) || g.Detail != w.Detail {
			t.Errorf("fault %d = %+v, want %+v", i, g, w)
		}
	}
}

// A crash can cut the file anywhere: every prefix must read back as the
// complete records it holds, with no error.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.manifest")
	writeSample(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	headerEnd := -1
	for cut := len(Magic); cut < len(data); cut++ {
		p := filepath.Join(dir, "cut")
		if err := os.WriteFile(p, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		rd, ms, fs, err := readAll(t, p)
		if rd == nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("cut at %d: open: %v, want ErrCorrupt for a file without a complete header", cut, err)
			}
			if headerEnd >= 0 {
				t.Fatalf("cut at %d: header unreadable after it was readable at %d", cut, headerEnd)
			}
			continue
		}
		if headerEnd < 0 {
			headerEnd = cut
		}
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if rd.Ended() {
			t.Fatalf("cut at %d: end record seen in a truncated file", cut)
		}
		if len(ms) > 2 || len(fs) > 2 {
			t.Fatalf("cut at %d: %d messages, %d faults", cut, len(ms), len(fs))
		}
	}
}

func TestCorruptionInTheMiddle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.manifest")
	writeSample(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside the first message record's payload (just after
	// the header record).
	hdrLen := int(uint32(data[8]) | uint32(data[9])<<8 | uint32(data[10])<<16 | uint32(data[11])<<24)
	data[8+8+hdrLen+8+2] ^= 0xFF
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = readAll(t, path)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestNotAManifest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(path, []byte("hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrNotManifest) {
		t.Fatalf("err = %v, want ErrNotManifest", err)
	}
}

func BenchmarkWriteMessage(b *testing.B) {
	w, err := Create(filepath.Join(b.TempDir(), "m"), testHeader(), WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	m := Message{Meter: 12345, QoS: 1, Readings: []Reading{{Time: t0, ImportWh: 12345678, ExportWh: 1234, PowerW: 1234.5}}}
	for i := 0; b.Loop(); i++ {
		m.Readings[0].Time = t0.Add(time.Duration(i) * time.Minute)
		if err := w.Message(m); err != nil {
			b.Fatal(err)
		}
	}
}
