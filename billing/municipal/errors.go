package municipal

import "github.com/meterd/meterd/billing"

// Error is a calculation failure of a municipal calculator. Every Error
// unwraps to billing.ErrCalculation, so the API reports it as
// BillingCalculation; compare with errors.Is against the constants below.
type Error string

func (e Error) Error() string { return string(e) }

// Unwrap makes errors.Is(err, billing.ErrCalculation) true.
func (e Error) Unwrap() error { return billing.ErrCalculation }

// Calculation failures.
const (
	// ErrNoCalculationAttribute: no active calculation attribute for the
	// connection type (reference bug B17 answered with an HTTP 500).
	ErrNoCalculationAttribute = Error("no calculation attribute for the connection type")
	// ErrNoBillingSlab: no billing slab matches the connection.
	ErrNoBillingSlab = Error("no billing slab matches")
	// ErrAmbiguousBillingSlab: more than one billing slab matches.
	ErrAmbiguousBillingSlab = Error("more than one billing slab matches")
	// ErrNoSlabRange: no band of the matching slab contains the units
	// (reference bug B2 billed 0 instead).
	ErrNoSlabRange = Error("no band of the billing slab contains the units")
	// ErrNoFeeSlab: no active fee slab.
	ErrNoFeeSlab = Error("no active fee slab")
	// ErrUnknownMaster: an input names a road type, usage type or plot
	// size that no active master entry prices.
	ErrUnknownMaster = Error("no master entry prices the input")
	// ErrReading: metered units cannot be computed from the readings.
	ErrReading = Error("meter readings do not give a consumption")
)
