package regmap

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/meterd/meterd/meter"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run go test -update and review the diff.\ngot:\n%s", path, got)
	}
}

// TestPlanGolden records the read requests each model's map turns into, so
// a change to a map or to the planner shows up as a reviewable diff.
func TestPlanGolden(t *testing.T) {
	maps, err := LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, opt := range []PlanOptions{{MaxGap: DefaultMaxGap}, {MaxGap: 0}} {
		for _, m := range maps {
			p, err := m.Plan(opt)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "%s max_gap=%d: %d requests, %d registers\n", m.Model, opt.MaxGap, len(p.Blocks), p.Registers())
			for _, b := range p.Blocks {
				opt := ""
				if b.Optional {
					opt = " optional"
				}
				fmt.Fprintf(&out, "  fc%d %5d (%#04x) +%-3d%s %v\n", b.Function, b.Start, b.Start, b.Count, opt, b.Quantities())
			}
		}
	}
	golden(t, "plans.golden", out.Bytes())
}

func TestPlanSDM630(t *testing.T) {
	m, err := Load("sdm630")
	if err != nil {
		t.Fatal(err)
	}
	// The reference's example: 0x0000..0x004B as one 76-register block.
	p, err := m.Plan(PlanOptions{MaxGap: DefaultMaxGap})
	if err != nil {
		t.Fatal(err)
	}
	if b := p.Blocks[0]; b.Start != 0 || b.Count != 0x4C || b.Optional {
		t.Errorf("first block %#04x+%d, want 0x0000+76", b.Start, b.Count)
	}
	// Voltages and energy alone are too far apart to bridge.
	p, _ = m.Plan(PlanOptions{MaxGap: DefaultMaxGap, Quantities: []meter.Quantity{
		meter.QuantityVoltageL1, meter.QuantityImportEnergy,
	}})
	if len(p.Blocks) != 2 || p.Blocks[0].Count != 2 || p.Blocks[1].Start != 0x48 {
		t.Errorf("voltage_l1 + import: %d blocks, want 0x0000+2 and 0x0048+2", len(p.Blocks))
	}
	// Without gap bridging the same quantities need one request per run.
	p, _ = m.Plan(PlanOptions{MaxGap: 0, Quantities: []meter.Quantity{
		meter.QuantityVoltageL1, meter.QuantityVoltageL2, meter.QuantityPower, meter.QuantityImportEnergy, meter.QuantityExportEnergy,
	}})
	if len(p.Blocks) != 3 {
		t.Errorf("MaxGap 0: %d blocks, want 3 (V1-V2, P, imp-exp)", len(p.Blocks))
	}
}

