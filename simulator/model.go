package simulator

import (
	"math"
	"sort"
	"time"

	"github.com/meterd/meterd/meter"
)

// registerOrigin is the date the registers' starting values are drifted
// from: a meter's registers at Start are its initial value plus its maximum
// power times the time since this date, so a fleet restarted later (a new
// Start) starts at or above where an earlier run left off — a gap in the
// data, never a register going backwards.
var registerOrigin = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Sample is a meter's state at one instant: what its registers show.
type Sample struct {
	Time time.Time
	// Energy registers as the meter shows them, Wh (wrapped at the
	// meter's ModulusWh if it has one).
	ImportWh, ExportWh int64
	// PowerW is the total active power, positive when importing, W.
	PowerW float64
	// Per-phase values; single-phase meters use index 0 only.
	PhasePowerW [3]float64
	VoltageV    [3]float64
	CurrentA    [3]float64
	FrequencyHz float64
	PowerFactor float64
	// Serial is the serial of the meter installed at Time.
	Serial string
	// Generation counts replacements before Time.
	Generation int
	// Offline is true during a gap: the meter sends nothing and does not
	// answer Modbus requests.
	Offline bool
}

// Reading returns the sample as a meter.Reading with every field present:
// voltage is the mean of the phases, current their sum (meter.Values
// conventions). MeterID, ReceivedAt and Source are left zero.
func (s Sample) Reading(phases int) meter.Reading {
	r := meter.Reading{
		Time:        s.Time,
		ImportWh:    s.ImportWh,
		ExportWh:    s.ExportWh,
		PowerW:      float32(s.PowerW),
		FrequencyHz: float32(s.FrequencyHz),
		PowerFactor: float32(s.PowerFactor),
		Fields:      meter.AllFields,
	}
	var v, c float64
	for p := range phases {
		v += s.VoltageV[p]
		c += s.CurrentA[p]
	}
	r.VoltageV = float32(v / float64(phases))
	r.CurrentA = float32(c)
	return r
}

// Values returns the sample as the quantities a register map encodes:
// totals, and per phase for three-phase meters. Per-phase energy is the
// total split by the meter's fixed phase shares.
func (s Sample) Values(m *Meter) meter.Values {
	var v meter.Values
	r := s.Reading(m.Phases)
	v = meter.ValuesFromReading(r)
	v.SetWh(meter.QuantityTotalEnergy, wrap(s.ImportWh+s.ExportWh, m.ModulusWh))
	if m.Phases == 3 {
		for p := range 3 {
			v.SetWh(meter.QuantityImportEnergyL1+meter.Quantity(p), int64(float64(s.ImportWh)*m.phaseW[p]))
			v.SetWh(meter.QuantityExportEnergyL1+meter.Quantity(p), int64(float64(s.ExportWh)*m.phaseW[p]))
			v.Set(meter.QuantityPowerL1+meter.Quantity(p), float64(float32(s.PhasePowerW[p])))
			v.Set(meter.QuantityVoltageL1+meter.Quantity(p), float64(float32(s.VoltageV[p])))
			v.Set(meter.QuantityCurrentL1+meter.Quantity(p), float64(float32(s.CurrentA[p])))
			v.Set(meter.QuantityPowerFactorL1+meter.Quantity(p), float64(float32(s.PowerFactor)))
		}
	}
	return v
}

func wrap(wh, modulus int64) int64 {
	if modulus > 0 {
		return wh % modulus
	}
	return wh
}

// Event is a fault that happened to a meter: a meter event (gap, reset,
// replacement, spike, stuck) as it starts, or a rollover as the register
// wraps. Simulators record them in the manifest.
type Event struct {
	Kind  Kind
	Meter int
	At    time.Time     // on the model's step grid
	For   time.Duration // length, for events that last
	// Registers before and after the event (reset, replacement, rollover).
	BeforeImportWh, BeforeExportWh int64
	AfterImportWh, AfterExportWh   int64
	// Serials before and after a replacement.
	OldSerial, NewSerial string
}

