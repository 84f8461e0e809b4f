package modbussrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/meterd/meterd/meter/regmap"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
)

// SerialRegister is the holding register where Eastron-like (non-SunSpec)
// devices expose their serial number as a uint32, high word first.
const SerialRegister = 0xFC00

// SunSpec common model (ID 1) offsets, relative to its ID register at
// 40002: the serial number SN is 16 registers (32 ASCII characters) at
// offset 50.
const (
	commonModelAddr = 40002
	commonSNOffset  = 50
	commonSNWords   = 16
	commonMnOffset  = 2
)

// Config tunes a Server. Zero fields take the documented defaults.
type Config struct {
	// Listen maps a gateway address of the fleet (Config.ModbusGateways)
	// to the address to listen on instead; gateways not in it listen on
	// their own address. Tests map them to free ports.
	Listen map[string]string
	// MaxClients is how many TCP connections each gateway accepts.
	// Default 16.
	MaxClients uint
	// IdleTimeout closes a client connection idle this long. Default 5 min.
	IdleTimeout time.Duration
	// Manifest, if set, receives the device faults and meter events.
	Manifest *manifest.Writer
	// Logger reports what the Modbus library logs. Default: discard.
	Logger *slog.Logger
	// Now is the model's clock. Default time.Now.
	Now func() time.Time
}

// Stats are a server's running totals.
type Stats struct {
	Requests    int64 // read requests answered (including exceptions)
	Exceptions  int64 // requests answered with a Modbus exception
	SlowReplies int64 // replies delayed past the poller's timeout (fault)
	Offline     int64 // requests to a device in a gap
}

// device is one simulated meter behind a gateway.
type device struct {
	idx   int
	meter *simulator.Meter
	mu    sync.Mutex
	state *simulator.State
	img   *regmap.Image
	m     *regmap.Map // rebased (SunSpec) map the image is encoded with
	reqs  uint64
	last  time.Time // time of the previous request
	gen   int
}

// gateway is one listener and the devices behind it.
type gateway struct {
	s       *Server
	addr    string // the fleet's address for it
	listen  string
	devices map[uint8]*device
	srv     *modbus.ModbusServer
}

// Server serves the Modbus meters of a fleet. Start it, then Stop it.
type Server struct {
	fleet    *simulator.Fleet
	cfg      Config
	gateways []*gateway

	requests, exceptions, slow, offline atomic.Int64

	stop    chan struct{}
	active  sync.WaitGroup // requests in flight (slow replies sleep)
	mu      sync.Mutex
	started bool
	faultMu sync.Mutex
}

