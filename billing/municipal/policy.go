package municipal

import (
	"errors"
	"fmt"
	"time"

	"github.com/meterd/meterd/billing"
)

// ZeroUnits is what a per-unit slab charges for zero units (reference
// §2.6 leaves it open; the source charged nothing).
type ZeroUnits uint8

// Zero-unit policies.
const (
	ZeroUnitsNoCharge ZeroUnits = iota + 1 // zero units bill nothing
	ZeroUnitsMinimum                       // zero units bill the slab's minimum charge
)

// Policy holds a tenant's choices where the rules leave one, and every
// rounding the calculators apply. RecommendedPolicy fills it.
type Policy struct {
	// Location is the tenant's time zone: due days, financial years and
	// master start days are civil dates there.
	Location *time.Location
	// ChargeRounding rounds the periodic charge and cess.
	ChargeRounding billing.Rounding
	// TimeBasedRounding rounds penalty, interest and time rebate.
	TimeBasedRounding billing.Rounding
	// FeeRounding rounds each one-time fee head.
	FeeRounding billing.Rounding
	// AdhocRounding rounds adhoc penalty and rebate amounts.
	AdhocRounding billing.Rounding
	// RoundOffMode makes demand totals whole; RoundHalfCeiling keeps the
	// round-off heads' sum in (−0.5, 0.5] for any sign of total.
	RoundOffMode billing.RoundingMode
	// ZeroUnits decides the charge for zero units on a per-unit slab.
	ZeroUnits ZeroUnits
	// TimeRebate applies the Rebate master as an early-payment rebate
	// (the reference loads it but never applies it).
	TimeRebate bool
	// FeeDemandPeriod is the length of a one-time fee demand's period, and
	// FeeDueAfter when it falls due; both count from creation.
	FeeDemandPeriod time.Duration
	FeeDueAfter     time.Duration
}

// RecommendedPolicy returns the reference's recommended behaviour in zone
// loc: charges and fees rounded half-up to 0.01 in exact decimals (not the
// reference's binary ceiling, bug B3); penalty, interest and rebate rounded
// toward +∞ to 0.01, as the reference does and its vectors expect (a 10%
// penalty on 33.33 is 3.34); adhoc amounts half-up; round-off half toward
// +∞ so the round-off sum stays in (−0.5, 0.5]; zero units bill nothing;
// no time rebate; fee demands over 157,784,760,000 ms (≈5 years) and due
// after 220,898,664,000 ms (≈7 years), the reference's constants.
func RecommendedPolicy(loc *time.Location) Policy {
	cents := func(m billing.RoundingMode) billing.Rounding { return billing.Rounding{Mode: m, Places: 2} }
	return Policy{
		Location:          loc,
		ChargeRounding:    cents(billing.RoundHalfUp),
		TimeBasedRounding: cents(billing.RoundCeiling),
		FeeRounding:       cents(billing.RoundHalfUp),
		AdhocRounding:     cents(billing.RoundHalfUp),
		RoundOffMode:      billing.RoundHalfCeiling,
		ZeroUnits:         ZeroUnitsNoCharge,
		FeeDemandPeriod:   157_784_760_000 * time.Millisecond,
		FeeDueAfter:       220_898_664_000 * time.Millisecond,
	}
}

// Validate reports an incomplete policy.
func (p Policy) Validate() error {
	var errs []error
	if p.Location == nil {
		errs = append(errs, errors.New("location is required"))
	}
	for name, r := range map[string]billing.Rounding{
		"charge": p.ChargeRounding, "time-based": p.TimeBasedRounding, "fee": p.FeeRounding, "adhoc": p.AdhocRounding,
	} {
		if !r.Mode.Valid() || r.Places < 0 || r.Places > 6 {
			errs = append(errs, fmt.Errorf("%s rounding %s is not a rounding", name, r))
		}
	}
	if !p.RoundOffMode.Valid() {
		errs = append(errs, errors.New("round-off mode is not a mode"))
	}
	if p.ZeroUnits != ZeroUnitsNoCharge && p.ZeroUnits != ZeroUnitsMinimum {
		errs = append(errs, errors.New("zero-units policy is not set"))
	}
	if p.FeeDemandPeriod <= 0 || p.FeeDueAfter <= 0 {
		errs = append(errs, errors.New("fee demand period and due time must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("municipal policy: %w", err)
	}
	return nil
}
