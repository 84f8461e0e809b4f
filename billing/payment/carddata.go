package payment

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
)

// Card data never reaches meterd: payers type card numbers into the
// provider's checkout, and meterd keeps at most a provider token, a brand
// and the last four digits. FindCardData is the guard at the door: every
// payment request body is scanned before it is parsed, logged or stored.

// cvvKeys are field names (lower case, without separators) that carry a
// card verification value.
var cvvKeys = map[string]bool{
	"cvv": true, "cvv2": true, "cvc": true, "cvc2": true, "cid": true, "csc": true, "cvn": true, "cav2": true,
	"securitycode": true, "cardsecuritycode": true, "cardverificationvalue": true, "cardverificationcode": true,
	"cardcvv": true, "cardcvc": true,
}

// CardData says what FindCardData found (never the value itself).
type CardData struct {
	// Field is the JSON or form field holding it, when known ("" for a
	// card number found elsewhere in the body).
	Field string
	// What is "card number" or "card verification value".
	What string
}

// FindCardData reports whether body carries card data: a run of 13 to 19
// digits (optionally grouped by single spaces or hyphens, as cards print
// them) that passes the Luhn check, anywhere in the body, or a field named
// like a card verification value (cvv, cvc, security_code …) in a JSON
// object at any depth or in a form. Digit runs are bounded by other
// characters, so amounts, ids and phone numbers do not match; a Luhn-valid
// 13–19 digit id would, and is refused too (by design: the cost of a false
// alarm is a 400, the cost of a miss is card data at rest).
func FindCardData(body []byte) (CardData, bool) {
	if hasPAN(body) {
		return CardData{What: "card number"}, true
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		var v any
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		if dec.Decode(&v) == nil {
			if field, ok := cvvField(v); ok {
				return CardData{Field: field, What: "card verification value"}, true
			}
		}
		return CardData{}, false
	}
	if form, err := url.ParseQuery(string(trimmed)); err == nil {
		for k := range form {
			if isCVVKey(k) {
				return CardData{Field: k, What: "card verification value"}, true
			}
		}
	}
	return CardData{}, false
}

func isCVVKey(k string) bool {
	k = strings.ToLower(k)
	k = strings.NewReplacer("_", "", "-", "", " ", "", ".", "").Replace(k)
	return cvvKeys[k]
}

func cvvField(v any) (string, bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			if isCVVKey(k) {
				return k, true
			}
			if f, ok := cvvField(y); ok {
				return f, true
			}
		}
	case []any:
		for _, y := range x {
			if f, ok := cvvField(y); ok {
				return f, true
			}
		}
	}
	return "", false
}

// hasPAN scans b for digit runs: maximal sequences of digit groups joined
// by single spaces or hyphens. A run is checked whole, and so is every
// contiguous sequence of its groups, when it has 13 to 19 digits.
func hasPAN(b []byte) bool {
	var groups [][]byte // digit groups of the current run
	flush := func() bool {
		defer func() { groups = groups[:0] }()
		for i := range groups {
			n := 0
			for j := i; j < len(groups); j++ {
				n += len(groups[j])
				if n > 19 {
					break
				}
				if n >= 13 && luhn(groups[i:j+1]) {
					return true
				}
			}
		}
		return false
	}
	i := 0
	for i < len(b) {
		if !isDigit(b[i]) {
			if len(groups) > 0 && flush() {
				return true
			}
			i++
			continue
		}
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		groups = append(groups, b[start:i])
		// A single separator followed by a digit continues the run.
		if i+1 < len(b) && (b[i] == ' ' || b[i] == '-') && isDigit(b[i+1]) {
			i++
			continue
		}
		if flush() {
			return true
		}
	}
	return len(groups) > 0 && flush()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// luhn checks the Luhn (mod 10) digit of the digits of groups, read as one
// number.
func luhn(groups [][]byte) bool {
	sum, double := 0, false
	for g := len(groups) - 1; g >= 0; g-- {
		for k := len(groups[g]) - 1; k >= 0; k-- {
			d := int(groups[g][k] - '0')
			if double {
				d *= 2
				if d > 9 {
					d -= 9
				}
			}
			sum += d
			double = !double
		}
	}
	return sum%10 == 0
}

// MaskCardNumbers returns b with every digit of a card-number-shaped,
// Luhn-valid digit run replaced by 'X' (for storing provider payloads,
// which should never hold one, as received but safe).
func MaskCardNumbers(b []byte) []byte {
	if !hasPAN(b) {
		return b
	}
	out := bytes.Clone(b)
	i := 0
	for i < len(out) {
		if !isDigit(out[i]) {
			i++
			continue
		}
		start := i
		for i < len(out) && (isDigit(out[i]) || ((out[i] == ' ' || out[i] == '-') && i+1 < len(out) && isDigit(out[i+1]))) {
			i++
		}
		if hasPAN(out[start:i]) {
			for k := start; k < i; k++ {
				if isDigit(out[k]) {
					out[k] = 'X'
				}
			}
		}
	}
	return out
}