// New returns a server for the Modbus meters of fleet f.
func New(f *simulator.Fleet, cfg Config) (*Server, error) {
	if cfg.MaxClients == 0 {
		cfg.MaxClients = 16
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if f.Config().ModbusMeters == 0 {
		return nil, errors.New("modbussrv: the fleet has no Modbus meters (Config.ModbusMeters)")
	}
	s := &Server{fleet: f, cfg: cfg, stop: make(chan struct{})}
	byAddr := map[string]*gateway{}
	for i := range f.Len() {
		m := f.Meter(i)
		if m.Protocol != simulator.Modbus {
			continue
		}
		g := byAddr[m.Gateway]
		if g == nil {
			listen := m.Gateway
			if l, ok := cfg.Listen[m.Gateway]; ok {
				listen = l
			}
			g = &gateway{s: s, addr: m.Gateway, listen: listen, devices: map[uint8]*device{}}
			byAddr[m.Gateway] = g
			s.gateways = append(s.gateways, g)
		}
		d, err := newDevice(f, i)
		if err != nil {
			return nil, err
		}
		g.devices[m.Unit] = d
	}
	return s, nil
}

func newDevice(f *simulator.Fleet, i int) (*device, error) {
	m := f.Meter(i)
	d := &device{idx: i, meter: m, state: f.NewState(i), img: regmap.NewImage(), m: m.Map}
	if m.Map.SunSpec != nil {
		placed, err := regmap.LayoutSunSpec(d.img.Put, m.Map)
		if err != nil {
			return nil, fmt.Errorf("modbussrv: %s: %w", m.ExternalID, err)
		}
		d.m = placed[0]
		putString(d.img, commonModelAddr+commonMnOffset, 16, "meterd-sim")
	}
	if m.MissingOptional {
		for _, r := range d.m.Registers {
			if r.Optional {
				d.img.Remove(r.Function, r.Address, r.Words())
			}
		}
	}
	d.writeSerial(0)
	return d, nil
}

// putString writes s as ASCII, two characters per register, padded with NUL.
func putString(img *regmap.Image, addr uint16, words int, s string) {
	b := make([]byte, 2*words)
	copy(b, s)
	for k := range words {
		img.Put(regmap.FuncHolding, addr+uint16(k), uint16(b[2*k])<<8|uint16(b[2*k+1]))
	}
}

func (d *device) writeSerial(gen int) {
	d.gen = gen
	if d.meter.Map.SunSpec != nil {
		putString(d.img, commonModelAddr+commonSNOffset, commonSNWords, d.meter.SerialAt(gen))
		return
	}
	n := d.meter.NumericSerial(gen)
	d.img.Put(regmap.FuncHolding, SerialRegister, uint16(n>>16))
	d.img.Put(regmap.FuncHolding, SerialRegister+1, uint16(n))
}

// Start opens every gateway's listener. ctx bounds Start only.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("modbussrv: already started")
	}
	if err := s.recordDeviceFaults(); err != nil {
		return err
	}
	logger := log.New(slogWriter{s.cfg.Logger}, "", 0)
	for _, g := range s.gateways {
		srv, err := modbus.NewServer(&modbus.ServerConfiguration{
			URL: "tcp://" + g.listen, Timeout: s.cfg.IdleTimeout, MaxClients: s.cfg.MaxClients, Logger: logger,
		}, g)
		if err == nil {
			err = srv.Start()
		}
		if err != nil {
			s.stopAll()
			return fmt.Errorf("modbussrv: listen %s: %w", g.listen, err)
		}
		g.srv = srv
		if ctx.Err() != nil {
			s.stopAll()
			return ctx.Err()
		}
	}
	s.started = true
	return nil
}

func (s *Server) stopAll() {
	for _, g := range s.gateways {
		if g.srv != nil {
			_ = g.srv.Stop()
			g.srv = nil
		}
	}
}

// Stop closes the listeners and client connections and waits for requests
// in flight (a slow reply is cut short).
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil
	}
	s.started = false
	close(s.stop)
	s.stopAll()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("modbussrv: stop: %w", ctx.Err())
	}
}

// Addrs returns the addresses the gateways listen on, by the fleet's
// gateway address.
func (s *Server) Addrs() map[string]string {
	out := map[string]string{}
	for _, g := range s.gateways {
		out[g.addr] = g.listen
	}
	return out
}

// Stats returns the running totals.
func (s *Server) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Exceptions: s.exceptions.Load(), SlowReplies: s.slow.Load(), Offline: s.offline.Load()}
}

