package paymenttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/billing/payment"
)

// StripePeer is a local Stripe API: PaymentIntents, refunds, idempotency
// keys and signed webhooks in the documented shapes (form-encoded
// requests with bracketed keys, JSON answers, {"error": {...}} errors,
// Stripe-Signature t=…,v1=…). Like Stripe it saves the answer of a POST
// with an Idempotency-Key and replays it, and refuses the key with other
// parameters (idempotency_error).
type StripePeer struct {
	URL            string
	SecretKey      string
	PublishableKey string
	WebhookSecret  string

	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	seq      int
	intents  map[string]map[string]any
	refunds  map[string]map[string]any
	idem     map[string]stripeSaved
	failNext []int
	requests []string
}

type stripeSaved struct {
	params string
	status int
	body   []byte
}

// NewStripePeer starts the peer; it stops when the test ends.
func NewStripePeer(t testing.TB) *StripePeer {
	p := &StripePeer{t: t, SecretKey: "sk_test_meterd", PublishableKey: "pk_test_meterd", WebhookSecret: "whsec_test",
		intents: map[string]map[string]any{}, refunds: map[string]map[string]any{}, idem: map[string]stripeSaved{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// FailNext makes the next requests answer with these statuses (an
// api_error body), one each.
func (p *StripePeer) FailNext(statuses ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext = append(p.failNext, statuses...)
}

// Requests returns the requests served so far.
func (p *StripePeer) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Intents returns how many PaymentIntents exist.
func (p *StripePeer) Intents() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.intents)
}

func (p *StripePeer) id(prefix string) string {
	p.seq++
	return fmt.Sprintf("%s_3Mtw%010d", prefix, p.seq)
}

func stripeError(status int, typ, code, msg, param string) (int, any) {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	return status, map[string]any{"error": e}
}

var (
	stripeIntent = regexp.MustCompile(`^/v1/payment_intents/([^/]+)$`)
	stripeRefund = regexp.MustCompile(`^/v1/refunds/([^/]+)$`)
)

func (p *StripePeer) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, r.Method+" "+r.URL.Path)
	write := func(status int, v any) []byte {
		b, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(b)
		return b
	}
	if len(p.failNext) > 0 {
		status := p.failNext[0]
		p.failNext = p.failNext[1:]
		write(stripeError(status, "api_error", "", "An unknown error occurred", ""))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+p.SecretKey {
		write(stripeError(401, "invalid_request_error", "", "Invalid API Key provided", ""))
		return
	}
	var form url.Values
	if r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			write(stripeError(400, "invalid_request_error", "", "Invalid request: use application/x-www-form-urlencoded", ""))
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var err error
		if form, err = url.ParseQuery(string(raw)); err != nil {
			write(stripeError(400, "invalid_request_error", "", "Invalid form body", ""))
			return
		}
		if key := r.Header.Get("Idempotency-Key"); key != "" {
			if len(key) > 255 {
				write(stripeError(400, "invalid_request_error", "", "Idempotency keys are at most 255 characters", ""))
				return
			}
			params := r.URL.Path + "?" + form.Encode()
			if saved, ok := p.idem[key]; ok {
				if saved.params != params {
					write(stripeError(400, "idempotency_error", "", "Keys for idempotent requests can only be used with the same parameters they were first used with.", ""))
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Idempotent-Replayed", "true")
				w.WriteHeader(saved.status)
				_, _ = w.Write(saved.body)
				return
			}
			status, v := p.post(r.URL.Path, form)
			b := write(status, v)
			if status < 400 || status >= 500 {
				p.idem[key] = stripeSaved{params: params, status: status, body: b}
			}
			return
		}
		write(p.post(r.URL.Path, form))
		return
	}
	switch {
	case r.Method == http.MethodGet && stripeIntent.MatchString(r.URL.Path):
		pi, ok := p.intents[stripeIntent.FindStringSubmatch(r.URL.Path)[1]]
		if !ok {
			write(stripeError(404, "invalid_request_error", "resource_missing", "No such payment_intent", "intent"))
			return
		}
		out := pi
		if slicesContains(r.URL.Query()["expand[]"], "latest_charge") && pi["latest_charge"] != nil {
			out = cloneMap(pi)
			out["latest_charge"] = p.charge(pi)
		}
		write(200, out)
	case r.Method == http.MethodGet && stripeRefund.MatchString(r.URL.Path):
		rf, ok := p.refunds[stripeRefund.FindStringSubmatch(r.URL.Path)[1]]
		if !ok {
			write(stripeError(404, "invalid_request_error", "resource_missing", "No such refund", "id"))
			return
		}
		write(200, rf)
	default:
		write(stripeError(404, "invalid_request_error", "", "Unrecognized request URL", ""))
	}
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// metadata collects metadata[k]=v form fields.
func metadata(form url.Values) map[string]any {
	out := map[string]any{}
	for k, v := range form {
		if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") {
			out[k[len("metadata["):len(k)-1]] = v[0]
		}
	}
	return out
}

