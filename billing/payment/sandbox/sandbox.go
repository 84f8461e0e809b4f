// Package sandbox is a payment provider built into meterd, so that a
// payment can be taken offline end to end (meterd dev, tests, demos)
// through exactly the paths real providers use.
//
// The Gateway plays the remote provider: CreateOrder makes an order and
// returns a redirect to the sandbox checkout page (served by meterd at
// /sandbox/checkout?order=…, rendered here); there the payer picks a test
// instrument for the order's method, each with a known outcome:
//
//	card        card_visa (succeeds), card_mastercard (succeeds),
//	            card_declined (card_declined), card_insufficient_funds
//	netbanking  netbanking_success, netbanking_failure (cancelled at the bank)
//	wallet      wallet_success, wallet_failure (insufficient balance)
//	upi         upi_success (success@sandbox), upi_failure (failure@sandbox)
//	any         abandon (leave without paying: no event; reconciliation
//	            expires the payment once the abandonment window ends)
//
// After an attempt the Gateway delivers signed webhooks to meterd's
// /api/webhooks/sandbox like a real provider: asynchronously, at least
// once, retried with backoff until a 2xx (payment.authorized then
// payment.captured, or payment.failed; refund.processed after a refund).
// Deliveries are signed X-Sandbox-Signature: t=<unix>,v1=<hex>, v1 =
// hex(HMAC-SHA256(secret, "<t>.<body>")), checked with a timestamp
// tolerance as Stripe's are. Checkout's return link carries
// sandbox_payment_id and sandbox_signature = hex(HMAC-SHA256(secret,
// order_id|payment_id)), as Razorpay's Checkout does.
//
// Saved methods are tokens "sbx_tok_<instrument>": paying with one settles
// at once with the instrument's outcome.
//
// State lives in memory: restarting forgets orders, and reconciliation
// expires payments whose sandbox order is gone once the abandonment window
// ends. The Gateway is a component: Start runs the webhook sender, Stop
// ends it.
//
// sandbox imports billing/payment and the standard library (html/template,
// net/http for the sender); it must not import pgx, Fiber, api or another
// provider.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/meterd/meterd/billing/payment"
)

// Name is the provider's name.
const Name = "sandbox"

// Outcomes of a test instrument.
const (
	OutcomeCaptured  = "captured"
	OutcomeFailed    = "failed"
	OutcomeAbandoned = "abandoned"
)

// Instrument is a test instrument of the sandbox checkout.
type Instrument struct {
	Code          string
	Method        payment.Method // "" for every method (abandon)
	Label         string
	Brand         string
	Last4         string
	Outcome       string
	FailureCode   string
	FailureReason string
}

var instruments = []Instrument{
	{Code: "card_visa", Method: payment.MethodCard, Label: "Visa •••• 1111 — succeeds", Brand: "Visa", Last4: "1111", Outcome: OutcomeCaptured},
	{Code: "card_mastercard", Method: payment.MethodCard, Label: "Mastercard •••• 4444 — succeeds", Brand: "Mastercard", Last4: "4444", Outcome: OutcomeCaptured},
	{Code: "card_declined", Method: payment.MethodCard, Label: "Visa •••• 0002 — declined by the bank", Brand: "Visa", Last4: "0002", Outcome: OutcomeFailed,
		FailureCode: "card_declined", FailureReason: "The card was declined by the issuing bank."},
	{Code: "card_insufficient_funds", Method: payment.MethodCard, Label: "Visa •••• 9995 — insufficient funds", Brand: "Visa", Last4: "9995", Outcome: OutcomeFailed,
		FailureCode: "insufficient_funds", FailureReason: "The card has insufficient funds."},
	{Code: "netbanking_success", Method: payment.MethodNetbanking, Label: "Sandbox Bank — the payer approves", Brand: "Sandbox Bank", Outcome: OutcomeCaptured},
	{Code: "netbanking_failure", Method: payment.MethodNetbanking, Label: "Sandbox Bank — the payer cancels at the bank", Brand: "Sandbox Bank", Outcome: OutcomeFailed,
		FailureCode: "bank_cancelled", FailureReason: "The payment was cancelled at the bank."},
	{Code: "wallet_success", Method: payment.MethodWallet, Label: "Sandbox Wallet — pays", Brand: "Sandbox Wallet", Outcome: OutcomeCaptured},
	{Code: "wallet_failure", Method: payment.MethodWallet, Label: "Sandbox Wallet — insufficient balance", Brand: "Sandbox Wallet", Outcome: OutcomeFailed,
		FailureCode: "wallet_insufficient_balance", FailureReason: "The wallet balance is too low."},
	{Code: "upi_success", Method: payment.MethodUPI, Label: "success@sandbox — approves the request", Brand: "UPI", Outcome: OutcomeCaptured},
	{Code: "upi_failure", Method: payment.MethodUPI, Label: "failure@sandbox — declines the request", Brand: "UPI", Outcome: OutcomeFailed,
		FailureCode: "upi_declined", FailureReason: "The UPI request was declined."},
	{Code: "abandon", Label: "Leave without paying (abandoned checkout)", Outcome: OutcomeAbandoned},
}

