package mqttpub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
)

// Config tunes a Publisher. Zero fields take the documented defaults.
type Config struct {
	// BrokerURL is the broker, e.g. "mqtt://127.0.0.1:1883" (schemes mqtt,
	// tcp, tls, ws, wss). Required.
	BrokerURL string
	// QoS0 publishes at QoS 0 (fire and forget) instead of the default
	// QoS 1. The manifest marks such readings; verify counts those that
	// are missing as dropped, not lost.
	QoS0 bool
	// Batch is how many readings a canonical message carries. Default 1
	// (live meters); use 100 or more for backfills. Tasmota meters always
	// send single readings.
	Batch int
	// Workers is how many goroutines publish concurrently (each owns a
	// share of the meters, so a meter's messages stay in order). Default
	// 8 × GOMAXPROCS, at most the number of MQTT meters.
	Workers int
	// SharedConnections, when positive, publishes over that many
	// connections logging in with Username and Password instead of one
	// connection per meter with the meter's own credentials. Only for
	// brokers without per-meter authentication (benchmarks, quick demos).
	SharedConnections  int
	Username, Password string
	// ClientIDPrefix starts every MQTT client id; per-meter connections
	// continue with "<tenant>-<external id>". Default "metersim-".
	ClientIDPrefix string

	// From and To bound a time-warp backfill: the readings at the fleet's
	// ticks in [From, To) are published as fast as the broker accepts them.
	// Zero From means no backfill. Zero To means the wall clock at Start.
	// From must not be before the fleet's Start.
	From, To time.Time
	// Live publishes at each tick of the wall clock, after the backfill if
	// there is one, until Stop. Without Live the publisher finishes (Done)
	// after the backfill.
	Live bool

	// KeepAlive is the MQTT keep-alive. Default 60 s.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt. Default 10 s.
	ConnectTimeout time.Duration
	// PublishTimeout bounds waiting for one PUBACK. Default 30 s.
	PublishTimeout time.Duration

	// Manifest, if set, receives every delivered message and every fault.
	Manifest *manifest.Writer
	// Logger reports connection trouble. Default: discard.
	Logger *slog.Logger
	// Now is the wall clock. Default time.Now.
	Now func() time.Time
}

// ErrInvalidConfig is wrapped by Config.Validate errors.
var ErrInvalidConfig = errors.New("invalid publisher config")

// ErrRefused is returned (through Failed) when the broker refuses a
// meter's login: the fleet is not provisioned or the credentials differ.
var ErrRefused = errors.New("broker refused the connection")

