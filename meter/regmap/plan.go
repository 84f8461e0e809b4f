package regmap

import (
	"errors"
	"fmt"
	"slices"

	"github.com/meterd/meterd/meter"
)

// MaxRegistersPerRequest is the most registers one Modbus read request may
// ask for (the protocol limit for function codes 3 and 4).
const MaxRegistersPerRequest = 125

// DefaultMaxGap is the planner's default for PlanOptions.MaxGap: reading 16
// unused registers costs about 35 ms at 9600 baud, less than the ≈25 ms
// request/response overhead plus device turnaround of a second request.
const DefaultMaxGap = 16

// PlanOptions tune block planning.
type PlanOptions struct {
	// MaxRegisters caps the registers per request, 1..125; 0 means 125.
	// Some devices and gateways accept fewer (Telegraf's
	// max_word_registers_per_request).
	MaxRegisters int
	// MaxGap is the longest run of unused registers the planner reads
	// through to merge two reads into one. 0 reads no unused register, for
	// devices that answer a read over a hole with an exception. Use
	// DefaultMaxGap unless the device needs less.
	MaxGap int
	// Quantities limits the plan to these quantities; nil means every
	// quantity the map has. Quantities the map lacks are ignored.
	Quantities []meter.Quantity
}

// ErrPlan is wrapped by planning errors (bad options).
var ErrPlan = errors.New("bad plan options")

// Plan is the list of read requests that fetch a map's registers.
//
// Mandatory registers come first, coalesced into as few requests as the
// options allow. Each optional register follows in a request of its own (with
// its scale factor, if any), so that a Modbus exception on a register some
// variants lack costs only that register.
type Plan struct {
	Blocks []Block
}

// Block is one read request and how to decode its answer.
type Block struct {
	Function Function
	Start    uint16
	Count    uint16 // registers to read, 1..125
	// Optional is true for a block holding one optional register: an
	// exception on it means the device lacks the register, and the reading
	// goes on without it (flagged meter.QualityPartial).
	Optional bool
	fields   []field
}

// field is one value in a block: the register and where it and its scale
// factor sit in the block's words.
type field struct {
	reg   Register
	sf    Register // the scale-factor register, when sfOff ≥ 0
	off   int      // offset of reg in the block's words
	sfOff int      // offset of the scale-factor register, or −1
}

// Quantities returns the quantities b decodes, in address order.
func (b *Block) Quantities() []meter.Quantity {
	qs := make([]meter.Quantity, len(b.fields))
	for i, f := range b.fields {
		qs[i] = f.reg.Quantity
	}
	return qs
}

// Registers returns the total number of registers the plan reads.
func (p Plan) Registers() int {
	n := 0
	for _, b := range p.Blocks {
		n += int(b.Count)
	}
	return n
}

// item is a register to read, widened to include its scale factor.
type item struct {
	reg        int // index in Map.Registers
	start, end int // address range [start, end) covering reg and its scale factor
}

// Plan returns the read requests that fetch m's registers under opt.
func (m *Map) Plan(opt PlanOptions) (Plan, error) {
	maxRegs := opt.MaxRegisters
	if maxRegs == 0 {
		maxRegs = MaxRegistersPerRequest
	}
	if maxRegs < 1 || maxRegs > MaxRegistersPerRequest {
		return Plan{}, fmt.Errorf("regmap: %s: %w: MaxRegisters %d outside 1..%d", m.Model, ErrPlan, opt.MaxRegisters, MaxRegistersPerRequest)
	}
	if opt.MaxGap < 0 {
		return Plan{}, fmt.Errorf("regmap: %s: %w: MaxGap %d is negative", m.Model, ErrPlan, opt.MaxGap)
	}

	var mandatory, optional []item
	for i := range m.Registers {
		r := &m.Registers[i]
		if !r.Quantity.Valid() || (opt.Quantities != nil && !slices.Contains(opt.Quantities, r.Quantity)) {
			continue
		}
		it := item{reg: i, start: int(r.Address), end: r.End()}
		if r.ScaleFactor >= 0 {
			sf := &m.Registers[r.ScaleFactor]
			it.start, it.end = min(it.start, int(sf.Address)), max(it.end, sf.End())
		}
		if it.end-it.start > maxRegs {
			return Plan{}, fmt.Errorf("regmap: %s: %w: %s needs %d registers in one request, MaxRegisters is %d",
				m.Model, ErrPlan, r.Name, it.end-it.start, maxRegs)
		}
		if r.Optional {
			optional = append(optional, it)
		} else {
			mandatory = append(mandatory, it)
		}
	}

	byAddress := func(a, b item) int {
		ra, rb := &m.Registers[a.reg], &m.Registers[b.reg]
		if ra.Function != rb.Function {
			return int(ra.Function) - int(rb.Function)
		}
		if a.start != b.start {
			return a.start - b.start
		}
		return a.end - b.end
	}
	slices.SortFunc(mandatory, byAddress)
	slices.SortFunc(optional, byAddress)

	var p Plan
	// Greedy merging in address order: extend the current block while the
	// next item starts within MaxGap of its end and the merged block still
	// fits in one request; start a new block only when forced to.
	for i := 0; i < len(mandatory); {
		fn := m.Registers[mandatory[i].reg].Function
		start, end := mandatory[i].start, mandatory[i].end
		j := i + 1
		for ; j < len(mandatory); j++ {
			it := mandatory[j]
			if m.Registers[it.reg].Function != fn || it.start-end > opt.MaxGap || max(end, it.end)-start > maxRegs {
				break
			}
			end = max(end, it.end)
		}
		p.Blocks = append(p.Blocks, m.block(fn, start, end, false, mandatory[i:j]))
		i = j
	}
	for _, it := range optional {
		p.Blocks = append(p.Blocks, m.block(m.Registers[it.reg].Function, it.start, it.end, true, []item{it}))
	}
	return p, nil
}

func (m *Map) block(fn Function, start, end int, optional bool, items []item) Block {
	b := Block{Function: fn, Start: uint16(start), Count: uint16(end - start), Optional: optional}
	for _, it := range items {
		r := m.Registers[it.reg]
		f := field{reg: r, off: int(r.Address) - start, sfOff: -1}
		if r.ScaleFactor >= 0 {
			f.sf = m.Registers[r.ScaleFactor]
			f.sfOff = int(f.sf.Address) - start
		}
		b.fields = append(b.fields, f)
	}
	return b
}
