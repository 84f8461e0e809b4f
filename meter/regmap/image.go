package regmap

import (
	"errors"
	"fmt"
)

// ErrIllegalAddress is what a device answers with Modbus exception 2
// (illegal data address): the register does not exist on it.
var ErrIllegalAddress = errors.New("illegal data address")

// Image is the register contents of one simulated device: the words Encode
// writes, readable the way a Modbus server answers. Registers never written
// read as 0, as on most meters, so reads that bridge gaps succeed; registers
// marked with Remove make any read touching them fail with
// ErrIllegalAddress, like a variant that lacks them.
//
// An Image is not safe for concurrent use; the simulator guards it with the
// device's lock.
type Image struct {
	words   map[uint32]uint16
	missing map[uint32]bool
}

// NewImage returns an empty image.
func NewImage() *Image {
	return &Image{words: map[uint32]uint16{}, missing: map[uint32]bool{}}
}

func key(fn Function, addr uint16) uint32 { return uint32(fn)<<16 | uint32(addr) }

// Put sets one register; its signature matches PutFunc, so img.Put can be
// passed to Encode.
func (im *Image) Put(fn Function, addr uint16, word uint16) { im.words[key(fn, addr)] = word }

// Word returns one register (0 if never written).
func (im *Image) Word(fn Function, addr uint16) uint16 { return im.words[key(fn, addr)] }

// Remove marks count registers from start as not implemented.
func (im *Image) Remove(fn Function, start uint16, count int) {
	for i := range count {
		im.missing[key(fn, start+uint16(i))] = true
	}
}

// Read appends count registers from start to dst[:0] and returns it, or
// fails with ErrIllegalAddress if the range runs past 0xFFFF or touches a
// removed register.
func (im *Image) Read(fn Function, start, count uint16, dst []uint16) ([]uint16, error) {
	if int(start)+int(count) > 1<<16 {
		return dst[:0], fmt.Errorf("regmap: read %v %d+%d: %w", fn, start, count, ErrIllegalAddress)
	}
	dst = dst[:0]
	for i := range count {
		k := key(fn, start+i)
		if im.missing[k] {
			return dst[:0], fmt.Errorf("regmap: read %v %d+%d: register %d: %w", fn, start, count, start+i, ErrIllegalAddress)
		}
		dst = append(dst, im.words[k])
	}
	return dst, nil
}

// SunSpec discovery constants.
const (
	sunSpecMarkerHi  = 0x5375 // "Su"
	sunSpecMarkerLo  = 0x6E53 // "nS"
	sunSpecEnd       = 0xFFFF // ID of the end-of-models marker
	commonModelID    = 1
	commonModelLen   = 66
	maxSunSpecModels = 64
)

// SunSpecBases are the addresses a SunSpec device may put its "SunS"
// marker at, in the order to try them.
func SunSpecBases() []uint16 { return []uint16{40000, 50000, 0} }

// ReadFunc reads count holding registers from start; the poller wraps its
// Modbus client in one for DiscoverSunSpec.
type ReadFunc func(start, count uint16) ([]uint16, error)

// Discovery errors.
var (
	ErrNoSunSpec        = errors.New("no SunSpec marker")
	ErrSunSpecNoModel   = errors.New("SunSpec model not found")
	ErrSunSpecMalformed = errors.New("malformed SunSpec model chain")
)

// DiscoverSunSpec returns the address of the ID register of SunSpec model id
// on a device: it looks for the "SunS" marker at each of SunSpecBases and
// walks the model chain (each model starts with its ID and length L, the
// next one L+2 registers later) until it finds id or the end marker. Read
// errors at a candidate marker address move on to the next candidate; read
// errors inside the chain are returned. The result feeds Map.WithBase.
func DiscoverSunSpec(read ReadFunc, id uint16) (uint16, error) {
	for _, base := range SunSpecBases() {
		w, err := read(base, 2)
		if err != nil || len(w) != 2 || w[0] != sunSpecMarkerHi || w[1] != sunSpecMarkerLo {
			continue
		}
		addr := int(base) + 2
		for range maxSunSpecModels {
			if addr+2 > 1<<16 {
				return 0, fmt.Errorf("regmap: sunspec at %d: %w: chain runs past 65535", base, ErrSunSpecMalformed)
			}
			hdr, err := read(uint16(addr), 2)
			if err != nil {
				return 0, fmt.Errorf("regmap: sunspec at %d: read model header at %d: %w", base, addr, err)
			}
			if len(hdr) != 2 {
				return 0, fmt.Errorf("regmap: sunspec at %d: %w: short header at %d", base, ErrSunSpecMalformed, addr)
			}
			switch hdr[0] {
			case id:
				return uint16(addr), nil
			case sunSpecEnd:
				return 0, fmt.Errorf("regmap: sunspec at %d: %w: %d", base, ErrSunSpecNoModel, id)
			}
			addr += 2 + int(hdr[1])
		}
		return 0, fmt.Errorf("regmap: sunspec at %d: %w: more than %d models", base, ErrSunSpecMalformed, maxSunSpecModels)
	}
	return 0, fmt.Errorf("regmap: %w at %v", ErrNoSunSpec, SunSpecBases())
}

// LayoutSunSpec writes a SunSpec discovery structure at 40000 through put
// (holding registers): the "SunS" marker, a blank common model (ID 1,
// L 66), each of models in turn, and the end marker. It returns the maps
// rebased to where it placed them, ready for Encode. Every map must be a
// SunSpec map.
func LayoutSunSpec(put PutFunc, models ...*Map) ([]*Map, error) {
	const start = 40000
	put(FuncHolding, start, sunSpecMarkerHi)
	put(FuncHolding, start+1, sunSpecMarkerLo)
	put(FuncHolding, start+2, commonModelID)
	put(FuncHolding, start+3, commonModelLen)
	addr := start + 4 + commonModelLen
	var placed []*Map
	for _, m := range models {
		if m.SunSpec == nil {
			return nil, fmt.Errorf("regmap: %s is not a SunSpec map", m.Model)
		}
		if addr+2+int(m.SunSpec.Length)+2 > 1<<16 {
			return nil, fmt.Errorf("regmap: %s does not fit below 65536", m.Model)
		}
		rebased, err := m.WithBase(uint16(addr))
		if err != nil {
			return nil, err
		}
		put(FuncHolding, uint16(addr), m.SunSpec.ID)
		put(FuncHolding, uint16(addr+1), m.SunSpec.Length)
		placed = append(placed, rebased)
		addr += 2 + int(m.SunSpec.Length)
	}
	put(FuncHolding, uint16(addr), sunSpecEnd)
	put(FuncHolding, uint16(addr+1), 0)
	return placed, nil
}