// State evaluates one meter over time. It moves forward efficiently (each
// step of the model is integrated once); asking for an earlier time
// restarts it from Start. A State is not safe for concurrent use: give
// each goroutine its own, or guard it.
type State struct {
	f *Fleet
	m *Meter

	slot           int64 // the state is at the start of this step
	impAcc, expAcc int64 // energy integrated since Start, mWh
	impBase        int64 // register value (unwrapped) at the segment start, Wh
	expBase        int64
	impSeg, expSeg int64 // impAcc/expAcc at the segment start
	gen            int
	lastWrapImp    int64 // unwrapped register / modulus at the last step
	lastWrapExp    int64

	dayEvents   []Event // events of the days around the current step
	eventsDay   int64   // UTC day number dayEvents was built for
	pending     []Event
	zoneHour    int64 // UTC hour the zone offset was computed for
	zoneOffset  int64 // seconds east of UTC
	cachedSlot  int64
	cachedPower slotPower
}

type slotPower struct {
	powerW, loadW, solarW float64
	stuck                 bool
	local                 int64 // local seconds since the Unix epoch at the step start
}

// NewState returns meter i's state at the fleet's Start.
func (f *Fleet) NewState(i int) *State {
	s := &State{f: f, m: &f.meters[i]}
	s.reset()
	return s
}

// Meter returns the meter s evaluates.
func (s *State) Meter() *Meter { return s.m }

func (s *State) reset() {
	m := s.m
	*s = State{f: s.f, m: m, eventsDay: math.MinInt64, zoneHour: math.MinInt64, cachedSlot: -1}
	hours := max(0, s.f.cfg.Start.Sub(registerOrigin).Hours())
	var solarMax float64
	if m.SolarKWp > 0 {
		solarMax = 800 * m.SolarKWp
	}
	s.impBase = int64(uniform(0, 2000, m.seed, domInitial)*(m.MeanW/100)) + int64(m.maxW*hours)
	s.expBase = int64(solarMax * hours)
	if m.Rollover {
		// Integrate the window up to the wrap and start that far below
		// the modulus, so the register wraps RolloverAfter after Start.
		n := int64(s.f.cfg.Faults.RolloverAfter / s.f.cfg.Step)
		var imp, exp int64
		for k := range n {
			di, de := s.slotEnergy(s.power(k))
			imp += di
			exp += de
		}
		s.impBase = m.ModulusWh - max(imp/1000, 1)
		s.expBase = m.ModulusWh - max(exp/1000, 1)
		if exp == 0 {
			s.expBase = 0
		}
	}
	s.lastWrapImp, s.lastWrapExp = s.impBase/max(m.ModulusWh, 1), s.expBase/max(m.ModulusWh, 1)
	s.applyInstant()
}

// registers returns the unwrapped register values at the current step
// start plus the given partial energies (mWh).
func (s *State) registers(partImp, partExp int64) (int64, int64) {
	return s.impBase + (s.impAcc+partImp-s.impSeg)/1000, s.expBase + (s.expAcc+partExp-s.expSeg)/1000
}

func (s *State) slotStart(k int64) time.Time {
	return s.f.cfg.Start.Add(time.Duration(k) * s.f.cfg.Step)
}

// slotEnergy returns the import and export energy of one whole step, mWh.
func (s *State) slotEnergy(p slotPower) (int64, int64) {
	e := int64(math.Round(math.Abs(p.powerW) * s.f.cfg.Step.Seconds() / 3.6))
	if p.powerW >= 0 {
		return e, 0
	}
	return 0, e
}

// advance moves the state to the start of step k (k ≥ s.slot).
func (s *State) advance(k int64) {
	for s.slot < k {
		di, de := s.slotEnergy(s.power(s.slot))
		s.impAcc += di
		s.expAcc += de
		s.slot++
		if s.m.ModulusWh > 0 {
			imp, exp := s.registers(0, 0)
			wi, we := imp/s.m.ModulusWh, exp/s.m.ModulusWh
			if wi != s.lastWrapImp || we != s.lastWrapExp {
				at := s.slotStart(s.slot)
				s.pending = append(s.pending, Event{Kind: KindRollover, Meter: s.m.Index, At: at,
					BeforeImportWh: wrap(imp-di/1000, s.m.ModulusWh), BeforeExportWh: wrap(exp-de/1000, s.m.ModulusWh),
					AfterImportWh: wrap(imp, s.m.ModulusWh), AfterExportWh: wrap(exp, s.m.ModulusWh)})
				s.lastWrapImp, s.lastWrapExp = wi, we
			}
		}
		s.applyInstant()
	}
}

