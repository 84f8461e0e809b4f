package account

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/meterd/meterd/api/outbox"
)

// RegisterInput is a self-registration.
type RegisterInput struct {
	Tenant   string // tenant code; Config.DefaultTenant when empty
	Email    string
	Password string
	Name     string
	Phone    string
	Address  *Address
}

// Register creates a consumer account with its profile, and enqueues the
// email verification message. The account can log in once the address is
// verified (unless Config.AllowUnverifiedLogin).
func (s *Service) Register(ctx context.Context, a Actor, in RegisterInput) (User, error) {
	if !s.registrations.Allow("reg:" + a.Address) {
		return User{}, ErrRateLimited
	}
	in.Email = normalizeEmail(in.Email)
	in.Name = strings.TrimSpace(in.Name)
	in.Phone = strings.TrimSpace(in.Phone)
	v := NewValidator(ErrInvalidInput)
	if m := emailProblem(in.Email); m != "" {
		v.Add("email", m)
	}
	if m := s.cfg.Password.Check(in.Password, in.Email); m != "" {
		v.Add("password", m)
	}
	if m := textProblem(in.Name, true, 200); m != "" {
		v.Add("name", m)
	}
	if m := phoneProblem(in.Phone); m != "" {
		v.Add("phone", m)
	}
	if in.Address != nil {
		normalizeAddress(in.Address)
		checkAddress(v, "address", *in.Address)
	}
	tenant, err := s.tenant(ctx, in.Tenant)
	if errors.Is(err, ErrTenantNotFound) {
		v.Add("tenant", "is not a known utility")
	} else if err != nil {
		return User{}, err
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	ver, msg, token, err := s.newVerification(tenant.ID, in.Email)
	if err != nil {
		return User{}, err
	}
	nu := NewUser{TenantID: tenant.ID, Email: in.Email, Role: RoleConsumer, PasswordHash: hash}
	u, err := s.store.CreateUser(ctx, nu, s.profileSealer(in.Name, in.Email, in.Phone, in.Address), &ver, &msg,
		a.entry(tenant.ID, "user.register", "user", 0))
	if err != nil {
		return User{}, err
	}
	s.logVerificationLink(tenant, u.Email, token)
	return u, nil
}

// tenant resolves a tenant code, falling back to the default tenant.
func (s *Service) tenant(ctx context.Context, code string) (Tenant, error) {
	code = strings.ToLower(strings.TrimSpace(code))
	if code == "" {
		code = s.cfg.DefaultTenant
	}
	if code == "" {
		return Tenant{}, ErrTenantNotFound
	}
	return s.store.TenantByCode(ctx, code)
}

// profileSealer returns the function that seals a new user's profile once
// the user id is known.
func (s *Service) profileSealer(name, email, phone string, addr *Address) func(int64) (SealedProfile, error) {
	return func(userID int64) (SealedProfile, error) {
		return s.sealProfile(userID, Profile{Name: name, Email: email, Phone: phone, Address: addr})
	}
}

// newVerification makes a verification token and the outbox message that
// delivers it (the token sealed, never in the payload).
func (s *Service) newVerification(tenantID int64, email string) (Verification, outbox.Message, string, error) {
	token, hash, err := newSecretToken()
	if err != nil {
		return Verification{}, outbox.Message{}, "", err
	}
	key := "verify_email:" + hex.EncodeToString(hash)
	sealed, err := s.ring.Seal([]byte(token), outbox.SecretAAD(key))
	if err != nil {
		return Verification{}, outbox.Message{}, "", fmt.Errorf("seal verification token: %w", err)
	}
	ver := Verification{TenantID: tenantID, Email: email, Hash: hash, ExpiresAt: s.cfg.Now().Add(s.cfg.VerificationTTL)}
	msg := outbox.Message{
		TenantID:  tenantID,
		Event:     outbox.EventVerifyEmail,
		Channel:   "email",
		Payload:   map[string]any{"email": email, "link_path": "/verify?token=", "expires_at": ver.ExpiresAt.UTC()},
		Secret:    sealed,
		DedupeKey: key,
	}
	return ver, msg, token, nil
}

func (s *Service) logVerificationLink(t Tenant, email, token string) {
	if !s.cfg.LogVerificationLinks {
		return
	}
	s.cfg.Logger.Info("email verification link (development only)", "tenant", t.Code, "email", email,
		"link", strings.TrimRight(s.cfg.PublicURL, "/")+"/verify?token="+url.QueryEscape(token))
}

// LoginInput is a login attempt.
type LoginInput struct {
	Tenant   string
	Email    string
	Password string
	TOTPCode string
}

// Session is what a successful login or refresh returns.
type Session struct {
	User           User
	SessionID      int64
	AccessToken    string
	AccessExpires  time.Time
	RefreshToken   string
	RefreshExpires time.Time
}

// Login checks credentials and starts a session. Failures are
// ErrInvalidCredentials (which never says whether the email exists),
// ErrAccountLocked, ErrEmailNotVerified, ErrSecondFactorRequired or
// ErrRateLimited.
func (s *Service) Login(ctx context.Context, a Actor, in LoginInput) (Session, error) {
	in.Email = normalizeEmail(in.Email)
	if !s.perAddress.Allow("login:" + a.Address) {
		return Session{}, ErrRateLimited
	}
	if !s.perAccount.Allow("login:" + strings.ToLower(in.Tenant) + "/" + in.Email) {
		return Session{}, ErrRateLimited
	}
	now := s.cfg.Now()
	tenant, err := s.tenant(ctx, in.Tenant)
	if err != nil && !errors.Is(err, ErrTenantNotFound) {
		return Session{}, err
	}
	var u User
	if err == nil && in.Email != "" {
		u, err = s.store.UserByEmail(ctx, tenant.ID, in.Email)
		if err != nil && !errors.Is(err, ErrUserNotFound) {
			return Session{}, err
		}
	}
	if u.ID == 0 {
		// Same cost as a real check, so timing does not reveal whether
		// the account exists.
		if _, err := s.hasher.Verify(ctx, "", in.Password); err != nil {
			return Session{}, err
		}
		return Session{}, ErrInvalidCredentials
	}
	failed := func(reason string) error {
		e := a.entry(u.TenantID, "session.login_failed", "user", u.ID)
		e.After = map[string]any{"reason": reason}
		until, err := s.store.RecordLoginFailure(ctx, u.ID, now, s.cfg.FailureWindow, s.cfg.MaxFailedLogins, s.cfg.LockoutDuration, e)
		if err != nil {
			return err
		}
		if until != nil {
			return fmt.Errorf("%w until %s", ErrAccountLocked, until.UTC().Format(time.RFC3339))
		}
		return ErrInvalidCredentials
	}
	switch {
	case u.Status == StatusSuspended:
		return Session{}, fmt.Errorf("%w: suspended", ErrAccountLocked)
	case u.LockedUntil != nil && u.LockedUntil.After(now):
		return Session{}, fmt.Errorf("%w until %s", ErrAccountLocked, u.LockedUntil.UTC().Format(time.RFC3339))
	}
	ok, err := s.hasher.Verify(ctx, u.PasswordHash, in.Password)
	if err != nil {
		return Session{}, err
	}
	if !ok {
		return Session{}, failed("password")
	}
	if u.EmailVerifiedAt == nil && !s.cfg.AllowUnverifiedLogin {
		return Session{}, ErrEmailNotVerified
	}
	var step int64
	if u.TOTPEnabled {
		if strings.TrimSpace(in.TOTPCode) == "" {
			return Session{}, ErrSecondFactorRequired
		}
		secret, err := s.ring.Open(u.TOTPSecret, totpAAD(u.ID))
		if err != nil {
			return Session{}, fmt.Errorf("open totp secret: %w", err)
		}
		var ok bool
		if step, ok = verifyTOTP(secret, in.TOTPCode, now, u.TOTPLastStep); !ok {
			return Session{}, failed("totp")
		}
	}
	ns := NewSession{UserID: u.ID, TenantID: u.TenantID, Now: now, TOTPStep: step, Address: a.Address, UserAgent: a.UserAgent}
	if s.hasher.NeedsRehash(u.PasswordHash) {
		if ns.Rehash, err = s.hasher.Hash(ctx, in.Password); err != nil {
			return Session{}, err
		}
	}
	refresh, hash, err := newSecretToken()
	if err != nil {
		return Session{}, err
	}
	ns.RefreshHash = hash
	ns.SessionExpires = now.Add(s.cfg.SessionMaxAge)
	ns.RefreshExpires = now.Add(s.cfg.RefreshTTL)
	e := a.entry(u.TenantID, "session.login", "user", u.ID)
	e.ActorUserID, e.ActorRole = u.ID, string(u.Role)
	sid, err := s.store.StartSession(ctx, ns, e)
	if err != nil {
		return Session{}, err
	}
	access, exp, err := s.tokens.Issue(u.Principal(sid), now)
	if err != nil {
		return Session{}, err
	}
	return Session{User: u, SessionID: sid, AccessToken: access, AccessExpires: exp, RefreshToken: refresh, RefreshExpires: ns.RefreshExpires}, nil
}

func totpAAD(userID int64) string { return fmt.Sprintf("users.totp_secret:%d", userID) }

// Refresh exchanges a refresh token for a new access token and a new
// refresh token. Presenting a refresh token twice revokes the session
// (ErrRefreshReuse): whoever holds the other copy is locked out too.
func (s *Service) Refresh(ctx context.Context, a Actor, refreshToken string) (Session, error) {
	if !s.perAddress.Allow("refresh:" + a.Address) {
		return Session{}, ErrRateLimited
	}
	refreshToken = strings.TrimSpace(refreshToken)
	if refreshToken == "" || len(refreshToken) > 128 {
		return Session{}, ErrUnauthenticated
	}
	now := s.cfg.Now()
	next, nextHash, err := newSecretToken()
	if err != nil {
		return Session{}, err
	}
	reuse := a.entry(0, "session.refresh_reuse", "session", 0)
	r, err := s.store.RotateRefresh(ctx, hashToken(refreshToken), nextHash, now, now.Add(s.cfg.RefreshTTL), reuse)
	if err != nil {
		return Session{}, err
	}
	if r.User.Status == StatusSuspended {
		return Session{}, fmt.Errorf("%w: suspended", ErrAccountLocked)
	}
	access, exp, err := s.tokens.Issue(r.User.Principal(r.SessionID), now)
	if err != nil {
		return Session{}, err
	}
	return Session{User: r.User, SessionID: r.SessionID, AccessToken: access, AccessExpires: exp, RefreshToken: next, RefreshExpires: r.RefreshExpires}, nil
}

// Logout revokes the caller's session: its refresh token stops working at
// once, and its access tokens within Config.SessionCheckTTL everywhere
// (at once on this instance).
func (s *Service) Logout(ctx context.Context, a Actor) error {
	err := s.store.RevokeSession(ctx, a.UserID, a.SessionID, "logout", a.entry(0, "session.logout", "session", a.SessionID))
	s.sessions.drop(a.SessionID)
	return err
}

// Authenticate verifies a bearer access token and the session behind it,
// and returns the principal with its current role and department.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	p, err := s.tokens.Verify(token)
	if err != nil {
		return Principal{}, err
	}
	st, ok := s.sessions.get(p.SessionID)
	if !ok {
		st, err = s.store.SessionState(ctx, p.SessionID)
		if err != nil {
			return Principal{}, err
		}
		s.sessions.put(st)
	}
	switch {
	case st.UserID != p.UserID || st.TenantID != p.TenantID:
		return Principal{}, fmt.Errorf("%w: token does not match its session", ErrUnauthenticated)
	case st.Revoked || !s.cfg.Now().Before(st.ExpiresAt):
		return Principal{}, fmt.Errorf("%w: session ended", ErrUnauthenticated)
	case st.UserStatus == StatusSuspended:
		return Principal{}, fmt.Errorf("%w: suspended", ErrAccountLocked)
	}
	p.Role, p.Department = st.Role, st.Department
	return p, nil
}

