package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/support"
	"github.com/meterd/meterd/api/usage"
	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/payment"
)

// This file is the only one in meterd that knows HTTP status codes. Domain
// packages return sentinel or typed errors; ProblemFor maps them, in order,
// to a problem kind, and the error handler renders RFC 9457 problem+json
// whose "type" and "code" name the requirement's exception.

// Kind is a class of problem: its stable code (the requirement's exception
// name without "Exception"), HTTP status and human title.
type Kind struct {
	Code   string
	Status int
	Title  string
}

// The problem kinds. The first group are the requirement's exceptions; the
// rest are HTTP-level conditions.
var (
	KindInvalidCredentials      = Kind{"InvalidCredentials", http.StatusUnauthorized, "Invalid credentials"}
	KindAccountLocked           = Kind{"AccountLocked", http.StatusLocked, "Account locked"}
	KindUnauthorizedAccess      = Kind{"UnauthorizedAccess", http.StatusForbidden, "Unauthorized access"}
	KindUnauthenticated         = Kind{"Unauthenticated", http.StatusUnauthorized, "Authentication required"}
	KindInvalidInput            = Kind{"InvalidInput", http.StatusBadRequest, "Invalid input"}
	KindDuplicateProperty       = Kind{"DuplicateProperty", http.StatusConflict, "Property already registered"}
	KindProfileNotFound         = Kind{"ProfileNotFound", http.StatusNotFound, "Profile not found"}
	KindMeterConnection         = Kind{"MeterConnection", http.StatusBadGateway, "Meter connection problem"}
	KindInvalidReading          = Kind{"InvalidReading", http.StatusUnprocessableEntity, "Invalid reading"}
	KindDataAccess              = Kind{"DataAccess", http.StatusServiceUnavailable, "Data access problem"}
	KindBillingCalculation      = Kind{"BillingCalculation", http.StatusUnprocessableEntity, "Billing calculation problem"}
	KindPaymentProcessing       = Kind{"PaymentProcessing", http.StatusBadGateway, "Payment processing problem"}
	KindBillNotFound            = Kind{"BillNotFound", http.StatusNotFound, "Bill not found"}
	KindNotificationSending     = Kind{"NotificationSending", http.StatusBadGateway, "Notification could not be sent"}
	KindReminderSetting         = Kind{"ReminderSetting", http.StatusBadRequest, "Reminder could not be set"}
	KindAbnormalUsage           = Kind{"AbnormalUsage", http.StatusUnprocessableEntity, "Abnormal usage"}
	KindInvalidQuery            = Kind{"InvalidQuery", http.StatusBadRequest, "Invalid support query"}
	KindSupportTicketNotFound   = Kind{"SupportTicketNotFound", http.StatusNotFound, "Support ticket not found"}
	KindSupportStaffUnavailable = Kind{"SupportStaffUnavailable", http.StatusAccepted, "No support staff available"}

	// Account conditions that are not exceptions of the requirement but
	// need their own code so clients can react (ask for the TOTP code,
	// point to the verification email).
	KindEmailNotVerified     = Kind{"EmailNotVerified", http.StatusForbidden, "Email address not verified"}
	KindSecondFactorRequired = Kind{"SecondFactorRequired", http.StatusUnauthorized, "Second factor required"}
	KindInvalidToken         = Kind{"InvalidToken", http.StatusBadRequest, "Token invalid or expired"}

	// Payment conditions (issue 7): idempotency keys in use or reused with
	// another request (clients retry later or use a new key), and webhooks
	// whose signature does not verify (the sender's problem, not a retry).
	KindIdempotencyKeyInUse    = Kind{"IdempotencyKeyInUse", http.StatusConflict, "A request with this Idempotency-Key is in progress"}
	KindIdempotencyKeyMismatch = Kind{"IdempotencyKeyMismatch", http.StatusUnprocessableEntity, "Idempotency-Key reused with a different request"}
	KindInvalidSignature       = Kind{"InvalidSignature", http.StatusBadRequest, "Webhook signature invalid"}

	KindNotFound         = Kind{"NotFound", http.StatusNotFound, "Not found"}
	KindMethodNotAllowed = Kind{"MethodNotAllowed", http.StatusMethodNotAllowed, "Method not allowed"}
	KindConflict         = Kind{"Conflict", http.StatusConflict, "Conflict"}
	KindPayloadTooLarge  = Kind{"PayloadTooLarge", http.StatusRequestEntityTooLarge, "Request body too large"}
	KindUnsupportedMedia = Kind{"UnsupportedMediaType", http.StatusUnsupportedMediaType, "Unsupported media type"}
	KindRateLimited      = Kind{"RateLimited", http.StatusTooManyRequests, "Too many requests"}
	KindTimeout          = Kind{"Timeout", http.StatusServiceUnavailable, "Request timed out"}
	KindRequestTimeout   = Kind{"RequestTimeout", http.StatusRequestTimeout, "Request not received in time"}
	KindUnavailable      = Kind{"Unavailable", http.StatusServiceUnavailable, "Service unavailable"}
	KindInternal         = Kind{"Internal", http.StatusInternalServerError, "Internal error"}
)