func (c Config) withDefaults(f *simulator.Fleet) Config {
	if c.Batch == 0 {
		c.Batch = 1
	}
	mqttMeters := f.Len() - f.Config().ModbusMeters
	if c.Workers == 0 {
		c.Workers = 8 * runtime.GOMAXPROCS(0)
	}
	c.Workers = max(1, min(c.Workers, mqttMeters))
	if c.ClientIDPrefix == "" {
		c.ClientIDPrefix = "metersim-"
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 60 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports whether c (with defaults) can publish fleet f.
func (c Config) Validate(f *simulator.Fleet) error {
	c = c.withDefaults(f)
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if u, err := url.Parse(c.BrokerURL); err != nil || u.Host == "" {
		bad("BrokerURL %q is not a broker URL (e.g. mqtt://127.0.0.1:1883)", c.BrokerURL)
	}
	if c.Batch < 1 || c.Batch > 10_000 {
		bad("Batch must be in 1..10000, got %d", c.Batch)
	}
	if f.Len()-f.Config().ModbusMeters < 1 {
		bad("the fleet has no MQTT meters")
	}
	if c.SharedConnections < 0 {
		bad("SharedConnections must not be negative")
	}
	if !c.From.IsZero() && c.From.Before(f.Config().Start) {
		bad("From %v is before the fleet's Start %v", c.From, f.Config().Start)
	}
	if !c.From.IsZero() && !c.To.IsZero() && !c.To.After(c.From) {
		bad("To must be after From")
	}
	if c.From.IsZero() && !c.Live {
		bad("nothing to do: set From (backfill) or Live")
	}
	return errors.Join(errs...)
}

// Stats are a publisher's running totals.
type Stats struct {
	Messages  int64 // messages the broker accepted (or written, at QoS 0)
	Readings  int64 // valid readings in them (a duplicate counts once)
	Malformed int64 // malformed messages sent (fault injection)
	Faults    int64 // faults injected, of every kind
	Errors    int64 // publish attempts that failed (and were retried or given up)
	Refused   int64 // valid messages the broker refused (PUBACK ≥ 0x80); not retried
	// Lag is how far the slowest worker is behind the wall clock in live
	// mode (0 when keeping up).
	Lag time.Duration
	// Through is the reading time every worker has published up to.
	Through time.Time
}

// Publisher publishes a fleet. Start it, then Stop it; Done is closed when
// a run without Live has published everything.
type Publisher struct {
	fleet *simulator.Fleet
	cfg   Config
	topic []string // per meter

	messages, readings, malformed, faults, errs, refused atomic.Int64
	progress                                             []atomic.Int64 // per worker: unix µs of the last tick done

	shared []*autopaho.ConnectionManager

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	done    chan struct{}
	failed  chan error
	failOne sync.Once
	mu      sync.Mutex
	started bool
}

// New returns a publisher of fleet f's MQTT meters.
func New(f *simulator.Fleet, cfg Config) (*Publisher, error) {
	if err := cfg.Validate(f); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(f)
	p := &Publisher{fleet: f, cfg: cfg, done: make(chan struct{}), failed: make(chan error, 1)}
	p.topic = make([]string, f.Len())
	for i := range p.topic {
		m := f.Meter(i)
		if m.Format == simulator.Tasmota {
			p.topic[i] = payload.TasmotaTopic(m.ExternalID)
		} else {
			p.topic[i] = payload.CanonicalTopic(f.Config().Tenant, m.ExternalID)
		}
	}
	p.progress = make([]atomic.Int64, cfg.Workers)
	return p, nil
}

// Start starts publishing and returns at once; connections are made in the
// background. ctx bounds Start only.
func (p *Publisher) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("mqttpub: already started")
	}
	p.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	for i := range p.cfg.SharedConnections {
		cm, err := p.connect(runCtx, p.cfg.ClientIDPrefix+"shared-"+strconv.Itoa(i), p.cfg.Username, p.cfg.Password)
		if err != nil {
			cancel()
			return err
		}
		p.shared = append(p.shared, cm)
	}
	to := p.cfg.To
	if !p.cfg.From.IsZero() && to.IsZero() {
		to = p.cfg.Now()
	}
	var wait sync.WaitGroup
	for w := range p.cfg.Workers {
		wait.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer wait.Done()
			if err := p.runWorker(runCtx, w, to); err != nil && runCtx.Err() == nil {
				p.fail(err)
			}
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		wait.Wait()
		close(p.done)
	}()
	return nil
}

// Stop stops publishing, publishes held-back messages if ctx allows,
// disconnects and waits for every goroutine to end.
func (p *Publisher) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.cancel == nil {
		return nil
	}
	p.cancel()
	waited := make(chan struct{})
	go func() { p.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		return fmt.Errorf("mqttpub: stop: %w", ctx.Err())
	}
	for _, cm := range p.shared {
		disconnect(ctx, cm)
	}
	p.cancel = nil
	return nil
}

// Done is closed when every worker has finished: after the backfill when
// Live is off, after Stop otherwise.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Failed delivers the first error that stops the publisher (a refused
// login, a manifest write error).
func (p *Publisher) Failed() <-chan error { return p.failed }

func (p *Publisher) fail(err error) {
	p.failOne.Do(func() { p.failed <- err })
}

// Stats returns the running totals.
func (p *Publisher) Stats() Stats {
	s := Stats{
		Messages: p.messages.Load(), Readings: p.readings.Load(), Malformed: p.malformed.Load(),
		Faults: p.faults.Load(), Errors: p.errs.Load(), Refused: p.refused.Load(),
	}
	var through int64
	for i := range p.progress {
		v := p.progress[i].Load()
		if i == 0 || v < through {
			through = v
		}
	}
	if through > 0 {
		s.Through = time.UnixMicro(through).UTC()
		if p.cfg.Live {
			if lag := p.cfg.Now().Sub(s.Through) - p.fleet.Config().Interval*time.Duration(p.cfg.Batch); lag > 0 {
				s.Lag = lag
			}
		}
	}
	return s
}

