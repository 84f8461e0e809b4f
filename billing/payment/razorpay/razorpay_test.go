package razorpay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/paymenttest"
	"github.com/meterd/meterd/billing/payment/razorpay"
)

func newProvider(t *testing.T, peer *paymenttest.RazorpayPeer) *razorpay.Provider {
	t.Helper()
	p, err := razorpay.New(razorpay.Config{BaseURL: peer.URL, KeyID: peer.KeyID, KeySecret: peer.KeySecret, WebhookSecrets: []string{peer.WebhookSecret}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func order(id int64) payment.OrderRequest {
	return payment.OrderRequest{PaymentID: id, Reference: payment.Payment{ID: id}.ProviderReference(), AmountMinor: 104906, Currency: "INR",
		Method: payment.MethodUPI, Description: "Bill DEMO/2024-25/000002", BillNumber: "DEMO/2024-25/000002", Consumer: "E000001"}
}

func TestOrdersAndPayments(t *testing.T) {
	ctx := context.Background()
	peer := paymenttest.NewRazorpayPeer(t)
	p := newProvider(t, peer)
	o, err := p.CreateOrder(ctx, order(7))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.ID, "order_") || o.Action.Type != "razorpay_checkout" || o.Action.Params["order_id"] != o.ID ||
		o.Action.Params["key"] != peer.KeyID || o.Action.Params["amount"] != "104906" || o.Action.Params["currency"] != "INR" {
		t.Fatalf("order %+v", o)
	}
	// A retry of an in-doubt create finds the order by its receipt.
	again, err := p.CreateOrder(ctx, order(7))
	if err != nil || again.ID != o.ID || peer.Orders() != 1 {
		t.Fatalf("retry: %+v %v; %d orders", again, err, peer.Orders())
	}
	st, err := p.FetchOrder(ctx, o.ID)
	if err != nil || st.Kind != payment.EventPending || st.Attempts != 0 {
		t.Fatalf("unpaid order: %+v %v", st, err)
	}
	peer.Pay(o.ID, payment.MethodUPI, paymenttest.RazorpayFailed)
	st, err = p.FetchOrder(ctx, o.ID)
	if err != nil || st.Kind != payment.EventFailed || st.FailureCode != "BAD_REQUEST_ERROR" || st.Method != payment.MethodUPI || st.Attempts != 1 {
		t.Fatalf("failed attempt: %+v %v", st, err)
	}
	paid := peer.Pay(o.ID, payment.MethodCard, paymenttest.RazorpayCaptured)
	st, err = p.FetchOrder(ctx, o.ID)
	if err != nil || st.Kind != payment.EventCaptured || st.PaymentID != paid["id"] || st.AmountMinor != 104906 ||
		st.Instrument.Brand != "Visa" || st.Instrument.Last4 != "1111" || st.Method != payment.MethodCard {
		t.Fatalf("captured after a failure: %+v %v", st, err)
	}
	if _, err := p.FetchOrder(ctx, "order_missing"); !errors.Is(err, payment.ErrOrderNotFound) {
		t.Errorf("unknown order: %v", err)
	}

	// Refunds: one per reference, never more than was captured.
	req := payment.RefundRequest{RefundID: 3, Reference: payment.Refund{ID: 3}.ProviderReference(), OrderID: o.ID, PaymentID: st.PaymentID,
		AmountMinor: 4906, Currency: "INR", Reason: "duplicate payment"}
	rf, err := p.Refund(ctx, req)
	if err != nil || rf.Status != payment.RefundProcessed || !strings.HasPrefix(rf.ID, "rfnd_") || rf.Reference != req.Reference {
		t.Fatalf("refund %+v %v", rf, err)
	}
	rf2, err := p.Refund(ctx, req)
	if err != nil || rf2.ID != rf.ID {
		t.Fatalf("retried refund %+v %v (first %s)", rf2, err, rf.ID)
	}
	got, err := p.FetchRefund(ctx, req, rf.ID)
	if err != nil || got.ID != rf.ID || got.Status != payment.RefundProcessed {
		t.Fatalf("fetch refund %+v %v", got, err)
	}
	big := req
	big.Reference, big.AmountMinor = "meterd-refund-4", 200000
	_, err = p.Refund(ctx, big)
	if !errors.Is(err, payment.ErrProvider) || errors.Is(err, payment.ErrProviderUnavailable) {
		t.Errorf("refund over the captured amount: %v", err)
	}
}

func TestProviderFailures(t *testing.T) {
	ctx := context.Background()
	peer := paymenttest.NewRazorpayPeer(t)
	p := newProvider(t, peer)
	peer.FailNext(503)
	if _, err := p.CreateOrder(ctx, order(1)); !errors.Is(err, payment.ErrProviderUnavailable) {
		t.Errorf("503: %v", err)
	}
	wrong, err := razorpay.New(razorpay.Config{BaseURL: peer.URL, KeyID: peer.KeyID, KeySecret: "wrong", WebhookSecrets: []string{"w"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.CreateOrder(ctx, order(2))
	var pe *payment.ProviderError
	if !errors.As(err, &pe) || pe.Status != 401 || pe.Temporary {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := p.CreateOrder(ctx, payment.OrderRequest{Reference: "meterd-payment-3", AmountMinor: 10, Currency: "INR"}); !errors.As(err, &pe) || pe.Status != 400 {
		t.Errorf("an amount Razorpay refuses: %v", err)
	}
}

// The reference's vector: key_secret test_key_secret, order
// order_IluGWxBm9U8zJ8, payment pay_29QQoUBi66xm2f.
func TestCheckoutSignature(t *testing.T) {
	p, err := razorpay.New(razorpay.Config{KeyID: "rzp_test_x", KeySecret: "test_key_secret", WebhookSecrets: []string{"whsec_razor_test"}})
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]string{"razorpay_payment_id": "pay_29QQoUBi66xm2f", "razorpay_order_id": "order_IluGWxBm9U8zJ8",
		"razorpay_signature": "d57d070c8a441a8b72a3de9e6d338cd544913cbb44162a814d741042ba9d9643"}
	pid, err := p.VerifyCheckout("order_IluGWxBm9U8zJ8", good)
	if err != nil || pid != "pay_29QQoUBi66xm2f" {
		t.Fatalf("vector: %q %v", pid, err)
	}
	// The stored order id decides, never the one the callback echoes.
	if _, err := p.VerifyCheckout("order_OtherOrder0001", good); !errors.Is(err, payment.ErrSignature) {
		t.Errorf("another stored order: %v", err)
	}
	bad := map[string]string{"razorpay_payment_id": "pay_29QQoUBi66xm2g", "razorpay_signature": good["razorpay_signature"]}
	if _, err := p.VerifyCheckout("order_IluGWxBm9U8zJ8", bad); !errors.Is(err, payment.ErrSignature) {
		t.Errorf("tampered payment id: %v", err)
	}
	if _, err := p.VerifyCheckout("order_IluGWxBm9U8zJ8", map[string]string{"razorpay_payment_id": "pay_29QQoUBi66xm2f"}); !errors.Is(err, payment.ErrSignature) {
		t.Errorf("no signature: %v", err)
	}
}

type header map[string]string

func (h header) Get(k string) string { return h[http.CanonicalHeaderKey(k)] }

func TestWebhooks(t *testing.T) {
	// The reference's vector verifies (the body is not a full event, so
	// it is malformed after the signature check, not before).
	vec, err := razorpay.New(razorpay.Config{KeyID: "rzp_test_x", KeySecret: "k", WebhookSecrets: []string{"whsec_razor_test"}})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"entity":"event","event":"payment.captured"}`)
	sig := "492a29b57e8c6d499886d331199df8dbdee8004883243763ecda78ee4693e4a5"
	now := time.Now()
	if _, err := vec.ParseWebhook(header{"X-Razorpay-Signature": sig, "X-Razorpay-Event-Id": "evt_1"}, body, now); !errors.Is(err, payment.ErrMalformedEvent) {
		t.Errorf("vector: %v, want a verified but malformed event", err)
	}
	for _, tt := range []struct {
		name string
		h    header
		body []byte
	}{
		{"tampered body", header{"X-Razorpay-Signature": sig}, []byte(`{"entity":"event","event":"payment.failed"}`)},
		{"wrong signature", header{"X-Razorpay-Signature": strings.Repeat("0", 64)}, body},
		{"no signature", header{}, body},
		{"signed with the key secret", header{"X-Razorpay-Signature": payment.HMACHex("k", body)}, body},
	} {
		if _, err := vec.ParseWebhook(tt.h, tt.body, now); !errors.Is(err, payment.ErrSignature) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}

	ctx := context.Background()
	peer := paymenttest.NewRazorpayPeer(t)
	p := newProvider(t, peer)
	o, err := p.CreateOrder(ctx, order(9))
	if err != nil {
		t.Fatal(err)
	}
	py := peer.Pay(o.ID, payment.MethodNetbanking, paymenttest.RazorpayCaptured)
	for _, event := range []string{"payment.captured", "order.paid"} {
		b, h := peer.Webhook(event, py)
		ev, err := p.ParseWebhook(h, b, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID != h.Get("X-Razorpay-Event-Id") || ev.Kind != payment.EventCaptured || ev.OrderID != o.ID || ev.PaymentID != py["id"] ||
			ev.AmountMinor != 104906 || ev.Method != payment.MethodNetbanking || ev.Instrument.Brand != "HDFC" {
			t.Errorf("%s: %+v", event, ev)
		}
	}
	failed := peer.Pay(o.ID, payment.MethodUPI, paymenttest.RazorpayFailed)
	b, h := peer.Webhook("payment.failed", failed)
	ev, err := p.ParseWebhook(h, b, time.Now())
	if err != nil || ev.Kind != payment.EventFailed || ev.FailureReason == "" {
		t.Errorf("payment.failed: %+v %v", ev, err)
	}
	// Stale: an event created long ago is refused even when signed.
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["created_at"] = time.Now().Add(-100 * time.Hour).Unix()
	old, _ := json.Marshal(m)
	h.Set("X-Razorpay-Signature", payment.HMACHex(peer.WebhookSecret, old))
	if _, err := p.ParseWebhook(h, old, time.Now()); !errors.Is(err, payment.ErrStale) {
		t.Errorf("old event: %v", err)
	}
	// During a rotation, retries signed with the old secret still verify.
	rotated, err := razorpay.New(razorpay.Config{BaseURL: peer.URL, KeyID: peer.KeyID, KeySecret: peer.KeySecret, WebhookSecrets: []string{"whsec_new", peer.WebhookSecret}})
	if err != nil {
		t.Fatal(err)
	}
	b, h = peer.Webhook("payment.captured", py)
	if _, err := rotated.ParseWebhook(h, b, time.Now()); err != nil {
		t.Errorf("old secret during rotation: %v", err)
	}
	// Unknown events are acknowledged and ignored.
	b, h = peer.Webhook("payment.dispute.created", py)
	if ev, err := p.ParseWebhook(h, b, time.Now()); err != nil || ev.Kind != payment.EventIgnored {
		t.Errorf("other event: %+v %v", ev, err)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []razorpay.Config{
		{},
		{KeyID: "k", KeySecret: "s"},
		{KeyID: "k", KeySecret: "s", WebhookSecrets: []string{"s"}},
		{KeyID: "k", KeySecret: "s", WebhookSecrets: []string{"w"}, BaseURL: "ftp://x"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
