package sandbox_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/sandbox"
)

const secret = "sandbox-secret-0123456789"

// receiver is meterd's webhook endpoint as the sandbox sees it: it
// verifies and parses each delivery with the gateway, answering failNext
// statuses first.
type receiver struct {
	mu       sync.Mutex
	g        *sandbox.Gateway
	failNext []int
	events   chan payment.Event
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if len(r.failNext) > 0 {
		st := r.failNext[0]
		r.failNext = r.failNext[1:]
		r.mu.Unlock()
		w.WriteHeader(st)
		return
	}
	r.mu.Unlock()
	body, _ := io.ReadAll(req.Body)
	ev, err := r.g.ParseWebhook(req.Header, body, time.Now())
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.events <- ev
}

func start(t *testing.T, failNext ...int) (*sandbox.Gateway, *receiver) {
	t.Helper()
	rc := &receiver{failNext: failNext, events: make(chan payment.Event, 16)}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	g, err := sandbox.New(sandbox.Config{Secret: secret, WebhookURL: srv.URL + "/api/webhooks/sandbox", CheckoutURL: "http://meterd.test/sandbox/checkout",
		RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rc.g = g
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop(context.Background()) })
	return g, rc
}

func next(t *testing.T, rc *receiver) payment.Event {
	t.Helper()
	select {
	case ev := <-rc.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivered")
	}
	return payment.Event{}
}

func req(id int64, m payment.Method) payment.OrderRequest {
	return payment.OrderRequest{PaymentID: id, Reference: payment.Payment{ID: id}.ProviderReference(), AmountMinor: 104906, Currency: "INR",
		Method: m, Description: "Bill DEMO/2024-25/000002", ReturnURL: "https://portal.example/bills/2"}
}

