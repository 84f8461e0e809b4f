package alerts

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of the alerts and notifications domain. The API maps them to
// problem kinds (api/problem.go).
var (
	// ErrNotificationSending: a notification could not be delivered (the
	// provider refused it, or its last attempt failed): a dead letter.
	ErrNotificationSending = errors.New("notification could not be sent")
	// ErrReminderSetting: a reminder or escalation policy is invalid or
	// cannot be scheduled.
	ErrReminderSetting = errors.New("reminder cannot be set")
	// ErrAbnormalUsage: consumption above the threshold of the tariff plan
	// (and the other abnormal-usage findings, see AbnormalUsageError).
	ErrAbnormalUsage = errors.New("abnormal usage")
	// ErrAlertNotFound: no such alert in the caller's scope.
	ErrAlertNotFound = errors.New("alert not found")
	// ErrNotificationNotFound: no such notification in the caller's scope.
	ErrNotificationNotFound = errors.New("notification not found")
	// ErrDeviceNotFound: no such push device of the caller (or user).
	ErrDeviceNotFound = errors.New("not found")
	// ErrInvalidTransition: the alert's status does not allow the change
	// (acknowledging a resolved alert).
	ErrInvalidTransition = errors.New("alert status does not allow that")
	// ErrInvalidInput wraps every ValidationError.
	ErrInvalidInput = errors.New("invalid input")
	// ErrConflict: the change conflicts with the current state (a dead
	// letter that is no longer dead).
	ErrConflict = errors.New("conflict")
)

// FieldError names one invalid field.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists invalid fields. It wraps Kind (ErrInvalidInput
// unless a more specific sentinel such as ErrReminderSetting applies).
type ValidationError struct {
	Kind   error
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + " " + f.Message
	}
	return "invalid " + strings.Join(parts, "; ")
}

// Unwrap returns the sentinel the error is a kind of.
func (e *ValidationError) Unwrap() error {
	if e.Kind == nil {
		return ErrInvalidInput
	}
	return e.Kind
}

// Validator collects field errors.
type Validator struct {
	kind   error
	fields []FieldError
}

// NewValidator returns a validator whose error wraps kind (nil:
// ErrInvalidInput).
func NewValidator(kind error) *Validator { return &Validator{kind: kind} }

// Check adds a field error unless ok.
func (v *Validator) Check(ok bool, field, format string, args ...any) {
	if !ok {
		v.fields = append(v.fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
}

// Err returns the collected errors as a *ValidationError, or nil.
func (v *Validator) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Kind: v.kind, Fields: v.fields}
}

// AbnormalUsageError is a finding presented as the requirement's
// AbnormalUsage exception: usage above the plan's threshold, far off the
// meter's baseline, or above the sanctioned load.
type AbnormalUsageError struct {
	Kind     Kind
	MeterID  int64
	Summary  string
	Observed float64
	Expected float64
	Unit     string
}

func (e *AbnormalUsageError) Error() string {
	return fmt.Sprintf("abnormal usage on meter %d: %s", e.MeterID, e.Summary)
}

// Unwrap returns ErrAbnormalUsage.
func (e *AbnormalUsageError) Unwrap() error { return ErrAbnormalUsage }
