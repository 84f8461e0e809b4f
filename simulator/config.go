package simulator

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/regmap"
)

// ErrInvalidConfig is wrapped by Config.Validate errors.
var ErrInvalidConfig = errors.New("invalid simulator config")

// Config describes a fleet. The zero value of every field means its
// documented default (WithDefaults fills them), except Start, which the
// caller must set: the fleet's registers are defined relative to it.
//
// Everything the fleet produces is a pure function of Config: two fleets
// built from equal configs produce the same meters, readings and faults.
type Config struct {
	// Seed selects the fleet. Default 1.
	Seed uint64
	// Meters is the fleet size. Default 10.
	Meters int
	// Start is the fleet's epoch: readings are at Start + k·Interval and
	// the energy registers are integrated from Start. Required. Keep it
	// fixed to reproduce or resume a run (the manifest records it).
	Start time.Time
	// Interval between readings of a meter. Default 1 minute.
	Interval time.Duration
	// Step is the model's resolution: power is constant within a step and
	// the registers integrate it exactly. Default 30 s; Interval must be a
	// multiple of it.
	Step time.Duration

	// Tenant is the tenant code the fleet is provisioned under and
	// publishes to (canonical topics). Default "sim".
	Tenant string
	// TenantName is the tenant's display name. Default "Simulated utility".
	TenantName string
	// TimeZone is the tenant's zone; the load shapes follow its local
	// time. Default "Asia/Kolkata".
	TimeZone string
	// Currency is the tenant's ISO 4217 currency. Default "INR".
	Currency string
	// IDPrefix starts every meter's external id, which continues with the
	// 1-based index in six digits ("sim-000001"). Default "sim-".
	IDPrefix string

	// Models are the register-map models meters are drawn from. Default
	// sdm120, sdm630 and sunspec_203. Single-phase models get residential
	// loads only.
	Models []string
	// Residential, Commercial and Industrial are the shares of load
	// profiles. Defaults 0.7, 0.2, 0.1 (when all three are 0).
	Residential, Commercial, Industrial float64
	// SolarShare is the fraction of residential and commercial meters
	// with rooftop solar that exports at midday. Default 0.25; set
	// NoSolar to turn solar off.
	SolarShare float64
	NoSolar    bool
	// TasmotaShare is the fraction of MQTT meters that publish Tasmota
	// SENSOR messages instead of canonical JSON. Default 0.
	TasmotaShare float64

	// ModbusMeters is how many meters, the last ones of the fleet, are
	// Modbus devices instead of MQTT publishers. Default 0.
	ModbusMeters int
	// ModbusGateways are the host:port addresses of the simulated
	// Modbus TCP gateways; Modbus meter j sits behind gateway
	// j / UnitsPerGateway with unit id 1 + j % UnitsPerGateway. Default
	// 127.0.0.1:5020, 127.0.0.1:5021, … as many as needed.
	ModbusGateways []string
	// UnitsPerGateway is how many devices share one gateway (a serial bus).
	// Default 10, at most 247.
	UnitsPerGateway int

	Faults Faults
}

// Defaults for Config.
const (
	DefaultSeed            = 1
	DefaultMeters          = 10
	DefaultInterval        = time.Minute
	DefaultStep            = 30 * time.Second
	DefaultTenant          = "sim"
	DefaultTimeZone        = "Asia/Kolkata"
	DefaultCurrency        = "INR"
	DefaultIDPrefix        = "sim-"
	DefaultSolarShare      = 0.25
	DefaultUnitsPerGateway = 10
	DefaultModbusHost      = "127.0.0.1"
	DefaultModbusPort      = 5020
)

