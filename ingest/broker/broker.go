package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/postgres"
)

// Sink stores a message before the broker acknowledges it (ingest.Sink).
type Sink interface {
	Ingest(ctx context.Context, msg ingest.Message) error
}

// Config configures the broker. Zero values take the defaults.
type Config struct {
	// Addr is the plain TCP listener. Default "127.0.0.1:1883".
	Addr string
	// AddrFallback listens on a free port of Addr's host when Addr's port
	// is taken, instead of failing ('meterd dev').
	AddrFallback bool
	// TLSAddr, with TLS, adds a TLS listener. Default: none.
	TLSAddr string
	TLS     *tls.Config
	// Sink stores what meters publish; required. The broker acknowledges a
	// publish only after Sink.Ingest returned nil.
	Sink Sink
	// AckTimeout bounds how long a publish waits to be stored before the
	// broker refuses it (the meter resends it later). Default 20 s.
	AckTimeout time.Duration
	// MaxSessionExpiry caps how long a disconnected client's session and
	// queued messages are kept. Default 24 h (mochi's own default is
	// forever).
	MaxSessionExpiry time.Duration
	// MaxInflight caps the QoS 1/2 messages queued for one client (meters
	// subscribe to nothing, so this only bounds memory). Default 1 024
	// (mochi's default is 8 192).
	MaxInflight uint16
	// ReceiveMaximum is how many unacknowledged QoS 1/2 publishes one
	// client may send before waiting. Default 64.
	ReceiveMaximum uint16
	// MaxPacketSize bounds a packet. Default 2 MiB (a full canonical batch
	// is about 1 MB).
	MaxPacketSize uint32
	// MaxClients bounds connected clients. Default 200 000.
	MaxClients int64
	// Logger receives the broker's log. Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:1883"
	}
	if c.MaxSessionExpiry == 0 {
		c.MaxSessionExpiry = 24 * time.Hour
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 1024
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = 64
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 20 * time.Second
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 2 << 20
	}
	if c.MaxClients == 0 {
		c.MaxClients = 200_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Sink == nil {
		errs = append(errs, errors.New("broker: a sink is required"))
	}
	if c.TLSAddr != "" && c.TLS == nil {
		errs = append(errs, errors.New("broker: a TLS listener needs a certificate"))
	}
	if c.MaxSessionExpiry < 0 || c.AckTimeout < 0 {
		errs = append(errs, errors.New("broker: durations must not be negative"))
	}
	return errors.Join(errs...)
}

// Broker is the embedded broker, a component with Start and Stop.
type Broker struct {
	cfg     Config
	res     *ingest.Resolver
	srv     *mqtt.Server
	hook    *authHook
	metrics *metrics
	closing atomic.Bool
}

// closingLog passes the broker's log through, except that once Stop has
// begun the warnings of client reads failing on the connections Stop itself
// closes ("use of closed network connection", one per connected meter) are
// logged at debug: they are the shutdown, not a fault.
type closingLog struct {
	slog.Handler
	closing *atomic.Bool
}

func (h closingLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && h.closing.Load() {
		closedConn := false
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && errors.Is(err, net.ErrClosed) {
				closedConn = true
			}
			return !closedConn
		})
		if closedConn {
			if !h.Enabled(ctx, slog.LevelDebug) {
				return nil
			}
			r.Level = slog.LevelDebug
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h closingLog) WithAttrs(as []slog.Attr) slog.Handler {
	return closingLog{Handler: h.Handler.WithAttrs(as), closing: h.closing}
}

func (h closingLog) WithGroup(name string) slog.Handler {
	return closingLog{Handler: h.Handler.WithGroup(name), closing: h.closing}
}

type metrics struct {
	authFailures prometheus.Counter
	aclDenied    *prometheus.CounterVec
	refused      *prometheus.CounterVec
	dropped      prometheus.Counter
	clients      prometheus.GaugeFunc
	inflight     prometheus.GaugeFunc
}

