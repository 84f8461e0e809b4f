package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/ingest/internal/wait"
	"github.com/meterd/meterd/meter/payload"
)

// PublisherProperty is the user property a broker may set to the
// publisher's authenticated identity, "<tenant>/<meter>" (an EMQX rule can);
// see Config.TrustPublisher.
const PublisherProperty = "meterd-publisher"

// Config configures the source. Zero values take the defaults.
type Config struct {
	// Brokers are server URLs: mqtt://host:port or tls://host:port (also
	// ws:// and wss://). Required.
	Brokers []string
	// ClientID must be stable across restarts (the broker keys the
	// persistent session by it) and unique per gateway instance. Required.
	ClientID string
	Username string
	Password string
	// TLS is used for tls:// and wss:// brokers; nil means the system roots.
	TLS *tls.Config
	// ShareGroup, when set, subscribes through $share/<group>/ so gateways
	// of the same group split the messages. Default "" (every gateway gets
	// every message).
	ShareGroup string
	// Topics are the filters subscribed to. Default payload.Subscriptions().
	Topics []string
	// SessionExpiry is how long the broker keeps the session, and the
	// messages for it, while the gateway is away. Default 24 h.
	SessionExpiry time.Duration
	// InFlight caps the messages the broker sends before the gateway
	// acknowledges (MQTT ReceiveMaximum). Default 10 000. It bounds
	// throughput at InFlight / (batch linger + commit time): 10 000 over
	// ≈ 300 ms is ≈ 30 000 messages/s. Keep it below the broker's
	// per-client in-flight limit.
	InFlight uint16
	// KeepAlive is the MQTT keep-alive. Default 30 s.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt. Default 10 s.
	ConnectTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay, which grows
	// exponentially with random jitter. Defaults 250 ms and 30 s.
	BackoffMin, BackoffMax time.Duration
	// TrustPublisher takes the publisher identity from the
	// meterd-publisher user property. Set it only for a broker that
	// overwrites whatever a publisher sets there.
	TrustPublisher bool
	// Logger receives connection events. Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if len(c.Topics) == 0 {
		c.Topics = payload.Subscriptions()
	}
	if c.SessionExpiry == 0 {
		c.SessionExpiry = 24 * time.Hour
	}
	if c.InFlight == 0 {
		c.InFlight = 10_000
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = 250 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("mqtt: no broker URL"))
	}
	for _, b := range c.Brokers {
		if _, err := url.Parse(b); err != nil {
			errs = append(errs, fmt.Errorf("mqtt: broker URL %q: %w", b, err))
		}
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("mqtt: a stable client id is required (the persistent session is keyed by it)"))
	}
	if c.SessionExpiry < 0 || c.KeepAlive < 0 || c.ConnectTimeout < 0 || c.BackoffMin < 0 || c.BackoffMax < 0 {
		errs = append(errs, errors.New("mqtt: durations must not be negative"))
	}
	if c.BackoffMax != 0 && c.BackoffMin >= c.BackoffMax {
		errs = append(errs, errors.New("mqtt: BackoffMin must be below BackoffMax"))
	}
	return errors.Join(errs...)
}

// Decoder turns a message into an envelope (ingest.MessageDecoder).
type Decoder interface {
	Envelope(ctx context.Context, msg ingest.Message) (*ingest.Envelope, error)
}

// Submitter takes envelopes (ingest.Pipeline).
type Submitter interface {
	Submit(ctx context.Context, e *ingest.Envelope) error
}

// ackInterval is how often paho sends the acknowledgements marked since
// the last time (in receive order, as MQTT requires).
const ackInterval = 20 * time.Millisecond