// Instruments returns the test instruments offered for method m (every
// method's, for ""), the abandon choice last.
func Instruments(m payment.Method) []Instrument {
	var out []Instrument
	for _, in := range instruments {
		if in.Method == m || in.Method == "" || m == "" {
			out = append(out, in)
		}
	}
	return out
}

func instrument(code string) (Instrument, bool) {
	for _, in := range instruments {
		if in.Code == code {
			return in, true
		}
	}
	return Instrument{}, false
}

// Config configures the sandbox.
type Config struct {
	// CheckoutURL is the checkout page as payers reach it. Default
	// "/sandbox/checkout" (relative to meterd's public URL).
	CheckoutURL string
	// WebhookURL is where webhooks are delivered (meterd's
	// /api/webhooks/sandbox). Required to Start.
	WebhookURL string
	// Secret signs webhooks and checkout callbacks.
	Secret string
	// Tolerance is the largest accepted |now − signature timestamp| of a
	// webhook. Default 300 s.
	Tolerance time.Duration
	// Retries is how many times a delivery is retried after a failure.
	// Default 8.
	Retries int
	// RetryBackoff is the first wait before a retry, doubling up to a
	// minute. Default 1 s.
	RetryBackoff time.Duration
	// OnDelivery, when set, is told of every delivery attempt (tests await
	// deliveries with it).
	OnDelivery func(d Delivery)
	Client     *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Secret) < 16 {
		errs = append(errs, errors.New("sandbox: the secret must have at least 16 characters"))
	}
	if c.WebhookURL != "" {
		if u, err := url.Parse(c.WebhookURL); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("sandbox: webhook URL %q is not an absolute URL", c.WebhookURL))
		}
	}
	if c.Tolerance < 0 || c.Retries < 0 || c.RetryBackoff < 0 {
		errs = append(errs, errors.New("sandbox: tolerance and retries must not be negative"))
	}
	return errors.Join(errs...)
}

// Delivery is one webhook delivery attempt.
type Delivery struct {
	EventID string
	Type    string
	OrderID string
	Attempt int
	Status  int // HTTP status, 0 if the request failed
	Err     error
}

// Webhook is a webhook the sandbox sent (or will send).
type Webhook struct {
	EventID string
	Type    string
	OrderID string
	Body    []byte
	Header  http.Header
}

type attempt struct {
	id         string
	instrument Instrument
	status     string // captured, failed
	at         time.Time
}

type order struct {
	id          string
	reference   string
	amountMinor int64
	currency    string
	method      payment.Method
	description string
	returnURL   string
	created     time.Time
	attempts    []attempt
	refunded    int64
}

type refund struct {
	id        string
	orderID   string
	paymentID string
	reference string
	amount    int64
}

// Gateway is the sandbox provider and its simulated remote side.
type Gateway struct {
	cfg Config

	mu       sync.Mutex
	seq      int
	orders   map[string]*order
	byRef    map[string]string // reference → order id
	refunds  map[string]*refund
	webhooks []Webhook
	queue    []Webhook

	wake   chan struct{}
	ctx    context.Context // the sender's; cancelled by Stop
	cancel context.CancelFunc
	done   chan struct{}
}

var _ payment.Provider = (*Gateway)(nil)

// New returns the sandbox.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CheckoutURL == "" {
		cfg.CheckoutURL = "/sandbox/checkout"
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 300 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 8
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Gateway{cfg: cfg, orders: map[string]*order{}, byRef: map[string]string{}, refunds: map[string]*refund{}, wake: make(chan struct{}, 1)}, nil
}

