package payment

import (
	"errors"
	"fmt"

	"github.com/meterd/meterd/billing"
)

// ErrInvalidInput is the kind of a request that fails validation: it is
// billing.ErrInvalidInput, so field problems come as
// *billing.ValidationError and errors.Is matches both.
var ErrInvalidInput = billing.ErrInvalidInput

// ErrCardData is returned for a request that carries a card number or a
// card verification value: card data never reaches meterd (payers type it
// into the provider's checkout). It is an ErrInvalidInput.
var ErrCardData = fmt.Errorf("%w: card data must not be sent to meterd; pay through the provider's checkout", ErrInvalidInput)

// ErrBillNotFound is returned when the bill to pay does not exist or is not
// the caller's. The API maps it to BillNotFound.
var ErrBillNotFound = errors.New("payment: bill not found")

// ErrNotFound is returned for a payment, refund, receipt or saved method
// that does not exist or is outside the caller's scope.
var ErrNotFound = errors.New("payment: not found")

// ErrConflict is returned for a request the current state refuses: paying
// a cancelled or settled bill, refunding more than was captured, refunding
// a payment that was not captured.
var ErrConflict = errors.New("payment: conflict")

// ErrIdempotencyInUse is returned while another request with the same
// Idempotency-Key is being processed; the client retries later and gets
// that request's response.
var ErrIdempotencyInUse = errors.New("payment: a request with this Idempotency-Key is in progress")

// ErrIdempotencyMismatch is returned when an Idempotency-Key is reused
// with a different request.
var ErrIdempotencyMismatch = errors.New("payment: the Idempotency-Key was used with a different request")

// ErrSignature is returned for a webhook whose signature does not verify:
// missing, malformed, made with another secret, over another body, or
// (ErrStale) with a timestamp outside the tolerance. Nothing of such a
// request is stored.
var ErrSignature = errors.New("payment: webhook signature invalid")

// ErrStale is an ErrSignature whose signed timestamp is too old (or too far
// in the future): a replay of a captured delivery.
var ErrStale = fmt.Errorf("%w: timestamp outside the tolerance", ErrSignature)

// ErrMalformedEvent is returned for a correctly signed webhook whose body
// is not an event meterd can read. It is an ErrInvalidInput.
var ErrMalformedEvent = fmt.Errorf("%w: malformed provider event", ErrInvalidInput)

// ErrUnknownProvider is returned for a provider name meterd is not
// configured with.
var ErrUnknownProvider = fmt.Errorf("%w: unknown payment provider", ErrInvalidInput)

// ErrProvider is the kind of every failure talking to a payment provider:
// the API maps it to PaymentProcessing with a message that reveals nothing
// of the provider's answer.
var ErrProvider = errors.New("payment provider")

// ErrProviderUnavailable is an ErrProvider: the provider did not answer in
// time, answered with a server error, or its circuit breaker is open. The
// request may be retried with the same Idempotency-Key.
var ErrProviderUnavailable = fmt.Errorf("%w unavailable", ErrProvider)

// ErrOrderNotFound is returned by Provider.FetchOrder when the provider
// does not know the order.
var ErrOrderNotFound = fmt.Errorf("%w: order not found", ErrProvider)

// ProviderError is a provider's refusal or failure, with the provider's
// status and error code kept for logs. It unwraps to ErrProviderUnavailable
// when Temporary (timeouts, 429, 5xx, transport errors), else to
// ErrProvider.
type ProviderError struct {
	Provider  string
	Op        string // create_order, fetch_order, refund, fetch_refund
	Status    int    // HTTP status, 0 for transport errors
	Code      string // the provider's error code, e.g. BAD_REQUEST_ERROR, card_declined
	Message   string // the provider's message: logged, never shown to callers
	Temporary bool
	Err       error // the transport error, if any
}

func (e *ProviderError) Error() string {
	s := fmt.Sprintf("%s %s", e.Provider, e.Op)
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the kind and the transport error.
func (e *ProviderError) Unwrap() []error {
	kind := ErrProvider
	if e.Temporary {
		kind = ErrProviderUnavailable
	}
	if e.Err != nil {
		return []error{kind, e.Err}
	}
	return []error{kind}
}

// invalid returns a validation error naming one field.
func invalid(field, problem string) error {
	v := &billing.ValidationError{Subject: "payment request"}
	v.Add(field, problem)
	return v
}
