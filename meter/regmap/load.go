package regmap

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/meterd/meterd/meter"
)

// mapFiles holds the register maps shipped in the binary. It is read-only.
//
//go:embed maps/*.json
var mapFiles embed.FS

// Errors a map file can fail validation with. Load and Parse wrap them in a
// *MapError naming the file and field.
var (
	ErrSyntax          = errors.New("malformed map file")
	ErrUnknownModel    = errors.New("unknown model")
	ErrUnknownType     = errors.New("unknown type")
	ErrUnknownUnit     = errors.New("unknown unit")
	ErrUnknownQuantity = errors.New("unknown quantity")
	ErrBadValue        = errors.New("bad value")
	ErrMissing         = errors.New("missing")
	ErrDuplicate       = errors.New("duplicate")
	ErrOverlap         = errors.New("registers overlap")
	ErrUnitMismatch    = errors.New("unit does not fit quantity")
	ErrScaleFactor     = errors.New("bad scale factor reference")
	ErrNoEnergy        = errors.New("no mandatory import_energy register")
)

// MapError is a validation failure in one map file.
type MapError struct {
	File  string // e.g. "sdm630.json"
	Field string // e.g. "registers[3].type"; empty for the file as a whole
	Err   error
}

func (e *MapError) Error() string {
	if e.Field == "" {
		return "regmap: " + e.File + ": " + e.Err.Error()
	}
	return "regmap: " + e.File + ": " + e.Field + ": " + e.Err.Error()
}

func (e *MapError) Unwrap() error { return e.Err }

// Models returns the models of the embedded maps, sorted.
func Models() []string {
	entries, err := fs.ReadDir(mapFiles, "maps")
	if err != nil {
		return nil // cannot happen: the directory is embedded
	}
	var models []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			models = append(models, name)
		}
	}
	return models
}

// Load parses and validates the embedded map for model ("sdm630"). It returns
// an error wrapping ErrUnknownModel if there is no such map.
func Load(model string) (*Map, error) {
	data, err := mapFiles.ReadFile(path.Join("maps", model+".json"))
	if err != nil || strings.ContainsAny(model, "/\\.") {
		return nil, fmt.Errorf("regmap: %w %q (have %s)", ErrUnknownModel, model, strings.Join(Models(), ", "))
	}
	return Parse(model+".json", data)
}

// LoadAll loads every embedded map, failing on the first invalid one.
func LoadAll() ([]*Map, error) {
	var maps []*Map
	for _, model := range Models() {
		m, err := Load(model)
		if err != nil {
			return nil, err
		}
		maps = append(maps, m)
	}
	return maps, nil
}

// The JSON shape of a map file.
type fileMap struct {
	Model     string         `json:"model"`
	Name      string         `json:"name"`
	Source    string         `json:"source"`
	Notes     string         `json:"notes"`
	Phases    int            `json:"phases"`
	SunSpec   *fileSunSpec   `json:"sunspec"`
	Base      *fileAddress   `json:"base"`
	Defaults  fileRegister   `json:"defaults"`
	Registers []fileRegister `json:"registers"`
}

type fileSunSpec struct {
	ID     uint16 `json:"id"`
	Length uint16 `json:"length"`
}

type fileRegister struct {
	Quantity     string       `json:"quantity"`
	Name         string       `json:"name"`
	Address      *fileAddress `json:"address"`
	Function     int          `json:"function"`
	Type         string       `json:"type"`
	WordOrder    string       `json:"word_order"`
	ByteOrder    string       `json:"byte_order"`
	Unit         *string      `json:"unit"`
	Scale        *int         `json:"scale"`
	ScaleFactor  string       `json:"scale_factor"`
	Optional     bool         `json:"optional"`
	Rollover     float64      `json:"rollover"`
	NotAvailable string       `json:"not_available"`
	DefaultSF    *int         `json:"default_sf"`
	Notes        string       `json:"notes"`
}

// fileAddress is a register address written as a JSON number or as a string
// ("0x0156" or "342"), since datasheets print some maps in hex.
type fileAddress int

func (a *fileAddress) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseInt(s, 0, 32)
	if err != nil {
		return fmt.Errorf("address %s: want a number or a \"0x…\" string", b)
	}
	*a = fileAddress(n)
	return nil
}