func (p *Publisher) connect(ctx context.Context, clientID, username, password string) (*autopaho.ConnectionManager, error) {
	u, err := url.Parse(p.cfg.BrokerURL)
	if err != nil {
		return nil, fmt.Errorf("mqttpub: %w", err)
	}
	refused := make(chan error, 1)
	cc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     uint16(p.cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: true,
		ConnectTimeout:                p.cfg.ConnectTimeout,
		ReconnectBackoff:              autopaho.NewExponentialBackoff(100*time.Millisecond, 10*time.Second, time.Second, 2),
		ConnectUsername:               username,
		ConnectPassword:               []byte(password),
		OnConnectError: func(err error) {
			var ce *autopaho.ConnackError
			if errors.As(err, &ce) && (ce.ReasonCode == 0x86 || ce.ReasonCode == 0x87 || ce.ReasonCode == 0x85 || ce.ReasonCode == 0x8C) {
				select {
				case refused <- fmt.Errorf("mqttpub: %s: %w: %v", clientID, ErrRefused, err):
				default:
				}
				return
			}
			p.cfg.Logger.Debug("mqtt connect failed", "client", clientID, "err", err)
		},
		ClientConfig: paho.ClientConfig{ClientID: clientID},
	}
	cm, err := autopaho.NewConnection(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("mqttpub: connect %s: %w", clientID, err)
	}
	// Wait for the first connection so a refusal is reported, not retried
	// forever.
	for {
		actx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		err := cm.AwaitConnection(actx)
		cancel()
		if err == nil {
			return cm, nil
		}
		select {
		case rerr := <-refused:
			disconnect(ctx, cm)
			return nil, rerr
		default:
		}
		if ctx.Err() != nil {
			disconnect(context.WithoutCancel(ctx), cm)
			return nil, ctx.Err()
		}
	}
}

func disconnect(ctx context.Context, cm *autopaho.ConnectionManager) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = cm.Disconnect(dctx)
	select {
	case <-cm.Done():
	case <-dctx.Done():
	}
}

// reasonQuotaExceeded is the PUBACK reason a broker gives when it cannot
// take a message now (meterd's broker: no gateway subscribed, or the
// gateway is behind); the publisher resends after a backoff.
const reasonQuotaExceeded = 0x97

// Backoff between resends of a refused message.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// sleep waits *d (then doubles it up to maxBackoff) and reports false if
// ctx ended first.
func sleep(ctx context.Context, d *time.Duration) bool {
	t := time.NewTimer(*d)
	defer t.Stop()
	*d = min(2**d, maxBackoff)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// flushBudget bounds publishing held-back messages when a live run stops.
const flushBudget = 5 * time.Second

// message is one prepared MQTT message of a meter.
type message struct {
	meter    int
	topic    string
	payload  []byte
	readings []manifest.Reading
	wait     int // late messages: further messages of the meter to wait for
	flags    uint8
}

// meterSlot is a worker's state for one meter.
type meterSlot struct {
	idx   int
	state *simulator.State
	conn  *autopaho.ConnectionManager
	held  []message
}

type worker struct {
	p      *Publisher
	id     int
	meters []*meterSlot
	buf    []byte
	rs     []meter.Reading
	mrs    []manifest.Reading
}

func (p *Publisher) runWorker(ctx context.Context, id int, backfillTo time.Time) error {
	f := p.fleet
	w := &worker{p: p, id: id}
	mqttMeters := f.Len() - f.Config().ModbusMeters
	for i := id; i < mqttMeters; i += p.cfg.Workers {
		w.meters = append(w.meters, &meterSlot{idx: i, state: f.NewState(i)})
	}
	defer w.close(ctx)
	interval := f.Config().Interval
	chunk := interval * time.Duration(p.cfg.Batch)
	if !p.cfg.From.IsZero() {
		for t := f.TickAtOrAfter(p.cfg.From); t.Before(backfillTo); t = t.Add(chunk) {
			end := t.Add(chunk)
			if end.After(backfillTo) {
				end = backfillTo
			}
			if err := w.publishChunk(ctx, t, end); err != nil {
				return err
			}
		}
	}
	if !p.cfg.Live {
		return w.flushHeld(ctx)
	}
	next := f.TickAtOrAfter(p.cfg.Now())
	if !backfillTo.IsZero() && next.Before(backfillTo) {
		next = f.TickAtOrAfter(backfillTo)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// Live meters send single readings at their tick.
		due := next
		if d := due.Sub(p.cfg.Now()); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushBudget)
				defer cancel()
				return w.flushHeld(fctx)
			case <-timer.C:
			}
		}
		if err := w.publishChunk(ctx, next, next.Add(interval)); err != nil {
			return err
		}
		next = next.Add(interval)
		if now := p.cfg.Now(); now.Sub(next) > interval {
			// Too far behind to catch up tick by tick: skip to now.
			next = f.TickAtOrAfter(now)
		}
	}
}