// New returns a broker whose meters authenticate against res's directory.
// Its metrics are registered on reg.
func New(cfg Config, res *ingest.Resolver, reg prometheus.Registerer) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	b := &Broker{cfg: cfg, res: res}
	const ns, sub = "meterd", "broker"
	b.metrics = &metrics{
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "auth_failures_total",
			Help: "Connections refused for bad credentials."}),
		aclDenied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "acl_denied_total",
			Help: "Publishes and subscriptions the ACL denied, by action."}, []string{"action"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "publishes_refused_total",
			Help: "Meter publishes refused because they could not be stored in time (the meter resends them), by reason."}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "messages_dropped_total",
			Help: "Messages the broker dropped instead of delivering (client queue full)."}),
	}
	b.metrics.clients = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "clients_connected",
		Help: "Connected MQTT clients."}, func() float64 {
		if b.srv == nil {
			return 0
		}
		return float64(atomic.LoadInt64(&b.srv.Info.ClientsConnected))
	})
	b.metrics.inflight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "inflight_messages",
		Help: "QoS 1/2 messages queued in the broker awaiting acknowledgement."}, func() float64 {
		if b.srv == nil {
			return 0
		}
		return float64(atomic.LoadInt64(&b.srv.Info.Inflight))
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{b.metrics.authFailures, b.metrics.aclDenied, b.metrics.refused, b.metrics.dropped,
			b.metrics.clients, b.metrics.inflight} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// Start opens the listeners.
func (b *Broker) Start(ctx context.Context) error {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumSessionExpiryInterval = uint32(b.cfg.MaxSessionExpiry / time.Second)
	caps.MaximumInflight = b.cfg.MaxInflight
	caps.ReceiveMaximum = b.cfg.ReceiveMaximum
	caps.MaximumPacketSize = b.cfg.MaxPacketSize
	caps.MaximumClients = b.cfg.MaxClients
	caps.MaximumClientWritesPending = int32(b.cfg.MaxInflight)
	log := slog.New(closingLog{Handler: b.cfg.Logger.Handler(), closing: &b.closing})
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: log, InlineClient: false, SysTopicResendInterval: 10})
	hookCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.hook = &authHook{cfg: &b.cfg, res: b.res, srv: srv, m: b.metrics, ctx: hookCtx, cancel: cancel}
	if err := srv.AddHook(b.hook, nil); err != nil {
		cancel()
		return fmt.Errorf("broker: %w", err)
	}
	addr := b.cfg.Addr
	if b.cfg.AddrFallback {
		if l, err := net.Listen("tcp", addr); err != nil {
			host, _, _ := net.SplitHostPort(addr)
			addr = net.JoinHostPort(host, "0")
		} else {
			_ = l.Close()
		}
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		cancel()
		return fmt.Errorf("broker: listen %s: %w", addr, err)
	}
	if b.cfg.TLSAddr != "" {
		if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tls", Address: b.cfg.TLSAddr, TLSConfig: b.cfg.TLS})); err != nil {
			_ = srv.Close()
			cancel()
			return fmt.Errorf("broker: listen %s: %w", b.cfg.TLSAddr, err)
		}
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		cancel()
		return fmt.Errorf("broker: %w", err)
	}
	b.srv = srv
	return nil
}

// Stop closes the listeners and disconnects every client.
func (b *Broker) Stop(context.Context) error {
	if b.srv == nil {
		return nil
	}
	b.closing.Store(true)
	b.hook.cancel()
	return b.srv.Close()
}

// Addr returns the plain listener's address ("127.0.0.1:1883"), once started.
func (b *Broker) Addr() string {
	if b.srv == nil {
		return ""
	}
	if l, ok := b.srv.Listeners.Get("tcp"); ok {
		return l.Address()
	}
	return ""
}