// Parse parses and validates one map file; file names it in errors and must
// be "<model>.json".
func Parse(file string, data []byte) (*Map, error) {
	fail := func(field string, err error) (*Map, error) {
		return nil, &MapError{File: file, Field: field, Err: err}
	}
	var fm fileMap
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fm); err != nil {
		field := ""
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			field = te.Field
		}
		return fail(field, fmt.Errorf("%w: %v", ErrSyntax, err))
	}
	if dec.More() {
		return fail("", fmt.Errorf("%w: data after the map object", ErrSyntax))
	}

	m := &Map{Model: fm.Model, Name: fm.Name, Source: fm.Source, Phases: fm.Phases}
	if want := strings.TrimSuffix(path.Base(file), ".json"); fm.Model != want {
		return fail("model", fmt.Errorf("%w: %q must equal the file name %q", ErrBadValue, fm.Model, want))
	}
	if fm.Name == "" {
		return fail("name", ErrMissing)
	}
	if fm.Phases != 1 && fm.Phases != 3 {
		return fail("phases", fmt.Errorf("%w: %d (want 1 or 3)", ErrBadValue, fm.Phases))
	}
	if fm.Base != nil {
		if *fm.Base < 0 || *fm.Base > 0xFFFF {
			return fail("base", fmt.Errorf("%w: %d outside 0..65535", ErrBadValue, *fm.Base))
		}
		m.Base = uint16(*fm.Base)
	}
	if fm.SunSpec != nil {
		if fm.SunSpec.ID == 0 || fm.SunSpec.Length == 0 {
			return fail("sunspec", fmt.Errorf("%w: id and length are required", ErrMissing))
		}
		m.SunSpec = &SunSpecModel{ID: fm.SunSpec.ID, Length: fm.SunSpec.Length}
	}
	if len(fm.Registers) == 0 {
		return fail("registers", ErrMissing)
	}
	if fm.Defaults.Quantity != "" || fm.Defaults.Name != "" || fm.Defaults.Address != nil || fm.Defaults.ScaleFactor != "" {
		return fail("defaults", fmt.Errorf("%w: defaults may only set function, type, word_order, byte_order, unit, scale, not_available", ErrBadValue))
	}

	names := map[string]int{}
	for i, fr := range fm.Registers {
		field := fmt.Sprintf("registers[%d]", i)
		r, sfName, err := parseRegister(fr, fm.Defaults, m.Base)
		if err != nil {
			var fe fieldError
			if errors.As(err, &fe) {
				return fail(field+"."+fe.field, fe.err)
			}
			return fail(field, err)
		}
		if r.Quantity.Valid() {
			if prev := m.byQuantity[r.Quantity]; prev != 0 {
				return fail(field+".quantity", fmt.Errorf("%w: %v also at registers[%d]", ErrDuplicate, r.Quantity, prev-1))
			}
			m.byQuantity[r.Quantity] = i + 1
		}
		if prev, ok := names[r.Name]; ok {
			return fail(field+".name", fmt.Errorf("%w: %q also at registers[%d]", ErrDuplicate, r.Name, prev))
		}
		names[r.Name] = i
		r.ScaleFactor = -1
		if sfName != "" {
			// Resolved below, once every name is known; park the name.
			r.ScaleFactor = -2
		}
		m.Registers = append(m.Registers, r)
	}

	// Scale-factor references: the target must be a sunssf register on the
	// same function code, close enough to be read in one request with the
	// value (SunSpec requires reading them together).
	for i, fr := range fm.Registers {
		r := &m.Registers[i]
		if r.ScaleFactor != -2 {
			continue
		}
		field := fmt.Sprintf("registers[%d].scale_factor", i)
		j, ok := names[fr.ScaleFactor]
		if !ok {
			return fail(field, fmt.Errorf("%w: no register named %q", ErrScaleFactor, fr.ScaleFactor))
		}
		sf := &m.Registers[j]
		if sf.Type != TypeSunSSF {
			return fail(field, fmt.Errorf("%w: %q is %v, not sunssf", ErrScaleFactor, fr.ScaleFactor, sf.Type))
		}
		if sf.Function != r.Function {
			return fail(field, fmt.Errorf("%w: %q is read with function %d, the value with %d", ErrScaleFactor, fr.ScaleFactor, sf.Function, r.Function))
		}
		if span := max(r.End(), sf.End()) - min(int(r.Address), int(sf.Address)); span > MaxRegistersPerRequest {
			return fail(field, fmt.Errorf("%w: %q is %d registers away, more than one request can read", ErrScaleFactor, fr.ScaleFactor, span))
		}
		r.ScaleFactor = j
	}
	for i := range m.Registers {
		if r := &m.Registers[i]; r.Type == TypeSunSSF && !slices.ContainsFunc(m.Registers, func(o Register) bool { return o.ScaleFactor == i }) {
			return fail(fmt.Sprintf("registers[%d]", i), fmt.Errorf("%w: scale factor %q is used by no register", ErrScaleFactor, r.Name))
		}
	}

	if err := checkOverlaps(m); err != nil {
		return nil, &MapError{File: file, Field: err.field, Err: err.err}
	}
	if r, ok := m.Register(meter.QuantityImportEnergy); !ok || r.Optional {
		return fail("registers", ErrNoEnergy)
	}
	return m, nil
}