// Name implements payment.Provider.
func (g *Gateway) Name() string { return Name }

// Supports implements payment.Provider: every method.
func (g *Gateway) Supports(m payment.Method) bool {
	_, err := payment.ParseMethod(string(m))
	return err == nil
}

func (g *Gateway) next(prefix string) string {
	g.seq++
	return fmt.Sprintf("%s_%06d", prefix, g.seq)
}

// CreateOrder implements payment.Provider: an order (the same one again
// for the same reference) and a redirect to the checkout page; with a
// saved token ("sbx_tok_<instrument>") the payment settles at once.
func (g *Gateway) CreateOrder(_ context.Context, r payment.OrderRequest) (payment.Order, error) {
	if r.AmountMinor <= 0 || r.Currency == "" || r.Reference == "" {
		return payment.Order{}, &payment.ProviderError{Provider: Name, Op: "create_order", Status: 400, Code: "invalid_request", Message: "amount, currency and reference are required"}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := g.orders[g.byRef[r.Reference]]
	if !ok {
		o = &order{id: g.next("sbx_order"), reference: r.Reference, amountMinor: r.AmountMinor, currency: strings.ToUpper(r.Currency), method: r.Method,
			description: r.Description, returnURL: r.ReturnURL, created: g.cfg.Now()}
		g.orders[o.id], g.byRef[r.Reference] = o, o.id
	}
	out := payment.Order{ID: o.id, Action: payment.NextAction{Type: "redirect", URL: g.cfg.CheckoutURL + "?order=" + url.QueryEscape(o.id)}} // g.mu held
	if r.SavedToken != "" {
		in, ok := instrument(strings.TrimPrefix(r.SavedToken, "sbx_tok_"))
		if !ok || in.Outcome == OutcomeAbandoned || in.Method != r.Method {
			return payment.Order{}, &payment.ProviderError{Provider: Name, Op: "create_order", Status: 400, Code: "invalid_token", Message: "unknown saved method token"}
		}
		if len(o.attempts) == 0 {
			g.attemptLocked(o, in, false)
		}
		st := g.stateLocked(o)
		out.Immediate, out.Action = &st, payment.NextAction{Type: "none"}
	}
	return out, nil
}

// attemptLocked records the payer's attempt with in and queues its
// webhooks (unless quiet: an immediate settlement answers synchronously).
func (g *Gateway) attemptLocked(o *order, in Instrument, notify bool) attempt {
	a := attempt{id: g.next("sbx_pay"), instrument: in, status: in.Outcome, at: g.cfg.Now()}
	o.attempts = append(o.attempts, a)
	if notify {
		if a.status == OutcomeCaptured {
			g.queueLocked("payment.authorized", o, &a, nil)
			g.queueLocked("payment.captured", o, &a, nil)
		} else {
			g.queueLocked("payment.failed", o, &a, nil)
		}
	}
	return a
}

func (g *Gateway) stateLocked(o *order) payment.OrderState {
	st := payment.OrderState{OrderID: o.id, Kind: payment.EventPending, Currency: o.currency, Method: o.method, Attempts: len(o.attempts)}
	var best *attempt
	for i := range o.attempts {
		a := &o.attempts[i]
		if a.status == OutcomeCaptured {
			best = a
			break
		}
		best = a
	}
	if best == nil {
		return st
	}
	st.PaymentID, st.AmountMinor, st.At = best.id, o.amountMinor, best.at.UTC()
	st.Instrument = payment.Instrument{Brand: best.instrument.Brand, Last4: best.instrument.Last4}
	if best.status == OutcomeCaptured {
		st.Kind = payment.EventCaptured
	} else {
		st.Kind, st.FailureCode, st.FailureReason = payment.EventFailed, best.instrument.FailureCode, best.instrument.FailureReason
	}
	return st
}

// FetchOrder implements payment.Provider.
func (g *Gateway) FetchOrder(_ context.Context, orderID string) (payment.OrderState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := g.orders[orderID]
	if !ok {
		return payment.OrderState{}, fmt.Errorf("sandbox order %s: %w", orderID, payment.ErrOrderNotFound)
	}
	return g.stateLocked(o), nil
}

// Refund implements payment.Provider: processed at once (one per
// reference), with a refund.processed webhook.
func (g *Gateway) Refund(_ context.Context, r payment.RefundRequest) (payment.RefundState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rf := range g.refunds {
		if rf.reference == r.Reference {
			return payment.RefundState{ID: rf.id, Reference: rf.reference, Status: payment.RefundProcessed, AmountMinor: rf.amount}, nil
		}
	}
	o, ok := g.orders[r.OrderID]
	if !ok || g.stateLocked(o).Kind != payment.EventCaptured {
		return payment.RefundState{}, &payment.ProviderError{Provider: Name, Op: "refund", Status: 400, Code: "not_captured", Message: "the order has no captured payment"}
	}
	if r.AmountMinor <= 0 || r.AmountMinor > o.amountMinor-o.refunded {
		return payment.RefundState{}, &payment.ProviderError{Provider: Name, Op: "refund", Status: 400, Code: "amount_too_large", Message: "more than the unrefunded amount"}
	}
	rf := &refund{id: g.next("sbx_rfnd"), orderID: o.id, paymentID: g.stateLocked(o).PaymentID, reference: r.Reference, amount: r.AmountMinor}
	g.refunds[rf.id] = rf
	o.refunded += r.AmountMinor
	g.queueLocked("refund.processed", o, nil, rf)
	return payment.RefundState{ID: rf.id, Reference: rf.reference, Status: payment.RefundProcessed, AmountMinor: rf.amount}, nil
}

// FetchRefund implements payment.Provider.
func (g *Gateway) FetchRefund(_ context.Context, _ payment.RefundRequest, refundID string) (payment.RefundState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rf, ok := g.refunds[refundID]
	if !ok {
		return payment.RefundState{}, &payment.ProviderError{Provider: Name, Op: "fetch_refund", Status: 404, Code: "not_found", Message: "no such refund"}
	}
	return payment.RefundState{ID: rf.id, Reference: rf.reference, Status: payment.RefundProcessed, AmountMinor: rf.amount}, nil
}

// VerifyCheckout implements payment.Provider: sandbox_signature must be
// hex(HMAC-SHA256(secret, orderID|sandbox_payment_id)).
func (g *Gateway) VerifyCheckout(orderID string, fields map[string]string) (string, error) {
	pid, sig := fields["sandbox_payment_id"], fields["sandbox_signature"]
	if pid == "" || sig == "" || !payment.EqualHex(sig, payment.HMACHex(g.cfg.Secret, []byte(orderID+"|"+pid))) {
		return "", payment.ErrSignature
	}
	return pid, nil
}

// eventBody is a sandbox webhook body.
type eventBody struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
	Data    struct {
		OrderID    string `json:"order_id"`
		PaymentID  string `json:"payment_id,omitempty"`
		Amount     int64  `json:"amount"`
		Currency   string `json:"currency"`
		Method     string `json:"method"`
		Status     string `json:"status"`
		Instrument struct {
			Brand string `json:"brand,omitempty"`
			Last4 string `json:"last4,omitempty"`
		} `json:"instrument"`
		ErrorCode   string `json:"error_code,omitempty"`
		ErrorReason string `json:"error_description,omitempty"`
		Refund      *struct {
			ID        string `json:"id"`
			Reference string `json:"reference"`
			Amount    int64  `json:"amount"`
			Status    string `json:"status"`
		} `json:"refund,omitempty"`
	} `json:"data"`
}

