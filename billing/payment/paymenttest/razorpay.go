package paymenttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/billing/payment"
)

// RazorpayPeer is a local Razorpay API: orders, payments, refunds and
// webhooks in the documented request and response shapes. It refuses
// requests Razorpay would refuse (wrong credentials, a missing or
// non-integer amount, a receipt over 40 characters, a refund of an
// uncaptured payment or of more than was captured), and lets a test play
// the payer (Pay) and Razorpay's webhook sender (Webhook).
type RazorpayPeer struct {
	URL           string
	KeyID         string
	KeySecret     string
	WebhookSecret string

	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	seq      int
	orders   map[string]*rzpOrder
	payments map[string]map[string]any
	refunds  map[string]map[string]any // by refund id
	failNext []int                     // statuses to answer the next requests with
	requests []string                  // "METHOD path"
}

type rzpOrder struct {
	entity   map[string]any
	payments []string
}

// NewRazorpayPeer starts the peer; it stops when the test ends.
func NewRazorpayPeer(t testing.TB) *RazorpayPeer {
	p := &RazorpayPeer{t: t, KeyID: "rzp_test_meterd", KeySecret: "test_key_secret", WebhookSecret: "whsec_razor_test",
		orders: map[string]*rzpOrder{}, payments: map[string]map[string]any{}, refunds: map[string]map[string]any{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// FailNext makes the next requests answer with these HTTP statuses (a
// Razorpay SERVER_ERROR body), one each.
func (p *RazorpayPeer) FailNext(statuses ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext = append(p.failNext, statuses...)
}

// Requests returns the requests served so far ("POST /v1/orders").
func (p *RazorpayPeer) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Orders returns how many orders exist.
func (p *RazorpayPeer) Orders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.orders)
}

func (p *RazorpayPeer) id(prefix string) string {
	p.seq++
	return fmt.Sprintf("%s_%014d", prefix, p.seq)
}

func rzpError(w http.ResponseWriter, status int, code, desc string, field any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "description": desc, "source": "business",
		"step": "payment_initiation", "reason": "input_validation_failed", "metadata": map[string]any{}, "field": field}})
}

func rzpJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

var (
	rzpOrderPath    = regexp.MustCompile(`^/v1/orders/([^/]+)$`)
	rzpOrderPays    = regexp.MustCompile(`^/v1/orders/([^/]+)/payments$`)
	rzpRefundCreate = regexp.MustCompile(`^/v1/payments/([^/]+)/refund$`)
	rzpRefundList   = regexp.MustCompile(`^/v1/payments/([^/]+)/refunds$`)
	rzpRefundOne    = regexp.MustCompile(`^/v1/payments/([^/]+)/refunds/([^/]+)$`)
)

func (p *RazorpayPeer) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, r.Method+" "+r.URL.Path)
	if len(p.failNext) > 0 {
		status := p.failNext[0]
		p.failNext = p.failNext[1:]
		rzpError(w, status, "SERVER_ERROR", "We are facing some trouble completing your request at the moment.", nil)
		return
	}
	if id, secret, ok := r.BasicAuth(); !ok || id != p.KeyID || secret != p.KeySecret {
		rzpError(w, http.StatusUnauthorized, "BAD_REQUEST_ERROR", "Authentication failed", nil)
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "content type must be application/json", nil)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "The request body is not valid JSON", nil)
			return
		}
	}
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == "/v1/orders":
		p.createOrder(w, body)
	case r.Method == http.MethodGet && path == "/v1/orders":
		items := []any{}
		for _, o := range p.orders {
			if rc := r.URL.Query().Get("receipt"); rc == "" || o.entity["receipt"] == rc {
				items = append(items, o.entity)
			}
		}
		rzpJSON(w, map[string]any{"entity": "collection", "count": len(items), "items": items})
	case r.Method == http.MethodGet && rzpOrderPath.MatchString(path):
		o, ok := p.orders[rzpOrderPath.FindStringSubmatch(path)[1]]
		if !ok {
			rzpError(w, http.StatusNotFound, "BAD_REQUEST_ERROR", "The id provided does not exist", "id")
			return
		}
		rzpJSON(w, o.entity)
	case r.Method == http.MethodGet && rzpOrderPays.MatchString(path):
		o, ok := p.orders[rzpOrderPays.FindStringSubmatch(path)[1]]
		if !ok {
			rzpError(w, http.StatusNotFound, "BAD_REQUEST_ERROR", "The id provided does not exist", "id")
			return
		}
		items := []any{}
		for _, id := range o.payments {
			items = append(items, p.payments[id])
		}
		rzpJSON(w, map[string]any{"entity": "collection", "count": len(items), "items": items})
	case r.Method == http.MethodPost && rzpRefundCreate.MatchString(path):
		p.createRefund(w, rzpRefundCreate.FindStringSubmatch(path)[1], body)
	case r.Method == http.MethodGet && rzpRefundList.MatchString(path):
		pid := rzpRefundList.FindStringSubmatch(path)[1]
		items := []any{}
		for _, rf := range p.refunds {
			if rf["payment_id"] == pid {
				items = append(items, rf)
			}
		}
		rzpJSON(w, map[string]any{"entity": "collection", "count": len(items), "items": items})
	case r.Method == http.MethodGet && rzpRefundOne.MatchString(path):
		m := rzpRefundOne.FindStringSubmatch(path)
		rf, ok := p.refunds[m[2]]
		if !ok || rf["payment_id"] != m[1] {
			rzpError(w, http.StatusNotFound, "BAD_REQUEST_ERROR", "The id provided does not exist", "id")
			return
		}
		rzpJSON(w, rf)
	default:
		rzpError(w, http.StatusNotFound, "BAD_REQUEST_ERROR", "The requested URL was not found on the server.", nil)
	}
}