func (s *Server) recordDeviceFaults() error {
	var faults []manifest.Fault
	for _, g := range s.gateways {
		units := make([]int, 0, len(g.devices))
		for u := range g.devices {
			units = append(units, int(u))
		}
		sort.Ints(units)
		for _, u := range units {
			d := g.devices[uint8(u)]
			detail := fmt.Sprintf(`{"gateway":%q,"unit":%d}`, g.addr, u)
			for _, p := range []struct {
				on bool
				k  simulator.Kind
			}{{d.meter.Rollover, simulator.KindRollover}, {d.meter.WrongWordOrder, simulator.KindWrongWordOrder}, {d.meter.MissingOptional, simulator.KindMissingOptional}} {
				if p.on {
					faults = append(faults, manifest.Fault{Kind: p.k, Meter: d.idx, At: s.fleet.Config().Start, Ref: d.meter.ExternalID, Detail: detail})
				}
			}
		}
	}
	for _, f := range faults {
		if err := s.fault(f); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) fault(f manifest.Fault) error {
	if s.cfg.Manifest == nil {
		return nil
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if err := s.cfg.Manifest.Fault(f); err != nil {
		return fmt.Errorf("modbussrv: %w", err)
	}
	return nil
}

// slogWriter forwards the Modbus library's log lines to slog at debug.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("modbus", "msg", string(p))
	return len(p), nil
}

// read answers a read of count registers from addr of function fn on unit.
func (g *gateway) read(unit uint8, fn regmap.Function, addr, count uint16) ([]uint16, error) {
	s := g.s
	s.active.Add(1)
	defer s.active.Done()
	s.requests.Add(1)
	d := g.devices[unit]
	if d == nil {
		s.exceptions.Add(1)
		return nil, modbus.ErrGWTargetFailedToRespond
	}
	d.mu.Lock()
	n := d.reqs
	d.reqs++
	now := s.cfg.Now()
	slow := s.fleet.SlowReply(d.idx, n, d.last, now)
	d.last = now
	smp := d.state.At(now)
	events := d.state.TakeEvents()
	if smp.Generation != d.gen {
		d.writeSerial(smp.Generation)
	}
	var words []uint16
	var err error
	if smp.Offline {
		s.offline.Add(1)
		err = modbus.ErrGWTargetFailedToRespond
	} else {
		v := smp.Values(d.meter)
		_ = d.m.Encode(&v, regmap.EncodeOptions{SwapWordOrder: d.meter.WrongWordOrder}, d.img.Put)
		words, err = d.img.Read(fn, addr, count, nil)
		if errors.Is(err, regmap.ErrIllegalAddress) {
			err = modbus.ErrIllegalDataAddress
		}
	}
	d.mu.Unlock()
	for _, e := range events {
		detail, _ := json.Marshal(map[string]any{
			"before_import_wh": e.BeforeImportWh, "before_export_wh": e.BeforeExportWh,
			"after_import_wh": e.AfterImportWh, "after_export_wh": e.AfterExportWh,
			"old_serial": e.OldSerial, "new_serial": e.NewSerial, "for": e.For.String(),
		})
		if ferr := s.fault(manifest.Fault{Kind: e.Kind, Meter: e.Meter, At: e.At, Ref: d.meter.ExternalID, Detail: string(detail)}); ferr != nil {
			s.cfg.Logger.Error("record fault", "err", ferr)
		}
	}
	if err != nil {
		s.exceptions.Add(1)
		return nil, err
	}
	if slow {
		s.slow.Add(1)
		delay := s.fleet.Config().Faults.SlowReplyDelay
		_ = s.fault(manifest.Fault{Kind: simulator.KindSlowReply, Meter: d.idx, At: now, Ref: d.meter.ExternalID,
			Detail: fmt.Sprintf(`{"request":%d,"delay":%q}`, n, delay)})
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return nil, modbus.ErrServerDeviceBusy
		}
	}
	return words, nil
}

// HandleInputRegisters implements modbus.RequestHandler (function 4).
func (g *gateway) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	return g.read(req.UnitId, regmap.FuncInput, req.Addr, req.Quantity)
}

// HandleHoldingRegisters implements modbus.RequestHandler (function 3);
// writes are refused.
func (g *gateway) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		g.s.requests.Add(1)
		g.s.exceptions.Add(1)
		return nil, modbus.ErrIllegalFunction
	}
	return g.read(req.UnitId, regmap.FuncHolding, req.Addr, req.Quantity)
}

// HandleCoils implements modbus.RequestHandler: meters have no coils.
func (g *gateway) HandleCoils(*modbus.CoilsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}

// HandleDiscreteInputs implements modbus.RequestHandler: meters have none.
func (g *gateway) HandleDiscreteInputs(*modbus.DiscreteInputsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}

// FreeAddrs returns n loopback addresses with free TCP ports, for tests and
// for running a fleet without fixed ports. A port can be taken by someone
// else between this call and Start.
func FreeAddrs(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("modbussrv: %w", err)
		}
		ls = append(ls, l)
		addrs[i] = l.Addr().String()
	}
	return addrs, nil
}
