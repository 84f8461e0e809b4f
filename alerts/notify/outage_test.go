package notify_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/channel/fcm"
	"github.com/meterd/meterd/alerts/channel/twilio"
	"github.com/meterd/meterd/alerts/channel/webhook"
	"github.com/meterd/meterd/alerts/internal/fixture"
	"github.com/meterd/meterd/alerts/internal/peer"
	"github.com/meterd/meterd/alerts/notify"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/alerts/template"
)

const twilioAccount, twilioToken = "AC00000000000000000000000000000001", "twilio-token"

// prefer sets a user's default channels.
func (h *harness) prefer(user int64, channels ...string) {
	h.t.Helper()
	if _, err := h.pool.Exec(h.ctx, `INSERT INTO notification_preferences (tenant_id, user_id, event, channels)
		SELECT tenant_id, id, '*', $2 FROM users WHERE id = $1`, user, channels); err != nil {
		h.t.Fatal(err)
	}
}

// waitBreaker waits (on the breaker's own timer) until provider's circuit
// is in state.
func waitBreaker(t *testing.T, e *notify.Engine, provider, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for e.BreakerStates()[provider] != state {
		if time.Now().After(deadline) {
			t.Fatalf("breaker %s stayed %s, want %s", provider, e.BreakerStates()[provider], state)
		}
		<-tick.C
	}
}

