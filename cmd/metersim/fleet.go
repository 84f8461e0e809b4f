package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/cmd/internal/cli"
	"github.com/meterd/meterd/simulator"
)

// fleetFlags are the flags describing a fleet, shared by run, modbus and
// provision: the same flags give the same fleet.
type fleetFlags struct {
	seed            int
	meters          int
	start           string
	interval        time.Duration
	step            time.Duration
	tenant          string
	prefix          string
	zone            string
	models          []string
	residential     float64
	commercial      float64
	industrial      float64
	solar           float64
	tasmota         float64
	modbusMeters    int
	modbusListen    string
	unitsPerGateway int
	faults          string
	schedule        string
	lateBy          int
	gapLength       time.Duration
	spikeLength     time.Duration
	spikeFactor     float64
	stuckLength     time.Duration
	rolloverAfter   time.Duration
	slowDelay       time.Duration
}

func (c *fleetFlags) register(f *flags, modbusDefault int) {
	f.Int(&c.seed, "seed", "METERSIM_SEED", 1, "fleet seed: the same seed and flags give the same meters, readings and faults")
	f.Int(&c.meters, "meters", "METERSIM_METERS", 10, "number of meters")
	f.String(&c.start, "start", "METERSIM_START", "", "the fleet's epoch (RFC 3339): registers integrate from it and readings fall on start + k·interval; default --from, else now rounded down to the interval. Reuse it to resume or reproduce a run")
	f.Duration(&c.interval, "interval", "METERSIM_INTERVAL", time.Minute, "time between a meter's readings")
	f.Duration(&c.step, "step", "METERSIM_STEP", 0, "model resolution: power is constant within a step (default min(30s, interval))")
	f.String(&c.tenant, "tenant", "METERSIM_TENANT", "sim", "tenant code the fleet belongs to")
	f.String(&c.prefix, "prefix", "METERSIM_PREFIX", "sim-", "external id prefix (ids are prefix + 6 digits)")
	f.String(&c.zone, "time-zone", "METERSIM_TIME_ZONE", "Asia/Kolkata", "tenant time zone; load shapes follow its local time")
	f.List(&c.models, "models", "METERSIM_MODELS", "sdm120,sdm630,sunspec_203", "register-map models to draw meters from")
	f.Float(&c.residential, "residential", "METERSIM_RESIDENTIAL", 0.7, "share of residential load profiles")
	f.Float(&c.commercial, "commercial", "METERSIM_COMMERCIAL", 0.2, "share of commercial load profiles")
	f.Float(&c.industrial, "industrial", "METERSIM_INDUSTRIAL", 0.1, "share of industrial load profiles")
	f.Float(&c.solar, "solar-share", "METERSIM_SOLAR_SHARE", 0.25, "share of residential and commercial meters with rooftop solar (0 for none)")
	f.Float(&c.tasmota, "tasmota-share", "METERSIM_TASMOTA_SHARE", 0, "share of MQTT meters publishing Tasmota SENSOR instead of canonical JSON")
	f.Int(&c.modbusMeters, "modbus-meters", "METERSIM_MODBUS_METERS", modbusDefault, "how many meters (the last ones) are Modbus devices; -1 for all")
	f.String(&c.modbusListen, "modbus-listen", "METERSIM_MODBUS_LISTEN", "127.0.0.1:5020", "address of the first simulated Modbus TCP gateway; the others use the following ports")
	f.Int(&c.unitsPerGateway, "units-per-gateway", "METERSIM_UNITS_PER_GATEWAY", 10, "Modbus devices (unit ids 1..n) behind each gateway")
	f.String(&c.faults, "faults", "METERSIM_FAULTS", "", "fault rates, kind=rate,… (kinds: "+kindList()+"); rates are per message, per meter-day, per device or per request, see simulator.Faults")
	f.String(&c.schedule, "fault-schedule", "METERSIM_FAULT_SCHEDULE", "", "scheduled faults, kind@meter@time[+duration],… with meter a 0-based index and time RFC 3339")
	f.Int(&c.lateBy, "late-by", "METERSIM_LATE_BY", 10, "late messages wait for this many further messages of their meter")
	f.Duration(&c.gapLength, "gap-length", "METERSIM_GAP_LENGTH", 30*time.Minute, "how long a meter stays offline in a gap")
	f.Duration(&c.spikeLength, "spike-length", "METERSIM_SPIKE_LENGTH", 15*time.Minute, "length of a usage spike")
	f.Float(&c.spikeFactor, "spike-factor", "METERSIM_SPIKE_FACTOR", 5, "consumption multiplier during a spike")
	f.Duration(&c.stuckLength, "stuck-length", "METERSIM_STUCK_LENGTH", 6*time.Hour, "how long a stuck meter records nothing")
	f.Duration(&c.rolloverAfter, "rollover-after", "METERSIM_ROLLOVER_AFTER", time.Hour, "rollover-armed meters wrap this long after the start")
	f.Duration(&c.slowDelay, "slow-reply-delay", "METERSIM_SLOW_REPLY_DELAY", 3*time.Second, "delay of a slow Modbus reply")
}

