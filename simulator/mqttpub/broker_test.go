package mqttpub

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/simulator"
)

// fleetAuth is a mochi hook that checks meters' logins against a fleet's
// derived secrets, the way the gateway's broker checks meters.
// mqtt_secret_hash, and lets a meter publish only to its own topics.
type fleetAuth struct {
	mqtt.HookBase
	fleet *simulator.Fleet
	// refuse is how many more meter publishes to refuse with "quota
	// exceeded", as meterd's broker does while no gateway is subscribed.
	refuse atomic.Int64
	// accepted counts the meter publishes the broker took. mochi sends the
	// PUBACK before it delivers to subscribers, so a publisher can be done
	// while its last messages are still on their way; tests wait until the
	// subscriber has seen this many.
	accepted atomic.Int64
}

func (h *fleetAuth) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	if h.refuse.Add(-1) >= 0 {
		return pk, packets.ErrQuotaExceeded
	}
	h.accepted.Add(1)
	return pk, nil
}

func (h *fleetAuth) ID() string { return "fleet-auth" }

func (h *fleetAuth) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnPublish
}

func (h *fleetAuth) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Net.Inline {
		return true
	}
	tenant, ref, _ := strings.Cut(string(pk.Connect.Username), "/")
	i, ok := h.fleet.Lookup(ref)
	ok = ok && tenant == h.fleet.Config().Tenant
	return ok && simulator.HashSecret(string(pk.Connect.Password)) == h.fleet.SecretHash(i)
}

func (h *fleetAuth) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	_, user, _ := strings.Cut(string(cl.Properties.Username), "/")
	return write && (topic == payload.CanonicalTopic(h.fleet.Config().Tenant, user) || topic == payload.TasmotaTopic(user))
}

// allowAll lets every client connect and publish (benchmarks).
type allowAll struct{ mqtt.HookBase }

func (h *allowAll) ID() string { return "allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// received is one message the test subscriber got.
type received struct {
	topic   string
	payload []byte
}

// testBroker is an embedded mochi broker with an inline subscriber on "#".
type testBroker struct {
	srv   *mqtt.Server
	url   string
	count atomic.Int64
	mu    sync.Mutex
	msgs  []received
	keep  bool
	wake  chan struct{}

	closeOnce sync.Once
	auth      *fleetAuth // nil for an allow-all broker
}

// startBroker starts a broker on a free loopback port. With fleet set,
// logins and topics are checked against it; otherwise everyone may
// publish. keep stores every message (tests); otherwise the subscriber
// only counts (benchmarks).
func startBroker(tb testing.TB, fleet *simulator.Fleet, keep bool) *testBroker {
	tb.Helper()
	return startBrokerOn(tb, fleet, keep, "127.0.0.1:0")
}

// startBrokerAt starts a keeping broker on a given address (a restart).
func startBrokerAt(tb testing.TB, fleet *simulator.Fleet, addr string) *testBroker {
	tb.Helper()
	return startBrokerOn(tb, fleet, true, addr)
}

func startBrokerOn(tb testing.TB, fleet *simulator.Fleet, keep bool, addr string) *testBroker {
	tb.Helper()
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Logger:       slog.New(slog.DiscardHandler),
		Capabilities: func() *mqtt.Capabilities {
			c := mqtt.NewDefaultServerCapabilities()
			c.MaximumSessionExpiryInterval = 60
			c.MaximumInflight = 1024
			return c
		}(),
	})
	var err error
	var fa *fleetAuth
	if fleet != nil {
		fa = &fleetAuth{fleet: fleet}
		err = srv.AddHook(fa, nil)
	} else {
		err = srv.AddHook(new(allowAll), nil)
	}
	if err != nil {
		tb.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(l); err != nil {
		tb.Fatal(err)
	}
	b := &testBroker{srv: srv, url: "mqtt://" + l.Address(), keep: keep, wake: make(chan struct{}, 1), auth: fa}
	handler := func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		if b.keep {
			b.mu.Lock()
			b.msgs = append(b.msgs, received{topic: pk.TopicName, payload: bytes.Clone(pk.Payload)})
			b.mu.Unlock()
		}
		b.count.Add(1)
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	for id, filter := range []string{"meters/#", "tele/#"} {
		if err := srv.Subscribe(filter, id+1, handler); err != nil {
			tb.Fatal(err)
		}
	}
	if err := srv.Serve(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.close)
	return b
}

// settle waits until the subscriber has received every publish the broker
// accepted (fleet brokers only).
func (b *testBroker) settle(t *testing.T) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for b.count.Load() < b.auth.accepted.Load() {
		select {
		case <-b.wake:
		case <-deadline:
			t.Fatalf("subscriber got %d of %d accepted messages", b.count.Load(), b.auth.accepted.Load())
		}
	}
}

// close stops the broker (once).
func (b *testBroker) close() { b.closeOnce.Do(func() { _ = b.srv.Close() }) }

func (b *testBroker) messages() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

func isSys(topic string) bool { return strings.HasPrefix(topic, "$SYS") }
