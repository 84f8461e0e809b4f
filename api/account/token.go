package account

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meterd/meterd/api/keyring"
)

// TokenConfig configures access tokens.
type TokenConfig struct {
	// Keys are the HMAC-SHA256 signing keys, the first current: new tokens
	// are signed with it and carry its id in the "kid" header; tokens
	// signed with the others still verify until those keys are removed.
	// Rotate by prepending a new key, waiting AccessTTL, then dropping the
	// old one. Each key must be at least 32 bytes.
	Keys []keyring.Key
	// Issuer ("iss") and Audience ("aud") are set on every token and
	// required on every token presented. Defaults "meterd" and "meterd-api".
	Issuer, Audience string
	// AccessTTL is an access token's lifetime. Default 15 minutes.
	AccessTTL time.Duration
	// Leeway tolerates clock skew between instances when checking exp, nbf
	// and iat. Default 30 s.
	Leeway time.Duration
	// Now is the clock tokens are checked against. Default time.Now.
	Now func() time.Time
}

func (c *TokenConfig) setDefaults() {
	if c.Issuer == "" {
		c.Issuer = "meterd"
	}
	if c.Audience == "" {
		c.Audience = "meterd-api"
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the configuration.
func (c TokenConfig) Validate() error {
	if len(c.Keys) == 0 {
		return errors.New("tokens: no signing keys")
	}
	seen := map[string]bool{}
	for _, k := range c.Keys {
		if len(k.Secret) < 32 {
			return fmt.Errorf("tokens: key %q is %d bytes; HS256 keys must be at least 32", k.ID, len(k.Secret))
		}
		if seen[k.ID] {
			return fmt.Errorf("tokens: key id %q appears twice", k.ID)
		}
		seen[k.ID] = true
	}
	if c.AccessTTL < 0 || c.Leeway < 0 {
		return errors.New("tokens: durations must not be negative")
	}
	return nil
}

// accessClaims are an access token's claims: the registered ones (sub is
// the user id) and meterd's own.
type accessClaims struct {
	jwt.RegisteredClaims
	TenantID   int64  `json:"tid"`
	Role       Role   `json:"role"`
	Department string `json:"dept,omitempty"`
	SessionID  int64  `json:"sid"`
}

// Tokens issues and verifies access tokens (JWT, HS256 only).
type Tokens struct {
	cfg    TokenConfig
	keys   map[string][]byte
	parser *jwt.Parser

	// verified remembers tokens whose signature and claims were checked
	// (parsing a JWT costs tens of microseconds, most of a cheap request).
	// Only the identical token string hits; its expiry is still checked
	// on every use, and entries are re-verified after verifiedTTL, so a
	// key removed from the ring stops working within that time.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	p       Principal
	exp     time.Time // the token's expiry
	checked time.Time // when it was verified
}

const (
	verifiedTTL = time.Minute
	verifiedMax = 50_000
)

// The only signing algorithm accepted. Pinning it is what stops alg:none
// and algorithm-confusion tokens.
const signingAlg = "HS256"

// NewTokens returns a Tokens.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	t := &Tokens{cfg: cfg, keys: make(map[string][]byte, len(cfg.Keys)), verified: map[string]verifiedToken{}}
	for _, k := range cfg.Keys {
		t.keys[k.ID] = k.Secret
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{signingAlg}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	)
	return t, nil
}

// AccessTTL is the lifetime of the tokens Issue makes.
func (t *Tokens) AccessTTL() time.Duration { return t.cfg.AccessTTL }

// Issue returns a signed access token for p, valid from now for AccessTTL.
func (t *Tokens) Issue(p Principal, now time.Time) (string, time.Time, error) {
	exp := now.Add(t.cfg.AccessTTL)
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("tokens: %w", err)
	}
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   strconv.FormatInt(p.UserID, 10),
			Audience:  jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		TenantID:   p.TenantID,
		Role:       p.Role,
		Department: p.Department,
		SessionID:  p.SessionID,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	current := t.cfg.Keys[0]
	tok.Header["kid"] = current.ID
	s, err := tok.SignedString(current.Secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("tokens: sign: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's algorithm, key id, signature, issuer, audience,
// expiry, not-before and issued-at, and returns its principal. Every
// failure is ErrUnauthenticated (the cause is wrapped for logs).
func (t *Tokens) Verify(token string) (Principal, error) {
	now := t.cfg.Now()
	t.mu.Lock()
	v, ok := t.verified[token]
	t.mu.Unlock()
	if ok && now.Sub(v.checked) < verifiedTTL && now.Before(v.exp.Add(t.cfg.Leeway)) {
		return v.p, nil
	}
	p, exp, err := t.verify(token)
	if err != nil {
		return Principal{}, err
	}
	t.mu.Lock()
	if len(t.verified) >= verifiedMax {
		clear(t.verified)
	}
	t.verified[token] = verifiedToken{p: p, exp: exp, checked: now}
	t.mu.Unlock()
	return p, nil
}

func (t *Tokens) verify(token string) (Principal, time.Time, error) {
	var c accessClaims
	if _, err := t.parser.ParseWithClaims(token, &c, t.keyFor); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	uid, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || uid <= 0 || c.TenantID <= 0 || c.SessionID <= 0 || !c.Role.Valid() || c.ExpiresAt == nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: malformed claims", ErrUnauthenticated)
	}
	return Principal{TenantID: c.TenantID, UserID: uid, Role: c.Role, Department: c.Department, SessionID: c.SessionID}, c.ExpiresAt.Time, nil
}

func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	kid, ok := tok.Header["kid"].(string)
	if !ok {
		return nil, errors.New("no key id")
	}
	key, ok := t.keys[kid]
	if !ok {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	return key, nil
}

// newSecretToken returns a random 256-bit token (URL-safe base64) and its
// SHA-256, which is all the database keeps.
func newSecretToken() (string, []byte, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("token: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	return s, hashToken(s), nil
}

// hashToken returns the SHA-256 of a presented secret token. Tokens are
// random 256-bit values, so a fast hash is as safe as a slow one.
func hashToken(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