// Kinds lists every problem kind, for documentation (OpenAPI, /problems).
func Kinds() []Kind {
	return []Kind{
		KindInvalidCredentials, KindAccountLocked, KindUnauthorizedAccess, KindUnauthenticated,
		KindInvalidInput, KindDuplicateProperty, KindProfileNotFound, KindMeterConnection,
		KindInvalidReading, KindDataAccess, KindBillingCalculation, KindPaymentProcessing,
		KindBillNotFound, KindNotificationSending, KindReminderSetting, KindAbnormalUsage,
		KindInvalidQuery, KindSupportTicketNotFound, KindSupportStaffUnavailable,
		KindEmailNotVerified, KindSecondFactorRequired, KindInvalidToken,
		KindIdempotencyKeyInUse, KindIdempotencyKeyMismatch, KindInvalidSignature,
		KindNotFound, KindMethodNotAllowed, KindConflict, KindPayloadTooLarge, KindUnsupportedMedia,
		KindRateLimited, KindTimeout, KindRequestTimeout, KindUnavailable, KindInternal,
	}
}

// Problem is an RFC 9457 problem details document with meterd's
// extensions: code (the kind), request_id and, for invalid input, the
// offending fields.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	Code      string       `json:"code"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	// Extensions are extra members (RFC 9457 §3.2), e.g. the queued
	// ticket of a SupportStaffUnavailable answer.
	Extensions map[string]any `json:"-"`
}