// Source is the MQTT source, a component with Start and Stop.
type Source struct {
	cfg  Config
	dec  Decoder
	pipe Submitter
	log  *slog.Logger

	cm         *autopaho.ConnectionManager
	ctx        context.Context // handlers' context: ends when Stop begins
	cancel     context.CancelFunc
	subMu      sync.Mutex // guards subWG.Add against Stop's Wait
	subClosed  bool
	subWG      sync.WaitGroup // subscribe goroutines
	subscribed chan struct{}  // closed after the first successful SUBSCRIBE
	subOnce    sync.Once
	pendMu     sync.Mutex     // guards pending.Add against Stop's Wait
	pending    sync.WaitGroup // submitted envelopes not yet done
	stopped    atomic.Bool

	connected prometheus.Gauge
	inflight  prometheus.Gauge
	acked     prometheus.Counter
	connects  prometheus.Counter
}

// New returns a source feeding pipe. Its metrics are registered on reg.
func New(cfg Config, dec Decoder, pipe Submitter, reg prometheus.Registerer) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	const ns, sub = "meterd", "ingest_mqtt"
	s := &Source{cfg: cfg, dec: dec, pipe: pipe, log: cfg.Logger,
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "connected",
			Help: "1 while the gateway is connected to the broker."}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "inflight_messages",
			Help: "MQTT messages received and not yet acknowledged (waiting for their batch to commit)."}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "acked_total",
			Help: "MQTT messages acknowledged after their batch committed."}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connections_total",
			Help: "Connections established to the broker (reconnects included)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.connected, s.inflight, s.acked, s.connects} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Start begins connecting; it does not wait for the broker, which may come
