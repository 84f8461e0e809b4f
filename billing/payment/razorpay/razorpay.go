// Package razorpay is the Razorpay payment provider: orders, Checkout,
// payment signatures, webhooks and refunds over Razorpay's REST API v1
// (https://razorpay.com/docs/api/), as billing-anchors §2.1 summarises it:
//
//	POST /v1/orders                        {amount (paise), currency, receipt, notes, partial_payment}
//	                                       → {"id": "order_…", "entity": "order", "status": "created", "attempts": 0, …}
//	GET  /v1/orders?receipt=…              {"entity": "collection", "count": n, "items": [order…]}
//	GET  /v1/orders/{id}                   order
//	GET  /v1/orders/{id}/payments          {"entity": "collection", "items": [payment…]}
//	POST /v1/payments/{id}/refund          {amount, speed, receipt, notes} → {"id": "rfnd_…", "status": "processed"|"pending"|"failed", …}
//	GET  /v1/payments/{id}/refunds         {"entity": "collection", "items": [refund…]}
//	GET  /v1/payments/{id}/refunds/{rid}   refund
//	errors                                 {"error": {"code": "BAD_REQUEST_ERROR", "description": "…", "field": …}}
//
// Requests authenticate with HTTP Basic key_id:key_secret. Amounts are
// integers in paise. The order's receipt carries meterd's payment
// reference; creating an order first looks the reference up, and a refund
// first looks for a refund with the refund's reference, so a retried call
// never makes a second one.
//
// Checkout returns razorpay_payment_id, razorpay_order_id and
// razorpay_signature = hex(HMAC-SHA256(key_secret, order_id|payment_id));
// VerifyCheckout checks it against the order id meterd stored. Webhooks
// carry X-Razorpay-Signature = hex(HMAC-SHA256(webhook_secret, raw body))
// and X-Razorpay-Event-Id (the same on every retry, the dedupe key); the
// webhook secret is not the key secret, and older secrets stay valid
// during a rotation. Razorpay signs no timestamp, so replays are stopped
// by the event id and, for events never seen, by refusing events created
// more than MaxEventAge ago (Razorpay stops retrying after 24 h).
//
// Events: payment.authorized, payment.captured, payment.failed,
// order.paid (a capture), refund.created, refund.processed, refund.failed;
// others are acknowledged and ignored.
//
// razorpay imports billing/payment and the standard library; it must not
// import pgx, Fiber, api or another provider.
package razorpay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/internal/providerhttp"
)

// Name is the provider's name.
const Name = "razorpay"

// Config configures the adapter.
type Config struct {
	// BaseURL is the API root. Default "https://api.razorpay.com".
	BaseURL string
	// KeyID (rzp_live_… or rzp_test_…) and KeySecret authenticate API
	// calls; KeyID is also given to Checkout.
	KeyID     string
	KeySecret string
	// WebhookSecrets verify webhooks: the current secret first, then any
	// older ones still signing retries after a rotation.
	WebhookSecrets []string
	// MerchantName is shown in Checkout. Default "meterd".
	MerchantName string
	// MaxEventAge refuses webhook events created longer ago than this
	// (replays of old deliveries). Default 72 h; Razorpay retries for
	// 24 h.
	MaxEventAge time.Duration
	// Client makes the HTTP calls (timeouts come from the caller's context
	// through billing/payment/guard). Default a client with a 30 s
	// timeout.
	Client *http.Client
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.KeyID == "" || c.KeySecret == "" {
		errs = append(errs, errors.New("razorpay: key id and key secret are required"))
	}
	if len(c.WebhookSecrets) == 0 || c.WebhookSecrets[0] == "" {
		errs = append(errs, errors.New("razorpay: a webhook secret is required"))
	}
	for _, s := range c.WebhookSecrets {
		if s != "" && s == c.KeySecret {
			errs = append(errs, errors.New("razorpay: the webhook secret must not be the key secret"))
		}
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, fmt.Errorf("razorpay: base URL %q is not an http(s) URL", c.BaseURL))
		}
	}
	if c.MaxEventAge < 0 {
		errs = append(errs, errors.New("razorpay: max event age must not be negative"))
	}
	return errors.Join(errs...)
}

