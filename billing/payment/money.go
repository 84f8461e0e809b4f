package payment

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// minorDigits are the ISO 4217 minor-unit exponents of the currencies
// whose exponent is not 2.
var minorDigits = map[string]int32{
	"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

// MinorExponent returns the number of decimal places of currency's minor
// unit (2 for INR: paise).
func MinorExponent(currency string) int32 {
	if d, ok := minorDigits[strings.ToUpper(currency)]; ok {
		return d
	}
	return 2
}

// ToMinor converts an amount in currency units to integer minor units
// (₹222.25 → 22225). It fails with ErrInvalidInput when the amount has
// more decimal places than the currency's minor unit or does not fit.
func ToMinor(amount decimal.Decimal, currency string) (int64, error) {
	exp := MinorExponent(currency)
	scaled := amount.Shift(exp)
	if !scaled.IsInteger() {
		return 0, fmt.Errorf("%w: %s has more than %d decimal places for %s", ErrInvalidInput, amount, exp, currency)
	}
	if scaled.GreaterThan(decimal.NewFromInt(1 << 53)) {
		return 0, fmt.Errorf("%w: %s is too large", ErrInvalidInput, amount)
	}
	return scaled.IntPart(), nil
}

// FromMinor converts integer minor units to an amount in currency units.
func FromMinor(minor int64, currency string) decimal.Decimal {
	return decimal.New(minor, -MinorExponent(currency))
}
