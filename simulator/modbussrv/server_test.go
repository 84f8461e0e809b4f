package modbussrv

import (
	"context"
	"errors"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	gbmodbus "github.com/goburrow/modbus"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/regmap"
	"github.com/meterd/meterd/simulator"
)

var clock = time.Date(2026, 7, 15, 6, 30, 15, 0, time.UTC) // midday in India: solar exports

// startFleet builds an all-Modbus fleet and serves it on free ports with
// the model's clock stopped at clock.
func startFleet(t *testing.T, cfg simulator.Config) (*simulator.Fleet, *Server) {
	t.Helper()
	cfg.ModbusMeters = cfg.Meters
	if cfg.Start.IsZero() {
		cfg.Start = clock.Add(-6 * time.Hour).Truncate(time.Hour)
	}
	f, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := FreeAddrs(len(f.Config().ModbusGateways))
	if err != nil {
		t.Fatal(err)
	}
	listen := map[string]string{}
	for i, g := range f.Config().ModbusGateways {
		listen[g] = addrs[i]
	}
	s, err := New(f, Config{Listen: listen, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return f, s
}

func client(t *testing.T, addr string, unit uint8, timeout time.Duration) (gbmodbus.Client, *gbmodbus.TCPClientHandler) {
	t.Helper()
	h := gbmodbus.NewTCPClientHandler(addr)
	h.SlaveId = unit
	h.Timeout = timeout
	if err := h.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return gbmodbus.NewClient(h), h
}

func words(b []byte) []uint16 {
	w := make([]uint16, len(b)/2)
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return w
}

// readMeter reads every register of meter i's map with goburrow, the way
// the gateway's poller does (SunSpec discovery, planned block reads), and
// decodes them.
func readMeter(t *testing.T, f *simulator.Fleet, s *Server, i int) (meter.Values, []error) {
	t.Helper()
	m := f.Meter(i)
	c, _ := client(t, s.Addrs()[m.Gateway], m.Unit, 2*time.Second)
	mp := m.Map
	if mp.SunSpec != nil {
		base, err := regmap.DiscoverSunSpec(func(start, count uint16) ([]uint16, error) {
			b, err := c.ReadHoldingRegisters(start, count)
			return words(b), err
		}, mp.SunSpec.ID)
		if err != nil {
			t.Fatalf("%s: discover: %v", m.ExternalID, err)
		}
		if mp, err = mp.WithBase(base); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := mp.Plan(regmap.PlanOptions{MaxGap: regmap.DefaultMaxGap})
	if err != nil {
		t.Fatal(err)
	}
	var v meter.Values
	var errs []error
	for _, b := range plan.Blocks {
		var raw []byte
		if b.Function == regmap.FuncInput {
			raw, err = c.ReadInputRegisters(b.Start, b.Count)
		} else {
			raw, err = c.ReadHoldingRegisters(b.Start, b.Count)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := b.Decode(words(raw), &v); err != nil {
			errs = append(errs, err)
		}
	}
	return v, errs
}

// tolerance is how far a decoded value may be from the model's: the
// register's own resolution.
func tolerance(mp *regmap.Map, q meter.Quantity, want float64) float64 {
	r, _ := mp.Register(q)
	if r.Type == regmap.TypeFloat32 {
		if q.Dimension() == meter.DimensionEnergy {
			spec, _ := mp.CounterSpec(q, 0)
			return float64(spec.ResolutionWh(int64(want))) + 0.5
		}
		return math.Abs(want)*1e-6 + 1e-6
	}
	// SunSpec integers: half a unit of the scale the encoder chose; the
	// encoder may raise the default scale factor for large values.
	return math.Pow(10, float64(r.Scale+r.Unit.Pow10()+r.DefaultSF+3))/2 + math.Abs(want)*1e-3
}

// Every model's registers read back with goburrow/modbus as the model's
// values at the server's time, at the map's documented addresses, with
// the map's word order and types.
func TestGoburrowReadsEveryModel(t *testing.T) {
	f, s := startFleet(t, simulator.Config{Seed: 11, Meters: 30, UnitsPerGateway: 8})
	seen := map[string]bool{}
	for i := range f.Len() {
		m := f.Meter(i)
		if seen[m.Model] && m.SolarKWp == 0 {
			continue
		}
		seen[m.Model] = true
		smp := f.NewState(i).At(clock)
		want := smp.Values(m)
		got, errs := readMeter(t, f, s, i)
		if len(errs) > 0 {
			t.Fatalf("%s (%s): %v", m.ExternalID, m.Model, errs)
		}
		for _, q := range m.Map.Quantities() {
			w, _ := want.Get(q)
			g, ok := got.Get(q)
			if r, _ := m.Map.Register(q); !ok && w == 0 && r.Type == regmap.TypeAcc32 {
				continue // SunSpec: an acc32 of 0 means "not accumulated"
			}
			if !ok {
				t.Errorf("%s (%s): %v missing", m.ExternalID, m.Model, q)
				continue
			}
			if d := math.Abs(g - w); d > tolerance(m.Map, q, w) {
				t.Errorf("%s (%s): %v = %v, model %v (off by %v)", m.ExternalID, m.Model, q, g, w, d)
			}
		}
	}
	for _, model := range simulator.DefaultModels() {
		if !seen[model] {
			t.Errorf("fleet has no %s meter; pick another seed", model)
		}
	}
}

// The SDM630-like model's documented float32 registers, read one by one:
// import 0x0048 and export 0x004A in kWh, total power 0x0034 in W.
func TestSDM630DocumentedRegisters(t *testing.T) {
	f, s := startFleet(t, simulator.Config{Seed: 5, Meters: 4, Models: []string{"sdm630"}, Residential: 0.01, Commercial: 1})
	m := f.Meter(0)
	smp := f.NewState(0).At(clock)
	c, _ := client(t, s.Addrs()[m.Gateway], m.Unit, 2*time.Second)
	float := func(addr uint16) float32 {
		b, err := c.ReadInputRegisters(addr, 2)
		if err != nil {
			t.Fatalf("read %#04x: %v", addr, err)
		}
		return math.Float32frombits(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
	}
	for _, tc := range []struct {
		name string
		addr uint16
		want float32
	}{
		{"import kWh", 0x0048, float32(float64(smp.ImportWh) / 1000)},
		{"export kWh", 0x004A, float32(float64(smp.ExportWh) / 1000)},
		{"power W", 0x0034, float32(smp.PowerW)},
		{"frequency Hz", 0x0046, float32(smp.FrequencyHz)},
		{"voltage L1 V", 0x0000, float32(smp.VoltageV[0])},
	} {
		if got := float(tc.addr); got != tc.want {
			t.Errorf("%s at %#04x = %v, want %v", tc.name, tc.addr, got, tc.want)
		}
	}
	b, err := c.ReadHoldingRegisters(SerialRegister, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]); got != m.NumericSerial(0) {
		t.Errorf("serial = %d, want %d", got, m.NumericSerial(0))
	}
}

// Debian's mbpoll, an independent Modbus master, reads the same SDM630
// float32 registers.
func TestMbpollSDM630(t *testing.T) {
	mbpoll, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Skip("mbpoll is not installed (.ci/install-deps test installs it); skipping the independent-client check")
	}
	f, s := startFleet(t, simulator.Config{Seed: 5, Meters: 4, Models: []string{"sdm630"}, Residential: 0.01, Commercial: 1})
	m := f.Meter(1)
	smp := f.NewState(1).At(clock)
	host, port := splitAddr(t, s.Addrs()[m.Gateway])
	read := func(ref, count int) []float64 {
		out, err := exec.Command(mbpoll, "-m", "tcp", "-a", strconv.Itoa(int(m.Unit)), "-t", "3:float", "-B", "-0",
			"-r", strconv.Itoa(ref), "-c", strconv.Itoa(count), "-1", "-o", "2", "-p", port, host).CombinedOutput()
		if err != nil {
			t.Fatalf("mbpoll: %v\n%s", err, out)
		}
		var vs []float64
		for _, mm := range regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(\S+)`).FindAllStringSubmatch(string(out), -1) {
			x, err := strconv.ParseFloat(mm[2], 64)
			if err != nil {
				t.Fatalf("mbpoll output %q: %v", mm[0], err)
			}
			vs = append(vs, x)
		}
		if len(vs) != count {
			t.Fatalf("mbpoll printed %d values, want %d:\n%s", len(vs), count, out)
		}
		return vs
	}
	energy := read(0x48, 2)
	power := read(0x34, 1)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"import kWh", energy[0], float64(float32(float64(smp.ImportWh) / 1000))},
		{"export kWh", energy[1], float64(float32(float64(smp.ExportWh) / 1000))},
		{"power W", power[0], float64(float32(smp.PowerW))},
	} {
		// mbpoll prints six significant digits.
		if math.Abs(c.got-c.want) > math.Abs(c.want)*1e-5+1e-3 {
			t.Errorf("mbpoll %s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func splitAddr(t *testing.T, addr string) (string, string) {
	t.Helper()
	re := regexp.MustCompile(`^(.*):(\d+)$`)
	mm := re.FindStringSubmatch(addr)
	if mm == nil {
		t.Fatalf("bad address %q", addr)
	}
	return mm[1], mm[2]
}

func exceptionCode(err error) byte {
	var me *gbmodbus.ModbusError
	if errors.As(err, &me) {
		return me.ExceptionCode
	}
	return 0
}

// The Modbus faults, each as a poller sees it.
func TestModbusFaults(t *testing.T) {
	t.Run("missing optional registers answer exception 2", func(t *testing.T) {
		f, s := startFleet(t, simulator.Config{Seed: 5, Meters: 2, Models: []string{"sdm630"}, Residential: 0.01, Commercial: 1,
			Faults: simulator.Faults{MissingOptional: 1}})
		_, errs := readMeter(t, f, s, 0)
		if len(errs) == 0 {
			t.Fatal("no error reading a device without its optional registers")
		}
		for _, err := range errs {
			if exceptionCode(err) != 2 {
				t.Errorf("error %v, want exception 2", err)
			}
		}
	})
	t.Run("wrong word order garbles multi-register values", func(t *testing.T) {
		f, s := startFleet(t, simulator.Config{Seed: 5, Meters: 2, Models: []string{"sdm630"}, Residential: 0.01, Commercial: 1,
			Faults: simulator.Faults{WrongWordOrder: 1}})
		got, _ := readMeter(t, f, s, 0)
		want := f.NewState(0).At(clock)
		p, _ := got.Get(meter.QuantityPower)
		if p == want.PowerW || float32(p) == float32(want.PowerW) {
			t.Errorf("power %v read correctly from a word-swapped device", p)
		}
		if err := meter.DefaultLimits().CheckValues(&got); err == nil {
			t.Log("word-swapped values happen to pass the limits this time")
		}
	})
	t.Run("slow replies time the client out", func(t *testing.T) {
		f, s := startFleet(t, simulator.Config{Seed: 5, Meters: 1, Models: []string{"sdm120"},
			Faults: simulator.Faults{SlowReply: 1, SlowReplyDelay: 400 * time.Millisecond}})
		m := f.Meter(0)
		c, _ := client(t, s.Addrs()[m.Gateway], m.Unit, 100*time.Millisecond)
		_, err := c.ReadInputRegisters(0x48, 2)
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if s.Stats().SlowReplies != 1 {
			t.Errorf("stats %+v", s.Stats())
		}
	})
	t.Run("a meter in a gap does not answer", func(t *testing.T) {
		f, s := startFleet(t, simulator.Config{Seed: 5, Meters: 1, Models: []string{"sdm120"},
			Faults: simulator.Faults{Schedule: []simulator.Scheduled{{Kind: simulator.KindGap, Meter: 0, At: clock.Add(-time.Minute)}}}})
		m := f.Meter(0)
		c, _ := client(t, s.Addrs()[m.Gateway], m.Unit, time.Second)
		if _, err := c.ReadInputRegisters(0x48, 2); exceptionCode(err) != 0x0B {
			t.Fatalf("err = %v, want exception 0x0B (gateway target failed to respond)", err)
		}
	})
	t.Run("unknown unit id", func(t *testing.T) {
		f, s := startFleet(t, simulator.Config{Seed: 5, Meters: 1, Models: []string{"sdm120"}})
		c, _ := client(t, s.Addrs()[f.Meter(0).Gateway], 99, time.Second)
		if _, err := c.ReadInputRegisters(0x48, 2); exceptionCode(err) != 0x0B {
			t.Fatalf("err = %v, want exception 0x0B", err)
		}
	})
}

// Registers advance with the server's clock and a replacement shows a new
// serial with registers near zero.
func TestRegistersAdvanceAndReplacement(t *testing.T) {
	at := clock
	cfg := simulator.Config{Seed: 9, Meters: 1, Models: []string{"sdm120"}, ModbusMeters: 1, Start: clock.Add(-time.Hour),
		Faults: simulator.Faults{Schedule: []simulator.Scheduled{{Kind: simulator.KindReplacement, Meter: 0, At: clock.Add(10 * time.Minute)}}}}
	f, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := FreeAddrs(1)
	s, err := New(f, Config{Listen: map[string]string{f.Config().ModbusGateways[0]: addrs[0]}, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	c, _ := client(t, addrs[0], 1, time.Second)
	energy := func() float32 {
		b, err := c.ReadInputRegisters(0x48, 2)
		if err != nil {
			t.Fatal(err)
		}
		return math.Float32frombits(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
	}
	serial := func() uint32 {
		b, err := c.ReadHoldingRegisters(SerialRegister, 2)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	e0, s0 := energy(), serial()
	at = clock.Add(5 * time.Minute)
	e1 := energy()
	if !(e1 > e0) {
		t.Errorf("import did not advance over 5 minutes: %v → %v kWh", e0, e1)
	}
	at = clock.Add(15 * time.Minute)
	e2, s2 := energy(), serial()
	if s2 == s0 || s2 != f.Meter(0).NumericSerial(1) {
		t.Errorf("serial after replacement = %d (before %d), want %d", s2, s0, f.Meter(0).NumericSerial(1))
	}
	if e2 > 1 { // kWh: a new meter starts near zero
		t.Errorf("import after replacement = %v kWh, want near 0", e2)
	}
}