// TLSAddr returns the TLS listener's address, or "".
func (b *Broker) TLSAddr() string {
	if b.srv == nil {
		return ""
	}
	if l, ok := b.srv.Listeners.Get("tls"); ok {
		return l.Address()
	}
	return ""
}

// authHook authenticates meters against the directory, enforces the ACL
// and stamps publishes with the publisher's identity.
type authHook struct {
	mqtt.HookBase
	cfg    *Config
	res    *ingest.Resolver
	srv    *mqtt.Server
	m      *metrics
	ctx    context.Context // ends when the broker stops
	cancel context.CancelFunc
}

func (h *authHook) ID() string { return "meterd-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnPublishDropped}, []byte{b})
}

// lookupTimeout bounds a credential lookup that misses the cache.
const lookupTimeout = 5 * time.Second

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), pk.Connect.Password
	m, ok := h.meter(user)
	if !ok || m.SecretHash == "" || !checkSecret(m.SecretHash, pass) {
		h.m.authFailures.Inc()
		return false
	}
	return true
}

// meter resolves a meter's username: "<tenant>/<meter>" or a meter
// reference unique across tenants.
func (h *authHook) meter(user string) (postgres.Meter, bool) {
	tenant, ref := ingest.SplitPublisher(user)
	if !payload.ValidMeterRef(ref) || (tenant != "" && !payload.ValidTenant(tenant)) {
		return postgres.Meter{}, false
	}
	ctx, cancel := context.WithTimeout(h.ctx, lookupTimeout)
	defer cancel()
	m, err := h.res.Resolve(ctx, tenant, ref)
	return m, err == nil
}

// checkSecret compares a password with a stored "sha256:<hex>" hash in
// constant time.
func checkSecret(hash string, password []byte) bool {
	want, ok := strings.CutPrefix(hash, "sha256:")
	if !ok {
		return false
	}
	sum := sha256.Sum256(password)
	got := hex.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// OnACLCheck denies by default: a meter may publish only to its own topics
// and subscribe to nothing.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if !write {
		h.m.aclDenied.WithLabelValues("subscribe").Inc()
		return false
	}
	m, ok := h.meter(string(cl.Properties.Username))
	if ok && ownTopic(m, topic) {
		return true
	}
	h.m.aclDenied.WithLabelValues("publish").Inc()
	return false
}

// ownTopic reports whether topic is one meter m may publish readings on.
func ownTopic(m postgres.Meter, topic string) bool {
	switch topic {
	case payload.CanonicalTopic(m.TenantCode, m.ExternalID), payload.TasmotaTopic(m.ExternalID),
		payload.ShellyTopic(m.ExternalID), payload.ThingsBoardDeviceTopic:
		return true
	}
	return false
}

// OnPublish stores a meter's message through the sink before the broker
// acknowledges it; a message that cannot be stored in time is refused
// (PUBACK "quota exceeded" for MQTT 5, a disconnect for 3.1.1, whose
// clients resend unacknowledged messages when they reconnect), so a meter
// never deletes a reading the database does not hold. Stored messages are
// not forwarded: nobody subscribes.
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	m, ok := h.meter(string(cl.Properties.Username))
	if !ok {
		return pk, packets.ErrNotAuthorized
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.AckTimeout)
	defer cancel()
	err := h.cfg.Sink.Ingest(ctx, ingest.Message{Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload),
		ReceivedAt: time.Now().UTC(), Publisher: m.TenantCode + "/" + m.ExternalID})
	if err != nil {
		h.m.refused.WithLabelValues("not_stored").Inc()
		if cl.Properties.ProtocolVersion == 5 {
			return pk, packets.ErrQuotaExceeded
		}
		_ = h.srv.DisconnectClient(cl, packets.ErrServerBusy)
		return pk, packets.ErrRejectPacket
	}
	return pk, packets.CodeSuccessIgnore
}

func (h *authHook) OnPublishDropped(*mqtt.Client, packets.Packet) { h.m.dropped.Inc() }