// MarshalJSON writes the standard members and the extensions.
func (p Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	b, err := json.Marshal(plain(p))
	if err != nil || len(p.Extensions) == 0 {
		return b, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extensions {
		if _, taken := m[k]; taken {
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		m[k] = raw
	}
	return json.Marshal(m)
}

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error that carries its own problem kind and a detail safe to
// show to the caller. Handlers return it for transport-level conditions
// (malformed JSON, a missing header); domain code returns domain errors.
type Error struct {
	Kind       Kind
	Detail     string
	Fields     []FieldError
	Extensions map[string]any // extra problem members
	Err        error          // the cause, logged but never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind.Code, e.Detail, e.Err)
	}
	return e.Kind.Code + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k with a formatted detail.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// InvalidInput returns an InvalidInput error naming the offending fields.
func InvalidInput(fields ...FieldError) *Error {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Field
	}
	return &Error{Kind: KindInvalidInput, Detail: "invalid " + strings.Join(names, ", "), Fields: fields}
}

// mapping is one row of the ordered error table: the first row whose
// match returns true decides the kind.
type mapping struct {
	match func(error) bool
	kind  Kind
}

// is returns a matcher for a sentinel error.
func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// errorTable maps domain errors to problem kinds. Later issues append the
// domain sentinels (meter.ErrInvalidReading, billing.ErrCalculation, …)
// here, in the one place that decides status codes.
var errorTable = []mapping{
	{is(context.DeadlineExceeded), KindTimeout},
	{is(errServiceDraining), KindUnavailable},

	// Accounts, sessions, profiles, properties, meters (api/account).
	{is(account.ErrInvalidCredentials), KindInvalidCredentials},
	{is(account.ErrAccountLocked), KindAccountLocked},
	{is(account.ErrEmailNotVerified), KindEmailNotVerified},
	{is(account.ErrSecondFactorRequired), KindSecondFactorRequired},
	{is(account.ErrUnauthenticated), KindUnauthenticated},
	{is(account.ErrRefreshReuse), KindUnauthenticated},
	{is(account.ErrUnauthorized), KindUnauthorizedAccess},
	{is(account.ErrReminderSetting), KindReminderSetting},
	{is(account.ErrInvalidInput), KindInvalidInput},
	{is(account.ErrEmailTaken), KindConflict},
	{is(account.ErrDuplicateProperty), KindDuplicateProperty},
	{is(account.ErrProfileNotFound), KindProfileNotFound},
	{is(account.ErrUserNotFound), KindNotFound},
	{is(account.ErrTenantNotFound), KindNotFound},
	{is(account.ErrPropertyNotFound), KindNotFound},
	{is(account.ErrConnectionNotFound), KindNotFound},
	{is(account.ErrMeterNotFound), KindNotFound},
	{is(account.ErrConflict), KindConflict},
	{is(account.ErrRateLimited), KindRateLimited},
	{is(account.ErrBusy), KindUnavailable},
	{is(account.ErrTokenInvalid), KindInvalidToken},

	// Support desk (api/support).
	{is(support.ErrInvalidQuery), KindInvalidQuery},
	{is(support.ErrTicketNotFound), KindSupportTicketNotFound},
	{is(support.ErrStaffUnavailable), KindSupportStaffUnavailable},
	{is(support.ErrInvalidTransition), KindConflict},
	{is(support.ErrStaffNotFound), KindNotFound},

	// Usage (api/usage).
	{is(usage.ErrInvalidReading), KindInvalidReading},
	{is(usage.ErrMeterConnection), KindMeterConnection},
	{is(usage.ErrNotFound), KindNotFound},
	{is(usage.ErrDataAccess), KindDataAccess},

	// Payments (billing/payment). Provider failures are PaymentProcessing
	// with a detail that reveals nothing of the provider's answer.
	{is(payment.ErrBillNotFound), KindBillNotFound},
	{is(payment.ErrNotFound), KindNotFound},
	{is(payment.ErrConflict), KindConflict},
	{is(payment.ErrIdempotencyInUse), KindIdempotencyKeyInUse},
	{is(payment.ErrIdempotencyMismatch), KindIdempotencyKeyMismatch},
	{is(payment.ErrSignature), KindInvalidSignature},
	{is(payment.ErrProvider), KindPaymentProcessing},

	// Billing (billing, billing/postgres). A missing bill is BillNotFound
	// (the bill handlers say so); other missing billing records NotFound.
	{is(billing.ErrInvalidInput), KindInvalidInput},
	{is(billing.ErrCalculation), KindBillingCalculation},
	{is(billing.ErrConflict), KindConflict},
	{is(billing.ErrImmutable), KindConflict},
	{is(billing.ErrNotFound), KindNotFound},

	// Alerts and notifications (alerts). A usage finding presented as an
	// error is AbnormalUsage; a dead letter is NotificationSending.
	{is(alerts.ErrReminderSetting), KindReminderSetting},
	{is(alerts.ErrInvalidInput), KindInvalidInput},
	{is(alerts.ErrAbnormalUsage), KindAbnormalUsage},
	{is(alerts.ErrNotificationSending), KindNotificationSending},
	{is(alerts.ErrAlertNotFound), KindNotFound},
	{is(alerts.ErrNotificationNotFound), KindNotFound},
	{is(alerts.ErrDeviceNotFound), KindNotFound},
	{is(alerts.ErrInvalidTransition), KindConflict},
	{is(alerts.ErrConflict), KindConflict},
}

// errServiceDraining is returned while the server shuts down.
var errServiceDraining = errors.New("api: shutting down")

// ProblemFor maps an error to a problem. Unknown errors become a generic
// 500 whose detail reveals nothing; the caller logs the cause.
func ProblemFor(err error) Problem {
	var ae *Error
	if errors.As(err, &ae) {
		p := newProblem(ae.Kind, ae.Detail, ae.Fields)
		p.Extensions = ae.Extensions
		return p
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return newProblem(kindForStatus(fe.Code), fe.Message, nil)
	}
	for _, m := range errorTable {
		if m.match(err) {
			return newProblem(m.kind, publicDetail(m.kind, err), fieldsOf(err))
		}
	}
	return newProblem(KindInternal, "an internal error occurred; quote the request id when reporting it", nil)
}

// fieldsOf returns the invalid fields a domain validation error names.
func fieldsOf(err error) []FieldError {
	var bve *billing.ValidationError
	if errors.As(err, &bve) {
		out := make([]FieldError, len(bve.Fields))
		for i, f := range bve.Fields {
			out[i] = FieldError{Field: f.Path, Message: f.Problem}
		}
		return out
	}
	var ave *alerts.ValidationError
	if errors.As(err, &ave) {
		out := make([]FieldError, len(ave.Fields))
		for i, f := range ave.Fields {
			out[i] = FieldError{Field: f.Field, Message: f.Message}
		}
		return out
	}
	var ve *account.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	out := make([]FieldError, len(ve.Fields))
	for i, f := range ve.Fields {
		out[i] = FieldError{Field: f.Field, Message: f.Message}
	}
	return out
}

// publicDetail is the error text for kinds whose domain errors are written
// to be shown (validation messages, not-found names), and a generic text for
// kinds whose causes may reveal internals.
func publicDetail(k Kind, err error) string {
	switch k.Status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable:
		return k.Title
	}
	return err.Error()
}