// applyInstant applies the resets and replacements scheduled at the
// current step start, and notes the start of lasting events.
func (s *State) applyInstant() {
	at := s.slotStart(s.slot)
	for _, e := range s.eventsAround(at) {
		if !e.At.Equal(at) {
			continue
		}
		imp, exp := s.registers(0, 0)
		mod := s.m.ModulusWh
		switch e.Kind {
		case KindReset:
			e.BeforeImportWh, e.BeforeExportWh = wrap(imp, mod), wrap(exp, mod)
			s.impBase, s.expBase, s.impSeg, s.expSeg = 0, 0, s.impAcc, s.expAcc
			s.lastWrapImp, s.lastWrapExp = 0, 0
		case KindReplacement:
			e.BeforeImportWh, e.BeforeExportWh = wrap(imp, mod), wrap(exp, mod)
			e.OldSerial = s.m.SerialAt(s.gen)
			s.gen++
			e.NewSerial = s.m.SerialAt(s.gen)
			// A new meter arrives with a few Wh from factory testing.
			s.impBase = int64(uniform(0, 20, s.m.seed, domReplace, uint64(s.gen)))
			s.expBase = 0
			s.impSeg, s.expSeg = s.impAcc, s.expAcc
			s.lastWrapImp, s.lastWrapExp = 0, 0
		}
		e.AfterImportWh, e.AfterExportWh = s.registers(0, 0)
		e.AfterImportWh, e.AfterExportWh = wrap(e.AfterImportWh, mod), wrap(e.AfterExportWh, mod)
		s.pending = append(s.pending, e)
	}
}

// At returns the meter's sample at t. t before Start is treated as Start.
func (s *State) At(t time.Time) Sample {
	c := &s.f.cfg
	if t.Before(c.Start) {
		t = c.Start
	}
	d := t.Sub(c.Start)
	k := int64(d / c.Step)
	if k < s.slot {
		s.reset()
	}
	s.advance(k)
	p := s.power(k)
	frac := (d - time.Duration(k)*c.Step).Seconds()
	part := int64(math.Abs(p.powerW) * frac / 3.6)
	var pi, pe int64
	if p.powerW >= 0 {
		pi = part
	} else {
		pe = part
	}
	imp, exp := s.registers(pi, pe)
	smp := Sample{
		Time:       t,
		ImportWh:   wrap(imp, s.m.ModulusWh),
		ExportWh:   wrap(exp, s.m.ModulusWh),
		PowerW:     p.powerW,
		Serial:     s.m.SerialAt(s.gen),
		Generation: s.gen,
		Offline:    s.active(t, KindGap),
	}
	s.electrical(&smp, k, p)
	return smp
}

// TakeEvents returns the events the state passed since the last call, in
// time order, and forgets them.
func (s *State) TakeEvents() []Event {
	ev := s.pending
	s.pending = nil
	return ev
}

// Offline reports whether the meter is in a gap at t.
func (s *State) Offline(t time.Time) bool { return s.active(t, KindGap) }

func (s *State) active(t time.Time, k Kind) bool {
	for _, e := range s.eventsAround(t) {
		if e.Kind == k && !t.Before(e.At) && t.Before(e.At.Add(e.For)) {
			return true
		}
	}
	return false
}

// power returns the model's power during step k.
func (s *State) power(k int64) slotPower {
	if k == s.cachedSlot {
		return s.cachedPower
	}
	m, c := s.m, &s.f.cfg
	start := s.slotStart(k)
	unix := start.Unix()
	if h := floorDiv(unix, 3600); h != s.zoneHour {
		_, off := start.In(s.f.loc).Zone()
		s.zoneHour, s.zoneOffset = h, int64(off)
	}
	local := unix + s.zoneOffset
	day := floorDiv(local, 86400)
	hour := float64(local-day*86400) / 3600
	weekday := int((day%7 + 7 + 4) % 7) // 1970-01-01 was a Thursday; 0 = Sunday
	doy := math.Mod(float64(local)/86400-10957, 365.2425)
	hourIndex := uint64(floorDiv(local, 3600))

	load := m.MeanW * shape(m.Profile, hour, weekday) * season(m.Profile, doy)
	load *= 0.8 + 0.4*unit(hash(m.seed, domHourNoise, hourIndex))
	load *= 1 + 0.12*tri(hash(m.seed, domSlotNoise, uint64(k)))
	var solar float64
	if m.SolarKWp > 0 {
		cloud := unit(hash(c.Seed, domCloud, hourIndex/3))
		solar = 800 * m.SolarKWp * clearSky(hour, doy) * (0.35 + 0.65*(1-cloud*cloud)) * (0.95 + 0.05*unit(hash(m.seed, domCloud, hourIndex)))
	}
	p := slotPower{local: local}
	if s.active(start, KindSpike) {
		load *= c.Faults.SpikeFactor
	}
	if s.active(start, KindStuck) {
		p.stuck = true
		load, solar = 0, 0
	}
	p.loadW, p.solarW, p.powerW = load, solar, load-solar
	s.cachedSlot, s.cachedPower = k, p
	return p
}