func (g *Gateway) queueLocked(typ string, o *order, a *attempt, rf *refund) {
	var e eventBody
	e.ID, e.Type, e.Created = g.next("evt_sbx"), typ, g.cfg.Now().Unix()
	e.Data.OrderID, e.Data.Amount, e.Data.Currency, e.Data.Method = o.id, o.amountMinor, o.currency, string(o.method)
	if a != nil {
		e.Data.PaymentID, e.Data.Status = a.id, a.status
		if typ == "payment.authorized" {
			e.Data.Status = "authorized"
		}
		e.Data.Instrument.Brand, e.Data.Instrument.Last4 = a.instrument.Brand, a.instrument.Last4
		e.Data.ErrorCode, e.Data.ErrorReason = a.instrument.FailureCode, a.instrument.FailureReason
	}
	if rf != nil {
		e.Data.PaymentID, e.Data.Amount, e.Data.Status = rf.paymentID, rf.amount, "refunded"
		e.Data.Refund = &struct {
			ID        string `json:"id"`
			Reference string `json:"reference"`
			Amount    int64  `json:"amount"`
			Status    string `json:"status"`
		}{ID: rf.id, Reference: rf.reference, Amount: rf.amount, Status: "processed"}
	}
	body, _ := json.Marshal(e)
	w := Webhook{EventID: e.ID, Type: typ, OrderID: o.id, Body: body, Header: http.Header{}}
	w.Header.Set("Content-Type", "application/json")
	w.Header.Set("X-Sandbox-Signature", payment.SignTimestamped(g.cfg.Secret, g.cfg.Now(), body))
	g.webhooks = append(g.webhooks, w)
	g.queue = append(g.queue, w)
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Webhooks returns the webhooks sent about an order (every order's for
// ""), oldest first, signed as when they were queued.
func (g *Gateway) Webhooks(orderID string) []Webhook {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Webhook
	for _, w := range g.webhooks {
		if orderID == "" || w.OrderID == orderID {
			out = append(out, w)
		}
	}
	return out
}

// ParseWebhook implements payment.Provider.
func (g *Gateway) ParseWebhook(h payment.Header, body []byte, now time.Time) (payment.Event, error) {
	if err := payment.VerifyTimestamped(h.Get("X-Sandbox-Signature"), body, []string{g.cfg.Secret}, g.cfg.Tolerance, now); err != nil {
		return payment.Event{}, err
	}
	var e eventBody
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" || e.Type == "" || e.Data.OrderID == "" {
		return payment.Event{}, payment.ErrMalformedEvent
	}
	ev := payment.Event{Provider: Name, ID: e.ID, Type: e.Type, OrderID: e.Data.OrderID, PaymentID: e.Data.PaymentID, AmountMinor: e.Data.Amount,
		Currency: e.Data.Currency, Method: payment.Method(e.Data.Method), Instrument: payment.Instrument{Brand: e.Data.Instrument.Brand, Last4: e.Data.Instrument.Last4},
		FailureCode: e.Data.ErrorCode, FailureReason: e.Data.ErrorReason, OccurredAt: time.Unix(e.Created, 0).UTC()}
	switch e.Type {
	case "payment.authorized":
		ev.Kind = payment.EventAuthorized
	case "payment.captured":
		ev.Kind = payment.EventCaptured
	case "payment.failed":
		ev.Kind = payment.EventFailed
	case "refund.processed":
		if e.Data.Refund == nil {
			return payment.Event{}, payment.ErrMalformedEvent
		}
		ev.Kind = payment.EventRefundProcessed
		ev.Refund = &payment.RefundState{ID: e.Data.Refund.ID, Reference: e.Data.Refund.Reference, AmountMinor: e.Data.Refund.Amount, Status: payment.RefundProcessed}
	default:
		ev.Kind = payment.EventIgnored
	}
	return ev, nil
}

// CheckoutOrder is what the checkout page shows about an order.
type CheckoutOrder struct {
	ID          string
	Amount      string // "1,049.06"
	Currency    string
	Method      payment.Method
	Description string
	ReturnURL   string
	Paid        bool
	Instruments []Instrument
}

// Order returns an order for the checkout page.
func (g *Gateway) Order(orderID string) (CheckoutOrder, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := g.orders[orderID]
	if !ok {
		return CheckoutOrder{}, fmt.Errorf("sandbox order %q: %w", orderID, payment.ErrNotFound)
	}
	return CheckoutOrder{ID: o.id, Amount: payment.FromMinor(o.amountMinor, o.currency).StringFixed(payment.MinorExponent(o.currency)),
		Currency: o.currency, Method: o.method, Description: o.description, ReturnURL: o.returnURL,
		Paid: g.stateLocked(o).Kind == payment.EventCaptured, Instruments: Instruments(o.method)}, nil
}

// Result is how a checkout attempt ended.
type Result struct {
	OrderID    string
	PaymentID  string // "" when abandoned
	Outcome    string // captured, failed, abandoned
	Instrument Instrument
	// ReturnURL is the merchant's return URL with sandbox_order_id,
	// sandbox_payment_id and sandbox_signature added (when paid or
	// failed).
	ReturnURL string
}

// Pay plays the payer choosing instrument code on the checkout page: the
// attempt is recorded and its webhooks queued. An order already paid is
// not paid again (ErrConflict); "abandon" records nothing.
func (g *Gateway) Pay(orderID, code string) (Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := g.orders[orderID]
	if !ok {
		return Result{}, fmt.Errorf("sandbox order %q: %w", orderID, payment.ErrNotFound)
	}
	in, ok := instrument(code)
	if !ok || (in.Method != "" && in.Method != o.method) {
		return Result{}, fmt.Errorf("%w: %q is not a test instrument for %s payments", payment.ErrInvalidInput, code, o.method)
	}
	if g.stateLocked(o).Kind == payment.EventCaptured {
		return Result{}, fmt.Errorf("%w: order %s is paid", payment.ErrConflict, o.id)
	}
	res := Result{OrderID: o.id, Outcome: in.Outcome, Instrument: in, ReturnURL: o.returnURL}
	if in.Outcome == OutcomeAbandoned {
		return res, nil
	}
	a := g.attemptLocked(o, in, true)
	res.PaymentID = a.id
	if o.returnURL != "" {
		sep := "?"
		if strings.Contains(o.returnURL, "?") {
			sep = "&"
		}
		res.ReturnURL = o.returnURL + sep + url.Values{"sandbox_order_id": {o.id}, "sandbox_payment_id": {a.id},
			"sandbox_signature": {payment.HMACHex(g.cfg.Secret, []byte(o.id+"|"+a.id))}}.Encode()
	}
	return res, nil
}

type urls struct{ webhook, checkout string }

func (g *Gateway) urls() urls {
	g.mu.Lock()
	defer g.mu.Unlock()
	return urls{webhook: g.cfg.WebhookURL, checkout: g.cfg.CheckoutURL}
}

// SetBaseURL points the checkout page and the webhooks at meterd's base
// URL ("http://127.0.0.1:8080"), for servers whose address is known only
// once they listen (meterd dev on port 0). Call it before Start.
func (g *Gateway) SetBaseURL(base string) {
	base = strings.TrimRight(base, "/")
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cfg.WebhookURL, g.cfg.CheckoutURL = base+"/api/webhooks/sandbox", base+"/sandbox/checkout"
}

// Start runs the webhook sender until Stop.
func (g *Gateway) Start(ctx context.Context) error {
	if g.urls().webhook == "" {
		return errors.New("sandbox: no webhook URL to deliver to")
	}
	g.ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	g.done = make(chan struct{})
	go g.send()
	return nil
}

// Stop ends the webhook sender; undelivered webhooks are dropped (like a
// provider's, they would be retried: reconciliation settles their
// payments).
func (g *Gateway) Stop(ctx context.Context) error {
	if g.cancel == nil {
		return nil
	}
	g.cancel()
	select {
	case <-g.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Gateway) send() {
	defer close(g.done)
	for {
		g.mu.Lock()
		var w *Webhook
		if len(g.queue) > 0 {
			w = &g.queue[0]
			g.queue = g.queue[1:]
		}
		g.mu.Unlock()
		if w == nil {
			select {
			case <-g.wake:
				continue
			case <-g.ctx.Done():
				return
			}
		}
		if !g.deliver(*w) {
			return
		}
	}
}

// deliver posts w until a 2xx or the retries run out; false when stopped.
func (g *Gateway) deliver(w Webhook) bool {
	backoff := g.cfg.RetryBackoff
	for attempt := 1; attempt <= g.cfg.Retries+1; attempt++ {
		ctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
		status, err := g.post(ctx, w)
		cancel()
		if g.cfg.OnDelivery != nil {
			g.cfg.OnDelivery(Delivery{EventID: w.EventID, Type: w.Type, OrderID: w.OrderID, Attempt: attempt, Status: status, Err: err})
		}
		if err == nil && status >= 200 && status <= 299 {
			return true
		}
		g.cfg.Logger.Warn("sandbox webhook not accepted", "event_id", w.EventID, "type", w.Type, "attempt", attempt, "status", status, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-g.ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(2*backoff, time.Minute)
	}
	return true
}

func (g *Gateway) post(ctx context.Context, w Webhook) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.urls().webhook, bytes.NewReader(w.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	// Signed at each attempt, as providers do, so a retry is never stale.
	req.Header.Set("X-Sandbox-Signature", payment.SignTimestamped(g.cfg.Secret, g.cfg.Now(), w.Body))
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}
