// Package stripe is the Stripe payment provider: PaymentIntents with
// idempotency keys, webhook signatures with a timestamp tolerance, and
// refunds, over Stripe's REST API v1 (https://docs.stripe.com/api), as
// billing-anchors §2.2 summarises it:
//
//	POST /v1/payment_intents   amount, currency (lower case), description, metadata[…],
//	                           payment_method_types[], [payment_method, confirm, return_url],
//	                           [setup_future_usage]  → PaymentIntent {"id": "pi_…", "status": …, "client_secret": …}
//	GET  /v1/payment_intents/{id}?expand[]=latest_charge
//	POST /v1/refunds           payment_intent, amount, reason, metadata[…] → Refund {"id": "re_…", "status": …}
//	GET  /v1/refunds/{id}
//	errors                     {"error": {"type": "card_error", "code": "card_declined", "message": …}}
//
// Requests are form-encoded with Authorization: Bearer <secret key>; every
// POST carries an Idempotency-Key (meterd's payment or refund reference),
// so Stripe replays the first answer to a retry instead of creating a
// second PaymentIntent or refund.
//
// PaymentIntent states map to events: succeeded → captured,
// requires_capture → authorized, processing / requires_action /
// requires_confirmation → pending, requires_payment_method after an
// attempt (last_payment_error set) → failed, canceled → failed.
//
// Webhooks carry Stripe-Signature: t=<unix>,v1=<hex>[,v1=…], v1 being
// hex(HMAC-SHA256(endpoint secret, "<t>.<raw body>")); any v1 may match
// (secret rolling) and |now − t| must be within Tolerance (default 300 s,
// as stripe-go's DefaultTolerance). Events: payment_intent.succeeded,
// .payment_failed, .processing, .amount_capturable_updated, .canceled,
// refund.created, refund.updated, refund.failed; others are acknowledged
// and ignored.
//
// Stripe's client-side confirmation is not signed: VerifyCheckout only
// checks that the callback names the stored PaymentIntent, and the service
// then fetches it from Stripe before believing anything.
//
// stripe imports billing/payment and the standard library; it must not
// import pgx, Fiber, api or another provider.
package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/internal/providerhttp"
)

// Name is the provider's name.
const Name = "stripe"

// Config configures the adapter.
type Config struct {
	// BaseURL is the API root. Default "https://api.stripe.com".
	BaseURL string
	// SecretKey (sk_live_… or sk_test_…) authenticates API calls.
	SecretKey string
	// PublishableKey (pk_…) is given to the client to confirm the
	// PaymentIntent.
	PublishableKey string
	// WebhookSecrets are the endpoint's signing secrets (whsec_…), current
	// first.
	WebhookSecrets []string
	// Tolerance is the largest accepted |now − signature timestamp|.
	// Default 300 s.
	Tolerance time.Duration
	// Client makes the HTTP calls. Default a client with a 30 s timeout.
	Client *http.Client
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.SecretKey == "" {
		errs = append(errs, errors.New("stripe: secret key is required"))
	}
	if len(c.WebhookSecrets) == 0 || c.WebhookSecrets[0] == "" {
		errs = append(errs, errors.New("stripe: a webhook signing secret is required"))
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, fmt.Errorf("stripe: base URL %q is not an http(s) URL", c.BaseURL))
		}
	}
	if c.Tolerance < 0 {
		errs = append(errs, errors.New("stripe: tolerance must not be negative"))
	}
	return errors.Join(errs...)
}

// Provider is the Stripe payment.Provider.
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
		cfg.BaseURL = "https://api.stripe.com"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 300 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Provider{cfg: cfg}, nil
}

// Name implements payment.Provider.
func (p *Provider) Name() string { return Name }

// Supports implements payment.Provider: cards, and wallets that pay with a
// card (Apple Pay, Google Pay are card PaymentMethods at Stripe).
func (p *Provider) Supports(m payment.Method) bool {
	return m == payment.MethodCard || m == payment.MethodWallet
}