// electrical fills voltage, current, frequency and power factor of smp.
func (s *State) electrical(smp *Sample, k int64, p slotPower) {
	m := s.m
	hour := float64(p.local-floorDiv(p.local, 86400)*86400) / 3600
	pf := m.pf + 0.02*tri(hash(m.seed, domSlotNoise, uint64(k), 7))
	pf = min(max(pf, 0.5), 0.999)
	smp.PowerFactor = pf
	unixSec := smp.Time.Unix()
	smp.FrequencyHz = 50 + 0.035*math.Sin(2*math.Pi*float64(unixSec)/1020) +
		0.015*tri(hash(s.f.cfg.Seed, domFreq, uint64(floorDiv(unixSec, 10))))
	loadShare := p.loadW / (3*m.MeanW + 1)
	solarShare := p.solarW / (800*m.SolarKWp + 1)
	for ph := range m.Phases {
		v := 230 + m.vOffset - 3*math.Sin(2*math.Pi*(hour-14)/24) - 4*loadShare + 3*solarShare +
			0.7*tri(hash(m.seed, domVoltage, uint64(k), uint64(ph)))
		pw := p.powerW * m.phaseW[ph]
		smp.VoltageV[ph] = v
		smp.PhasePowerW[ph] = pw
		smp.CurrentA[ph] = math.Abs(pw) / (v * pf)
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// shape is the load relative to the meter's mean at a local hour of day
// and weekday (0 = Sunday).
func shape(p Profile, h float64, weekday int) float64 {
	weekend := weekday == 0 || weekday == 6
	switch p {
	case Commercial:
		open := ramp(h, 7.5, 9) * (1 - ramp(h, 18.5, 20))
		switch weekday {
		case 0:
			return 0.25
		case 6:
			return 0.25 + 0.6*open
		}
		return 0.25 + 1.05*open
	case Industrial:
		dips := 0.25 * (gauss(h, 6, 0.4) + gauss(h, 14, 0.4) + gauss(h, 22, 0.4))
		switch weekday {
		case 0:
			return 0.35
		case 6:
			return 0.6 - dips/2
		}
		return 1.15 - dips
	}
	x := 0.45 + 0.6*gauss(h, 7.5, 1.0) + 1.2*gauss(h, 20.5, 1.8) + 0.6*gauss(h-24, 20.5, 1.8)
	if weekend {
		return x + 0.5*gauss(h, 13, 3)
	}
	return x + 0.15*gauss(h, 13, 2)
}

// season scales the load over the year: cooling load peaks in mid-May.
func season(p Profile, doy float64) float64 {
	a := map[Profile]float64{Residential: 0.25, Commercial: 0.15, Industrial: 0.05}[p]
	return 1 + a*math.Cos(2*math.Pi*(doy-135)/365.2425)
}

// clearSky is the clear-sky solar output, 0..1, at a local hour and day
// of year (around 20° N: days of 10.8 to 13.2 hours).
func clearSky(h, doy float64) float64 {
	dayLen := 12 + 1.2*math.Cos(2*math.Pi*(doy-172)/365.2425)
	x := (h - (12.25 - dayLen/2)) / dayLen
	if x <= 0 || x >= 1 {
		return 0
	}
	return math.Pow(math.Sin(math.Pi*x), 1.3)
}

// eventsAround returns the meter events that can be active at t: those
// starting on t's UTC day or the day before (events last at most 24 h).
func (s *State) eventsAround(t time.Time) []Event {
	day := floorDiv(t.Unix(), 86400)
	if day != s.eventsDay {
		s.dayEvents = s.f.meterEvents(s.m.Index, day-1, s.dayEvents[:0])
		s.dayEvents = s.f.meterEvents(s.m.Index, day, s.dayEvents)
		s.eventsDay = day
	}
	return s.dayEvents
}

// meterEvents appends meter i's events starting on UTC day `day` to dst:
// those drawn from the rates and those scheduled. Times are snapped up to
// the step grid; events before Start are dropped.
func (f *Fleet) meterEvents(i int, day int64, dst []Event) []Event {
	c := &f.cfg
	dayStart := time.Unix(day*86400, 0).UTC()
	n0 := len(dst)
	for k := KindGap; k <= KindStuck; k++ {
		rate := c.Faults.Rate(k)
		if rate > 0 && unit(hash(c.Seed, domEvent, uint64(k), uint64(i), uint64(day))) < rate {
			at := dayStart.Add(time.Duration(unit(hash(c.Seed, domEvent, uint64(k), uint64(i), uint64(day), 1)) * float64(24*time.Hour)))
			if !at.Before(c.Start) {
				dst = append(dst, Event{Kind: k, Meter: i, At: f.snap(at), For: c.Faults.length(k)})
			}
		}
	}
	for _, sc := range f.schedule[i] {
		if !sc.Kind.Event() || floorDiv(sc.At.Unix(), 86400) != day || sc.At.Before(c.Start) {
			continue
		}
		d := sc.For
		if d == 0 {
			d = c.Faults.length(sc.Kind)
		}
		dst = append(dst, Event{Kind: sc.Kind, Meter: i, At: f.snap(sc.At), For: d})
	}
	sort.SliceStable(dst[n0:], func(a, b int) bool { return dst[n0+a].At.Before(dst[n0+b].At) })
	return dst
}

// snap rounds t up to the step grid.
func (f *Fleet) snap(t time.Time) time.Time {
	c := &f.cfg
	if !t.After(c.Start) {
		return c.Start
	}
	d := t.Sub(c.Start)
	n := (d + c.Step - 1) / c.Step
	return c.Start.Add(n * c.Step)
}

// EventsOn returns meter i's meter events (gaps, resets, replacements,
// spikes, stuck periods) that start in [from, to), in time order: the same
// events States apply. Tests and verify use it to know what happened.
func (f *Fleet) EventsOn(i int, from, to time.Time) []Event {
	var out []Event
	for day := floorDiv(from.Unix(), 86400); day <= floorDiv(to.Unix(), 86400); day++ {
		for _, e := range f.meterEvents(i, day, nil) {
			if !e.At.Before(from) && e.At.Before(to) {
				out = append(out, e)
			}
		}
	}
	return out
}

// DeliveryFault returns the delivery fault (duplicate, out-of-order, late
// or none) for meter i's message whose readings span [first, last].
func (f *Fleet) DeliveryFault(i int, first, last time.Time) Kind {
	c := &f.cfg
	for _, k := range []Kind{KindDuplicate, KindOutOfOrder, KindLate} {
		if f.scheduledIn(i, k, first, last) {
			return k
		}
	}
	u := unit(hash(c.Seed, domDelivery, uint64(i), uint64(first.UnixMicro())))
	switch {
	case u < c.Faults.Duplicate:
		return KindDuplicate
	case u < c.Faults.Duplicate+c.Faults.OutOfOrder:
		return KindOutOfOrder
	case u < c.Faults.Duplicate+c.Faults.OutOfOrder+c.Faults.Late:
		return KindLate
	}
	return KindNone
}

// MalformedFaults returns the malformed extra messages to send next to
// meter i's message whose readings span [first, last].
func (f *Fleet) MalformedFaults(i int, first, last time.Time) []Kind {
	c := &f.cfg
	var ks []Kind
	for k := KindBrokenJSON; k <= KindPastTime; k++ {
		if f.scheduledIn(i, k, first, last) ||
			unit(hash(c.Seed, domDelivery, uint64(k), uint64(i), uint64(first.UnixMicro()))) < c.Faults.Rate(k) {
			ks = append(ks, k)
		}
	}
	return ks
}

// SlowReply reports whether Modbus request n (a per-device counter) of
// meter i gets a slow reply: drawn at Faults.SlowReply, or scheduled at a
// time in (prev, now], where prev is the time of the device's previous
// request.
func (f *Fleet) SlowReply(i int, n uint64, prev, now time.Time) bool {
	for _, sc := range f.schedule[i] {
		if sc.Kind == KindSlowReply && sc.At.After(prev) && !sc.At.After(now) {
			return true
		}
	}
	r := f.cfg.Faults.SlowReply
	return r > 0 && unit(hash(f.cfg.Seed, domRequest, uint64(i), n)) < r
}

func (f *Fleet) scheduledIn(i int, k Kind, first, last time.Time) bool {
	for _, sc := range f.schedule[i] {
		if sc.Kind != k {
			continue
		}
		t := f.TickAtOrAfter(sc.At)
		if !t.Before(first) && !t.After(last) {
			return true
		}
	}
	return false
}