// A provider outage: attempts are retried with backoff, the breaker opens
// after BreakerTrip failures and shields the provider, every delivery
// becomes a visible dead letter after its last attempt, and once the
// provider is back a retry of the dead letters delivers each message once.
func TestProviderOutage(t *testing.T) {
	h := newHarness(t)
	tenant := fixture.Tenant(t, h.pool, "Asia/Kolkata")
	tw := peer.NewTwilio(t, twilioAccount, twilioToken, h.clock.Now)
	sms, err := twilio.New(twilio.Config{BaseURL: tw.URL(), AccountSID: twilioAccount, AuthToken: twilioToken, From: "+15005550006"})
	if err != nil {
		t.Fatal(err)
	}
	const n, maxAttempts = 4, 4
	var outbox []int64
	for i := range n {
		u := fixture.NewUser(t, h.pool, tenant, fixture.User{Phone: fmt.Sprintf("+9198765432%02d", i)})
		h.prefer(u, "sms")
		p := template.Sample(alerts.EventPaymentSucceeded).P
		p["receipt_number"] = fmt.Sprintf("RCPT/%d", i)
		outbox = append(outbox, fixture.Enqueue(t, h.pool, fixture.Outbox{TenantID: tenant, UserID: u, Event: alerts.EventPaymentSucceeded, Payload: p}))
	}
	// The breaker runs on the wall clock (gobreaker has no clock to
	// inject). Each round allows one more provider call for every open
	// period the round itself took, so a slow machine, where the breaker
	// rightly half-opens again mid-round, does not fail the test, while a
	// breaker that did not shield the provider still does.
	const open = 500 * time.Millisecond
	e := h.engine(notify.Config{MaxAttempts: map[alerts.Channel]int{alerts.ChannelSMS: maxAttempts}, BreakerTrip: 3, BreakerOpen: open},
		notify.Deps{Senders: []notify.Sender{sms}})
	tw.SetMode(peer.Down)
	run := func() ([]notify.Outcome, int) {
		t0 := time.Now()
		got := h.run(e)
		return got, int(time.Since(t0) / open)
	}

	// Attempt 1 of each: three reach the provider and fail; the breaker
	// opens and the fourth fails without a call.
	got, extra := run()
	if len(got) != n || tw.Requests() < 3 || tw.Requests() > 3+extra {
		t.Fatalf("round 1: outcomes %v, provider requests %d, want 3 (+%d for the time the round took)", got, tw.Requests(), extra)
	}
	for _, o := range got {
		if o != notify.OutcomeRetry {
			t.Fatalf("round 1: %v, want all retry", got)
		}
	}
	// Later rounds: after each backoff the half-open breaker lets one
	// probe through; it fails and the breaker opens again.
	for round := 2; round <= maxAttempts; round++ {
		h.clock.Advance(time.Hour)
		waitBreaker(t, e, "twilio", "half-open")
		before := tw.Requests()
		got, extra = run()
		if probes := tw.Requests() - before; len(got) != n || probes < 1 || probes > 1+extra {
			t.Fatalf("round %d: outcomes %v, provider requests +%d, want %d outcomes and 1 probe (+%d for the time the round took)",
				round, got, probes, n, extra)
		}
	}
	for _, o := range got {
		if o != notify.OutcomeFailed {
			t.Fatalf("after %d attempts: %v, want all failed (dead letters)", maxAttempts, got)
		}
	}
	dead, err := h.store.Notifications(h.ctx, alertspg.Scope{TenantID: tenant}, alerts.NotificationFilter{Status: "dead"})
	if err != nil || len(dead) != n {
		t.Fatalf("dead letters: %d, %v", len(dead), err)
	}
	for _, nt := range dead {
		d := nt.Deliveries[0]
		if nt.Status != "dead" || d.Status != alerts.DeliveryDead || d.Attempts != maxAttempts || len(d.History) != maxAttempts ||
			!strings.Contains(d.LastError, "gave up after 4 attempts") {
			t.Fatalf("dead letter %d: %s %+v", nt.ID, nt.Status, d)
		}
	}
	if len(tw.Sent()) != 0 {
		t.Fatalf("sent %d during the outage", len(tw.Sent()))
	}
	// Nothing is retried by itself once dead.
	h.clock.Advance(24 * time.Hour)
	if got := h.run(e); len(got) != 0 {
		t.Fatalf("dead letters were retried by themselves: %v", got)
	}

	// Recovery: the provider is back and staff retry the dead letters.
	tw.SetMode(peer.Up)
	waitBreaker(t, e, "twilio", "half-open")
	for _, id := range outbox {
		if k, err := h.store.RetryDead(h.ctx, alertspg.Scope{TenantID: tenant}, id, 2, h.clock.Now(), alertspg.Actor{UserID: 0, Role: "admin"}); err != nil || k != 1 {
			t.Fatalf("retry %d: %d, %v", id, k, err)
		}
	}
	got = h.run(e)
	sent := 0
	for _, o := range got {
		if o == notify.OutcomeSent {
			sent++
		}
	}
	if sent != n || e.BreakerStates()["twilio"] != "closed" {
		t.Fatalf("after recovery: %v, breaker %s", got, e.BreakerStates()["twilio"])
	}
	if msgs := tw.Sent(); len(msgs) != n {
		t.Fatalf("provider sent %d, want %d (once each)", len(msgs), n)
	}
	var audited int
	if err := h.pool.QueryRow(h.ctx, `SELECT count(*) FROM audit_log WHERE action = 'notification.retry'`).Scan(&audited); err != nil || audited != n {
		t.Fatalf("audited retries %d, %v", audited, err)
	}
}

// dying wraps a sender so that its worker dies (runtime.Goexit: the
// goroutine ends, nothing after the call runs, as if the process died)
// right before or right after the provider call, while armed.
type dying struct {
	notify.Sender
	after atomic.Bool // die after the provider accepted (else before the call)
	armed atomic.Bool
}

func (d *dying) Send(ctx context.Context, m *notify.Message) (notify.Receipt, bool, error) {
	if d.armed.Load() && !d.after.Load() {
		runtime.Goexit()
	}
	rec, retry, err := d.Sender.Send(ctx, m)
	if d.armed.Load() && d.after.Load() && err == nil {
		runtime.Goexit()
	}
	return rec, retry, err
}

// dyingReconciler is dying for a sender that can reconcile.
type dyingReconciler struct{ *dying }