func newProblem(k Kind, detail string, fields []FieldError) Problem {
	return Problem{
		Type:   "/problems/" + k.Code,
		Title:  k.Title,
		Status: k.Status,
		Detail: detail,
		Code:   k.Code,
		Errors: fields,
	}
}

func kindForStatus(status int) Kind {
	for _, k := range []Kind{KindNotFound, KindMethodNotAllowed, KindPayloadTooLarge, KindUnsupportedMedia, KindRateLimited, KindUnavailable, KindConflict} {
		if k.Status == status {
			return k
		}
	}
	switch {
	case status == http.StatusRequestTimeout:
		// The client took too long to send its request (fasthttp's read
		// deadline); KindTimeout is for our own deadline, a 503.
		return KindRequestTimeout
	case status == http.StatusUnauthorized:
		return KindUnauthenticated
	case status == http.StatusForbidden:
		return KindUnauthorizedAccess
	case status >= 400 && status < 500:
		return Kind{Code: "BadRequest", Status: status, Title: http.StatusText(status)}
	}
	return KindInternal
}

// errorHandler renders every error a handler returns as problem+json. It
// logs 5xx causes once, with the request id.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := ProblemFor(err)
		p.Instance = c.Path()
		p.RequestID = requestID(c)
		var pe errPanic
		if p.Status >= 500 && !errors.As(err, &pe) { // panics are logged, with the stack, where recovered
			log.Error("request failed", "request_id", p.RequestID, "method", c.Method(), "path", c.Path(), "err", err)
		}
		return WriteProblem(c, p)
	}
}

// WriteProblem writes p as the response.
func WriteProblem(c *fiber.Ctx, p Problem) error {
	c.Status(p.Status)
	return c.JSON(p, "application/problem+json")
}