// integer returns a JSON number that is a whole number.
func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	}
	return 0, false
}

func (p *RazorpayPeer) createOrder(w http.ResponseWriter, body map[string]any) {
	amount, ok := integer(body["amount"])
	if !ok || amount < 100 {
		rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "The amount must be atleast INR 1.00", "amount")
		return
	}
	currency, _ := body["currency"].(string)
	if currency != "INR" && currency != "USD" {
		rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "The currency is invalid", "currency")
		return
	}
	receipt, _ := body["receipt"].(string)
	if len(receipt) > 40 {
		rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "receipt may not be greater than 40 characters", "receipt")
		return
	}
	if pp, ok := body["partial_payment"]; ok {
		if _, isBool := pp.(bool); !isBool {
			rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "partial_payment must be a boolean", "partial_payment")
			return
		}
	}
	notes := body["notes"]
	if notes == nil {
		notes = []any{}
	}
	id := p.id("order")
	o := map[string]any{"id": id, "entity": "order", "amount": amount, "amount_paid": 0, "amount_due": amount, "currency": currency,
		"receipt": receipt, "offer_id": nil, "status": "created", "attempts": 0, "notes": notes, "created_at": time.Now().Unix()}
	p.orders[id] = &rzpOrder{entity: o}
	rzpJSON(w, o)
}

func (p *RazorpayPeer) createRefund(w http.ResponseWriter, pid string, body map[string]any) {
	py, ok := p.payments[pid]
	if !ok {
		rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "The id provided does not exist", "id")
		return
	}
	if py["status"] != "captured" && py["status"] != "refunded" {
		rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "The payment has not been captured", nil)
		return
	}
	amount, ok := integer(body["amount"])
	refunded, _ := integer(py["amount_refunded"])
	total, _ := integer(py["amount"])
	if !ok || amount <= 0 || amount > total-refunded {
		rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "The refund amount provided is greater than amount captured", "amount")
		return
	}
	if sp, _ := body["speed"].(string); sp != "" && sp != "normal" && sp != "optimum" {
		rzpError(w, http.StatusBadRequest, "BAD_REQUEST_ERROR", "speed is invalid", "speed")
		return
	}
	receipt, _ := body["receipt"].(string)
	id := p.id("rfnd")
	rf := map[string]any{"id": id, "entity": "refund", "amount": amount, "currency": py["currency"], "payment_id": pid, "notes": body["notes"],
		"receipt": receipt, "acquirer_data": map[string]any{"arn": nil}, "created_at": time.Now().Unix(), "batch_id": nil,
		"status": "processed", "speed_processed": "normal", "speed_requested": "normal"}
	p.refunds[id] = rf
	py["amount_refunded"] = refunded + amount
	if refunded+amount == total {
		py["status"] = "refunded"
	}
	rzpJSON(w, rf)
}

// RazorpayOutcome is how a simulated payer's attempt ends.
type RazorpayOutcome string

// Outcomes.
const (
	RazorpayCaptured   RazorpayOutcome = "captured"
	RazorpayAuthorized RazorpayOutcome = "authorized"
	RazorpayFailed     RazorpayOutcome = "failed"
)

