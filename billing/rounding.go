package billing

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// RoundingMode names how an amount is brought to a number of decimal
// places. Every charge component declares one; nothing rounds implicitly.
type RoundingMode uint8

// Rounding modes. "Half" modes decide ties only; the others are directed.
const (
	// RoundHalfUp rounds ties away from zero: 6.565 → 6.57, −6.565 → −6.57.
	// The usual commercial rule and the one regulators' examples use.
	RoundHalfUp RoundingMode = iota + 1
	// RoundHalfEven rounds ties to the even digit (banker's): 6.565 → 6.56.
	RoundHalfEven
	// RoundHalfDown rounds ties toward zero: 6.565 → 6.56, −6.565 → −6.56.
	RoundHalfDown
	// RoundHalfCeiling rounds ties toward +∞: 10.5 → 11, −12.5 → −12. A
	// whole-currency round-off in this mode always lies in (−0.5, 0.5],
	// whatever the sign of the total, which is the round-off contract.
	RoundHalfCeiling
	// RoundUp rounds away from zero.
	RoundUp
	// RoundDown rounds toward zero (truncates).
	RoundDown
	// RoundCeiling rounds toward +∞ (Java's ROUND_CEILING, which the DIGIT
	// reference uses for penalty and interest).
	RoundCeiling
	// RoundFloor rounds toward −∞.
	RoundFloor
)

// name is the mode's name in documents, "" for an invalid mode.
func (m RoundingMode) name() string {
	switch m {
	case RoundHalfUp:
		return "half_up"
	case RoundHalfEven:
		return "half_even"
	case RoundHalfDown:
		return "half_down"
	case RoundHalfCeiling:
		return "half_ceiling"
	case RoundUp:
		return "up"
	case RoundDown:
		return "down"
	case RoundCeiling:
		return "ceiling"
	case RoundFloor:
		return "floor"
	}
	return ""
}

// ParseRoundingMode parses a mode name as written in documents
// ("half_up", "half_even", "half_down", "half_ceiling", "up", "down",
// "ceiling", "floor").
func ParseRoundingMode(s string) (RoundingMode, error) {
	for m := RoundHalfUp; m <= RoundFloor; m++ {
		if m.name() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown rounding mode %q (want half_up, half_even, half_down, half_ceiling, up, down, ceiling or floor)", s)
}

// Valid reports whether m is one of the declared modes.
func (m RoundingMode) Valid() bool {
	return m >= RoundHalfUp && m <= RoundFloor
}

func (m RoundingMode) String() string {
	if m.Valid() {
		return m.name()
	}
	return fmt.Sprintf("rounding(%d)", uint8(m))
}

// MarshalText writes the mode's document name.
func (m RoundingMode) MarshalText() ([]byte, error) {
	if !m.Valid() {
		return nil, fmt.Errorf("marshal rounding mode: %d is not a mode", uint8(m))
	}
	return []byte(m.name()), nil
}

// UnmarshalText parses a mode name.
func (m *RoundingMode) UnmarshalText(b []byte) error {
	v, err := ParseRoundingMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Round brings d to places decimal places (negative places round to tens,
// hundreds …). An invalid mode panics: modes come from validated documents
// or constants, so an invalid one is a programming error.
func (m RoundingMode) Round(d decimal.Decimal, places int32) decimal.Decimal {
	switch m {
	case RoundHalfUp:
		return d.Round(places)
	case RoundHalfEven:
		return d.RoundBank(places)
	case RoundHalfDown:
		return roundHalfDown(d, places)
	case RoundHalfCeiling:
		if d.Sign() >= 0 {
			return d.Round(places)
		}
		return roundHalfDown(d, places)
	case RoundUp:
		return d.RoundUp(places)
	case RoundDown:
		return d.RoundDown(places)
	case RoundCeiling:
		return d.RoundCeil(places)
	case RoundFloor:
		return d.RoundFloor(places)
	}
	panic(fmt.Sprintf("billing: round with invalid mode %d", uint8(m)))
}

// roundHalfDown rounds ties toward zero: truncate, then step away from zero
// only when the discarded part is more than half a unit.
func roundHalfDown(d decimal.Decimal, places int32) decimal.Decimal {
	truncated := d.RoundDown(places)
	rest := d.Sub(truncated).Abs().Shift(places) // in units of the last kept place
	if rest.Cmp(decimal.New(5, -1)) > 0 {
		return d.RoundUp(places)
	}
	return truncated
}

// Rounding is a declared rounding: a mode and the number of decimal places
// (2 for paise/cents, 0 for whole rupees).
type Rounding struct {
	Mode   RoundingMode `json:"mode"`
	Places int32        `json:"places"`
}

// Apply rounds d by r.
func (r Rounding) Apply(d decimal.Decimal) decimal.Decimal {
	return r.Mode.Round(d, r.Places)
}

func (r Rounding) String() string {
	return fmt.Sprintf("%s/%d", r.Mode, r.Places)
}

// RoundOff returns the round-off line for total: the amount that, added to
// total, makes it a whole multiple of 10^-places under mode. With places 0
// and RoundHalfCeiling the result lies in (−0.5, 0.5] for any total:
// 1301.85 → +0.15, 12.36 → −0.36, 10.50 → +0.50, −12.64 → −0.36.
func RoundOff(total decimal.Decimal, places int32, mode RoundingMode) decimal.Decimal {
	return mode.Round(total, places).Sub(total)
}
