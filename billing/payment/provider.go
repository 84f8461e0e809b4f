package payment

import (
	"context"
	"time"
)

// Provider is a payment provider (Razorpay, Stripe, the sandbox). Adapters
// talk HTTP to the provider with the caller's context; cmd wraps each in
// billing/payment/guard so every call has a timeout and a circuit breaker.
// Calls that create something carry meterd's reference so a retry of an
// in-doubt call never creates a second order or refund.
type Provider interface {
	// Name is the provider's name as stored ("razorpay", "stripe",
	// "sandbox").
	Name() string
	// Supports reports whether payers can pay with m through this
	// provider.
	Supports(m Method) bool
	// CreateOrder creates the provider's order (Razorpay order, Stripe
	// PaymentIntent) for a payment and returns what the payer's client
	// does next. A retry with the same OrderRequest.Reference must not
	// create a second order that can be paid.
	CreateOrder(ctx context.Context, r OrderRequest) (Order, error)
	// FetchOrder returns the state of the payer's payment on an order, for
	// reconciliation and checkout callbacks. ErrOrderNotFound when the
	// provider does not know it.
	FetchOrder(ctx context.Context, orderID string) (OrderState, error)
	// Refund refunds (part of) a captured payment. A retry with the same
	// RefundRequest.Reference returns the refund made before.
	Refund(ctx context.Context, r RefundRequest) (RefundState, error)
	// FetchRefund returns a refund's state.
	FetchRefund(ctx context.Context, r RefundRequest, refundID string) (RefundState, error)
	// ParseWebhook verifies a webhook delivery's signature over the raw
	// body (ErrSignature, ErrStale) and normalises it to an Event
	// (ErrMalformedEvent). It makes no network call.
	ParseWebhook(h Header, body []byte, now time.Time) (Event, error)
	// VerifyCheckout checks the signature a checkout callback carries
	// against the order id meterd stored (never the one the callback
	// echoes) and returns the provider's payment id. ErrSignature when it
	// does not verify; providers without signed callbacks return the
	// payment id the callback names, unverified, and callers must fetch
	// the order before trusting anything.
	VerifyCheckout(orderID string, fields map[string]string) (string, error)
}

// OrderRequest is what CreateOrder needs.
type OrderRequest struct {
	PaymentID   int64
	Reference   string // meterd-payment-<id>: receipt, metadata, idempotency key
	AmountMinor int64
	Currency    string
	Method      Method
	Description string // "Bill DEMO/2024-25/000001"
	BillNumber  string
	Consumer    string // consumer code
	Tenant      string // tenant code
	// SavedToken is a saved method's provider token, to pay with it.
	SavedToken string
	// SaveMethod asks the provider for a reusable token of the method.
	SaveMethod bool
	// ReturnURL is where the payer's browser goes after a redirect flow.
	ReturnURL string
}

// Order is a created provider order.
type Order struct {
	ID     string
	Action NextAction
	// Immediate is set when the provider settled the payment while
	// creating the order (a saved card confirmed at once, or declined):
	// the state to apply as if a webhook had said it.
	Immediate *OrderState
}

// OrderState is the state of the payer's payment on an order, as a
// provider reports it.
type OrderState struct {
	OrderID string
	// Kind is EventCaptured, EventAuthorized, EventFailed or EventPending
	// (no payment yet, or one in progress).
	Kind          EventKind
	PaymentID     string // the provider's payment (attempt) id, if any
	AmountMinor   int64  // of the payment, 0 if none
	Currency      string
	Method        Method
	Instrument    Instrument
	FailureCode   string
	FailureReason string
	// Attempts is how many payment attempts the order has (0: the payer
	// never tried, as after an abandoned checkout).
	Attempts int
	At       time.Time
}

// RefundRequest is what Refund needs.
type RefundRequest struct {
	RefundID    int64
	Reference   string // meterd-refund-<id>
	OrderID     string
	PaymentID   string // the provider's captured payment id
	AmountMinor int64
	Currency    string
	Reason      string
}

// RefundState is a refund as the provider reports it.
type RefundState struct {
	ID string
	// Reference is meterd's reference the provider echoes (receipt,
	// metadata), when it does: it finds the refund before its provider id
	// is recorded.
	Reference     string
	Status        RefundStatus // pending, processed or failed
	AmountMinor   int64
	FailureReason string
}

// Event is a provider event normalised by its adapter.
type Event struct {
	Provider string
	// ID is the provider's event id, unique per provider (Razorpay's
	// x-razorpay-event-id, Stripe's evt_ id), or a synthetic id for states
	// read from the provider ("fetch:<order>:<payment>:<kind>").
	ID   string
	Type string // the provider's name for it: payment.captured, payment_intent.succeeded
	Kind EventKind
	// OrderID and PaymentID identify the payment at the provider.
	OrderID       string
	PaymentID     string
	AmountMinor   int64
	Currency      string
	Method        Method
	Instrument    Instrument
	FailureCode   string
	FailureReason string
	// Refund is set for refund events.
	Refund     *RefundState
	OccurredAt time.Time
	// Payload is the body as received (webhooks), stored with the event.
	Payload []byte
	// LocalPaymentID names meterd's payment for events meterd makes up
	// about a payment that has no provider order (expiry); 0 otherwise.
	LocalPaymentID int64
}

// StateEvent turns a fetched order state into an event with a synthetic,
// deterministic id, so that reading the same state twice is one event.
func StateEvent(provider string, s OrderState, source string) Event {
	id := source + ":" + s.OrderID + ":" + s.PaymentID + ":" + string(s.Kind)
	return Event{Provider: provider, ID: id, Type: source + "." + string(s.Kind), Kind: s.Kind, OrderID: s.OrderID, PaymentID: s.PaymentID,
		AmountMinor: s.AmountMinor, Currency: s.Currency, Method: s.Method, Instrument: s.Instrument,
		FailureCode: s.FailureCode, FailureReason: s.FailureReason, OccurredAt: s.At}
}