// Provider is the Razorpay payment.Provider.
type Provider struct {
	cfg Config
}

var _ payment.Provider = (*Provider)(nil)

// New returns the adapter.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.razorpay.com"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.MerchantName == "" {
		cfg.MerchantName = "meterd"
	}
	if cfg.MaxEventAge == 0 {
		cfg.MaxEventAge = 72 * time.Hour
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Provider{cfg: cfg}, nil
}

// Name implements payment.Provider.
func (p *Provider) Name() string { return Name }

// Supports implements payment.Provider: cards, net banking, wallets, UPI.
func (p *Provider) Supports(m payment.Method) bool {
	switch m {
	case payment.MethodCard, payment.MethodNetbanking, payment.MethodWallet, payment.MethodUPI:
		return true
	}
	return false
}

// Order is Razorpay's order entity (the fields meterd reads).
type Order struct {
	ID         string          `json:"id"`
	Entity     string          `json:"entity"`
	Amount     int64           `json:"amount"`
	AmountPaid int64           `json:"amount_paid"`
	AmountDue  int64           `json:"amount_due"`
	Currency   string          `json:"currency"`
	Receipt    string          `json:"receipt"`
	Status     string          `json:"status"` // created, attempted, paid
	Attempts   int             `json:"attempts"`
	Notes      json.RawMessage `json:"notes"`
	CreatedAt  int64           `json:"created_at"`
}

// Payment is Razorpay's payment entity (the fields meterd reads).
type Payment struct {
	ID               string  `json:"id"`
	Entity           string  `json:"entity"`
	Amount           int64   `json:"amount"`
	Currency         string  `json:"currency"`
	Status           string  `json:"status"` // created, authorized, captured, refunded, failed
	OrderID          string  `json:"order_id"`
	Method           string  `json:"method"` // card, netbanking, wallet, upi, emi, …
	Captured         bool    `json:"captured"`
	AmountRefunded   int64   `json:"amount_refunded"`
	Card             *Card   `json:"card"`
	Bank             *string `json:"bank"`
	Wallet           *string `json:"wallet"`
	TokenID          *string `json:"token_id"`
	ErrorCode        *string `json:"error_code"`
	ErrorDescription *string `json:"error_description"`
	CreatedAt        int64   `json:"created_at"`
}

// Card is the card of a payment: never more than network and last four.
type Card struct {
	Last4   string `json:"last4"`
	Network string `json:"network"`
	Type    string `json:"type"`
}

