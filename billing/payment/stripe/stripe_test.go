package stripe_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/paymenttest"
	"github.com/meterd/meterd/billing/payment/stripe"
)

func newProvider(t *testing.T, peer *paymenttest.StripePeer) *stripe.Provider {
	t.Helper()
	p, err := stripe.New(stripe.Config{BaseURL: peer.URL, SecretKey: peer.SecretKey, PublishableKey: peer.PublishableKey, WebhookSecrets: []string{peer.WebhookSecret}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func order(id int64) payment.OrderRequest {
	return payment.OrderRequest{PaymentID: id, Reference: payment.Payment{ID: id}.ProviderReference(), AmountMinor: 51500, Currency: "INR",
		Method: payment.MethodCard, Description: "Bill DEMO/2024-25/000001", BillNumber: "DEMO/2024-25/000001", Consumer: "E000001"}
}

func TestPaymentIntents(t *testing.T) {
	ctx := context.Background()
	peer := paymenttest.NewStripePeer(t)
	p := newProvider(t, peer)
	o, err := p.CreateOrder(ctx, order(5))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.ID, "pi_") || o.Action.Type != "stripe_confirm" || o.Action.Params["payment_intent"] != o.ID ||
		!strings.HasPrefix(o.Action.Params["client_secret"], o.ID+"_secret_") || o.Action.Params["publishable_key"] != peer.PublishableKey || o.Immediate != nil {
		t.Fatalf("order %+v", o)
	}
	// The Idempotency-Key makes a retry return the same PaymentIntent.
	again, err := p.CreateOrder(ctx, order(5))
	if err != nil || again.ID != o.ID || peer.Intents() != 1 {
		t.Fatalf("retry %+v %v; %d intents", again, err, peer.Intents())
	}
	// The same key with other parameters is refused by Stripe.
	changed := order(5)
	changed.AmountMinor = 100
	var pe *payment.ProviderError
	if _, err := p.CreateOrder(ctx, changed); !errors.As(err, &pe) || pe.Code != "idempotency_error" || pe.Temporary {
		t.Fatalf("reused key: %v", err)
	}
	st, err := p.FetchOrder(ctx, o.ID)
	if err != nil || st.Kind != payment.EventPending || st.Attempts != 0 {
		t.Fatalf("unpaid: %+v %v", st, err)
	}
	peer.Pay(o.ID, "pm_card_chargeDeclined")
	st, err = p.FetchOrder(ctx, o.ID)
	if err != nil || st.Kind != payment.EventFailed || st.FailureCode != "card_declined" {
		t.Fatalf("declined: %+v %v", st, err)
	}
	peer.Pay(o.ID, "pm_card_visa")
	st, err = p.FetchOrder(ctx, o.ID)
	if err != nil || st.Kind != payment.EventCaptured || st.AmountMinor != 51500 || !strings.HasPrefix(st.PaymentID, "ch_") ||
		st.Instrument.Brand != "Visa" || st.Instrument.Last4 != "4242" {
		t.Fatalf("succeeded: %+v %v", st, err)
	}
	if _, err := p.FetchOrder(ctx, "pi_missing"); !errors.Is(err, payment.ErrOrderNotFound) {
		t.Errorf("unknown intent: %v", err)
	}

	req := payment.RefundRequest{RefundID: 8, Reference: payment.Refund{ID: 8}.ProviderReference(), OrderID: o.ID, PaymentID: st.PaymentID,
		AmountMinor: 1500, Currency: "INR", Reason: "billed twice"}
	rf, err := p.Refund(ctx, req)
	if err != nil || rf.Status != payment.RefundProcessed || !strings.HasPrefix(rf.ID, "re_") || rf.Reference != req.Reference {
		t.Fatalf("refund %+v %v", rf, err)
	}
	rf2, err := p.Refund(ctx, req)
	if err != nil || rf2.ID != rf.ID {
		t.Fatalf("retried refund %+v %v", rf2, err)
	}
	if got, err := p.FetchRefund(ctx, req, rf.ID); err != nil || got.Status != payment.RefundProcessed {
		t.Fatalf("fetch refund %+v %v", got, err)
	}
	big := req
	big.Reference, big.AmountMinor = "meterd-refund-9", 100000
	if _, err := p.Refund(ctx, big); !errors.As(err, &pe) || pe.Code != "amount_too_large" || errors.Is(err, payment.ErrProviderUnavailable) {
		t.Errorf("refund too large: %v", err)
	}
}

func TestSavedMethodSettlesAtOnce(t *testing.T) {
	ctx := context.Background()
	peer := paymenttest.NewStripePeer(t)
	p := newProvider(t, peer)
	r := order(11)
	r.SavedToken = "pm_card_visa"
	o, err := p.CreateOrder(ctx, r)
	if err != nil || o.Immediate == nil || o.Immediate.Kind != payment.EventCaptured || o.Action.Type != "none" {
		t.Fatalf("saved card: %+v %v", o, err)
	}
	r = order(12)
	r.SavedToken = "pm_card_chargeDeclined"
	o, err = p.CreateOrder(ctx, r)
	if err != nil || o.Immediate == nil || o.Immediate.Kind != payment.EventFailed || o.Immediate.FailureCode != "card_declined" {
		t.Fatalf("declined saved card: %+v %v", o, err)
	}
}

func TestFailures(t *testing.T) {
	peer := paymenttest.NewStripePeer(t)
	p := newProvider(t, peer)
	peer.FailNext(500)
	if _, err := p.CreateOrder(context.Background(), order(1)); !errors.Is(err, payment.ErrProviderUnavailable) {
		t.Errorf("500: %v", err)
	}
	if p.Supports(payment.MethodUPI) || p.Supports(payment.MethodNetbanking) || !p.Supports(payment.MethodWallet) {
		t.Error("Stripe takes cards and card wallets only")
	}
}

type header map[string]string

func (h header) Get(k string) string { return h[http.CanonicalHeaderKey(k)] }

// The reference's vector: whsec_test, t=1700000000.
func TestWebhookSignature(t *testing.T) {
	p, err := stripe.New(stripe.Config{SecretKey: "sk_test_x", WebhookSecrets: []string{"whsec_test"}})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"entity":"event","event":"payment.captured"}`)
	hdr := header{"Stripe-Signature": "t=1700000000,v1=bd6eff77e23a745f58c9055f5e9d662f379f2fa35115a9da87a42b0f179cc74d"}
	at := time.Unix(1700000000, 0)
	if _, err := p.ParseWebhook(hdr, body, at.Add(time.Minute)); !errors.Is(err, payment.ErrMalformedEvent) {
		t.Errorf("vector: %v, want a verified but malformed event", err)
	}
	if _, err := p.ParseWebhook(hdr, body, at.Add(301*time.Second)); !errors.Is(err, payment.ErrStale) {
		t.Errorf("stale: %v", err)
	}
	if _, err := p.ParseWebhook(hdr, []byte(`{"entity":"event","event":"payment.failed"}`), at); !errors.Is(err, payment.ErrSignature) {
		t.Errorf("tampered: %v", err)
	}
	other, err := stripe.New(stripe.Config{SecretKey: "sk_test_x", WebhookSecrets: []string{"whsec_other"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ParseWebhook(hdr, body, at); !errors.Is(err, payment.ErrSignature) || errors.Is(err, payment.ErrStale) {
		t.Errorf("wrong secret: %v", err)
	}

	ctx := context.Background()
	peer := paymenttest.NewStripePeer(t)
	sp := newProvider(t, peer)
	o, err := sp.CreateOrder(ctx, order(3))
	if err != nil {
		t.Fatal(err)
	}
	pi := peer.Pay(o.ID, "pm_card_visa")
	b, h := peer.Webhook("payment_intent.succeeded", pi, time.Now())
	ev, err := sp.ParseWebhook(h, b, time.Now())
	if err != nil || ev.Kind != payment.EventCaptured || ev.OrderID != o.ID || ev.AmountMinor != 51500 || !strings.HasPrefix(ev.ID, "evt_") || ev.Currency != "INR" {
		t.Fatalf("succeeded event: %+v %v", ev, err)
	}
	rf, err := sp.Refund(ctx, payment.RefundRequest{RefundID: 1, Reference: "meterd-refund-1", OrderID: o.ID, AmountMinor: 500, Currency: "INR", Reason: "r"})
	if err != nil {
		t.Fatal(err)
	}
	b, h = peer.Webhook("refund.updated", map[string]any{"id": rf.ID, "object": "refund", "amount": 500, "status": "succeeded",
		"payment_intent": o.ID, "metadata": map[string]any{"meterd_refund": "meterd-refund-1"}}, time.Now())
	ev, err = sp.ParseWebhook(h, b, time.Now())
	if err != nil || ev.Kind != payment.EventRefundProcessed || ev.Refund == nil || ev.Refund.ID != rf.ID || ev.Refund.Reference != "meterd-refund-1" || ev.OrderID != o.ID {
		t.Fatalf("refund event: %+v %v", ev, err)
	}
	b, h = peer.Webhook("customer.created", map[string]any{"id": "cus_1", "object": "customer"}, time.Now())
	if ev, err := sp.ParseWebhook(h, b, time.Now()); err != nil || ev.Kind != payment.EventIgnored {
		t.Errorf("other event: %+v %v", ev, err)
	}
}
