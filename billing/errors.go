package billing

import (
	"errors"
	"strings"
)

// ErrCalculation is the kind of every failure to compute a charge from valid
// input: no slab covers the quantity, a master entry is missing, consumption
// is negative, a period falls before the first tariff version. The API maps
// it to the BillingCalculation problem type. Wrap it, never match on text.
var ErrCalculation = errors.New("billing calculation")

// ErrInvalidInput is the kind of a document or request that fails
// validation. *ValidationError unwraps to it; the API maps it to
// InvalidInput.
var ErrInvalidInput = errors.New("invalid input")

// FieldError is one problem found at one place in a document.
type FieldError struct {
	// Path names the field the way a person finds it in the JSON document:
	// dotted object keys and [index] for array elements, e.g.
	// "energy.slabs[2].upto_kwh". Empty means the document as a whole.
	Path    string
	Problem string
}

func (f FieldError) String() string {
	if f.Path == "" {
		return f.Problem
	}
	return f.Path + ": " + f.Problem
}

// ValidationError lists every problem found in one document, so that an
// official fixing a tariff sees them all at once rather than one per load.
type ValidationError struct {
	Subject string // what was validated, e.g. "tariff document"
	Fields  []FieldError
}

// Add records a problem at path.
func (e *ValidationError) Add(path, problem string) {
	e.Fields = append(e.Fields, FieldError{Path: path, Problem: problem})
}

// Err returns e if it holds problems, else nil, so a validator can end with
// `return v.Err()`.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	if e.Subject != "" {
		b.WriteString(e.Subject)
	} else {
		b.WriteString("input")
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalidInput) true.
func (e *ValidationError) Unwrap() error { return ErrInvalidInput }

// ErrNotFound is the kind of a lookup of a bill, demand, tariff version or
// bill run that does not exist (or is not visible to the caller). The API
// maps it to BillNotFound for bills.
var ErrNotFound = errors.New("not found")

// ErrImmutable is the kind of an attempt to change what billing never
// changes: a published tariff version, an issued bill or its lines, a
// demand detail, a collection. Corrections are new records (a new tariff
// version, cancel and rebill, an appended delta, a reversal).
var ErrImmutable = errors.New("immutable")

// ErrConflict is the kind of a request that collides with existing state:
// a tariff version already published for that plan and date, a bill run
// already running for that period, a payment reference posted with a
// different amount.
var ErrConflict = errors.New("conflict")