// up later (the source keeps trying with backoff).
func (s *Source) Start(ctx context.Context) error {
	urls := make([]*url.URL, 0, len(s.cfg.Brokers))
	for _, b := range s.cfg.Brokers {
		u, err := url.Parse(b)
		if err != nil {
			return fmt.Errorf("mqtt: %w", err)
		}
		urls = append(urls, u)
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.subscribed = make(chan struct{})
	inflight := s.cfg.InFlight
	expiry := uint32(s.cfg.SessionExpiry / time.Second)
	cc := autopaho.ClientConfig{
		ServerUrls:                    urls,
		TlsCfg:                        s.cfg.TLS,
		KeepAlive:                     uint16(s.cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         expiry,
		ReconnectBackoff:              autopaho.NewExponentialBackoff(s.cfg.BackoffMin, s.cfg.BackoffMax, 2*s.cfg.BackoffMin, 2),
		ConnectTimeout:                s.cfg.ConnectTimeout,
		ConnectUsername:               s.cfg.Username,
		ConnectPassword:               []byte(s.cfg.Password),
		ConnectPacketBuilder: func(c *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if c.Properties == nil {
				c.Properties = &paho.ConnectProperties{}
			}
			c.Properties.ReceiveMaximum = &inflight
			c.Properties.SessionExpiryInterval = &expiry
			// paho sends "request problem information: 0" unless told
			// otherwise, and mochi then strips user properties from
			// every packet, the publisher identity included.
			c.Properties.RequestProblemInfo = true
			return c, nil
		},
		OnConnectionUp: s.onUp,
		OnConnectionDown: func() bool {
			s.connected.Set(0)
			s.log.Warn("disconnected from MQTT broker; reconnecting")
			return true
		},
		OnConnectError: func(err error) { s.log.Warn("MQTT connection attempt failed", "err", err) },
		ClientConfig: paho.ClientConfig{
			ClientID:                   s.cfg.ClientID,
			EnableManualAcknowledgment: true,
			SendAcksInterval:           ackInterval,
			OnPublishReceived:          []func(paho.PublishReceived) (bool, error){s.onPublish},
		},
	}
	cm, err := autopaho.NewConnection(s.ctx, cc)
	if err != nil {
		s.cancel()
		return fmt.Errorf("mqtt: %w", err)
	}
	s.cm = cm
	return nil
}

// AwaitConnection waits until the source is connected and subscribed, or
// ctx ends.
func (s *Source) AwaitConnection(ctx context.Context) error {
	select {
	case <-s.subscribed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribed reports whether the source has subscribed at least once (so
// the broker keeps messages for its session from then on).
func (s *Source) Subscribed() bool {
	select {
	case <-s.subscribed:
		return true
	default:
		return false
	}
}

func (s *Source) onUp(cm *autopaho.ConnectionManager, ack *paho.Connack) {
	s.connected.Set(1)
	s.connects.Inc()
	s.log.Info("connected to MQTT broker", "session_present", ack.SessionPresent)
	subs := make([]paho.SubscribeOptions, 0, len(s.cfg.Topics))
	for _, t := range s.cfg.Topics {
		if s.cfg.ShareGroup != "" {
			t = "$share/" + s.cfg.ShareGroup + "/" + t
		}
		subs = append(subs, paho.SubscribeOptions{Topic: t, QoS: 1})
	}
	// OnConnectionUp must not block; one SUBSCRIBE with every filter, so
	// a reconnect sends no burst.
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subClosed {
		return
	}
	s.subWG.Add(1)
	go func() {
		defer s.subWG.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ConnectTimeout)
		defer cancel()
		if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("MQTT subscribe failed; reconnecting", "err", err)
				cm.TerminateConnectionForTest() // drop the connection: the next one subscribes again
			}
			return
		}
		s.subOnce.Do(func() { close(s.subscribed) })
	}()
}

// onPublish runs on paho's receive goroutine, one message at a time. It
// blocks while the pipeline is full: the broker then stops sending once
// InFlight messages are unacknowledged, and keeps the rest for us.
func (s *Source) onPublish(pr paho.PublishReceived) (bool, error) {
	if s.stopped.Load() {
		return true, nil // not acknowledged: redelivered next session
	}
	p := pr.Packet
	msg := ingest.Message{Topic: p.Topic, Payload: p.Payload, ReceivedAt: time.Now().UTC()}
	if s.cfg.TrustPublisher && p.Properties != nil {
		msg.Publisher = p.Properties.User.Get(PublisherProperty)
	}
	var env *ingest.Envelope
	for attempt := 0; ; attempt++ {
		var err error
		env, err = s.dec.Envelope(s.ctx, msg)
		if err == nil {
			break
		}
		if s.ctx.Err() != nil {
			return true, nil
		}
		if attempt == 0 {
			s.log.Warn("cannot resolve meter; holding the message", "err", err)
		}
		if !wait.Sleep(s.ctx, min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)) {
			return true, nil
		}
	}
	client := pr.Client
	s.pendMu.Lock()
	if s.stopped.Load() {
		s.pendMu.Unlock()
		return true, nil
	}
	s.pending.Add(1)
	s.pendMu.Unlock()
	s.inflight.Inc()
	env.Done = func(err error) {
		defer s.pending.Done()
		s.inflight.Dec()
		if err != nil {
			return // not stored: leave it unacknowledged for redelivery
		}
		if aerr := client.Ack(p); aerr == nil {
			s.acked.Inc()
		}
	}
	if err := s.pipe.Submit(s.ctx, env); err != nil {
		s.inflight.Dec()
		s.pending.Done()
	}
	return true, nil
}

// Stop stops taking messages, waits (within half of ctx's time) for the
// ones in the pipeline to commit and be acknowledged, then disconnects.
// The session stays with the broker, which redelivers whatever was not
// acknowledged.
func (s *Source) Stop(ctx context.Context) error {
	if s.cm == nil {
		return nil
	}
	s.pendMu.Lock()
	s.stopped.Store(true)
	s.pendMu.Unlock()
	drain := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		drain, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
		defer cancel()
	}
	done := make(chan struct{})
	go func() { s.pending.Wait(); close(done) }()
	select {
	case <-done:
		// Let paho's ack loop send the last acknowledgements.
		wait.Sleep(ctx, 3*ackInterval)
	case <-drain.Done():
	}
	s.cancel()
	s.subMu.Lock()
	s.subClosed = true
	s.subMu.Unlock()
	s.subWG.Wait()
	err := s.cm.Disconnect(ctx)
	s.connected.Set(0)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("mqtt: disconnect: %w", err)
	}
	return nil
}
