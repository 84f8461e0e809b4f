package account

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/meterd/meterd/api/audit"
	"github.com/meterd/meterd/api/keyring"
)

// Config configures the account service. Zero values take the documented
// defaults.
type Config struct {
	// DefaultTenant is the tenant code used when a registration or login
	// names none (single-utility deployments). Default: none, the request
	// must name its tenant.
	DefaultTenant string
	// Password is the password policy.
	Password PasswordPolicy
	// RefreshTTL is how long an unused refresh token stays valid; each
	// refresh issues a new one. Default 7 days.
	RefreshTTL time.Duration
	// SessionMaxAge is the absolute lifetime of a session (refresh-token
	// family): after it the user logs in again. Default 30 days.
	SessionMaxAge time.Duration
	// MaxFailedLogins consecutive failures within FailureWindow lock the
	// account for LockoutDuration. Defaults 5, 15 minutes, 15 minutes.
	MaxFailedLogins int
	FailureWindow   time.Duration
	LockoutDuration time.Duration
	// LoginPerAddress and LoginPerAccount rate-limit login attempts (and
	// token refreshes, verification resends) per client address and per
	// tenant+email. Defaults: burst 20 then 10 a minute per address; burst
	// 10 then 5 a minute per account.
	LoginPerAddress LimitConfig
	LoginPerAccount LimitConfig
	// RegisterPerAddress rate-limits registrations per address. Default
	// burst 10 then 10 an hour.
	RegisterPerAddress LimitConfig
	// AllowUnverifiedLogin lets users log in before verifying their email
	// address. Default false: verification is the requirement's second
	// factor for every account.
	AllowUnverifiedLogin bool
	// VerificationTTL is how long an email verification token is valid.
	// Default 48 h.
	VerificationTTL time.Duration
	// PublicURL is the externally visible base URL, for links in messages.
	// Default "http://localhost:8080".
	PublicURL string
	// SessionCheckTTL is how long a session's state (revoked? suspended?)
	// is cached per instance when authenticating requests: logout and
	// suspension take effect on other instances within this time. Default
	// 10 s; negative disables the cache.
	SessionCheckTTL time.Duration
	// TOTPIssuer names the service in authenticator apps. Default "meterd".
	TOTPIssuer string
	// LogVerificationLinks logs verification links at info level, for
	// development setups without a mail server. Never set in production.
	LogVerificationLinks bool
	// Bills checks bill ownership for per-bill reminders. nil until the
	// billing component provides it; per-bill reminders are refused then.
	Bills BillOwnership
	// Logger receives the few things worth logging (verification links in
	// development). Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.RefreshTTL == 0 {
		c.RefreshTTL = 7 * 24 * time.Hour
	}
	if c.SessionMaxAge == 0 {
		c.SessionMaxAge = 30 * 24 * time.Hour
	}
	if c.MaxFailedLogins == 0 {
		c.MaxFailedLogins = 5
	}
	if c.FailureWindow == 0 {
		c.FailureWindow = 15 * time.Minute
	}
	if c.LockoutDuration == 0 {
		c.LockoutDuration = 15 * time.Minute
	}
	if c.LoginPerAddress == (LimitConfig{}) {
		c.LoginPerAddress = LimitConfig{Burst: 20, Rate: 10, Per: time.Minute}
	}
	if c.LoginPerAccount == (LimitConfig{}) {
		c.LoginPerAccount = LimitConfig{Burst: 10, Rate: 5, Per: time.Minute}
	}
	if c.RegisterPerAddress == (LimitConfig{}) {
		c.RegisterPerAddress = LimitConfig{Burst: 10, Rate: 10, Per: time.Hour}
	}
	if c.VerificationTTL == 0 {
		c.VerificationTTL = 48 * time.Hour
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://localhost:8080"
	}
	if c.SessionCheckTTL == 0 {
		c.SessionCheckTTL = 10 * time.Second
	}
	if c.TOTPIssuer == "" {
		c.TOTPIssuer = "meterd"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	for _, d := range []time.Duration{c.RefreshTTL, c.SessionMaxAge, c.FailureWindow, c.LockoutDuration, c.VerificationTTL} {
		if d < 0 {
			return errors.New("account: durations must not be negative")
		}
	}
	if c.MaxFailedLogins < 0 {
		return errors.New("account: MaxFailedLogins must not be negative")
	}
	if c.RefreshTTL > 0 && c.SessionMaxAge > 0 && c.RefreshTTL > c.SessionMaxAge {
		return errors.New("account: RefreshTTL must not exceed SessionMaxAge")
	}
	return nil
}

