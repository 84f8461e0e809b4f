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
	"sync"
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

// PublisherProperty is the MQTT v5 user property the broker sets on every
// message a meter publishes: the meter's authenticated identity,
// "<tenant>/<meter>". A value a publisher sets itself is removed first, so
// the gateway can trust it when the broker is this one.
const PublisherProperty = "meterd-publisher"

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
	// GatewayUsername and GatewayPassword are the login of the gateway's
	// own subscriber, which may subscribe to everything and is the only
	// client allowed to subscribe at all. Required.
	GatewayUsername string
	GatewayPassword string
	// MaxSessionExpiry caps how long a disconnected client's session and
	// queued messages are kept. Default 24 h (mochi's own default is
	// forever).
	MaxSessionExpiry time.Duration
	// MaxInflight caps the QoS 1/2 messages queued for one client; beyond
	// it the broker refuses meters' publishes (PUBACK "quota exceeded",
	// or a disconnect for MQTT 3.1.1 publishers, who then resend) instead
	// of dropping messages for a gateway that has fallen behind. Default
	// 16 384 (mochi's default is 8 192; the protocol limit is 65 535).
	MaxInflight uint16
	// ReceiveMaximum is how many unacknowledged QoS 1/2 publishes one
	// client may send before waiting. Default 256.
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
		c.MaxInflight = 16_384
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = 256
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
	if c.GatewayUsername == "" || c.GatewayPassword == "" {
		errs = append(errs, errors.New("broker: the gateway's username and password are required"))
	}
	if c.TLSAddr != "" && c.TLS == nil {
		errs = append(errs, errors.New("broker: a TLS listener needs a certificate"))
	}
	if c.MaxSessionExpiry < 0 {
		errs = append(errs, errors.New("broker: MaxSessionExpiry must not be negative"))
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
			Help: "Meter publishes refused so they are not lost, by reason (no_subscriber, gateway_behind)."}, []string{"reason"}),
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
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: b.cfg.Logger, InlineClient: false, SysTopicResendInterval: 10})
	hookCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.hook = &authHook{cfg: &b.cfg, res: b.res, srv: srv, m: b.metrics, ctx: hookCtx, cancel: cancel, gateways: map[string]struct{}{}}
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

	mu       sync.Mutex
	gateways map[string]struct{} // client ids logged in as the gateway
}

func (h *authHook) ID() string { return "meterd-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnPublishDropped, mqtt.OnDisconnect}, []byte{b})
}

// lookupTimeout bounds a credential lookup that misses the cache.
const lookupTimeout = 5 * time.Second

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), pk.Connect.Password
	if user == h.cfg.GatewayUsername && user != "" {
		ok := subtle.ConstantTimeCompare(pass, []byte(h.cfg.GatewayPassword)) == 1
		if ok {
			h.mu.Lock()
			h.gateways[cl.ID] = struct{}{}
			h.mu.Unlock()
		} else {
			h.m.authFailures.Inc()
		}
		return ok
	}
	m, ok := h.meter(user)
	if !ok || m.SecretHash == "" || !checkSecret(m.SecretHash, pass) {
		h.m.authFailures.Inc()
		return false
	}
	return true
}

func (h *authHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire {
		h.mu.Lock()
		delete(h.gateways, cl.ID)
		h.mu.Unlock()
	}
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

func (h *authHook) isGateway(cl *mqtt.Client) bool {
	return string(cl.Properties.Username) == h.cfg.GatewayUsername
}

// OnACLCheck denies by default: the gateway may do anything; a meter may
// publish only to its own topics and subscribe to nothing.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.isGateway(cl) {
		return true
	}
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

// highWater is the share of MaxInflight a gateway session may fill before
// meters' publishes are refused.
const highWater = 0.9

// OnPublish stamps a meter's message with its identity, and refuses it
// (so the publisher keeps and resends it) when no gateway subscription
// would receive it or a gateway has fallen too far behind.
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.isGateway(cl) {
		return pk, nil
	}
	if reason := h.refuse(pk.TopicName); reason != "" {
		h.m.refused.WithLabelValues(reason).Inc()
		if cl.Properties.ProtocolVersion == 5 {
			return pk, packets.ErrQuotaExceeded
		}
		// MQTT 3.1.1 has no negative PUBACK: disconnect, and the client
		// resends the unacknowledged message when it reconnects.
		_ = h.srv.DisconnectClient(cl, packets.ErrServerBusy)
		return pk, packets.ErrRejectPacket
	}
	m, ok := h.meter(string(cl.Properties.Username))
	if !ok {
		return pk, packets.ErrNotAuthorized
	}
	user := make([]packets.UserProperty, 0, len(pk.Properties.User)+1)
	for _, p := range pk.Properties.User {
		if p.Key != PublisherProperty {
			user = append(user, p)
		}
	}
	pk.Properties.User = append(user, packets.UserProperty{Key: PublisherProperty, Val: m.TenantCode + "/" + m.ExternalID})
	return pk, nil
}

func (h *authHook) refuse(topic string) string {
	subs := h.srv.Topics.Subscribers(topic)
	if len(subs.Subscriptions) == 0 && len(subs.Shared) == 0 {
		return "no_subscriber"
	}
	limit := int(float64(h.cfg.MaxInflight) * highWater)
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range h.gateways {
		if gw, ok := h.srv.Clients.Get(id); ok && gw.State.Inflight.Len() >= limit {
			return "gateway_behind"
		}
	}
	return ""
}

func (h *authHook) OnPublishDropped(*mqtt.Client, packets.Packet) { h.m.dropped.Inc() }