// fieldError carries the name of the offending field out of parseRegister.
type fieldError struct {
	field string
	err   error
}

func (e fieldError) Error() string { return e.field + ": " + e.err.Error() }

func parseRegister(fr, def fileRegister, base uint16) (Register, string, error) {
	bad := func(field string, err error) (Register, string, error) {
		return Register{}, "", fieldError{field, err}
	}
	pick := func(v, d string) string {
		if v != "" {
			return v
		}
		return d
	}
	r := Register{Name: fr.Name, Optional: fr.Optional, RolloverUnits: fr.Rollover}

	if fr.Quantity != "" {
		q, err := meter.ParseQuantity(fr.Quantity)
		if err != nil {
			return bad("quantity", fmt.Errorf("%w %q", ErrUnknownQuantity, fr.Quantity))
		}
		r.Quantity = q
	}
	if r.Name == "" {
		r.Name = fr.Quantity
	}

	if fr.Address == nil {
		return bad("address", ErrMissing)
	}

	fn := fr.Function
	if fn == 0 {
		fn = def.Function
	}
	switch Function(fn) {
	case FuncHolding, FuncInput:
		r.Function = Function(fn)
	default:
		return bad("function", fmt.Errorf("%w: %d (want 3 or 4)", ErrBadValue, fn))
	}

	ts := pick(fr.Type, def.Type)
	if ts == "" {
		return bad("type", ErrMissing)
	}
	t, ok := parseType(ts)
	if !ok {
		return bad("type", fmt.Errorf("%w %q", ErrUnknownType, ts))
	}
	r.Type = t

	a := int(*fr.Address) + int(base)
	if *fr.Address < 0 || a+t.Words() > 1<<16 {
		return bad("address", fmt.Errorf("%w: %d+%d registers is outside 0..65535", ErrBadValue, a, t.Words()))
	}
	r.Address = uint16(a)

	switch wo := pick(fr.WordOrder, pick(def.WordOrder, "high_first")); wo {
	case "high_first":
		r.WordOrder = HighFirst
	case "low_first":
		r.WordOrder = LowFirst
	default:
		return bad("word_order", fmt.Errorf("%w: %q (want high_first or low_first)", ErrBadValue, wo))
	}
	switch bo := pick(fr.ByteOrder, pick(def.ByteOrder, "big")); bo {
	case "big":
		r.ByteOrder = BigEndian
	case "little":
		r.ByteOrder = LittleEndian
	default:
		return bad("byte_order", fmt.Errorf("%w: %q (want big or little)", ErrBadValue, bo))
	}
	switch na := pick(fr.NotAvailable, pick(def.NotAvailable, "none")); na {
	case "none":
		r.NotAvailable = NANone
	case "sunspec":
		r.NotAvailable = NASunSpec
	case "abb":
		r.NotAvailable = NAABB
	default:
		return bad("not_available", fmt.Errorf("%w: %q (want none, sunspec or abb)", ErrBadValue, na))
	}

	if t == TypeSunSSF {
		switch {
		case r.Quantity.Valid():
			return bad("quantity", fmt.Errorf("%w: a sunssf register measures nothing itself", ErrBadValue))
		case fr.Name == "":
			return bad("name", fmt.Errorf("%w: a sunssf register needs a name to be referenced by", ErrMissing))
		case fr.Unit != nil || fr.Scale != nil || fr.ScaleFactor != "" || fr.Optional || fr.Rollover != 0:
			return bad("type", fmt.Errorf("%w: a sunssf register takes only name, address, function, default_sf", ErrBadValue))
		}
		if fr.DefaultSF != nil {
			if *fr.DefaultSF < -maxSF || *fr.DefaultSF > maxSF {
				return bad("default_sf", fmt.Errorf("%w: %d outside -%d..%d", ErrBadValue, *fr.DefaultSF, maxSF, maxSF))
			}
			r.DefaultSF = *fr.DefaultSF
		}
		return r, "", nil
	}

	if !r.Quantity.Valid() {
		return bad("quantity", ErrMissing)
	}
	if fr.DefaultSF != nil {
		return bad("default_sf", fmt.Errorf("%w: only sunssf registers take default_sf", ErrBadValue))
	}
	us := ""
	switch {
	case fr.Unit != nil:
		us = *fr.Unit
	case def.Unit != nil:
		us = *def.Unit
	}
	if us == "" && r.Quantity.Dimension() == meter.DimensionRatio {
		us = UnitRatio.String()
	}
	if us == "" {
		return bad("unit", ErrMissing)
	}
	u, ok := parseUnit(us)
	if !ok {
		return bad("unit", fmt.Errorf("%w %q", ErrUnknownUnit, us))
	}
	if u.Dimension() != r.Quantity.Dimension() {
		return bad("unit", fmt.Errorf("%w: %s is %v, %v is %v", ErrUnitMismatch, u, u.Dimension(), r.Quantity, r.Quantity.Dimension()))
	}
	r.Unit = u

	scale := 0
	switch {
	case fr.Scale != nil:
		scale = *fr.Scale
	case def.Scale != nil:
		scale = *def.Scale
	}
	if scale < -maxScale || scale > maxScale {
		return bad("scale", fmt.Errorf("%w: %d outside -%d..%d", ErrBadValue, scale, maxScale, maxScale))
	}
	r.Scale = scale

	if fr.Rollover != 0 {
		if fr.Rollover < 0 || r.Quantity.Dimension() != meter.DimensionEnergy {
			return bad("rollover", fmt.Errorf("%w: rollover applies to energy registers and must be positive", ErrBadValue))
		}
	}
	if fr.ScaleFactor != "" && r.NotAvailable == NANone {
		// Scale factors are a SunSpec device's; so are its sentinels.
		return bad("not_available", fmt.Errorf("%w: a register with a scale factor must use the sunspec convention", ErrBadValue))
	}
	return r, fr.ScaleFactor, nil
}

// Bounds on powers of ten in map files: wider than any meter uses, narrow
// enough that arithmetic cannot overflow a float64 exponent or an int64 by
// accident of the file.
const (
	maxScale = 6
	maxSF    = 10
)

// checkOverlaps reports the first pair of registers on the same function code
// whose address ranges intersect.
func checkOverlaps(m *Map) *fieldError {
	idx := make([]int, len(m.Registers))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		ra, rb := &m.Registers[a], &m.Registers[b]
		if ra.Function != rb.Function {
			return int(ra.Function) - int(rb.Function)
		}
		return int(ra.Address) - int(rb.Address)
	})
	for k := 1; k < len(idx); k++ {
		a, b := &m.Registers[idx[k-1]], &m.Registers[idx[k]]
		if a.Function == b.Function && int(b.Address) < a.End() {
			return &fieldError{
				field: fmt.Sprintf("registers[%d].address", idx[k]),
				err: fmt.Errorf("%w: %s at %#04x..%#04x and %s at %#04x..%#04x (function %d)", ErrOverlap,
					b.Name, b.Address, b.End()-1, a.Name, a.Address, a.End()-1, a.Function),
			}
		}
	}
	return nil
}
