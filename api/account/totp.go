package account

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 6238's default, which every authenticator app implements; HMAC-SHA1 is not affected by SHA-1 collisions.
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters: RFC 6238 defaults, which every authenticator app uses.
const (
	totpStep      = 30 * time.Second
	totpDigits    = 6
	totpSecretLen = 20 // 160 bits, RFC 4226's recommendation
	// totpSkew accepts codes one step either side of now (clock drift).
	totpSkew = 1
)

var totpBase32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newTOTPSecret returns a random TOTP secret.
func newTOTPSecret() ([]byte, error) {
	s := make([]byte, totpSecretLen)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("totp: %w", err)
	}
	return s, nil
}

// totpCode returns the code for a time step.
func totpCode(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	mac := hmac.New(sha1.New, secret)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", totpDigits, v%1_000_000)
}

// totpStepAt returns the time step of t.
func totpStepAt(t time.Time) int64 { return t.Unix() / int64(totpStep/time.Second) }

// verifyTOTP checks code against the steps around now, refusing steps at
// or before lastStep (a code is good once). It returns the matched step.
func verifyTOTP(secret []byte, code string, now time.Time, lastStep int64) (int64, bool) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != totpDigits {
		return 0, false
	}
	cur := totpStepAt(now)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := cur + d
		if step <= lastStep {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(totpCode(secret, step)), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// totpURI is the otpauth:// URI authenticator apps read from a QR code.
func totpURI(issuer, account string, secret []byte) string {
	v := url.Values{}
	v.Set("secret", totpBase32.EncodeToString(secret))
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(totpDigits))
	v.Set("period", fmt.Sprint(int(totpStep/time.Second)))
	return "otpauth://totp/" + url.PathEscape(issuer+":"+account) + "?" + v.Encode()
}