func (w *worker) close(ctx context.Context) {
	for _, ms := range w.meters {
		if ms.conn != nil {
			disconnect(context.WithoutCancel(ctx), ms.conn)
			ms.conn = nil
		}
	}
}

// publishChunk publishes every meter's readings at the ticks in [from, to).
func (w *worker) publishChunk(ctx context.Context, from, to time.Time) error {
	p := w.p
	f := p.fleet
	ticks := f.Ticks(from, to)
	if len(ticks) == 0 {
		return nil
	}
	for _, ms := range w.meters {
		if ctx.Err() != nil {
			return nil
		}
		m := f.Meter(ms.idx)
		w.rs = w.rs[:0]
		for _, t := range ticks {
			smp := ms.state.At(t)
			if smp.Offline {
				continue
			}
			w.rs = append(w.rs, smp.Reading(m.Phases))
		}
		if err := w.recordEvents(ms); err != nil {
			return err
		}
		if len(w.rs) == 0 {
			continue
		}
		if m.Format == simulator.Canonical {
			for start := 0; start < len(w.rs); start += p.cfg.Batch {
				end := min(start+p.cfg.Batch, len(w.rs))
				if err := w.deliver(ctx, ms, w.rs[start:end]); err != nil {
					return err
				}
			}
		} else {
			for k := range w.rs {
				if err := w.deliver(ctx, ms, w.rs[k:k+1]); err != nil {
					return err
				}
			}
		}
	}
	p.progress[w.id].Store(ticks[len(ticks)-1].UnixMicro())
	return nil
}

// recordEvents writes the meter events the model passed to the manifest.
func (w *worker) recordEvents(ms *meterSlot) error {
	for _, e := range ms.state.TakeEvents() {
		detail, _ := json.Marshal(map[string]any{
			"before_import_wh": e.BeforeImportWh, "before_export_wh": e.BeforeExportWh,
			"after_import_wh": e.AfterImportWh, "after_export_wh": e.AfterExportWh,
			"old_serial": e.OldSerial, "new_serial": e.NewSerial, "for": e.For.String(),
		})
		if err := w.fault(manifest.Fault{Kind: e.Kind, Meter: e.Meter, At: e.At, Detail: string(detail)}); err != nil {
			return err
		}
	}
	return nil
}

func (w *worker) fault(f manifest.Fault) error {
	w.p.faults.Add(1)
	if w.p.cfg.Manifest == nil {
		return nil
	}
	if err := w.p.cfg.Manifest.Fault(f); err != nil {
		return fmt.Errorf("mqttpub: %w", err)
	}
	return nil
}