func TestCheckoutPaysAndDeliversWebhooks(t *testing.T) {
	ctx := context.Background()
	g, rc := start(t, 500) // the first delivery fails and is retried
	o, err := g.CreateOrder(ctx, req(1, payment.MethodUPI))
	if err != nil {
		t.Fatal(err)
	}
	if o.Action.Type != "redirect" || o.Action.URL != "http://meterd.test/sandbox/checkout?order="+o.ID {
		t.Fatalf("action %+v", o.Action)
	}
	again, _ := g.CreateOrder(ctx, req(1, payment.MethodUPI))
	if again.ID != o.ID {
		t.Fatalf("a retry made order %s, first %s", again.ID, o.ID)
	}
	page, err := g.CheckoutPage(o.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"INR 1049.06", "upi_success", "upi_failure", "abandon", `action="http://meterd.test/sandbox/checkout"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("checkout page lacks %q", want)
		}
	}
	if strings.Contains(string(page), "card_visa") {
		t.Error("card instruments offered for a UPI order")
	}
	if _, err := g.Pay(o.ID, "card_visa"); !errors.Is(err, payment.ErrInvalidInput) {
		t.Errorf("card instrument on a UPI order: %v", err)
	}
	st, _ := g.FetchOrder(ctx, o.ID)
	if st.Kind != payment.EventPending || st.Attempts != 0 {
		t.Fatalf("before paying: %+v", st)
	}
	res, err := g.Pay(o.ID, "upi_failure")
	if err != nil || res.Outcome != sandbox.OutcomeFailed {
		t.Fatal(res, err)
	}
	if ev := next(t, rc); ev.Kind != payment.EventFailed || ev.OrderID != o.ID || ev.FailureCode != "upi_declined" {
		t.Fatalf("failed event %+v", ev)
	}
	res, err = g.Pay(o.ID, "upi_success")
	if err != nil || res.Outcome != sandbox.OutcomeCaptured {
		t.Fatal(res, err)
	}
	// The return link is signed like Razorpay's Checkout callback.
	if _, err := g.VerifyCheckout(o.ID, map[string]string{"sandbox_payment_id": res.PaymentID,
		"sandbox_signature": payment.HMACHex(secret, []byte(o.ID+"|"+res.PaymentID))}); err != nil || !strings.Contains(res.ReturnURL, "sandbox_signature=") {
		t.Errorf("checkout callback: %v %s", err, res.ReturnURL)
	}
	if _, err := g.VerifyCheckout("sbx_order_other", map[string]string{"sandbox_payment_id": res.PaymentID,
		"sandbox_signature": payment.HMACHex(secret, []byte(o.ID+"|"+res.PaymentID))}); !errors.Is(err, payment.ErrSignature) {
		t.Errorf("callback for another order: %v", err)
	}
	auth, capt := next(t, rc), next(t, rc)
	if auth.Kind != payment.EventAuthorized || capt.Kind != payment.EventCaptured || capt.PaymentID != res.PaymentID || capt.AmountMinor != 104906 || capt.Instrument.Brand != "UPI" {
		t.Fatalf("events %+v %+v", auth, capt)
	}
	if _, err := g.Pay(o.ID, "upi_success"); !errors.Is(err, payment.ErrConflict) {
		t.Errorf("paying a paid order: %v", err)
	}
	st, _ = g.FetchOrder(ctx, o.ID)
	if st.Kind != payment.EventCaptured || st.PaymentID != res.PaymentID || st.Attempts != 2 {
		t.Fatalf("after paying: %+v", st)
	}
	rf, err := g.Refund(ctx, payment.RefundRequest{Reference: "meterd-refund-1", OrderID: o.ID, AmountMinor: 4906})
	if err != nil || rf.Status != payment.RefundProcessed {
		t.Fatal(rf, err)
	}
	if again, _ := g.Refund(ctx, payment.RefundRequest{Reference: "meterd-refund-1", OrderID: o.ID, AmountMinor: 4906}); again.ID != rf.ID {
		t.Errorf("retried refund %s, first %s", again.ID, rf.ID)
	}
	if ev := next(t, rc); ev.Kind != payment.EventRefundProcessed || ev.Refund.ID != rf.ID || ev.Refund.Reference != "meterd-refund-1" {
		t.Fatalf("refund event %+v", ev)
	}
	if _, err := g.Refund(ctx, payment.RefundRequest{Reference: "meterd-refund-2", OrderID: o.ID, AmountMinor: 100001}); !errors.Is(err, payment.ErrProvider) {
		t.Errorf("refund over the rest: %v", err)
	}
}

func TestAbandonAndSavedTokens(t *testing.T) {
	ctx := context.Background()
	g, rc := start(t)
	o, _ := g.CreateOrder(ctx, req(2, payment.MethodCard))
	res, err := g.Pay(o.ID, "abandon")
	if err != nil || res.Outcome != sandbox.OutcomeAbandoned || res.PaymentID != "" {
		t.Fatal(res, err)
	}
	if st, _ := g.FetchOrder(ctx, o.ID); st.Kind != payment.EventPending || st.Attempts != 0 {
		t.Errorf("abandoned: %+v", st)
	}
	if len(g.Webhooks(o.ID)) != 0 {
		t.Error("an abandoned checkout sent webhooks")
	}
	for _, tt := range []struct {
		token string
		kind  payment.EventKind
	}{{"sbx_tok_card_visa", payment.EventCaptured}, {"sbx_tok_card_declined", payment.EventFailed}} {
		r := req(3, payment.MethodCard)
		r.Reference, r.SavedToken = "meterd-payment-"+tt.token, tt.token
		o, err := g.CreateOrder(ctx, r)
		if err != nil || o.Immediate == nil || o.Immediate.Kind != tt.kind {
			t.Errorf("%s: %+v %v", tt.token, o, err)
		}
	}
	if _, err := g.FetchOrder(ctx, "sbx_order_gone"); !errors.Is(err, payment.ErrOrderNotFound) {
		t.Errorf("unknown order: %v", err)
	}
	select {
	case ev := <-rc.events:
		t.Errorf("unexpected webhook %+v", ev)
	default:
	}
}

func TestWebhookSignature(t *testing.T) {
	g, err := sandbox.New(sandbox.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"evt_sbx_1","type":"payment.captured","created":1700000000,"data":{"order_id":"sbx_order_1","payment_id":"sbx_pay_1","amount":100,"currency":"INR","method":"upi","status":"captured","instrument":{}}}`)
	at := time.Unix(1700000000, 0)
	h := http.Header{}
	h.Set("X-Sandbox-Signature", payment.SignTimestamped(secret, at, body))
	if ev, err := g.ParseWebhook(h, body, at); err != nil || ev.Kind != payment.EventCaptured {
		t.Fatalf("good: %+v %v", ev, err)
	}
	if _, err := g.ParseWebhook(h, body, at.Add(10*time.Minute)); !errors.Is(err, payment.ErrStale) {
		t.Errorf("stale: %v", err)
	}
	if _, err := g.ParseWebhook(h, append(body[:len(body)-1:len(body)-1], ' ', '}'), at); !errors.Is(err, payment.ErrSignature) {
		t.Errorf("tampered: %v", err)
	}
	h.Set("X-Sandbox-Signature", payment.SignTimestamped("another-secret-0123456", at, body))
	if _, err := g.ParseWebhook(h, body, at); !errors.Is(err, payment.ErrSignature) {
		t.Errorf("wrong secret: %v", err)
	}
}
