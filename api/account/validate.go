package account

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// normalizeEmail trims and lower-cases an email address.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// emailProblem returns why s is not an acceptable email address, or "".
func emailProblem(s string) string {
	if s == "" {
		return "is required"
	}
	if len(s) > 254 {
		return "must be at most 254 characters"
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "is not an email address"
	}
	_, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "is not an email address"
	}
	return ""
}

// textProblem checks a free-text field: required or not, at most max
// characters, no control characters.
func textProblem(s string, required bool, maxRunes int) string {
	switch {
	case s == "" && required:
		return "is required"
	case !utf8.ValidString(s):
		return "must be valid UTF-8 text"
	case utf8.RuneCountInString(s) > maxRunes:
		return "is too long"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}

var phoneChars = regexp.MustCompile(`^\+?[0-9 ()-]+$`)

// phoneProblem checks a phone number: optional leading +, 7–15 digits
// (E.164), spaces, dashes and parentheses allowed.
func phoneProblem(s string) string {
	if s == "" {
		return ""
	}
	if !phoneChars.MatchString(s) {
		return "must be a phone number such as +91 98765 43210"
	}
	digits := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	if digits < 7 || digits > 15 {
		return "must have 7 to 15 digits"
	}
	return ""
}

var (
	postalCode  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$`)
	countryCode = regexp.MustCompile(`^[A-Z]{2}$`)
)

// normalizeAddress trims the fields and defaults the country to IN.
func normalizeAddress(a *Address) {
	a.Line1 = strings.TrimSpace(a.Line1)
	a.Line2 = strings.TrimSpace(a.Line2)
	a.City = strings.TrimSpace(a.City)
	a.State = strings.TrimSpace(a.State)
	a.PostalCode = strings.TrimSpace(a.PostalCode)
	a.Country = strings.ToUpper(strings.TrimSpace(a.Country))
	if a.Country == "" {
		a.Country = "IN"
	}
}

// checkAddress validates a, naming fields under prefix.
func checkAddress(v *Validator, prefix string, a Address) {
	if m := textProblem(a.Line1, true, 200); m != "" {
		v.Add(prefix+".line1", m)
	}
	if m := textProblem(a.Line2, false, 200); m != "" {
		v.Add(prefix+".line2", m)
	}
	if m := textProblem(a.City, true, 100); m != "" {
		v.Add(prefix+".city", m)
	}
	if m := textProblem(a.State, false, 100); m != "" {
		v.Add(prefix+".state", m)
	}
	if a.PostalCode == "" {
		v.Add(prefix+".postal_code", "is required")
	} else if !postalCode.MatchString(a.PostalCode) {
		v.Add(prefix+".postal_code", "must be 2 to 10 letters, digits, spaces or dashes")
	}
	if !countryCode.MatchString(a.Country) {
		v.Add(prefix+".country", "must be an ISO 3166 two-letter code")
	}
}
