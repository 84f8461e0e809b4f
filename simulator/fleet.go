package simulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/regmap"
)

// Profile is a meter's load shape.
type Profile uint8

// Load profiles.
const (
	Residential Profile = iota + 1 // morning and evening peaks, more at weekends
	Commercial                     // business hours on weekdays, less on Saturday, closed Sunday
	Industrial                     // three shifts on weekdays, reduced at weekends
)

func (p Profile) String() string {
	switch p {
	case Residential:
		return "residential"
	case Commercial:
		return "commercial"
	case Industrial:
		return "industrial"
	}
	return fmt.Sprintf("profile(%d)", uint8(p))
}

// Protocol is how a meter reaches the gateway; the String forms are the
// meters.protocol values.
type Protocol uint8

// Protocols.
const (
	MQTT   Protocol = iota + 1 // the meter publishes over MQTT
	Modbus                     // the gateway polls the meter over Modbus TCP
)

func (p Protocol) String() string {
	switch p {
	case MQTT:
		return "mqtt"
	case Modbus:
		return "modbus"
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// Format is the MQTT payload format a meter publishes.
type Format uint8

// Payload formats (meter/payload/FORMAT.md).
const (
	Canonical Format = iota + 1 // canonical JSON v1 on meters/<tenant>/<meter>/reading
	Tasmota                     // Tasmota SENSOR on tele/<meter>/SENSOR, Time with its zone offset (SetOption52)
)

func (f Format) String() string {
	switch f {
	case Canonical:
		return "canonical"
	case Tasmota:
		return "tasmota"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// Meter is one simulated meter: its identity, model, load and how it talks.
// Meters are read-only once the fleet is built.
type Meter struct {
	Index      int    // 0-based position in the fleet
	ExternalID string // meters.external_id, e.g. "sim-000001"
	// Serial is the serial number of the meter installed at Start.
	// Replacements get Serial + "-R1", "-R2", … (SerialAt).
	Serial   string
	Model    string      // register-map model, meters.model
	Map      *regmap.Map // the model's register map (shared, read-only)
	Phases   int         // 1 or 3
	Profile  Profile
	SolarKWp float64 // rooftop solar peak power, kW; 0 without solar
	// MeanW is the load's scale: roughly its mean power, W.
	MeanW float64

	Protocol Protocol
	Format   Format // MQTT meters
	Gateway  string // Modbus meters: the host:port of their gateway
	Unit     uint8  // Modbus meters: unit id behind the gateway

	// Device properties (Faults).
	Rollover        bool // energy registers armed to wrap RolloverAfter after Start
	WrongWordOrder  bool // Modbus: multi-register values word-swapped
	MissingOptional bool // Modbus: the map's optional registers answer exception 2

	// ModulusWh is where the energy registers wrap (the model's counter
	// arithmetic: 2^32 Wh for SunSpec acc32), 0 if they never do.
	ModulusWh int64

	seed    uint64
	maxW    float64    // upper bound of |power| without spikes, W
	pf      float64    // typical power factor
	vOffset float64    // this meter's supply voltage offset, V
	phaseW  [3]float64 // share of power per phase (sums to 1)
}

// SerialAt returns the serial of the meter's generation gen (0 = the one
// installed at Start, n = after the n-th replacement).
func (m *Meter) SerialAt(gen int) string {
	if gen == 0 {
		return m.Serial
	}
	return m.Serial + "-R" + strconv.Itoa(gen)
}

// NumericSerial is the serial as the 32-bit number Eastron meters expose in
// their serial-number register.
func (m *Meter) NumericSerial(gen int) uint32 {
	return uint32(hash(m.seed, domReplace, uint64(gen))%900_000_000) + 100_000_000
}

// Fleet is a deterministic set of simulated meters built from a Config.
// It is read-only and safe for concurrent use; per-meter evaluation state
// lives in State.
type Fleet struct {
	cfg    Config
	loc    *time.Location
	meters []Meter
	key    []byte // HMAC key for meter secrets
	// schedule holds Config.Faults.Schedule per meter.
	schedule map[int][]Scheduled
}

// New builds the fleet cfg describes (after WithDefaults).
func New(cfg Config) (*Fleet, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	maps := map[string]*regmap.Map{}
	for _, name := range cfg.Models {
		m, err := regmap.Load(name)
		if err != nil {
			return nil, fmt.Errorf("simulator: %w", err)
		}
		maps[name] = m
	}
	var seedBytes [8]byte
	binary.BigEndian.PutUint64(seedBytes[:], cfg.Seed)
	key := sha256.Sum256(append([]byte("meterd-simulator-secret-v1/"+cfg.Tenant+"/"), seedBytes[:]...))
	f := &Fleet{cfg: cfg, loc: loc, key: key[:], meters: make([]Meter, cfg.Meters), schedule: map[int][]Scheduled{}}
	for _, s := range cfg.Faults.Schedule {
		f.schedule[s.Meter] = append(f.schedule[s.Meter], s)
	}
	for i := range f.meters {
		if err := f.build(i, maps); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// modelWeights are the chances of each model per profile before the
// config's Models filter them.
var modelWeights = map[Profile]map[string]float64{
	Residential: {"sdm120": 0.8, "sdm630": 0.15, "sunspec_203": 0.05},
	Commercial:  {"sdm630": 0.7, "sunspec_203": 0.3},
	Industrial:  {"sdm630": 0.5, "sunspec_203": 0.5},
}

func (f *Fleet) build(i int, maps map[string]*regmap.Map) error {
	c := &f.cfg
	seed := hash(c.Seed, domMeter, uint64(i))
	m := &f.meters[i]
	m.Index = i
	m.seed = seed
	m.ExternalID = fmt.Sprintf("%s%06d", c.IDPrefix, i+1)

	// Profile, then a model that can carry it.
	u := unit(hash(seed, domProfile)) * (c.Residential + c.Commercial + c.Industrial)
	switch {
	case u < c.Residential:
		m.Profile = Residential
	case u < c.Residential+c.Commercial:
		m.Profile = Commercial
	default:
		m.Profile = Industrial
	}
	pick := func(p Profile) string {
		total := 0.0
		for _, name := range c.Models {
			total += modelWeights[p][name]
		}
		if total == 0 {
			return ""
		}
		x := unit(hash(seed, domModel)) * total
		for _, name := range c.Models {
			if x -= modelWeights[p][name]; x < 0 {
				return name
			}
		}
		return c.Models[len(c.Models)-1]
	}
	m.Model = pick(m.Profile)
	if m.Model == "" { // only single-phase models allowed
		m.Profile = Residential
		m.Model = pick(Residential)
	}
	if m.Model == "" {
		m.Model = c.Models[0]
	}
	m.Map = maps[m.Model]
	m.Phases = m.Map.Phases
	if m.Phases == 1 && m.Profile != Residential {
		m.Profile = Residential
	}
	m.Serial = fmt.Sprintf("%s-%04X-%06d", serialPrefix(m.Model), c.Seed&0xFFFF, i+1)

	switch m.Profile {
	case Residential:
		m.MeanW = uniform(250, 900, seed, domScale)
		m.pf = uniform(0.93, 0.99, seed, domScale, 1)
	case Commercial:
		m.MeanW = uniform(4_000, 25_000, seed, domScale)
		m.pf = uniform(0.88, 0.96, seed, domScale, 1)
	case Industrial:
		m.MeanW = uniform(30_000, 150_000, seed, domScale)
		m.pf = uniform(0.82, 0.92, seed, domScale, 1)
	}
	if m.Profile != Industrial && unit(hash(seed, domSolar)) < c.SolarShare {
		if m.Profile == Residential {
			m.SolarKWp = float64(int(uniform(2, 8, seed, domSolar, 1)*2)) / 2
		} else {
			m.SolarKWp = float64(int(uniform(10, 60, seed, domSolar, 1)))
		}
	}
	m.maxW = 3*m.MeanW + 1000*m.SolarKWp
	m.vOffset = uniform(-5, 5, seed, domVoltage)
	if m.Phases == 3 {
		var sum float64
		for p := range 3 {
			m.phaseW[p] = uniform(0.8, 1.2, seed, domPhase, uint64(p))
			sum += m.phaseW[p]
		}
		for p := range 3 {
			m.phaseW[p] /= sum
		}
	} else {
		m.phaseW = [3]float64{1, 0, 0}
	}
	if spec, err := m.Map.CounterSpec(meter.QuantityImportEnergy, 0); err == nil {
		m.ModulusWh = spec.ModulusWh
	}

	mqttMeters := c.Meters - c.ModbusMeters
	if i < mqttMeters {
		m.Protocol = MQTT
		m.Format = Canonical
		if unit(hash(seed, domFormat)) < c.TasmotaShare {
			m.Format = Tasmota
		}
	} else {
		j := i - mqttMeters
		m.Protocol = Modbus
		m.Gateway = c.ModbusGateways[j/c.UnitsPerGateway]
		m.Unit = uint8(1 + j%c.UnitsPerGateway)
	}

	forced := func(k Kind) bool {
		for _, s := range f.schedule[i] {
			if s.Kind == k {
				return true
			}
		}
		return false
	}
	chosen := func(k Kind) bool {
		return forced(k) || unit(hash(c.Seed, domDevice, uint64(k), uint64(i))) < c.Faults.Rate(k)
	}
	m.Rollover = m.ModulusWh > 0 && chosen(KindRollover)
	if m.Protocol == Modbus {
		m.WrongWordOrder = chosen(KindWrongWordOrder)
		m.MissingOptional = hasOptional(m.Map) && chosen(KindMissingOptional)
	}
	return nil
}

func serialPrefix(model string) string {
	switch model {
	case "sdm120":
		return "SDM120"
	case "sdm630":
		return "SDM630"
	case "sunspec_203":
		return "SUNS203"
	}
	return strings.ToUpper(model)
}

func hasOptional(m *regmap.Map) bool {
	for i := range m.Registers {
		if m.Registers[i].Optional {
			return true
		}
	}
	return false
}

// Config returns the fleet's config, with defaults filled in.
func (f *Fleet) Config() Config { return f.cfg }

// Len returns the number of meters.
func (f *Fleet) Len() int { return len(f.meters) }

// Meter returns meter i (0-based). The result must not be modified.
func (f *Fleet) Meter(i int) *Meter { return &f.meters[i] }

// Location returns the tenant's time zone.
func (f *Fleet) Location() *time.Location { return f.loc }

// Lookup returns the index of the meter with external id ref.
func (f *Fleet) Lookup(ref string) (int, bool) {
	digits, ok := strings.CutPrefix(ref, f.cfg.IDPrefix)
	if !ok || len(digits) != 6 {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || n > len(f.meters) {
		return 0, false
	}
	return n - 1, true
}

// UnknownMeterRef returns a meter reference that looks like the fleet's but
// belongs to no meter of it: what the unknown_meter fault publishes to.
func (f *Fleet) UnknownMeterRef(i int) string {
	return fmt.Sprintf("%sx%06d", f.cfg.IDPrefix, i+1)
}

// Secret returns meter i's MQTT password: hex(HMAC-SHA256(key,
// external id)), where key = SHA-256("meterd-simulator-secret-v1/" + tenant
// + "/" + seed as 8 big-endian bytes). It is derived, never stored: the
// publisher and provisioning compute the same value.
func (f *Fleet) Secret(i int) string {
	mac := hmac.New(sha256.New, f.key)
	mac.Write([]byte(f.meters[i].ExternalID))
	return hex.EncodeToString(mac.Sum(nil))
}

// SecretHash returns the meters.mqtt_secret_hash of meter i:
// "sha256:" + hex(SHA-256(Secret(i))).
func (f *Fleet) SecretHash(i int) string { return HashSecret(f.Secret(i)) }

// HashSecret returns "sha256:" + hex(SHA-256(secret)), the form of
// meters.mqtt_secret_hash.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Username returns the MQTT username meter i logs in with:
// "<tenant>/<external id>", the form the gateway's broker resolves without
// ambiguity (external ids are unique per tenant only).
func (f *Fleet) Username(i int) string { return f.cfg.Tenant + "/" + f.meters[i].ExternalID }

// Ticks returns the reading times of the fleet in [from, to): the multiples
// of Interval after Start.
func (f *Fleet) Ticks(from, to time.Time) []time.Time {
	var ts []time.Time
	for t := f.TickAtOrAfter(from); t.Before(to); t = t.Add(f.cfg.Interval) {
		ts = append(ts, t)
	}
	return ts
}

// TickAtOrAfter returns the first reading time at or after t (Start if t
// is before it).
func (f *Fleet) TickAtOrAfter(t time.Time) time.Time {
	if !t.After(f.cfg.Start) {
		return f.cfg.Start
	}
	d := t.Sub(f.cfg.Start)
	n := (d + f.cfg.Interval - 1) / f.cfg.Interval
	return f.cfg.Start.Add(n * f.cfg.Interval)
}