func kindList() string {
	var names []string
	for _, k := range simulator.Kinds() {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}

// config returns the fleet config; start is the epoch when --start is
// empty.
func (c *fleetFlags) config(start time.Time) (simulator.Config, error) {
	cfg := simulator.Config{
		Seed: uint64(c.seed), Meters: c.meters, Interval: c.interval, Step: c.step,
		Tenant: c.tenant, IDPrefix: c.prefix, TimeZone: c.zone, Models: c.models,
		Residential: c.residential, Commercial: c.commercial, Industrial: c.industrial,
		SolarShare: c.solar, NoSolar: c.solar == 0, TasmotaShare: c.tasmota,
		ModbusMeters: c.modbusMeters, UnitsPerGateway: c.unitsPerGateway,
	}
	if c.seed < 1 {
		return cfg, fmt.Errorf("--seed must be positive")
	}
	if c.modbusMeters < 0 {
		cfg.ModbusMeters = c.meters
	}
	if c.start != "" {
		t, err := time.Parse(time.RFC3339Nano, c.start)
		if err != nil {
			return cfg, fmt.Errorf("--start: %w", err)
		}
		start = t
	}
	cfg.Start = start.UTC()
	if cfg.ModbusMeters > 0 {
		host, port, err := net.SplitHostPort(c.modbusListen)
		if err != nil {
			return cfg, fmt.Errorf("--modbus-listen: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return cfg, fmt.Errorf("--modbus-listen: port %q", port)
		}
		n := (cfg.ModbusMeters + c.unitsPerGateway - 1) / max(c.unitsPerGateway, 1)
		cfg.ModbusGateways = simulator.GatewayAddrs(host, p, n)
	}
	ft := &cfg.Faults
	ft.LateBy, ft.GapLength, ft.SpikeLength, ft.SpikeFactor = c.lateBy, c.gapLength, c.spikeLength, c.spikeFactor
	ft.StuckLength, ft.RolloverAfter, ft.SlowReplyDelay = c.stuckLength, c.rolloverAfter, c.slowDelay
	for _, kv := range cli.SplitList(c.faults) {
		name, rate, ok := strings.Cut(kv, "=")
		if !ok {
			return cfg, fmt.Errorf("--faults: %q is not kind=rate", kv)
		}
		k, err := simulator.ParseKind(name)
		if err != nil {
			return cfg, fmt.Errorf("--faults: %w (kinds: %s)", err, kindList())
		}
		r, err := strconv.ParseFloat(rate, 64)
		if err != nil {
			return cfg, fmt.Errorf("--faults: %s: rate %q is not a number", name, rate)
		}
		ft.SetRate(k, r)
	}
	for _, item := range cli.SplitList(c.schedule) {
		parts := strings.Split(item, "@")
		if len(parts) != 3 {
			return cfg, fmt.Errorf("--fault-schedule: %q is not kind@meter@time[+duration]", item)
		}
		k, err := simulator.ParseKind(parts[0])
		if err != nil {
			return cfg, fmt.Errorf("--fault-schedule: %w", err)
		}
		m, err := strconv.Atoi(parts[1])
		if err != nil {
			return cfg, fmt.Errorf("--fault-schedule: meter %q is not an index", parts[1])
		}
		at, dur, _ := strings.Cut(parts[2], "+")
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return cfg, fmt.Errorf("--fault-schedule: %w", err)
		}
		s := simulator.Scheduled{Kind: k, Meter: m, At: t}
		if dur != "" {
			if s.For, err = time.ParseDuration(dur); err != nil {
				return cfg, fmt.Errorf("--fault-schedule: %w", err)
			}
		}
		ft.Schedule = append(ft.Schedule, s)
	}
	return cfg, nil
}

// parseTime reads an RFC 3339 time, "now", or a duration relative to now
// ("-720h" is 30 days ago).
func parseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(d), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