// Me returns the caller's user.
func (s *Service) Me(ctx context.Context, a Actor) (User, error) {
	return s.store.UserByID(ctx, a.TenantID, a.UserID)
}

// VerifyEmail consumes an email verification token.
func (s *Service) VerifyEmail(ctx context.Context, a Actor, token string) (User, error) {
	if !s.perAddress.Allow("verify:" + a.Address) {
		return User{}, ErrRateLimited
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 128 {
		return User{}, ErrTokenInvalid
	}
	return s.store.UseVerification(ctx, hashToken(token), s.cfg.Now(), a.entry(0, "user.verify_email", "user", 0))
}

// ResendVerification enqueues a new verification message when the account
// exists and is unverified. It returns nil either way, so it cannot be
// used to find out which addresses are registered.
func (s *Service) ResendVerification(ctx context.Context, a Actor, tenantCode, email string) error {
	email = normalizeEmail(email)
	if !s.perAddress.Allow("resend:"+a.Address) || !s.perAccount.Allow("resend:"+strings.ToLower(tenantCode)+"/"+email) {
		return ErrRateLimited
	}
	tenant, err := s.tenant(ctx, tenantCode)
	if errors.Is(err, ErrTenantNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	u, err := s.store.UserByEmail(ctx, tenant.ID, email)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if u.EmailVerifiedAt != nil {
		return nil
	}
	ver, msg, token, err := s.newVerification(tenant.ID, u.Email)
	if err != nil {
		return err
	}
	ver.UserID, msg.UserID = u.ID, u.ID
	if err := s.store.AddVerification(ctx, ver, msg, a.entry(tenant.ID, "user.verification_sent", "user", u.ID)); err != nil {
		return err
	}
	s.logVerificationLink(tenant, u.Email, token)
	return nil
}

// ChangePassword replaces the caller's password after checking the
// current one, and ends their other sessions.
func (s *Service) ChangePassword(ctx context.Context, a Actor, current, next string) error {
	u, err := s.store.UserByID(ctx, a.TenantID, a.UserID)
	if err != nil {
		return err
	}
	ok, err := s.hasher.Verify(ctx, u.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		return ErrInvalidCredentials
	}
	v := NewValidator(ErrInvalidInput)
	if m := s.cfg.Password.Check(next, u.Email); m != "" {
		v.Add("new_password", m)
	} else if next == current {
		v.Add("new_password", "must differ from the current password")
	}
	if err := v.Err(); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	return s.store.SetPassword(ctx, u.ID, hash, a.SessionID, a.entry(0, "user.password_changed", "user", u.ID))
}

// TOTPSetup is a new TOTP secret to enter into an authenticator app.
type TOTPSetup struct {
	Secret string // base32
	URI    string // otpauth:// for a QR code
}

// SetupTOTP creates a new TOTP secret for the caller. It takes effect only
// once EnableTOTP confirms a code from it.
func (s *Service) SetupTOTP(ctx context.Context, a Actor) (TOTPSetup, error) {
	u, err := s.store.UserByID(ctx, a.TenantID, a.UserID)
	if err != nil {
		return TOTPSetup{}, err
	}
	if u.TOTPEnabled {
		return TOTPSetup{}, fmt.Errorf("%w: a second factor is already enabled; disable it first", ErrConflict)
	}
	secret, err := newTOTPSecret()
	if err != nil {
		return TOTPSetup{}, err
	}
	sealed, err := s.ring.Seal(secret, totpAAD(u.ID))
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("seal totp secret: %w", err)
	}
	if err := s.store.SetTOTP(ctx, u.ID, sealed, false, 0, a.entry(0, "user.totp_setup", "user", u.ID)); err != nil {
		return TOTPSetup{}, err
	}
	return TOTPSetup{Secret: totpBase32.EncodeToString(secret), URI: totpURI(s.cfg.TOTPIssuer, u.Email, secret)}, nil
}

// EnableTOTP turns the second factor on after checking a code from the
// secret SetupTOTP issued.
func (s *Service) EnableTOTP(ctx context.Context, a Actor, code string) error {
	u, err := s.store.UserByID(ctx, a.TenantID, a.UserID)
	if err != nil {
		return err
	}
	if u.TOTPSecret == nil {
		return fmt.Errorf("%w: set up a second factor first", ErrConflict)
	}
	secret, err := s.ring.Open(u.TOTPSecret, totpAAD(u.ID))
	if err != nil {
		return fmt.Errorf("open totp secret: %w", err)
	}
	step, ok := verifyTOTP(secret, code, s.cfg.Now(), u.TOTPLastStep)
	if !ok {
		v := NewValidator(ErrInvalidInput)
		v.Add("code", "does not match the authenticator")
		return v.Err()
	}
	return s.store.SetTOTP(ctx, u.ID, u.TOTPSecret, true, step, a.entry(0, "user.totp_enabled", "user", u.ID))
}

// DisableTOTP turns the second factor off; it needs the password and a
// current code.
func (s *Service) DisableTOTP(ctx context.Context, a Actor, password, code string) error {
	u, err := s.store.UserByID(ctx, a.TenantID, a.UserID)
	if err != nil {
		return err
	}
	ok, err := s.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return err
	}
	if !ok || !u.TOTPEnabled {
		return ErrInvalidCredentials
	}
	secret, err := s.ring.Open(u.TOTPSecret, totpAAD(u.ID))
	if err != nil {
		return fmt.Errorf("open totp secret: %w", err)
	}
	if _, ok := verifyTOTP(secret, code, s.cfg.Now(), u.TOTPLastStep); !ok {
		return ErrInvalidCredentials
	}
	return s.store.SetTOTP(ctx, u.ID, nil, false, 0, a.entry(0, "user.totp_disabled", "user", u.ID))
}

// PurgeExpired deletes sessions and tokens that ended more than a day
// before now. A periodic job calls it.
func (s *Service) PurgeExpired(ctx context.Context) (int64, error) {
	return s.store.PurgeExpired(ctx, s.cfg.Now().Add(-24*time.Hour))
}
