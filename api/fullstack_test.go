package api_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
	"github.com/meterd/meterd/api/outbox"
	outboxpg "github.com/meterd/meterd/api/outbox/postgres"
	"github.com/meterd/meterd/billing/billrun"
	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/guard"
	"github.com/meterd/meterd/billing/payment/paymenttest"
	paymentpg "github.com/meterd/meterd/billing/payment/postgres"
	"github.com/meterd/meterd/billing/payment/razorpay"
	"github.com/meterd/meterd/billing/payment/sandbox"
	"github.com/meterd/meterd/billing/payment/stripe"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// e2eOutbox and e2eAudit are cmd's adapters: the API's outbox and audit
// log behind billing's and payments' ports.
type e2eOutbox struct{}

func (e2eOutbox) Enqueue(ctx context.Context, tx pgx.Tx, msgs []billingpg.Notification) error {
	for _, m := range msgs {
		if err := outboxpg.Enqueue(ctx, tx, outbox.Message{TenantID: m.TenantID, UserID: m.UserID, Event: m.Event, Payload: m.Payload, DedupeKey: m.DedupeKey}); err != nil {
			return err
		}
	}
	return nil
}

type e2eAudit struct{}

func (e2eAudit) Write(ctx context.Context, tx pgx.Tx, e billingpg.AuditEntry) error {
	return auditpg.Write(ctx, tx, audit.Entry{TenantID: e.TenantID, ActorUserID: e.ActorUserID, ActorRole: e.ActorRole, Action: e.Action,
		EntityType: e.EntityType, EntityID: e.EntityID, After: e.After, Address: e.Address, RequestID: e.RequestID})
}

// fullStack is the API with every service of the permission table
// mounted, as cmd wires them, on a real database: accounts, support,
// usage, billing (bill runs execute at once) on billing's store with the
// API's outbox and audit log, the municipal calculators on the same store,
// payments through the sandbox (started, delivering its webhooks to this
// server) and Razorpay and Stripe adapters talking to local peers, each
// behind the guard, and alerts and notifications.
type fullStack struct {
	*stack
	bpool      *pgxpool.Pool
	ledger     *billingpg.Store
	runner     *billrun.Runner
	alerts     *alertspg.Store
	sbx        *sandbox.Gateway
	rzp        *paymenttest.RazorpayPeer
	stp        *paymenttest.StripePeer
	deliveries chan sandbox.Delivery
	clock      atomic.Pointer[time.Time] // the payment service's clock; nil: now
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())
	return addr
}

func newFullStack(t *testing.T) *fullStack {
	t.Helper()
	w := newWiring(t, nil)
	fs := &fullStack{bpool: w.decimalPool(t, 16), alerts: alertspg.New(w.pool), deliveries: make(chan sandbox.Delivery, 256),
		rzp: paymenttest.NewRazorpayPeer(t), stp: paymenttest.NewStripePeer(t)}
	fs.ledger, fs.runner = w.billing(t, fs.bpool, billingpg.Deps{Outbox: e2eOutbox{}, Audit: e2eAudit{}})

	addr := freeAddr(t)
	base := "http://" + addr
	var err error
	fs.sbx, err = sandbox.New(sandbox.Config{Secret: "sandbox-e2e-secret-0123", CheckoutURL: base + "/sandbox/checkout", WebhookURL: base + "/api/webhooks/sandbox",
		RetryBackoff: 20 * time.Millisecond, OnDelivery: func(d sandbox.Delivery) { fs.deliveries <- d }})
	must(t, err)
	rp, err := razorpay.New(razorpay.Config{BaseURL: fs.rzp.URL, KeyID: fs.rzp.KeyID, KeySecret: fs.rzp.KeySecret, WebhookSecrets: []string{fs.rzp.WebhookSecret}})
	must(t, err)
	sp, err := stripe.New(stripe.Config{BaseURL: fs.stp.URL, SecretKey: fs.stp.SecretKey, PublishableKey: fs.stp.PublishableKey, WebhookSecrets: []string{fs.stp.WebhookSecret}})
	must(t, err)
	var provs []payment.Provider
	for _, p := range []payment.Provider{fs.sbx, rp, sp} {
		g, err := guard.Wrap(p, guard.Config{Timeout: 5 * time.Second})
		must(t, err)
		provs = append(provs, g)
	}
	store, err := paymentpg.New(fs.bpool, paymentpg.Deps{Ledger: fs.ledger, Outbox: e2eOutbox{}, Audit: e2eAudit{}, Sealer: w.ring})
	must(t, err)
	pays, err := payment.New(store, provs, payment.Config{Now: func() time.Time {
		if c := fs.clock.Load(); c != nil {
			return *c
		}
		return time.Now()
	}})
	must(t, err)

	svc := w.services()
	svc.Usage = w.usage(t)
	svc.Billing = &testBilling{store: fs.ledger, runner: fs.runner}
	svc.Municipal = fs.ledger
	svc.Payments = pays
	svc.Sandbox = fs.sbx
	svc.Notifications = notifications(t, fs.alerts, w.ring)
	fs.stack = w.serve(t, addr, svc)
	must(t, fs.sbx.Start(context.Background()))
	t.Cleanup(func() { // before the server stops (cleanups run last first)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = fs.sbx.Stop(ctx)
	})
	fs.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}}
	return fs
}