func (p *StripePeer) post(path string, form url.Values) (int, any) {
	switch path {
	case "/v1/payment_intents":
		amount, err := strconv.ParseInt(form.Get("amount"), 10, 64)
		if err != nil || amount < 50 {
			return stripeError(400, "invalid_request_error", "amount_too_small", "Amount must be at least 50 cents", "amount")
		}
		cur := form.Get("currency")
		if cur == "" || cur != strings.ToLower(cur) {
			return stripeError(400, "invalid_request_error", "", "Invalid currency: currency must be a lowercase ISO code", "currency")
		}
		id := p.id("pi")
		pi := map[string]any{"id": id, "object": "payment_intent", "amount": amount, "amount_received": 0, "currency": cur,
			"client_secret": id + "_secret_" + strconv.Itoa(p.seq), "status": "requires_payment_method", "created": time.Now().Unix(),
			"description": form.Get("description"), "metadata": metadata(form), "latest_charge": nil, "last_payment_error": nil,
			"next_action": nil, "payment_method": nil, "payment_method_types": form["payment_method_types[]"], "livemode": false,
			"setup_future_usage": nilIfEmpty(form.Get("setup_future_usage"))}
		if len(form["payment_method_types[]"]) == 0 {
			pi["payment_method_types"] = []string{"card"}
		}
		p.intents[id] = pi
		if pm := form.Get("payment_method"); pm != "" {
			pi["payment_method"] = pm
			if form.Get("confirm") == "true" {
				p.settle(pi, pm)
			} else {
				pi["status"] = "requires_confirmation"
			}
		}
		return 200, pi
	case "/v1/refunds":
		pi, ok := p.intents[form.Get("payment_intent")]
		if !ok {
			return stripeError(400, "invalid_request_error", "resource_missing", "No such payment_intent", "payment_intent")
		}
		if pi["status"] != "succeeded" {
			return stripeError(400, "invalid_request_error", "charge_not_refundable", "This PaymentIntent has no successful charge to refund", "payment_intent")
		}
		received, _ := integer(pi["amount_received"])
		refunded, _ := integer(pi["amount_refunded_meterd_peer"])
		amount := received - refunded
		if s := form.Get("amount"); s != "" {
			a, err := strconv.ParseInt(s, 10, 64)
			if err != nil || a <= 0 {
				return stripeError(400, "invalid_request_error", "", "Invalid integer: amount", "amount")
			}
			amount = a
		}
		if amount > received-refunded {
			return stripeError(400, "invalid_request_error", "amount_too_large", "Refund amount is greater than unrefunded amount on charge", "amount")
		}
		if rs := form.Get("reason"); rs != "" && rs != "duplicate" && rs != "fraudulent" && rs != "requested_by_customer" {
			return stripeError(400, "invalid_request_error", "", "Invalid reason", "reason")
		}
		id := p.id("re")
		rf := map[string]any{"id": id, "object": "refund", "amount": amount, "currency": pi["currency"], "payment_intent": pi["id"],
			"charge": pi["latest_charge"], "reason": nilIfEmpty(form.Get("reason")), "status": "succeeded", "metadata": metadata(form), "created": time.Now().Unix()}
		p.refunds[id] = rf
		pi["amount_refunded_meterd_peer"] = refunded + amount
		return 200, rf
	}
	return stripeError(404, "invalid_request_error", "", "Unrecognized request URL", "")
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// settle confirms pi with a test PaymentMethod: pm_card_visa succeeds,
// pm_card_chargeDeclined (and pm_card_visa_chargeDeclined) is declined.
func (p *StripePeer) settle(pi map[string]any, pm string) {
	pi["payment_method"] = pm
	ch := p.id("ch")
	pi["latest_charge"] = ch
	if strings.Contains(pm, "Declined") {
		pi["status"] = "requires_payment_method"
		pi["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
			"message": "Your card was declined.", "charge": ch, "payment_method": map[string]any{"id": pm, "type": "card"}}
		return
	}
	pi["status"] = "succeeded"
	pi["amount_received"] = pi["amount"]
	pi["last_payment_error"] = nil
}

func (p *StripePeer) charge(pi map[string]any) map[string]any {
	status := "succeeded"
	if pi["status"] != "succeeded" {
		status = "failed"
	}
	return map[string]any{"id": pi["latest_charge"], "object": "charge", "amount": pi["amount"], "status": status, "payment_intent": pi["id"],
		"payment_method":         pi["payment_method"],
		"payment_method_details": map[string]any{"type": "card", "card": map[string]any{"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}}}
}

// Pay plays the payer confirming the PaymentIntent client-side with a
// test PaymentMethod (pm_card_visa succeeds, pm_card_chargeDeclined is
// declined). It returns the PaymentIntent.
func (p *StripePeer) Pay(intentID, paymentMethod string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	pi, ok := p.intents[intentID]
	if !ok {
		p.t.Fatalf("stripe peer: no payment intent %s", intentID)
	}
	p.settle(pi, paymentMethod)
	return cloneMap(pi)
}

// Webhook returns a delivery of event type typ (payment_intent.succeeded,
// payment_intent.payment_failed, refund.updated …) about object, signed at
// t: the JSON body and its Stripe-Signature header. As in Stripe's events,
// expandable fields (latest_charge) are ids.
func (p *StripePeer) Webhook(typ string, object map[string]any, t time.Time) ([]byte, http.Header) {
	p.mu.Lock()
	p.seq++
	id := fmt.Sprintf("evt_3Mtw%010d", p.seq)
	p.mu.Unlock()
	body, err := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2024-06-20", "created": t.Unix(), "type": typ,
		"livemode": false, "pending_webhooks": 1, "request": map[string]any{"id": nil, "idempotency_key": nil}, "data": map[string]any{"object": object}})
	if err != nil {
		p.t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Stripe-Signature", payment.SignTimestamped(p.WebhookSecret, t, body))
	return body, h
}

// Intent returns a PaymentIntent by id.
func (p *StripePeer) Intent(id string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cloneMap(p.intents[id])
}