// PaymentIntent is the part of Stripe's PaymentIntent meterd reads.
type PaymentIntent struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Amount           int64             `json:"amount"`
	AmountReceived   int64             `json:"amount_received"`
	Currency         string            `json:"currency"`
	Status           string            `json:"status"`
	ClientSecret     string            `json:"client_secret"`
	Created          int64             `json:"created"`
	Metadata         map[string]string `json:"metadata"`
	LatestCharge     json.RawMessage   `json:"latest_charge"` // an id, or the Charge when expanded
	PaymentMethod    json.RawMessage   `json:"payment_method"`
	SetupFutureUsage *string           `json:"setup_future_usage"`
	LastPaymentError *struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_payment_error"`
	NextAction *struct {
		Type          string `json:"type"`
		RedirectToURL *struct {
			URL string `json:"url"`
		} `json:"redirect_to_url"`
	} `json:"next_action"`
}

// Charge is the part of an expanded Charge meterd reads.
type Charge struct {
	ID                   string `json:"id"`
	PaymentMethodDetails *struct {
		Type string `json:"type"`
		Card *struct {
			Brand  string `json:"brand"`
			Last4  string `json:"last4"`
			Wallet *struct {
				Type string `json:"type"`
			} `json:"wallet"`
		} `json:"card"`
	} `json:"payment_method_details"`
}

// Refund is the part of Stripe's Refund meterd reads.
type Refund struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	Amount        int64             `json:"amount"`
	Status        string            `json:"status"` // pending, requires_action, succeeded, failed, canceled
	PaymentIntent string            `json:"payment_intent"`
	FailureReason string            `json:"failure_reason"`
	Metadata      map[string]string `json:"metadata"`
}