// Pay plays the payer: a payment on the order with method (card,
// netbanking, wallet, upi) ending in outcome. It returns the payment
// entity.
func (p *RazorpayPeer) Pay(orderID string, method payment.Method, outcome RazorpayOutcome) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.orders[orderID]
	if !ok {
		p.t.Fatalf("razorpay peer: no order %s", orderID)
	}
	id := p.id("pay")
	py := map[string]any{"id": id, "entity": "payment", "amount": o.entity["amount"], "currency": o.entity["currency"], "status": string(outcome),
		"order_id": orderID, "invoice_id": nil, "international": false, "method": string(method), "amount_refunded": int64(0), "refund_status": nil,
		"captured": outcome == RazorpayCaptured, "description": "", "card_id": nil, "card": nil, "bank": nil, "wallet": nil, "vpa": nil,
		"email": "payer@example.com", "contact": "+919000090000", "token_id": nil, "notes": []any{}, "fee": nil, "tax": nil,
		"error_code": nil, "error_description": nil, "error_source": nil, "error_step": nil, "error_reason": nil, "created_at": time.Now().Unix()}
	switch method {
	case payment.MethodCard:
		py["card_id"] = "card_" + id[4:]
		py["card"] = map[string]any{"id": "card_" + id[4:], "entity": "card", "name": "Test Payer", "last4": "1111", "network": "Visa",
			"type": "debit", "issuer": nil, "international": false, "emi": false}
	case payment.MethodNetbanking:
		py["bank"] = "HDFC"
	case payment.MethodWallet:
		py["wallet"] = "paytm"
	case payment.MethodUPI:
		py["vpa"] = "success@razorpay"
		if outcome == RazorpayFailed {
			py["vpa"] = "failure@razorpay"
		}
	}
	if outcome == RazorpayFailed {
		py["error_code"] = "BAD_REQUEST_ERROR"
		py["error_description"] = "Payment failed because the bank declined it"
		py["error_source"], py["error_step"], py["error_reason"] = "bank", "payment_authorization", "payment_declined"
	}
	p.payments[id] = py
	o.payments = append(o.payments, id)
	o.entity["attempts"] = len(o.payments)
	o.entity["status"] = "attempted"
	if outcome == RazorpayCaptured {
		o.entity["status"] = "paid"
		o.entity["amount_paid"] = o.entity["amount"]
		o.entity["amount_due"] = 0
	}
	return py
}

// CheckoutSignature is what Checkout hands the payer's browser:
// hex(HMAC-SHA256(key_secret, order_id|payment_id)).
func (p *RazorpayPeer) CheckoutSignature(orderID, paymentID string) string {
	return payment.HMACHex(p.KeySecret, []byte(orderID+"|"+paymentID))
}

// Webhook returns a delivery of event (payment.captured, payment.failed,
// order.paid, refund.processed …) about the payment or refund entity, as
// Razorpay sends it: the JSON body and its X-Razorpay-Signature and
// X-Razorpay-Event-Id headers.
func (p *RazorpayPeer) Webhook(event string, entity map[string]any) ([]byte, http.Header) {
	p.mu.Lock()
	p.seq++
	evID := fmt.Sprintf("evt_%014d", p.seq)
	p.mu.Unlock()
	payload := map[string]any{}
	contains := []string{}
	switch {
	case strings.HasPrefix(event, "refund."):
		payload["refund"] = map[string]any{"entity": entity}
		contains = append(contains, "refund")
		p.mu.Lock()
		if py, ok := p.payments[entity["payment_id"].(string)]; ok {
			payload["payment"] = map[string]any{"entity": py}
			contains = append(contains, "payment")
		}
		p.mu.Unlock()
	default:
		payload["payment"] = map[string]any{"entity": entity}
		contains = append(contains, "payment")
		if event == "order.paid" {
			p.mu.Lock()
			payload["order"] = map[string]any{"entity": p.orders[entity["order_id"].(string)].entity}
			p.mu.Unlock()
			contains = append(contains, "order")
		}
	}
	body, err := json.Marshal(map[string]any{"entity": "event", "account_id": "acc_BFQ7uQEaa7j2z7", "event": event, "contains": contains,
		"payload": payload, "created_at": time.Now().Unix()})
	if err != nil {
		p.t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Razorpay-Signature", payment.HMACHex(p.WebhookSecret, body))
	h.Set("X-Razorpay-Event-Id", evID)
	return body, h
}

// Refund returns a refund entity by id.
func (p *RazorpayPeer) Refund(id string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refunds[id]
}

// SetRefundStatus changes a refund's status (pending, processed, failed).
func (p *RazorpayPeer) SetRefundStatus(id, status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refunds[id]["status"] = status
}