// DefaultModels are the models a fleet uses unless told otherwise.
func DefaultModels() []string { return []string{"sdm120", "sdm630", "sunspec_203"} }

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Meters == 0 {
		c.Meters = DefaultMeters
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Step == 0 {
		c.Step = min(DefaultStep, c.Interval)
	}
	if c.Tenant == "" {
		c.Tenant = DefaultTenant
	}
	if c.TenantName == "" {
		c.TenantName = "Simulated utility"
	}
	if c.TimeZone == "" {
		c.TimeZone = DefaultTimeZone
	}
	if c.Currency == "" {
		c.Currency = DefaultCurrency
	}
	if c.IDPrefix == "" {
		c.IDPrefix = DefaultIDPrefix
	}
	if len(c.Models) == 0 {
		c.Models = DefaultModels()
	}
	if c.Residential == 0 && c.Commercial == 0 && c.Industrial == 0 {
		c.Residential, c.Commercial, c.Industrial = 0.7, 0.2, 0.1
	}
	if c.SolarShare == 0 && !c.NoSolar {
		c.SolarShare = DefaultSolarShare
	}
	if c.UnitsPerGateway == 0 {
		c.UnitsPerGateway = DefaultUnitsPerGateway
	}
	if c.ModbusMeters > 0 && len(c.ModbusGateways) == 0 {
		n := (c.ModbusMeters + c.UnitsPerGateway - 1) / c.UnitsPerGateway
		c.ModbusGateways = GatewayAddrs(DefaultModbusHost, DefaultModbusPort, n)
	}
	if !c.Start.IsZero() {
		c.Start = c.Start.UTC()
	}
	c.Faults.setDefaults()
	return c
}

// GatewayAddrs returns n addresses host:firstPort, host:firstPort+1, ….
func GatewayAddrs(host string, firstPort, n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = net.JoinHostPort(host, fmt.Sprint(firstPort+i))
	}
	return addrs
}

// MaxMeters bounds the fleet size (the external id has six digits).
const MaxMeters = 999_999

// Validate reports whether c (after WithDefaults) describes a fleet.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Meters < 1 || c.Meters > MaxMeters {
		bad("Meters must be in 1..%d, got %d", MaxMeters, c.Meters)
	}
	if c.Start.IsZero() {
		bad("Start is required")
	}
	if c.Step <= 0 || c.Step%time.Millisecond != 0 {
		bad("Step must be a positive whole number of milliseconds, got %v", c.Step)
	}
	if c.Interval <= 0 || (c.Step > 0 && c.Interval%c.Step != 0) {
		bad("Interval must be a positive multiple of Step (%v), got %v", c.Step, c.Interval)
	}
	if c.Interval%time.Second != 0 {
		bad("Interval must be whole seconds (Tasmota timestamps have no fraction), got %v", c.Interval)
	}
	if !payload.ValidTenant(c.Tenant) {
		bad("Tenant %q is not a valid tenant code", c.Tenant)
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		bad("TimeZone %q: %v", c.TimeZone, err)
	}
	if len(c.Currency) != 3 {
		bad("Currency %q is not an ISO 4217 code", c.Currency)
	}
	if !payload.ValidMeterRef(c.IDPrefix + "000001") {
		bad("IDPrefix %q does not make valid meter references", c.IDPrefix)
	}
	for _, m := range c.Models {
		if !slices.Contains(DefaultModels(), m) {
			if _, err := regmap.Load(m); err != nil {
				bad("Models: %v", err)
			} else {
				bad("Models: %q has no simulator profile (have %v)", m, DefaultModels())
			}
		}
	}
	shares := []float64{c.Residential, c.Commercial, c.Industrial, c.SolarShare, c.TasmotaShare}
	for _, s := range shares {
		if !(s >= 0 && s <= 1) {
			bad("shares must be in 0..1, got %v", shares)
			break
		}
	}
	if c.Residential+c.Commercial+c.Industrial <= 0 {
		bad("at least one load profile share must be positive")
	}
	if c.ModbusMeters < 0 || c.ModbusMeters > c.Meters {
		bad("ModbusMeters must be in 0..Meters, got %d", c.ModbusMeters)
	}
	if c.UnitsPerGateway < 1 || c.UnitsPerGateway > 247 {
		bad("UnitsPerGateway must be in 1..247, got %d", c.UnitsPerGateway)
	}
	if c.ModbusMeters > 0 && len(c.ModbusGateways)*c.UnitsPerGateway < c.ModbusMeters {
		bad("%d gateways × %d units cannot hold %d Modbus meters", len(c.ModbusGateways), c.UnitsPerGateway, c.ModbusMeters)
	}
	for _, a := range c.ModbusGateways {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("ModbusGateways: %q: %v", a, err)
		}
	}
	errs = append(errs, c.Faults.validate(c.Meters)...)
	return errors.Join(errs...)
}