// Refund is Razorpay's refund entity.
type Refund struct {
	ID        string `json:"id"`
	Entity    string `json:"entity"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	PaymentID string `json:"payment_id"`
	Receipt   string `json:"receipt"`
	Status    string `json:"status"` // pending, processed, failed
	CreatedAt int64  `json:"created_at"`
}

type collection[T any] struct {
	Entity string `json:"entity"`
	Count  int    `json:"count"`
	Items  []T    `json:"items"`
}

type apiError struct {
	Error struct {
		Code        string `json:"code"`
		Description string `json:"description"`
		Field       any    `json:"field"`
	} `json:"error"`
}

// do sends a request with Basic auth and decodes a 2xx JSON answer into
// out; other answers become *payment.ProviderError.
func (p *Provider) do(ctx context.Context, op, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("razorpay %s: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.cfg.BaseURL+path, rd)
	if err != nil {
		return fmt.Errorf("razorpay %s: %w", op, err)
	}
	req.SetBasicAuth(p.cfg.KeyID, p.cfg.KeySecret)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return providerhttp.Do(p.cfg.Client, req, Name, op, errorOf, out)
}

// errorOf reads Razorpay's error document.
func errorOf(body []byte) (code, message string) {
	var e apiError
	_ = json.Unmarshal(body, &e)
	return e.Error.Code, e.Error.Description
}

// CreateOrder implements payment.Provider: an order with the payment's
// reference as receipt (an existing order with that receipt is reused),
// opened with Checkout.
func (p *Provider) CreateOrder(ctx context.Context, r payment.OrderRequest) (payment.Order, error) {
	if r.SavedToken != "" {
		// Saved Razorpay cards are offered by Checkout itself (customer
		// tokens); a server-side charge needs the recurring API.
		return payment.Order{}, &payment.ProviderError{Provider: Name, Op: "create_order", Code: "SAVED_METHOD_UNSUPPORTED",
			Message: "razorpay saved methods are used through Checkout"}
	}
	var existing collection[Order]
	if err := p.do(ctx, "create_order", http.MethodGet, "/v1/orders?"+url.Values{"receipt": {r.Reference}, "count": {"1"}}.Encode(), nil, &existing); err != nil {
		return payment.Order{}, err
	}
	var o Order
	found := false
	for _, it := range existing.Items {
		if it.Receipt == r.Reference && it.Amount == r.AmountMinor && strings.EqualFold(it.Currency, r.Currency) {
			o, found = it, true
			break
		}
	}
	if !found {
		body := map[string]any{
			"amount":          r.AmountMinor,
			"currency":        strings.ToUpper(r.Currency),
			"receipt":         r.Reference,
			"partial_payment": false,
			"notes": map[string]string{
				"meterd_payment_id": strconv.FormatInt(r.PaymentID, 10),
				"bill_number":       r.BillNumber,
				"consumer_code":     r.Consumer,
			},
		}
		if err := p.do(ctx, "create_order", http.MethodPost, "/v1/orders", body, &o); err != nil {
			return payment.Order{}, err
		}
	}
	if o.ID == "" {
		return payment.Order{}, &payment.ProviderError{Provider: Name, Op: "create_order", Message: "answer without an order id"}
	}
	params := map[string]string{
		"key":         p.cfg.KeyID,
		"order_id":    o.ID,
		"amount":      strconv.FormatInt(o.Amount, 10),
		"currency":    o.Currency,
		"name":        p.cfg.MerchantName,
		"description": r.Description,
		"method":      string(r.Method),
	}
	if r.ReturnURL != "" {
		params["callback_url"] = r.ReturnURL
	}
	return payment.Order{ID: o.ID, Action: payment.NextAction{Type: "razorpay_checkout", Params: params}}, nil
}

// FetchOrder implements payment.Provider: the order's payments, reduced
// to the best one (captured, then authorized, then the newest failure).
func (p *Provider) FetchOrder(ctx context.Context, orderID string) (payment.OrderState, error) {
	var o Order
	if err := p.do(ctx, "fetch_order", http.MethodGet, "/v1/orders/"+url.PathEscape(orderID), nil, &o); err != nil {
		var pe *payment.ProviderError
		if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
			return payment.OrderState{}, fmt.Errorf("razorpay order %s: %w", orderID, payment.ErrOrderNotFound)
		}
		return payment.OrderState{}, err
	}
	var pays collection[Payment]
	if err := p.do(ctx, "fetch_order", http.MethodGet, "/v1/orders/"+url.PathEscape(orderID)+"/payments", nil, &pays); err != nil {
		return payment.OrderState{}, err
	}
	st := payment.OrderState{OrderID: o.ID, Kind: payment.EventPending, Currency: o.Currency, Attempts: max(o.Attempts, len(pays.Items))}
	rank := func(s string) int {
		switch s {
		case "captured", "refunded":
			return 3
		case "authorized":
			return 2
		case "failed":
			return 1
		}
		return 0
	}
	items := pays.Items
	sort.SliceStable(items, func(i, j int) bool {
		if rank(items[i].Status) != rank(items[j].Status) {
			return rank(items[i].Status) > rank(items[j].Status)
		}
		return items[i].CreatedAt > items[j].CreatedAt
	})
	if len(items) > 0 && rank(items[0].Status) > 0 {
		return stateOf(items[0], orderID), nil
	}
	return st, nil
}

// stateOf maps a payment entity to an order state.
func stateOf(py Payment, orderID string) payment.OrderState {
	st := payment.OrderState{OrderID: orderID, PaymentID: py.ID, AmountMinor: py.Amount, Currency: py.Currency, Attempts: 1, At: time.Unix(py.CreatedAt, 0).UTC()}
	if py.OrderID != "" {
		st.OrderID = py.OrderID
	}
	switch py.Status {
	case "captured", "refunded":
		st.Kind = payment.EventCaptured
	case "authorized":
		st.Kind = payment.EventAuthorized
	case "failed":
		st.Kind = payment.EventFailed
	default:
		st.Kind = payment.EventPending
	}
	st.Method, st.Instrument = instrumentOf(py)
	if py.ErrorCode != nil {
		st.FailureCode = *py.ErrorCode
	}
	if py.ErrorDescription != nil {
		st.FailureReason = *py.ErrorDescription
	}
	return st
}

func instrumentOf(py Payment) (payment.Method, payment.Instrument) {
	var in payment.Instrument
	if py.TokenID != nil {
		in.Token = *py.TokenID
	}
	switch py.Method {
	case "card", "emi":
		if py.Card != nil {
			in.Brand, in.Last4 = py.Card.Network, py.Card.Last4
		}
		return payment.MethodCard, in
	case "netbanking":
		if py.Bank != nil {
			in.Brand = *py.Bank
		}
		return payment.MethodNetbanking, in
	case "wallet":
		if py.Wallet != nil {
			in.Brand = *py.Wallet
		}
		return payment.MethodWallet, in
	case "upi":
		in.Brand = "UPI"
		return payment.MethodUPI, in
	}
	return "", in
}

func refundState(r Refund) payment.RefundState {
	st := payment.RefundState{ID: r.ID, Reference: r.Receipt, AmountMinor: r.Amount, Status: payment.RefundPending}
	switch r.Status {
	case "processed":
		st.Status = payment.RefundProcessed
	case "failed":
		st.Status, st.FailureReason = payment.RefundFailed, "the refund failed at Razorpay"
	}
	return st
}

// Refund implements payment.Provider: a refund of the captured payment
// with the refund's reference as receipt, unless one with that receipt
// exists.
func (p *Provider) Refund(ctx context.Context, r payment.RefundRequest) (payment.RefundState, error) {
	if r.PaymentID == "" {
		return payment.RefundState{}, &payment.ProviderError{Provider: Name, Op: "refund", Message: "no captured payment id"}
	}
	path := "/v1/payments/" + url.PathEscape(r.PaymentID)
	var existing collection[Refund]
	if err := p.do(ctx, "refund", http.MethodGet, path+"/refunds", nil, &existing); err != nil {
		return payment.RefundState{}, err
	}
	for _, it := range existing.Items {
		if it.Receipt == r.Reference {
			return refundState(it), nil
		}
	}
	var out Refund
	body := map[string]any{"amount": r.AmountMinor, "speed": "normal", "receipt": r.Reference,
		"notes": map[string]string{"reason": r.Reason, "meterd_refund_id": strconv.FormatInt(r.RefundID, 10)}}
	if err := p.do(ctx, "refund", http.MethodPost, path+"/refund", body, &out); err != nil {
		return payment.RefundState{}, err
	}
	return refundState(out), nil
}

// FetchRefund implements payment.Provider.
func (p *Provider) FetchRefund(ctx context.Context, r payment.RefundRequest, refundID string) (payment.RefundState, error) {
	var out Refund
	if err := p.do(ctx, "fetch_refund", http.MethodGet, "/v1/payments/"+url.PathEscape(r.PaymentID)+"/refunds/"+url.PathEscape(refundID), nil, &out); err != nil {
		return payment.RefundState{}, err
	}
	return refundState(out), nil
}

// VerifyCheckout implements payment.Provider: razorpay_signature must be
// hex(HMAC-SHA256(key_secret, orderID|razorpay_payment_id)), orderID being
// the order meterd stored.
func (p *Provider) VerifyCheckout(orderID string, fields map[string]string) (string, error) {
	pid := fields["razorpay_payment_id"]
	sig := fields["razorpay_signature"]
	if pid == "" || sig == "" {
		return "", fmt.Errorf("%w: razorpay_payment_id and razorpay_signature are required", payment.ErrSignature)
	}
	if !payment.EqualHex(sig, payment.HMACHex(p.cfg.KeySecret, []byte(orderID+"|"+pid))) {
		return "", payment.ErrSignature
	}
	return pid, nil
}

// webhook is a Razorpay webhook body.
type webhook struct {
	Entity    string   `json:"entity"`
	Event     string   `json:"event"`
	Contains  []string `json:"contains"`
	CreatedAt int64    `json:"created_at"`
	Payload   struct {
		Payment *struct {
			Entity Payment `json:"entity"`
		} `json:"payment"`
		Order *struct {
			Entity Order `json:"entity"`
		} `json:"order"`
		Refund *struct {
			Entity Refund `json:"entity"`
		} `json:"refund"`
	} `json:"payload"`
}

// ParseWebhook implements payment.Provider.
func (p *Provider) ParseWebhook(h payment.Header, body []byte, now time.Time) (payment.Event, error) {
	if err := payment.VerifyHMAC(body, h.Get("X-Razorpay-Signature"), p.cfg.WebhookSecrets); err != nil {
		return payment.Event{}, err
	}
	var w webhook
	if err := json.Unmarshal(body, &w); err != nil || w.Entity != "event" || w.Event == "" {
		return payment.Event{}, payment.ErrMalformedEvent
	}
	id := strings.TrimSpace(h.Get("X-Razorpay-Event-Id"))
	if id == "" {
		// Razorpay always sends one; without it the body itself is the
		// identity (a retry repeats it byte for byte).
		sum := sha256.Sum256(body)
		id = "body-sha256:" + hex.EncodeToString(sum[:])
	}
	ev := payment.Event{Provider: Name, ID: id, Type: w.Event, Kind: payment.EventIgnored}
	if w.CreatedAt > 0 {
		ev.OccurredAt = time.Unix(w.CreatedAt, 0).UTC()
		if now.Sub(ev.OccurredAt) > p.cfg.MaxEventAge {
			return payment.Event{}, fmt.Errorf("%w: event created %s", payment.ErrStale, ev.OccurredAt.Format(time.RFC3339))
		}
	}
	var py *Payment
	if w.Payload.Payment != nil {
		py = &w.Payload.Payment.Entity
	}
	switch w.Event {
	case "payment.authorized", "payment.captured", "payment.failed", "order.paid":
		if py == nil {
			return payment.Event{}, payment.ErrMalformedEvent
		}
		st := stateOf(*py, py.OrderID)
		if w.Event == "order.paid" && w.Payload.Order != nil && st.OrderID == "" {
			st.OrderID = w.Payload.Order.Entity.ID
		}
		if st.OrderID == "" {
			return payment.Event{}, payment.ErrMalformedEvent
		}
		if w.Event == "order.paid" {
			st.Kind = payment.EventCaptured
		}
		ev.Kind, ev.OrderID, ev.PaymentID, ev.AmountMinor, ev.Currency = st.Kind, st.OrderID, st.PaymentID, st.AmountMinor, st.Currency
		ev.Method, ev.Instrument, ev.FailureCode, ev.FailureReason = st.Method, st.Instrument, st.FailureCode, st.FailureReason
		if ev.OccurredAt.IsZero() {
			ev.OccurredAt = st.At
		}
	case "refund.created", "refund.processed", "refund.failed":
		if w.Payload.Refund == nil {
			return payment.Event{}, payment.ErrMalformedEvent
		}
		rs := refundState(w.Payload.Refund.Entity)
		switch w.Event {
		case "refund.processed":
			ev.Kind = payment.EventRefundProcessed
		case "refund.failed":
			ev.Kind = payment.EventRefundFailed
		default:
			ev.Kind = payment.EventRefundPending
		}
		ev.Refund = &rs
		ev.PaymentID = w.Payload.Refund.Entity.PaymentID
		if py != nil {
			ev.OrderID = py.OrderID
		}
	}
	return ev, nil
}
