package account

import (
	"errors"
	"strings"
)

// The account domain's errors. The API maps each to a problem type named
// after the requirement's exception (api/problem.go).
var (
	// ErrInvalidCredentials: wrong email, password or second factor, or an
	// unknown tenant. Which one is never revealed.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrAccountLocked: too many failed logins (until the lockout ends), or
	// the account is suspended.
	ErrAccountLocked = errors.New("account locked")
	// ErrEmailNotVerified: the password was right but the email address has
	// not been verified yet.
	ErrEmailNotVerified = errors.New("email address not verified")
	// ErrSecondFactorRequired: the password was right and the account has
	// TOTP enabled, but no code was given.
	ErrSecondFactorRequired = errors.New("second factor required")
	// ErrUnauthenticated: a missing, malformed, expired or revoked token.
	ErrUnauthenticated = errors.New("authentication required")
	// ErrRefreshReuse: a refresh token was presented a second time; its
	// whole family has been revoked.
	ErrRefreshReuse = errors.New("refresh token reused; session revoked")
	// ErrUnauthorized: the caller is authenticated but may not do this
	// (UnauthorizedAccess).
	ErrUnauthorized = errors.New("not permitted")
	// ErrInvalidInput is wrapped by validation errors of profiles,
	// properties, registration and staff operations.
	ErrInvalidInput = errors.New("invalid input")
	// ErrEmailTaken: registration with an email already registered in the
	// tenant.
	ErrEmailTaken = errors.New("email address already registered")
	// ErrDuplicateProperty: the meter number is already registered to a
	// connection that is not closed.
	ErrDuplicateProperty = errors.New("meter already registered to a property")
	// ErrProfileNotFound: the user has no profile, or is not in scope.
	ErrProfileNotFound = errors.New("profile not found")
	// Not-found errors of other records (also returned for records outside
	// the caller's scope, which are never revealed).
	ErrUserNotFound       = errors.New("user not found")
	ErrTenantNotFound     = errors.New("tenant not found")
	ErrPropertyNotFound   = errors.New("property not found")
	ErrConnectionNotFound = errors.New("connection not found")
	ErrMeterNotFound      = errors.New("meter not found")
	// ErrConflict: the change contradicts the current state (a meter
	// already installed elsewhere in that span, a duplicate meter serial).
	ErrConflict = errors.New("conflict")
	// ErrRateLimited: too many attempts from this address or for this
	// account; try again later.
	ErrRateLimited = errors.New("too many attempts")
	// ErrBusy: the password hasher is saturated; retry shortly.
	ErrBusy = errors.New("server busy")
	// ErrTokenInvalid: an email verification token that is unknown,
	// expired or already used.
	ErrTokenInvalid = errors.New("token invalid or expired")
)

// FieldError names one invalid input field, by its JSON path
// ("address.postal_code", "connections[0].sanctioned_load_kw").
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists the invalid fields of a request. Kind is the
// domain sentinel it wraps: ErrInvalidInput unless the domain says
// otherwise (support's ErrInvalidQuery, usage's ErrInvalidReading, …).
type ValidationError struct {
	Kind   error
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + " " + f.Message)
	}
	return b.String()
}

func (e *ValidationError) Unwrap() error { return e.Kind }

// Validator collects field errors.
type Validator struct {
	Kind   error
	fields []FieldError
}

// NewValidator returns a Validator whose errors wrap kind.
func NewValidator(kind error) *Validator { return &Validator{Kind: kind} }

// Add records that field is invalid.
func (v *Validator) Add(field, message string) {
	v.fields = append(v.fields, FieldError{field, message})
}

// Check records message for field when ok is false.
func (v *Validator) Check(ok bool, field, message string) {
	if !ok {
		v.Add(field, message)
	}
}

// Err returns the *ValidationError, or nil if nothing was recorded.
func (v *Validator) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Kind: v.Kind, Fields: v.fields}
}
