package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are argon2id's cost parameters.
//
// The defaults (DefaultArgon2Params) are m = 64 MiB, t = 2 passes, p = 2
// lanes, a 16-byte salt and a 32-byte hash: RFC 9106's second recommended
// option made a little stronger, and above OWASP's argon2id floor (m = 19 MiB,
// t = 2, p = 1). On this project's 2-core machine BenchmarkArgon2 measured
// 155 ms and 64 MiB per hash (against 1.9 ms for the m=1 MiB, t=1 test
// parameters in the same run), which bounds an attacker with a stolen
// database to a few guesses per core-second while a login stays well under
// the request timeout. Memory, not CPU, is what a login storm exhausts, so
// the Hasher bounds concurrent hashes (two at once: 128 MiB) and sheds
// callers beyond its waiting room with ErrBusy.
type Argon2Params struct {
	MemoryKiB uint32
	Passes    uint32
	Lanes     uint8
	SaltBytes int
	HashBytes uint32
}

// DefaultArgon2Params returns the production parameters.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{MemoryKiB: 64 * 1024, Passes: 2, Lanes: 2, SaltBytes: 16, HashBytes: 32}
}

// Validate checks the parameters are within sane bounds.
func (p Argon2Params) Validate() error {
	switch {
	case p.MemoryKiB < 8*uint32(p.Lanes) || p.MemoryKiB > 4<<20:
		return fmt.Errorf("argon2: memory %d KiB outside 8×lanes..4 GiB", p.MemoryKiB)
	case p.Passes < 1 || p.Passes > 20:
		return fmt.Errorf("argon2: passes %d outside 1..20", p.Passes)
	case p.Lanes < 1:
		return errors.New("argon2: lanes must be at least 1")
	case p.SaltBytes < 16:
		return errors.New("argon2: salt must be at least 16 bytes")
	case p.HashBytes < 16:
		return errors.New("argon2: hash must be at least 16 bytes")
	}
	return nil
}

// HasherConfig configures a Hasher.
type HasherConfig struct {
	// Params are used for new hashes. Default DefaultArgon2Params.
	Params Argon2Params
	// MaxConcurrent bounds how many hashes run at once; each holds
	// Params.MemoryKiB of memory. Default 2 (one per core on the reference
	// machine: more would only queue on the CPU while multiplying memory).
	MaxConcurrent int
	// MaxWaiting bounds how many callers may wait for a slot; beyond it a
	// call fails at once with ErrBusy instead of queueing behind a storm.
	// Default 64.
	MaxWaiting int
}

// Hasher hashes and verifies passwords with argon2id, at most
// MaxConcurrent at a time.
type Hasher struct {
	params  Argon2Params
	slots   chan struct{}
	waiting chan struct{}
	dummy   string // a hash to verify against when the user does not exist
}

// NewHasher returns a Hasher.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	if cfg.Params == (Argon2Params{}) {
		cfg.Params = DefaultArgon2Params()
	}
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 2
	}
	if cfg.MaxWaiting <= 0 {
		cfg.MaxWaiting = 64
	}
	h := &Hasher{
		params:  cfg.Params,
		slots:   make(chan struct{}, cfg.MaxConcurrent),
		waiting: make(chan struct{}, cfg.MaxConcurrent+cfg.MaxWaiting),
	}
	salt := make([]byte, cfg.Params.SaltBytes)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	h.dummy = encodePHC(cfg.Params, salt, argon2.IDKey([]byte("dummy password"), salt, cfg.Params.Passes, cfg.Params.MemoryKiB, cfg.Params.Lanes, cfg.Params.HashBytes))
	return h, nil
}

// Params returns the parameters new hashes use.
func (h *Hasher) Params() Argon2Params { return h.params }

func (h *Hasher) acquire(ctx context.Context) (func(), error) {
	select {
	case h.waiting <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots; <-h.waiting }, nil
	case <-ctx.Done():
		<-h.waiting
		return nil, fmt.Errorf("password hash: %w", ctx.Err())
	}
}

// Hash returns the PHC-format argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	salt := make([]byte, h.params.SaltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password hash: %w", err)
	}
	p := h.params
	return encodePHC(p, salt, argon2.IDKey([]byte(password), salt, p.Passes, p.MemoryKiB, p.Lanes, p.HashBytes)), nil
}