// deliver builds the message for rs and sends it, with the delivery and
// malformed faults the fleet draws for it.
func (w *worker) deliver(ctx context.Context, ms *meterSlot, rs []meter.Reading) error {
	p := w.p
	f := p.fleet
	m := f.Meter(ms.idx)
	first, last := rs[0].Time, rs[len(rs)-1].Time
	msg := message{meter: ms.idx, topic: p.topic[ms.idx]}
	// The payload and readings live in the worker's scratch buffers; a
	// held-back message gets its own copies.
	if m.Format == simulator.Tasmota {
		w.buf = payload.AppendTasmota(w.buf[:0], &rs[0], payload.TasmotaOptions{Zone: f.Location(), WithOffset: true})
	} else if len(rs) == 1 {
		w.buf = payload.AppendCanonical(w.buf[:0], &rs[0], payload.CanonicalOptions{})
	} else {
		w.buf = payload.AppendCanonicalBatch(w.buf[:0], rs, payload.CanonicalOptions{})
	}
	msg.payload = w.buf
	w.mrs = w.mrs[:0]
	for k := range rs {
		w.mrs = append(w.mrs, manifest.Reading{Time: rs[k].Time, ImportWh: rs[k].ImportWh, ExportWh: rs[k].ExportWh, PowerW: rs[k].PowerW})
	}
	msg.readings = w.mrs

	for _, k := range f.MalformedFaults(ms.idx, first, last) {
		if err := w.sendMalformed(ctx, ms, k, first); err != nil {
			return err
		}
	}

	kind := f.DeliveryFault(ms.idx, first, last)
	switch kind {
	case simulator.KindOutOfOrder, simulator.KindLate:
		msg.flags = manifest.FlagDelayed
		msg.wait = 1
		if kind == simulator.KindLate {
			msg.wait = f.Config().Faults.LateBy
		}
		if err := w.fault(manifest.Fault{Kind: kind, Meter: ms.idx, At: first, Ref: m.ExternalID,
			Detail: fmt.Sprintf(`{"held_for_messages":%d,"readings":%d}`, msg.wait, len(rs))}); err != nil {
			return err
		}
		msg.payload = append([]byte(nil), msg.payload...)
		msg.readings = append([]manifest.Reading(nil), msg.readings...)
		ms.held = append(ms.held, msg)
		return nil
	}
	if err := w.send(ctx, ms, msg, true); err != nil {
		return err
	}
	if kind == simulator.KindDuplicate {
		msg.flags = manifest.FlagResend
		if err := w.send(ctx, ms, msg, false); err != nil {
			return err
		}
		if err := w.fault(manifest.Fault{Kind: kind, Meter: ms.idx, At: first, Ref: m.ExternalID,
			Detail: fmt.Sprintf(`{"readings":%d}`, len(rs))}); err != nil {
			return err
		}
	}
	// Release held messages whose wait is over, after this one: that is
	// what makes them out of order.
	kept := ms.held[:0]
	for _, h := range ms.held {
		h.wait--
		if h.wait > 0 {
			kept = append(kept, h)
			continue
		}
		if err := w.send(ctx, ms, h, true); err != nil {
			return err
		}
	}
	ms.held = kept
	return nil
}

// flushHeld publishes every held-back message (end of run).
func (w *worker) flushHeld(ctx context.Context) error {
	for _, ms := range w.meters {
		for _, h := range ms.held {
			if err := w.send(ctx, ms, h, true); err != nil {
				return err
			}
		}
		ms.held = nil
	}
	return nil
}

// conn returns the connection meter ms publishes on.
func (w *worker) conn(ctx context.Context, ms *meterSlot) (*autopaho.ConnectionManager, error) {
	p := w.p
	if len(p.shared) > 0 {
		return p.shared[ms.idx%len(p.shared)], nil
	}
	if ms.conn == nil {
		f := p.fleet
		m := f.Meter(ms.idx)
		cm, err := p.connect(ctx, p.cfg.ClientIDPrefix+f.Config().Tenant+"-"+m.ExternalID, f.Username(ms.idx), f.Secret(ms.idx))
		if err != nil {
			return nil, err
		}
		ms.conn = cm
	}
	return ms.conn, nil
}

// send publishes msg until the broker takes it (retrying over reconnects),
// the broker refuses it, or ctx ends; record says whether to write it to
// the manifest.
func (w *worker) send(ctx context.Context, ms *meterSlot, msg message, record bool) error {
	p := w.p
	qos := byte(1)
	if p.cfg.QoS0 {
		qos = 0
	}
	backoff := minBackoff
	for {
		if ctx.Err() != nil {
			return nil
		}
		cm, err := w.conn(ctx, ms)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
		resp, err := cm.Publish(pctx, &paho.Publish{QoS: qos, Topic: msg.topic, Payload: msg.payload})
		cancel()
		if err == nil {
			break
		}
		p.errs.Add(1)
		if resp != nil && resp.ReasonCode == reasonQuotaExceeded {
			// The broker keeps nothing it refuses: wait and resend.
			if !sleep(ctx, &backoff) {
				return nil
			}
			continue
		}
		if resp != nil && resp.ReasonCode >= 0x80 {
			p.refused.Add(1)
			p.cfg.Logger.Warn("broker refused a reading", "topic", msg.topic, "reason", resp.ReasonCode, "err", err)
			return nil
		}
		actx, acancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
		_ = cm.AwaitConnection(actx)
		acancel()
	}
	p.messages.Add(1)
	if !record {
		return nil
	}
	p.readings.Add(int64(len(msg.readings)))
	if p.cfg.Manifest != nil {
		if err := p.cfg.Manifest.Message(manifest.Message{Meter: msg.meter, QoS: qos, Flags: msg.flags, Readings: msg.readings}); err != nil {
			return fmt.Errorf("mqttpub: %w", err)
		}
	}
	return nil
}