func (d dyingReconciler) Find(ctx context.Context, m *notify.Message) (notify.Receipt, bool, error) {
	return d.Sender.(notify.Reconciler).Find(ctx, m)
}

// deliverDying runs a delivery on a goroutine that may die, and waits for
// it to end either way.
func deliverDying(ctx context.Context, e *notify.Engine, j notify.Job) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = e.Deliver(ctx, j)
	}()
	<-done
}

// A worker dies in the middle of a delivery — before the provider call,
// or after the provider accepted the message but before the outcome was
// recorded. Its lease expires, the pump queues the delivery again as in
// doubt, the stale job cannot touch it, and the next attempt delivers the
// message once: by the provider's idempotency (webhook), by reconciling
// with the provider (Twilio), by the device collapsing the repeat (FCM:
// same collapse key and tag), or, for email, at least once with the same
// Message-ID.
func TestWorkerDiesMidDelivery(t *testing.T) {
	type channel struct {
		name    string
		channel string
		sender  func(h *harness) (notify.Sender, func() int) // sender and "messages the provider sent"
		check   func(t *testing.T, h *harness, after bool)
	}
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	var wh *peer.Webhook
	var tw *peer.Twilio
	var fc *peer.FCM
	channels := []channel{
		{name: "webhook sms", channel: "sms", sender: func(h *harness) (notify.Sender, func() int) {
			wh = peer.NewWebhook(h.t, secret, h.clock.Now)
			s, err := webhook.New(webhook.Config{Channel: alerts.ChannelSMS, URL: wh.URL(), Secret: secret, Now: h.clock.Now})
			if err != nil {
				h.t.Fatal(err)
			}
			return s, func() int { return len(wh.Sent()) }
		}, check: func(t *testing.T, h *harness, after bool) {
			if after && wh.Repeats() != 1 {
				t.Errorf("webhook repeats %d, want 1 (the resend was recognised by its Idempotency-Key)", wh.Repeats())
			}
		}},
		{name: "twilio sms", channel: "sms", sender: func(h *harness) (notify.Sender, func() int) {
			tw = peer.NewTwilio(h.t, twilioAccount, twilioToken, h.clock.Now)
			s, err := twilio.New(twilio.Config{BaseURL: tw.URL(), AccountSID: twilioAccount, AuthToken: twilioToken, From: "+15005550006", Now: h.clock.Now})
			if err != nil {
				h.t.Fatal(err)
			}
			return s, func() int { return len(tw.Sent()) }
		}, check: func(t *testing.T, h *harness, after bool) {
			want := 1 // before the call: the next attempt sends once
			if after {
				want = 1 // after: found by the lookup, not sent again
			}
			if tw.Requests() != want {
				t.Errorf("twilio send requests %d, want %d", tw.Requests(), want)
			}
		}},
		{name: "fcm push", channel: "push", sender: func(h *harness) (notify.Sender, func() int) {
			fc = peer.NewFCM(h.t, "meterd-test")
			key, err := fcm.ParseServiceAccount(fc.KeyJSON)
			if err != nil {
				h.t.Fatal(err)
			}
			ts, err := fcm.NewServiceAccount(key, nil, nil)
			if err != nil {
				h.t.Fatal(err)
			}
			s, err := fcm.New(fcm.Config{BaseURL: fc.URL(), ProjectID: fc.Project, Tokens: ts})
			if err != nil {
				h.t.Fatal(err)
			}
			// FCM has no idempotency: a resend after an in-doubt attempt
			// reaches the device again, and the device shows one
			// notification because both carry the same collapse key and
			// tag. Count distinct collapse ids: what the user sees.
			return s, func() int {
				seen := map[string]bool{}
				for _, p := range fc.Sent() {
					seen[p.Tag+"|"+p.CollapseKey+"|"+p.APNSCollapseID] = true
				}
				return len(seen)
			}
		}},
		{name: "smtp email", channel: "email", sender: func(h *harness) (notify.Sender, func() int) {
			// At least once: count distinct Message-IDs (what a mail
			// system that de-duplicates shows).
			return h.emailSender(), func() int {
				seen := map[string]bool{}
				for _, m := range h.log.All() {
					seen[m.MessageID] = true
				}
				return len(seen)
			}
		}, check: func(t *testing.T, h *harness, after bool) {
			msgs := h.log.All()
			if after && (len(msgs) != 2 || msgs[0].MessageID != msgs[1].MessageID) {
				t.Errorf("email after an in-doubt attempt: %d messages, want 2 with one Message-ID (at least once)", len(msgs))
			}
		}},
	}
	for _, ch := range channels {
		for _, after := range []bool{false, true} {
			name := ch.name + "/dies before the call"
			if after {
				name = ch.name + "/dies after the provider accepted"
			}
			t.Run(name, func(t *testing.T) {
				h := newHarness(t)
				tenant := fixture.Tenant(t, h.pool, "Asia/Kolkata")
				u := fixture.NewUser(t, h.pool, tenant, fixture.User{Phone: "+919876543210", Contact: "asha@example.net"})
				if ch.channel == "push" {
					fixture.Device(t, h.pool, tenant, u, "fcm-token-asha", "android")
				}
				h.prefer(u, ch.channel)
				oid := fixture.Enqueue(t, h.pool, fixture.Outbox{TenantID: tenant, UserID: u, Event: alerts.EventPaymentSucceeded,
					Payload: template.Sample(alerts.EventPaymentSucceeded).P})
				inner, sentCount := ch.sender(h)
				d := &dying{Sender: inner}
				var s notify.Sender = d
				if _, ok := inner.(notify.Reconciler); ok {
					s = dyingReconciler{d}
				}
				e := h.engine(notify.Config{}, notify.Deps{Senders: []notify.Sender{s}})
				st, err := e.Pump(h.ctx)
				if err != nil || len(st.Jobs) != 1 {
					t.Fatalf("pump: %+v %v", st, err)
				}
				d.after.Store(after)
				d.armed.Store(true)
				deliverDying(h.ctx, e, st.Jobs[0])
				d.armed.Store(false)
				if ds := h.deliveries(oid); ds[0].Status != alerts.DeliverySending {
					t.Fatalf("after the worker died: %s, want sending (leased)", ds[0].Status)
				}
				// The lease has not ended: nothing is queued again.
				if got := h.run(e); len(got) != 0 {
					t.Fatalf("re-queued while leased: %v", got)
				}
				h.clock.Advance(notify.DefaultSendTimeout + notify.DefaultQueueLease + time.Second)
				st2, err := e.Pump(h.ctx)
				if err != nil || len(st2.Jobs) != 1 {
					t.Fatalf("pump after the lease: %+v %v", st2, err)
				}
				if ds := h.deliveries(oid); !ds[0].InDoubt {
					t.Fatal("re-queued delivery is not marked in doubt")
				}
				// The dead worker's job, should it run again, is stale.
				if o, err := e.Deliver(h.ctx, st.Jobs[0]); err != nil || o != "" {
					t.Fatalf("stale job: %q %v", o, err)
				}
				o, err := e.Deliver(h.ctx, st2.Jobs[0])
				if err != nil || (o != notify.OutcomeSent && o != notify.OutcomeReconciled) {
					t.Fatalf("recovery attempt: %q %v", o, err)
				}
				if got := sentCount(); got != 1 {
					t.Fatalf("the user got %d messages, want 1", got)
				}
				ds := h.deliveries(oid)
				if ds[0].Status != alerts.DeliverySent || ds[0].InDoubt {
					t.Fatalf("final delivery: %+v", ds[0])
				}
				if ch.check != nil {
					ch.check(t, h, after)
				}
				if ch.name == "twilio sms" && after && o != notify.OutcomeReconciled {
					t.Errorf("twilio: outcome %s, want reconciled", o)
				}
			})
		}
	}
}