// Service is the account domain's entry point.
type Service struct {
	store  Store
	tokens *Tokens
	hasher *Hasher
	ring   *keyring.Ring
	cfg    Config

	perAddress, perAccount, registrations *Limiter
	sessions                              *sessionCache
}

// New returns a Service.
func New(store Store, tokens *Tokens, hasher *Hasher, ring *keyring.Ring, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || tokens == nil || hasher == nil || ring == nil {
		return nil, errors.New("account: store, tokens, hasher and keyring are required")
	}
	cfg.setDefaults()
	return &Service{
		store:         store,
		tokens:        tokens,
		hasher:        hasher,
		ring:          ring,
		cfg:           cfg,
		perAddress:    NewLimiter(cfg.LoginPerAddress, 0, cfg.Now),
		perAccount:    NewLimiter(cfg.LoginPerAccount, 0, cfg.Now),
		registrations: NewLimiter(cfg.RegisterPerAddress, 0, cfg.Now),
		sessions:      newSessionCache(cfg.SessionCheckTTL, cfg.Now),
	}, nil
}

// Tokens returns the access-token issuer, for tests and tools.
func (s *Service) Tokens() *Tokens { return s.tokens }

// entry starts an audit entry for an action by a on an entity.
func (a Actor) entry(tenantID int64, action, entityType string, entityID int64) audit.Entry {
	id := ""
	if entityID != 0 {
		id = strconv.FormatInt(entityID, 10)
	}
	if tenantID == 0 {
		tenantID = a.TenantID
	}
	return audit.Entry{
		TenantID:    tenantID,
		ActorUserID: a.UserID,
		ActorRole:   string(a.Role),
		Action:      action,
		EntityType:  entityType,
		EntityID:    id,
		Address:     a.Address,
		RequestID:   a.RequestID,
	}
}

// seal seals an optional string value.
func (s *Service) seal(v, aad string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	b, err := s.ring.Seal([]byte(v), aad)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", aad, err)
	}
	return b, nil
}

// open opens an optional sealed value.
func (s *Service) open(b []byte, aad string) (string, error) {
	if b == nil {
		return "", nil
	}
	v, err := s.ring.Open(b, aad)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", aad, err)
	}
	return string(v), nil
}

// sessionCache remembers session states for a short time so that request
// authentication costs one database query per session per TTL.
type sessionCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[int64]cachedSession
}

type cachedSession struct {
	state   SessionState
	fetched time.Time
}

const sessionCacheMax = 100_000

func newSessionCache(ttl time.Duration, now func() time.Time) *sessionCache {
	return &sessionCache{ttl: ttl, now: now, entries: map[int64]cachedSession{}}
}

func (c *sessionCache) get(sid int64) (SessionState, bool) {
	if c.ttl <= 0 {
		return SessionState{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sid]
	if !ok || c.now().Sub(e.fetched) >= c.ttl {
		return SessionState{}, false
	}
	return e.state, true
}

func (c *sessionCache) put(st SessionState) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= sessionCacheMax {
		for k, e := range c.entries {
			if now.Sub(e.fetched) >= c.ttl {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= sessionCacheMax {
			clear(c.entries)
		}
	}
	c.entries[st.SessionID] = cachedSession{state: st, fetched: now}
}

func (c *sessionCache) drop(sid int64) {
	c.mu.Lock()
	delete(c.entries, sid)
	c.mu.Unlock()
}

func (c *sessionCache) dropUser(userID int64) {
	c.mu.Lock()
	for k, e := range c.entries {
		if e.state.UserID == userID {
			delete(c.entries, k)
		}
	}
	c.mu.Unlock()
}