// TestPlanInvariants checks every map under many options: each wanted
// register is read, with its scale factor, in a block of its function code
// that respects MaxRegisters and MaxGap, and optional registers are alone.
func TestPlanInvariants(t *testing.T) {
	maps, err := LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		for _, maxRegs := range []int{0, 125, 64, 60, 8, 4} {
			for _, gap := range []int{0, 1, 4, 16, 100} {
				opt := PlanOptions{MaxRegisters: maxRegs, MaxGap: gap}
				p, err := m.Plan(opt)
				if maxRegs > 0 && maxRegs < widestRead(m) {
					// Some register and its scale factor cannot be read
					// together in so few registers.
					if !errors.Is(err, ErrPlan) {
						t.Errorf("%s %+v: err = %v, want ErrPlan", m.Model, opt, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s %+v: %v", m.Model, opt, err)
				}
				checkPlan(t, m, p, opt)
			}
		}
	}
}

func checkPlan(t *testing.T, m *Map, p Plan, opt PlanOptions) {
	t.Helper()
	maxRegs := opt.MaxRegisters
	if maxRegs == 0 {
		maxRegs = MaxRegistersPerRequest
	}
	seen := map[meter.Quantity]int{}
	for _, b := range p.Blocks {
		if b.Count == 0 || int(b.Count) > maxRegs {
			t.Errorf("%s %+v: block %#04x+%d exceeds %d", m.Model, opt, b.Start, b.Count, maxRegs)
		}
		if b.Optional && len(b.fields) != 1 {
			t.Errorf("%s: optional block with %d registers", m.Model, len(b.fields))
		}
		used := make([]bool, b.Count)
		for _, f := range b.fields {
			seen[f.reg.Quantity]++
			if f.reg.Function != b.Function || f.reg.Optional != b.Optional {
				t.Errorf("%s: %s (fc%d optional=%v) in block fc%d optional=%v", m.Model, f.reg.Name, f.reg.Function, f.reg.Optional, b.Function, b.Optional)
			}
			for k := range f.reg.Words() {
				used[f.off+k] = true
			}
			if f.reg.ScaleFactor >= 0 {
				if f.sfOff < 0 || f.sfOff >= int(b.Count) || int(b.Start)+f.sfOff != int(m.Registers[f.reg.ScaleFactor].Address) {
					t.Errorf("%s: %s's scale factor is not in its block", m.Model, f.reg.Name)
				} else {
					// Everything between a value and its scale factor must
					// be read anyway; it is not a bridged gap.
					for k := min(f.off, f.sfOff); k <= max(f.off, f.sfOff); k++ {
						used[k] = true
					}
				}
			}
			if int(f.reg.Address) != int(b.Start)+f.off || f.off+f.reg.Words() > int(b.Count) {
				t.Errorf("%s: %s at %#04x not inside block %#04x+%d", m.Model, f.reg.Name, f.reg.Address, b.Start, b.Count)
			}
		}
		run := 0
		for _, u := range used {
			if u {
				run = 0
				continue
			}
			run++
			if run > opt.MaxGap {
				t.Errorf("%s %+v: block %#04x+%d reads a gap longer than %d", m.Model, opt, b.Start, b.Count, opt.MaxGap)
				break
			}
		}
	}
	for _, q := range m.Quantities() {
		if seen[q] != 1 {
			t.Errorf("%s %+v: %v read %d times, want once", m.Model, opt, q, seen[q])
		}
	}
}

func TestPlanOptionsErrors(t *testing.T) {
	m, _ := Load("sdm120")
	for _, opt := range []PlanOptions{{MaxRegisters: 126}, {MaxRegisters: -1}, {MaxGap: -1}} {
		if _, err := m.Plan(opt); !errors.Is(err, ErrPlan) {
			t.Errorf("%+v: err = %v, want ErrPlan", opt, err)
		}
	}
	p, err := m.Plan(PlanOptions{Quantities: []meter.Quantity{meter.QuantityImportEnergy, meter.QuantityVoltageL3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Blocks) != 1 || p.Blocks[0].Start != 0x48 || p.Blocks[0].Count != 2 {
		t.Errorf("import only: %+v, want 0x48+2 (voltage_l3 is not in the map and is ignored)", p.Blocks)
	}
}

// widestRead returns the most registers any one value needs in a single
// request (itself plus its scale factor).
func widestRead(m *Map) int {
	w := 0
	for _, r := range m.Registers {
		lo, hi := int(r.Address), r.End()
		if r.ScaleFactor >= 0 {
			sf := m.Registers[r.ScaleFactor]
			lo, hi = min(lo, int(sf.Address)), max(hi, sf.End())
		}
		w = max(w, hi-lo)
	}
	return w
}

func TestWidestRead(t *testing.T) {
	m, _ := Load("sunspec_203")
	// TotWhExp at offset 38 and TotWh_SF at 54: 17 registers.
	if got := widestRead(m); got != 17 {
		t.Errorf("widestRead(sunspec_203) = %d, want 17", got)
	}
	if _, err := m.Plan(PlanOptions{MaxRegisters: 16}); !errors.Is(err, ErrPlan) {
		t.Errorf("MaxRegisters 16: err = %v, want ErrPlan", err)
	}
}