type apiError struct {
	Error struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (p *Provider) do(ctx context.Context, op, method, path string, form url.Values, idemKey string, out any) error {
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, p.cfg.BaseURL+path, rd)
	if err != nil {
		return fmt.Errorf("stripe %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+p.cfg.SecretKey)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	return providerhttp.Do(p.cfg.Client, req, Name, op, errorOf, out)
}

// errorOf reads Stripe's error document: its code, or its type when the
// error has no code.
func errorOf(body []byte) (code, message string) {
	var e apiError
	_ = json.Unmarshal(body, &e)
	code = e.Error.Code
	if code == "" {
		code = e.Error.Type
	}
	return code, e.Error.Message
}

// CreateOrder implements payment.Provider: a PaymentIntent, created under
// the payment's reference as Idempotency-Key. With a saved method it is
// confirmed at once and may settle immediately.
func (p *Provider) CreateOrder(ctx context.Context, r payment.OrderRequest) (payment.Order, error) {
	form := url.Values{
		"amount":                   {strconv.FormatInt(r.AmountMinor, 10)},
		"currency":                 {strings.ToLower(r.Currency)},
		"description":              {r.Description},
		"payment_method_types[]":   {"card"},
		"metadata[meterd_payment]": {r.Reference},
		"metadata[bill_number]":    {r.BillNumber},
		"metadata[consumer_code]":  {r.Consumer},
	}
	if r.SaveMethod {
		form.Set("setup_future_usage", "on_session")
	}
	if r.SavedToken != "" {
		form.Set("payment_method", r.SavedToken)
		form.Set("confirm", "true")
		if strings.HasPrefix(r.ReturnURL, "http") {
			form.Set("return_url", r.ReturnURL)
		}
	}
	var pi PaymentIntent
	if err := p.do(ctx, "create_order", http.MethodPost, "/v1/payment_intents", form, r.Reference, &pi); err != nil {
		return payment.Order{}, err
	}
	if pi.ID == "" {
		return payment.Order{}, &payment.ProviderError{Provider: Name, Op: "create_order", Message: "answer without a PaymentIntent id"}
	}
	o := payment.Order{ID: pi.ID, Action: payment.NextAction{Type: "stripe_confirm", Params: map[string]string{
		"publishable_key": p.cfg.PublishableKey, "client_secret": pi.ClientSecret, "payment_intent": pi.ID}}}
	if pi.NextAction != nil && pi.NextAction.RedirectToURL != nil && pi.NextAction.RedirectToURL.URL != "" {
		o.Action = payment.NextAction{Type: "redirect", URL: pi.NextAction.RedirectToURL.URL}
	}
	if st := stateOf(pi); st.Kind == payment.EventCaptured || st.Kind == payment.EventFailed || st.Kind == payment.EventAuthorized {
		o.Immediate = &st
		o.Action = payment.NextAction{Type: "none"}
	}
	return o, nil
}

func stateOf(pi PaymentIntent) payment.OrderState {
	st := payment.OrderState{OrderID: pi.ID, Kind: payment.EventPending, AmountMinor: pi.Amount, Currency: strings.ToUpper(pi.Currency),
		Method: payment.MethodCard, At: time.Unix(pi.Created, 0).UTC()}
	var chargeID string
	if len(pi.LatestCharge) > 0 && string(pi.LatestCharge) != "null" {
		var ch Charge
		if err := json.Unmarshal(pi.LatestCharge, &chargeID); err != nil && json.Unmarshal(pi.LatestCharge, &ch) == nil {
			chargeID = ch.ID
			if d := ch.PaymentMethodDetails; d != nil && d.Card != nil {
				st.Instrument.Brand, st.Instrument.Last4 = brand(d.Card.Brand), d.Card.Last4
				if d.Card.Wallet != nil {
					st.Method = payment.MethodWallet
				}
			}
		}
	}
	if pi.SetupFutureUsage != nil {
		var pm string
		if json.Unmarshal(pi.PaymentMethod, &pm) == nil {
			st.Instrument.Token = pm
		}
	}
	st.PaymentID = chargeID
	if chargeID != "" {
		st.Attempts = 1
	}
	switch pi.Status {
	case "succeeded":
		st.Kind, st.AmountMinor = payment.EventCaptured, pi.AmountReceived
		if st.PaymentID == "" {
			st.PaymentID = pi.ID
		}
	case "requires_capture":
		st.Kind = payment.EventAuthorized
	case "processing", "requires_action", "requires_confirmation":
		st.Attempts = max(st.Attempts, 1)
	case "canceled":
		st.Kind, st.FailureCode, st.FailureReason = payment.EventFailed, "canceled", "the payment was canceled"
	case "requires_payment_method":
		if pi.LastPaymentError != nil {
			st.Kind, st.FailureCode, st.FailureReason = payment.EventFailed, pi.LastPaymentError.Code, pi.LastPaymentError.Message
			st.Attempts = max(st.Attempts, 1)
		}
	}
	return st
}

// brand prints a Stripe card brand ("visa") as on a receipt ("Visa").
func brand(b string) string {
	switch b {
	case "amex":
		return "American Express"
	case "mastercard":
		return "Mastercard"
	case "unionpay":
		return "UnionPay"
	case "":
		return ""
	}
	return strings.ToUpper(b[:1]) + b[1:]
}

// FetchOrder implements payment.Provider.
func (p *Provider) FetchOrder(ctx context.Context, orderID string) (payment.OrderState, error) {
	var pi PaymentIntent
	err := p.do(ctx, "fetch_order", http.MethodGet, "/v1/payment_intents/"+url.PathEscape(orderID)+"?expand[]=latest_charge", nil, "", &pi)
	if err != nil {
		var pe *payment.ProviderError
		if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
			return payment.OrderState{}, fmt.Errorf("stripe payment intent %s: %w", orderID, payment.ErrOrderNotFound)
		}
		return payment.OrderState{}, err
	}
	return stateOf(pi), nil
}

func refundState(r Refund) payment.RefundState {
	st := payment.RefundState{ID: r.ID, Reference: r.Metadata["meterd_refund"], AmountMinor: r.Amount, Status: payment.RefundPending}
	switch r.Status {
	case "succeeded":
		st.Status = payment.RefundProcessed
	case "failed", "canceled":
		st.Status, st.FailureReason = payment.RefundFailed, "the refund "+r.Status+" at Stripe"
		if r.FailureReason != "" {
			st.FailureReason += ": " + r.FailureReason
		}
	}
	return st
}

// Refund implements payment.Provider, under the refund's reference as
// Idempotency-Key.
func (p *Provider) Refund(ctx context.Context, r payment.RefundRequest) (payment.RefundState, error) {
	reason := r.Reason
	if len(reason) > 500 {
		reason = reason[:500]
	}
	form := url.Values{
		"payment_intent":          {r.OrderID},
		"amount":                  {strconv.FormatInt(r.AmountMinor, 10)},
		"reason":                  {"requested_by_customer"},
		"metadata[meterd_refund]": {r.Reference},
		"metadata[reason]":        {reason},
	}
	var out Refund
	if err := p.do(ctx, "refund", http.MethodPost, "/v1/refunds", form, r.Reference, &out); err != nil {
		return payment.RefundState{}, err
	}
	return refundState(out), nil
}

// FetchRefund implements payment.Provider.
func (p *Provider) FetchRefund(ctx context.Context, _ payment.RefundRequest, refundID string) (payment.RefundState, error) {
	var out Refund
	if err := p.do(ctx, "fetch_refund", http.MethodGet, "/v1/refunds/"+url.PathEscape(refundID), nil, "", &out); err != nil {
		return payment.RefundState{}, err
	}
	return refundState(out), nil
}

// VerifyCheckout implements payment.Provider: the callback must name the
// stored PaymentIntent (payment_intent); Stripe signs nothing client-side,
// so the caller fetches the PaymentIntent before trusting it.
func (p *Provider) VerifyCheckout(orderID string, fields map[string]string) (string, error) {
	if fields["payment_intent"] != orderID {
		return "", fmt.Errorf("%w: the callback names another PaymentIntent", payment.ErrSignature)
	}
	return orderID, nil
}

type event struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
	Data    struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// ParseWebhook implements payment.Provider.
func (p *Provider) ParseWebhook(h payment.Header, body []byte, now time.Time) (payment.Event, error) {
	if err := payment.VerifyTimestamped(h.Get("Stripe-Signature"), body, p.cfg.WebhookSecrets, p.cfg.Tolerance, now); err != nil {
		return payment.Event{}, err
	}
	var e event
	if err := json.Unmarshal(body, &e); err != nil || e.Object != "event" || e.ID == "" || e.Type == "" {
		return payment.Event{}, payment.ErrMalformedEvent
	}
	ev := payment.Event{Provider: Name, ID: e.ID, Type: e.Type, Kind: payment.EventIgnored, OccurredAt: time.Unix(e.Created, 0).UTC()}
	switch {
	case strings.HasPrefix(e.Type, "payment_intent."):
		var pi PaymentIntent
		if err := json.Unmarshal(e.Data.Object, &pi); err != nil || pi.ID == "" {
			return payment.Event{}, payment.ErrMalformedEvent
		}
		st := stateOf(pi)
		switch e.Type {
		case "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.processing",
			"payment_intent.amount_capturable_updated", "payment_intent.canceled":
			ev.Kind = st.Kind
			if e.Type == "payment_intent.payment_failed" && st.Kind != payment.EventFailed {
				ev.Kind, ev.FailureCode, ev.FailureReason = payment.EventFailed, "payment_failed", "the payment failed"
			}
		}
		ev.OrderID, ev.PaymentID, ev.AmountMinor, ev.Currency, ev.Method, ev.Instrument = st.OrderID, st.PaymentID, st.AmountMinor, st.Currency, st.Method, st.Instrument
		if ev.FailureCode == "" {
			ev.FailureCode, ev.FailureReason = st.FailureCode, st.FailureReason
		}
	case e.Type == "refund.created" || e.Type == "refund.updated" || e.Type == "refund.failed":
		var r Refund
		if err := json.Unmarshal(e.Data.Object, &r); err != nil || r.ID == "" {
			return payment.Event{}, payment.ErrMalformedEvent
		}
		rs := refundState(r)
		ev.Refund, ev.OrderID = &rs, r.PaymentIntent
		switch rs.Status {
		case payment.RefundProcessed:
			ev.Kind = payment.EventRefundProcessed
		case payment.RefundFailed:
			ev.Kind = payment.EventRefundFailed
		default:
			ev.Kind = payment.EventRefundPending
		}
	}
	return ev, nil
}