// Verify reports whether password matches encoded, in constant time. With
// encoded empty it verifies against a dummy hash, so a login for an unknown
// user costs the same as one for a known user, and returns false.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	unknown := encoded == ""
	if unknown {
		encoded = h.dummy
	}
	p, salt, want, err := decodePHC(encoded)
	if err != nil {
		return false, err
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	got := argon2.IDKey([]byte(password), salt, p.Passes, p.MemoryKiB, p.Lanes, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && !unknown, nil
}

// NeedsRehash reports whether encoded was made with other parameters than
// the current ones (it is then rehashed at the next successful login).
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, salt, hash, err := decodePHC(encoded)
	return err != nil || p.MemoryKiB != h.params.MemoryKiB || p.Passes != h.params.Passes ||
		p.Lanes != h.params.Lanes || len(salt) != h.params.SaltBytes || len(hash) != int(h.params.HashBytes)
}

var b64 = base64.RawStdEncoding

func encodePHC(p Argon2Params, salt, hash []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Passes, p.Lanes, b64.EncodeToString(salt), b64.EncodeToString(hash))
}

// errBadHash is returned for a stored hash that is not a PHC argon2id string.
var errBadHash = errors.New("password hash: not a PHC argon2id string")

func decodePHC(s string) (Argon2Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Argon2Params{}, nil, nil, errBadHash
	}
	var p Argon2Params
	var lanes uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Passes, &lanes); err != nil || lanes == 0 || lanes > 255 {
		return Argon2Params{}, nil, nil, errBadHash
	}
	p.Lanes = uint8(lanes)
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return Argon2Params{}, nil, nil, errBadHash
	}
	hash, err := b64.DecodeString(parts[5])
	if err != nil || len(hash) < 16 {
		return Argon2Params{}, nil, nil, errBadHash
	}
	p.SaltBytes, p.HashBytes = len(salt), uint32(len(hash))
	if p.MemoryKiB < 8*uint32(p.Lanes) || p.MemoryKiB > 4<<20 || p.Passes < 1 || p.Passes > 20 {
		return Argon2Params{}, nil, nil, errBadHash
	}
	return p, salt, hash, nil
}

// PasswordPolicy is the password rule set, after NIST SP 800-63B: length
// matters, composition rules do not; known-weak passwords are refused.
type PasswordPolicy struct {
	// MinLength and MaxLength bound the length in characters. Defaults 10
	// and 128.
	MinLength, MaxLength int
}

func (p PasswordPolicy) withDefaults() PasswordPolicy {
	if p.MinLength == 0 {
		p.MinLength = 10
	}
	if p.MaxLength == 0 {
		p.MaxLength = 128
	}
	return p
}

// weakPasswords are refused outright (checked case-insensitively, and as
// the password with trailing digits and punctuation removed).
var weakPasswords = map[string]bool{
	"password": true, "passw0rd": true, "password1": true, "qwerty": true, "qwertyuiop": true,
	"123456789": true, "1234567890": true, "iloveyou": true, "letmein": true, "welcome": true,
	"admin": true, "administrator": true, "changeme": true, "electricity": true, "sunshine": true,
	"football": true, "baseball": true, "dragon": true, "monkey": true, "abc123": true,
	"abcdefghij": true, "trustno1": true, "superman": true, "meterd": true, "1q2w3e4r5t": true,
}

// Check validates password for the account with the given email. It
// returns a message naming what is wrong, or "".
func (p PasswordPolicy) Check(password, email string) string {
	p = p.withDefaults()
	if !utf8.ValidString(password) {
		return "must be valid UTF-8 text"
	}
	n := utf8.RuneCountInString(password)
	if n < p.MinLength {
		return fmt.Sprintf("must be at least %d characters", p.MinLength)
	}
	if n > p.MaxLength {
		return fmt.Sprintf("must be at most %d characters", p.MaxLength)
	}
	for _, r := range password {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	lower := strings.ToLower(password)
	if weakPasswords[lower] || weakPasswords[strings.TrimRightFunc(lower, func(r rune) bool { return unicode.IsDigit(r) || unicode.IsPunct(r) })] {
		return "is too common"
	}
	if local, _, ok := strings.Cut(strings.ToLower(email), "@"); ok && len(local) >= 4 && strings.Contains(lower, local) {
		return "must not contain the email address"
	}
	distinct := map[rune]bool{}
	for _, r := range password {
		distinct[r] = true
	}
	if len(distinct) < 4 {
		return "must use more than three distinct characters"
	}
	return ""
}
