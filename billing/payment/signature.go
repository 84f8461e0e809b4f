package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is read access to request headers (http.Header satisfies it).
type Header interface {
	Get(key string) string
}

// HMACHex returns hex(HMAC-SHA256(secret, message)).
func HMACHex(secret string, message []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(message)
	return hex.EncodeToString(m.Sum(nil))
}

// EqualHex compares a received hex signature with an expected one in
// constant time (hmac.Equal over the decoded bytes); a signature that is
// not hex never matches.
func EqualHex(got, want string) bool {
	g, err := hex.DecodeString(strings.TrimSpace(got))
	if err != nil {
		return false
	}
	w, err := hex.DecodeString(want)
	if err != nil {
		return false
	}
	return hmac.Equal(g, w)
}

// VerifyHMAC checks signature = hex(HMAC-SHA256(secret, body)) for any of
// secrets (the first is current; older ones stay during a rotation, since
// a provider keeps signing retries of earlier events with the secret they
// were first sent with).
func VerifyHMAC(body []byte, signature string, secrets []string) error {
	if signature == "" {
		return fmt.Errorf("%w: no signature header", ErrSignature)
	}
	for _, s := range secrets {
		if s != "" && EqualHex(signature, HMACHex(s, body)) {
			return nil
		}
	}
	return ErrSignature
}

// TimestampedSignature is a parsed "t=<unix>,v1=<hex>[,v1=<hex>…]" header,
// Stripe's Stripe-Signature format (also used by the sandbox).
type TimestampedSignature struct {
	Timestamp  time.Time
	Signatures []string // the v1 values
}

// ParseTimestampedSignature parses a "t=…,v1=…" header. Unknown schemes
// (v0, …) are skipped.
func ParseTimestampedSignature(h string) (TimestampedSignature, error) {
	var out TimestampedSignature
	var haveT bool
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return out, fmt.Errorf("%w: bad timestamp", ErrSignature)
			}
			out.Timestamp, haveT = time.Unix(sec, 0).UTC(), true
		case "v1":
			out.Signatures = append(out.Signatures, v)
		}
	}
	if !haveT || len(out.Signatures) == 0 {
		return out, fmt.Errorf("%w: want t=<unix>,v1=<hex>", ErrSignature)
	}
	return out, nil
}

// SignTimestamped returns the "t=…,v1=…" header value for body signed at
// t: v1 = hex(HMAC-SHA256(secret, "<unix t>.<body>")).
func SignTimestamped(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + HMACHex(secret, append([]byte(ts+"."), body...))
}

// VerifyTimestamped checks a "t=…,v1=…" header over body: some v1 must be
// hex(HMAC-SHA256(secret, "<t>.<body>")) for one of secrets, and |now − t|
// must not exceed tolerance (ErrStale otherwise; a tolerance of 0 or less
// means 300 s, as the official Stripe libraries default to).
func VerifyTimestamped(header string, body []byte, secrets []string, tolerance time.Duration, now time.Time) error {
	if header == "" {
		return fmt.Errorf("%w: no signature header", ErrSignature)
	}
	sig, err := ParseTimestampedSignature(header)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = 300 * time.Second
	}
	signed := append([]byte(strconv.FormatInt(sig.Timestamp.Unix(), 10)+"."), body...)
	matched := false
	for _, s := range secrets {
		if s == "" {
			continue
		}
		want := HMACHex(s, signed)
		for _, v := range sig.Signatures {
			if EqualHex(v, want) {
				matched = true
			}
		}
	}
	if !matched {
		return ErrSignature
	}
	if d := now.Sub(sig.Timestamp); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
