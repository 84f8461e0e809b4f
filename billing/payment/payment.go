package payment

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Method is how the payer pays.
type Method string

// The payment methods.
const (
	MethodCard       Method = "card"       // credit or debit card (and card-based wallets such as Apple Pay)
	MethodNetbanking Method = "netbanking" // the payer's bank's internet banking
	MethodWallet     Method = "wallet"     // a mobile wallet
	MethodUPI        Method = "upi"        // Unified Payments Interface
)

// Methods lists every method.
func Methods() []Method { return []Method{MethodCard, MethodNetbanking, MethodWallet, MethodUPI} }

// ParseMethod parses a method name.
func ParseMethod(s string) (Method, error) {
	for _, m := range Methods() {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("%w: method %q is not one of card, netbanking, wallet, upi", ErrInvalidInput, s)
}

// Status is a payment's state.
type Status string

// The payment states. A payment starts created (its idempotency key is
// claimed), becomes pending once the provider's order exists, and ends
// captured (money received), failed, expired (abandoned) or, after a
// refund of everything, refunded.
const (
	StatusCreated    Status = "created"
	StatusPending    Status = "pending"
	StatusAuthorized Status = "authorized"
	StatusFailed     Status = "failed"
	StatusExpired    Status = "expired"
	StatusCaptured   Status = "captured"
	StatusRefunded   Status = "refunded"
)

// Open reports whether the payment may still change without a refund: the
// payer may yet pay.
func (s Status) Open() bool {
	return s == StatusCreated || s == StatusPending || s == StatusAuthorized
}

// Settled reports whether money was received (captured, perhaps refunded
// since).
func (s Status) Settled() bool { return s == StatusCaptured || s == StatusRefunded }

// EventKind is what a provider event means for a payment or refund.
type EventKind string

// The event kinds adapters normalise provider events to.
const (
	EventPending         EventKind = "pending"    // the order exists or an attempt is in progress
	EventAuthorized      EventKind = "authorized" // money authorized, not captured
	EventCaptured        EventKind = "captured"   // money received
	EventFailed          EventKind = "failed"     // the attempt failed
	EventExpired         EventKind = "expired"    // nothing was paid in time (reconciliation only)
	EventRefundPending   EventKind = "refund_pending"
	EventRefundProcessed EventKind = "refund_processed"
	EventRefundFailed    EventKind = "refund_failed"
	EventIgnored         EventKind = "ignored" // an event meterd does not act on
)

// Transition returns the state a payment in state s moves to on an event
// of kind k, and whether it moves at all. The rules make events commute
// where money is concerned: a capture is reached from every state that has
// not received money (a failed or expired payment captured later is late
// authorisation: the money is real) and nothing but a refund leaves it; a
// failure never undoes a capture or an authorization's capture; replays
// change nothing.
func Transition(s Status, k EventKind) (Status, bool) {
	switch k {
	case EventCaptured:
		if s.Settled() {
			return s, false
		}
		return StatusCaptured, true
	case EventAuthorized:
		switch s {
		case StatusCreated, StatusPending, StatusFailed, StatusExpired:
			return StatusAuthorized, true
		}
	case EventFailed:
		switch s {
		case StatusCreated, StatusPending, StatusAuthorized:
			return StatusFailed, true
		}
	case EventPending:
		if s == StatusCreated {
			return StatusPending, true
		}
	case EventExpired:
		if s == StatusCreated || s == StatusPending {
			return StatusExpired, true
		}
	}
	return s, false
}

// Instrument is what a payment was made with, as the provider reports it:
// never more than a brand and the last four digits.
type Instrument struct {
	Brand string `json:"brand,omitempty"` // Visa, Mastercard, RuPay; the bank or wallet name; "UPI"
	Last4 string `json:"last4,omitempty"` // cards only
	// Token is the provider's reusable token for the method, when the
	// payer asked to save it; it is sealed before it is stored and never
	// shown.
	Token string `json:"-"`
}

// String prints the instrument for a receipt: "Visa •••• 1111", "UPI".
func (i Instrument) String() string {
	switch {
	case i.Brand != "" && i.Last4 != "":
		return i.Brand + " •••• " + i.Last4
	case i.Last4 != "":
		return "•••• " + i.Last4
	}
	return i.Brand
}

// NextAction is what the client does to let the payer pay.
type NextAction struct {
	// Type: "redirect" (send the payer's browser to URL), "razorpay_checkout"
	// (open Razorpay Checkout with Params), "stripe_confirm" (confirm the
	// PaymentIntent client-side with Params), "none" (nothing to do).
	Type   string            `json:"type"`
	URL    string            `json:"url,omitempty"`
	Params map[string]string `json:"params,omitempty"`
}

// Payment is a payment as stored.
type Payment struct {
	ID                int64           `json:"id"`
	TenantID          int64           `json:"tenant_id"`
	BillID            int64           `json:"bill_id"`
	BillNumber        string          `json:"bill_number"`
	ConnectionID      int64           `json:"connection_id"`
	ConsumerCode      string          `json:"consumer_code"`
	ConsumerUserID    int64           `json:"consumer_user_id,omitempty"`
	PayerUserID       int64           `json:"payer_user_id"`
	Provider          string          `json:"provider"`
	Method            Method          `json:"method"`
	Amount            decimal.Decimal `json:"amount"`
	AmountMinor       int64           `json:"amount_minor"`
	Currency          string          `json:"currency"`
	Status            Status          `json:"status"`
	ProviderOrderID   string          `json:"provider_order_id,omitempty"`
	ProviderPaymentID string          `json:"provider_payment_id,omitempty"`
	NextAction        *NextAction     `json:"next_action,omitempty"`
	ReturnURL         string          `json:"return_url,omitempty"`
	SavedMethodID     int64           `json:"saved_method_id,omitempty"`
	SaveMethod        bool            `json:"save_method,omitempty"`
	Instrument        Instrument      `json:"instrument"`
	FailureCode       string          `json:"failure_code,omitempty"`
	FailureReason     string          `json:"failure_reason,omitempty"`
	CapturedAmount    decimal.Decimal `json:"captured_amount"`
	RefundedAmount    decimal.Decimal `json:"refunded_amount"`
	ReceiptNumber     string          `json:"receipt_number,omitempty"`
	CapturedAt        *time.Time      `json:"captured_at,omitempty"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
}

// Reference is the payment's first ledger reference.
func (p Payment) Reference() string { return fmt.Sprintf("payment:%d", p.ID) }

// ProviderReference is the reference meterd gives the provider for the
// payment (Razorpay's receipt, Stripe's metadata and idempotency key).
func (p Payment) ProviderReference() string { return fmt.Sprintf("meterd-payment-%d", p.ID) }

// RefundStatus is a refund's state.
type RefundStatus string

// The refund states.
const (
	RefundCreated   RefundStatus = "created"   // claimed; the provider has not answered yet
	RefundPending   RefundStatus = "pending"   // accepted by the provider, not final
	RefundProcessed RefundStatus = "processed" // money returned; ledger reversed
	RefundFailed    RefundStatus = "failed"
)

// Refund is a refund of (part of) a captured payment.
type Refund struct {
	ID               int64           `json:"id"`
	TenantID         int64           `json:"tenant_id"`
	PaymentID        int64           `json:"payment_id"`
	Amount           decimal.Decimal `json:"amount"`
	AmountMinor      int64           `json:"amount_minor"`
	Currency         string          `json:"currency"`
	Reason           string          `json:"reason"`
	RequestedBy      int64           `json:"requested_by"`
	Status           RefundStatus    `json:"status"`
	ProviderRefundID string          `json:"provider_refund_id,omitempty"`
	FailureReason    string          `json:"failure_reason,omitempty"`
	CreatedAt        time.Time       `json:"created_at"`
	ProcessedAt      *time.Time      `json:"processed_at,omitempty"`
}

// ProviderReference is the reference meterd gives the provider for the
// refund (Stripe's idempotency key, Razorpay's refund receipt).
func (r Refund) ProviderReference() string { return fmt.Sprintf("meterd-refund-%d", r.ID) }

// Allocation is a part of a payment the ledger recorded against one demand
// detail.
type Allocation struct {
	DemandID       int64           `json:"demand_id"`
	DemandDetailID int64           `json:"demand_detail_id"`
	PeriodFrom     string          `json:"period_from"`
	PeriodTo       string          `json:"period_to"`
	TaxHead        string          `json:"tax_head"`
	Amount         decimal.Decimal `json:"amount"`
}

// BillState is a bill's payment state after a receipt's posting.
type BillState struct {
	ID         int64           `json:"id"`
	Number     string          `json:"number"`
	Status     string          `json:"status"`
	PaidAmount decimal.Decimal `json:"paid_amount"`
	Total      decimal.Decimal `json:"total"`
}

// Receipt is the proof of a captured payment.
type Receipt struct {
	ID                int64           `json:"id"`
	TenantID          int64           `json:"tenant_id"`
	TenantName        string          `json:"tenant_name"`
	Number            string          `json:"number"`
	FinancialYear     string          `json:"financial_year"`
	PaymentID         int64           `json:"payment_id"`
	BillID            int64           `json:"bill_id"`
	BillNumber        string          `json:"bill_number"`
	ConnectionID      int64           `json:"connection_id"`
	ConsumerCode      string          `json:"consumer_code"`
	ConsumerName      string          `json:"consumer_name"`
	ConsumerUserID    int64           `json:"-"`
	Amount            decimal.Decimal `json:"amount"`
	Currency          string          `json:"currency"`
	Method            Method          `json:"method"`
	Provider          string          `json:"provider"`
	ProviderPaymentID string          `json:"provider_payment_id"`
	Instrument        string          `json:"instrument"`
	PaidAt            time.Time       `json:"paid_at"`
	IssuedAt          time.Time       `json:"issued_at"`
	TimeZone          string          `json:"-"`
	Allocation        []Allocation    `json:"allocation"`
	Advance           decimal.Decimal `json:"advance"`
	Bills             []BillState     `json:"bills"`
}

// SavedMethod is a payment method a consumer saved with a provider: only
// the provider's token (sealed at rest, never shown), brand and last four
// digits.
type SavedMethod struct {
	ID        int64     `json:"id"`
	TenantID  int64     `json:"tenant_id"`
	UserID    int64     `json:"user_id"`
	Provider  string    `json:"provider"`
	Method    Method    `json:"method"`
	Brand     string    `json:"brand"`
	Last4     string    `json:"last4,omitempty"`
	Label     string    `json:"label,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// TokenAAD is the additional data a saved method's token is sealed with,
// binding the ciphertext to its row.
func TokenAAD(methodID int64) string { return fmt.Sprintf("saved_payment_methods.token:%d", methodID) }

// Reconciliation is one reconciliation run.
type Reconciliation struct {
	ID          int64      `json:"id"`
	TenantID    int64      `json:"tenant_id,omitempty"` // 0: every tenant
	Trigger     string     `json:"trigger"`             // schedule or staff
	RequestedBy int64      `json:"requested_by,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Checked     int        `json:"checked"`
	Settled     int        `json:"settled"`
	Failed      int        `json:"failed"`
	Expired     int        `json:"expired"`
	Refunds     int        `json:"refunds"`
	Errors      int        `json:"errors"`
	Error       string     `json:"error,omitempty"`
}
