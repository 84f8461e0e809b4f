package postgres_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/account"
	accountpg "github.com/meterd/meterd/api/account/postgres"
	"github.com/meterd/meterd/api/keyring"
	"github.com/meterd/meterd/api/outbox"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// cheap argon2 parameters keep the tests fast; production parameters are
// exercised by the account package's own tests and benchmark.
var cheap = account.Argon2Params{MemoryKiB: 1024, Passes: 1, Lanes: 1, SaltBytes: 16, HashBytes: 32}

type fixture struct {
	pool  *pgxpool.Pool
	svc   *account.Service
	ring  *keyring.Ring
	clock *clock
	t1    account.Tenant
	t2    account.Tenant
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newFixture(t *testing.T, tweak func(*account.Config)) *fixture {
	t.Helper()
	pool := schematest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO tenants (code, name, time_zone, currency) VALUES
		('demo', 'Demo Power', 'Asia/Kolkata', 'INR'), ('other', 'Other Utility', 'Asia/Kolkata', 'INR')`); err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.New([]keyring.Key{{ID: "1", Secret: bytes.Repeat([]byte{7}, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	tokens, err := account.NewTokens(account.TokenConfig{Keys: []keyring.Key{{ID: "k1", Secret: bytes.Repeat([]byte{9}, 32)}}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := account.NewHasher(account.HasherConfig{Params: cheap})
	if err != nil {
		t.Fatal(err)
	}
	cfg := account.Config{DefaultTenant: "demo", Now: clk.Now, SessionCheckTTL: -1}
	if tweak != nil {
		tweak(&cfg)
	}
	store := accountpg.New(pool)
	svc, err := account.New(store, tokens, hasher, ring, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{pool: pool, svc: svc, ring: ring, clock: clk}
	if f.t1, err = store.TenantByCode(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if f.t2, err = store.TenantByCode(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	return f
}

var anon = account.Actor{Address: "192.0.2.10", RequestID: "test"}

// verificationToken reads the newest verification token for email from the
// outbox and opens it, as the notification deliverer would.
func (f *fixture) verificationToken(t *testing.T, email string) string {
	t.Helper()
	var sealed []byte
	var key string
	err := f.pool.QueryRow(context.Background(), `SELECT secret, dedupe_key FROM notification_outbox
		WHERE event = $1 AND payload->>'email' = $2 ORDER BY id DESC LIMIT 1`, outbox.EventVerifyEmail, email).Scan(&sealed, &key)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.ring.Open(sealed, outbox.SecretAAD(key))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func (f *fixture) registerVerified(t *testing.T, email string) account.User {
	t.Helper()
	ctx := context.Background()
	u, err := f.svc.Register(ctx, anon, account.RegisterInput{Email: email, Password: "correct horse battery", Name: "Asha Rao", Phone: "+91 98765 43210",
		Address: &account.Address{Line1: "12 MG Road", City: "Bengaluru", PostalCode: "560001"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.VerifyEmail(ctx, anon, f.verificationToken(t, email)); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestRegisterVerifyLogin(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, err := f.svc.Register(ctx, anon, account.RegisterInput{Email: " Asha@Example.com ", Password: "correct horse battery", Name: "Asha"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "asha@example.com" || u.Role != account.RoleConsumer || u.EmailVerifiedAt != nil {
		t.Fatalf("user %+v", u)
	}
	if _, err := f.svc.Register(ctx, anon, account.RegisterInput{Email: "asha@example.com", Password: "another good password", Name: "X"}); !errors.Is(err, account.ErrEmailTaken) {
		t.Fatalf("duplicate registration: %v", err)
	}
	login := account.LoginInput{Email: "asha@example.com", Password: "correct horse battery"}
	if _, err := f.svc.Login(ctx, anon, login); !errors.Is(err, account.ErrEmailNotVerified) {
		t.Fatalf("unverified login: %v", err)
	}
	tok := f.verificationToken(t, "asha@example.com")
	if _, err := f.svc.VerifyEmail(ctx, anon, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.VerifyEmail(ctx, anon, tok); !errors.Is(err, account.ErrTokenInvalid) {
		t.Fatalf("second use of token: %v", err)
	}
	s, err := f.svc.Login(ctx, anon, login)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(ctx, s.AccessToken)
	if err != nil || p.UserID != u.ID || p.TenantID != f.t1.ID || p.Role != account.RoleConsumer {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	// Same email in another tenant is another account.
	if _, err := f.svc.Register(ctx, anon, account.RegisterInput{Tenant: "other", Email: "asha@example.com", Password: "correct horse battery", Name: "Asha"}); err != nil {
		t.Fatalf("other tenant: %v", err)
	}
	tests := []struct {
		name string
		give account.LoginInput
		want error
	}{
		{"wrong password", account.LoginInput{Email: "asha@example.com", Password: "wrong password!"}, account.ErrInvalidCredentials},
		{"unknown email", account.LoginInput{Email: "nobody@example.com", Password: "correct horse battery"}, account.ErrInvalidCredentials},
		{"unknown tenant", account.LoginInput{Tenant: "nope", Email: "asha@example.com", Password: "correct horse battery"}, account.ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.svc.Login(ctx, account.Actor{Address: "192.0.2.99"}, tt.give); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.registerVerified(t, "lock@example.com")
	bad := account.LoginInput{Email: "lock@example.com", Password: "not the password"}
	for i := 1; i <= 5; i++ {
		_, err := f.svc.Login(ctx, anon, bad)
		want := account.ErrInvalidCredentials
		if i == 5 {
			want = account.ErrAccountLocked
		}
		if !errors.Is(err, want) {
			t.Fatalf("attempt %d: %v, want %v", i, err, want)
		}
	}
	good := account.LoginInput{Email: "lock@example.com", Password: "correct horse battery"}
	if _, err := f.svc.Login(ctx, anon, good); !errors.Is(err, account.ErrAccountLocked) {
		t.Fatalf("right password while locked: %v", err)
	}
	f.clock.Add(16 * time.Minute)
	if _, err := f.svc.Login(ctx, anon, good); err != nil {
		t.Fatalf("after lockout: %v", err)
	}
	var n int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'user.locked'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("user.locked audit rows %d, %v", n, err)
	}
}

func TestRateLimitPerAccount(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var limited bool
	for i := 0; i < 12; i++ {
		a := account.Actor{Address: "198.51.100." + string(rune('1'+i%9))}
		_, err := f.svc.Login(ctx, a, account.LoginInput{Email: "victim@example.com", Password: "guess guess guess"})
		if errors.Is(err, account.ErrRateLimited) {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("12 attempts on one account from several addresses were never rate-limited")
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.registerVerified(t, "r@example.com")
	s1, err := f.svc.Login(ctx, anon, account.LoginInput{Email: "r@example.com", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := f.svc.Refresh(ctx, anon, s1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if s2.RefreshToken == s1.RefreshToken || s2.SessionID != s1.SessionID {
		t.Fatalf("rotation: %+v", s2)
	}
	// The old token again: reuse. The whole family dies, including s2.
	if _, err := f.svc.Refresh(ctx, anon, s1.RefreshToken); !errors.Is(err, account.ErrRefreshReuse) {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, anon, s2.RefreshToken); !errors.Is(err, account.ErrUnauthenticated) {
		t.Fatalf("sibling after reuse: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, s2.AccessToken); !errors.Is(err, account.ErrUnauthenticated) {
		t.Fatalf("access token of revoked family: %v", err)
	}
	// Logout ends a session.
	s3, err := f.svc.Login(ctx, anon, account.LoginInput{Email: "r@example.com", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.svc.Authenticate(ctx, s3.AccessToken)
	if err := f.svc.Logout(ctx, account.Actor{Principal: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, s3.AccessToken); !errors.Is(err, account.ErrUnauthenticated) {
		t.Fatalf("after logout: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, anon, s3.RefreshToken); !errors.Is(err, account.ErrUnauthenticated) {
		t.Fatalf("refresh after logout: %v", err)
	}
	// Expiry.
	s4, _ := f.svc.Login(ctx, anon, account.LoginInput{Email: "r@example.com", Password: "correct horse battery"})
	f.clock.Add(8 * 24 * time.Hour)
	if _, err := f.svc.Refresh(ctx, anon, s4.RefreshToken); !errors.Is(err, account.ErrUnauthenticated) {
		t.Fatalf("expired refresh token: %v", err)
	}
}

func TestProfileSealedAtRest(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u := f.registerVerified(t, "p@example.com")
	a := account.Actor{Principal: account.Principal{TenantID: f.t1.ID, UserID: u.ID, Role: account.RoleConsumer}}
	scope := account.OwnerSelf.ScopeFor(a.Principal)
	p, err := f.svc.UpdateProfile(ctx, a, scope, 0, account.ProfileInput{Name: "Asha Rao", Email: "asha.contact@example.com",
		Phone: "+91 99887 76655", Address: &account.Address{Line1: "221B Residency Road", City: "Bengaluru", PostalCode: "560025"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Phone != "+91 99887 76655" || p.Address.Line1 != "221B Residency Road" || p.Address.Country != "IN" {
		t.Fatalf("profile %+v", p)
	}
	var dump string
	if err := f.pool.QueryRow(ctx, `SELECT string_agg(t::text, ' ') FROM user_profiles t`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"99887", "Residency", "asha.contact"} {
		if bytes.Contains([]byte(dump), []byte(plain)) {
			t.Errorf("plaintext %q in user_profiles", plain)
		}
	}
	_, err = f.svc.UpdateProfile(ctx, a, scope, 0, account.ProfileInput{Name: "", Phone: "12", Address: &account.Address{City: "X"}})
	var ve *account.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) < 4 {
		t.Fatalf("validation: %v", err)
	}
}

func TestPropertiesConnectionsAndInstallations(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u := f.registerVerified(t, "prop@example.com")
	consumer := account.Actor{Principal: account.Principal{TenantID: f.t1.ID, UserID: u.ID, Role: account.RoleConsumer}}
	cs := account.OwnerSelfOrTenant.ScopeFor(consumer.Principal)
	admin := account.Actor{Principal: account.Principal{TenantID: f.t1.ID, UserID: 0, Role: account.RoleAdmin}}
	as := account.OwnerTenant.ScopeFor(admin.Principal)

	prov, err := f.svc.ProvisionMeter(ctx, admin, as, account.MeterInput{ExternalID: "m-1", Serial: "SN-1", Model: "sdm120", Protocol: account.ProtocolMQTT})
	if err != nil {
		t.Fatal(err)
	}
	if prov.Credentials == nil || len(prov.Credentials.Password) < 32 {
		t.Fatalf("credentials %+v", prov.Credentials)
	}
	var hash string
	if err := f.pool.QueryRow(ctx, `SELECT mqtt_secret_hash FROM meters WHERE id = $1`, prov.Meter.ID).Scan(&hash); err != nil || len(hash) != 71 {
		t.Fatalf("stored hash %q %v", hash, err)
	}
	load := decimal.RequireFromString("5")
	p, err := f.svc.AddProperty(ctx, consumer, cs, account.PropertyInput{Label: "Home",
		Address:     account.Address{Line1: "1 Lake View", City: "Pune", PostalCode: "411001"},
		Connections: []account.ConnectionInput{{MeterNumber: "SN-1", TariffPlan: "domestic-lt", SanctionedLoadKW: &load, UsageCategory: "residential"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Connections[0]
	if c.Status != account.ConnectionActive || c.Meter == nil || c.Meter.MeterID != prov.Meter.ID || c.ConsumerCode[0] != 'E' || c.BuildingType != "RESIDENTIAL" {
		t.Fatalf("connection %+v", c)
	}
	// The same meter number again: DuplicateProperty.
	_, err = f.svc.AddProperty(ctx, consumer, cs, account.PropertyInput{Address: account.Address{Line1: "2 Lake View", City: "Pune", PostalCode: "411001"},
		Connections: []account.ConnectionInput{{MeterNumber: "SN-1"}}})
	if !errors.Is(err, account.ErrDuplicateProperty) {
		t.Fatalf("duplicate: %v", err)
	}
	// An unprovisioned meter number: pending until staff install one.
	p2, err := f.svc.AddProperty(ctx, consumer, cs, account.PropertyInput{Address: account.Address{Line1: "3 Lake View", City: "Pune", PostalCode: "411001"},
		Connections: []account.ConnectionInput{{MeterNumber: "SN-2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if p2.Connections[0].Status != account.ConnectionPending || p2.Connections[0].Meter != nil {
		t.Fatalf("pending connection %+v", p2.Connections[0])
	}
	// Replacement on the first connection.
	m2, err := f.svc.ProvisionMeter(ctx, admin, as, account.MeterInput{ExternalID: "m-2", Serial: "SN-9", Model: "sdm630", Protocol: account.ProtocolModbus,
		Settings: map[string]any{"address": "10.0.0.5:502", "unit_id": float64(3), "map": "sdm630"}})
	if err != nil {
		t.Fatal(err)
	}
	wh := int64(123456)
	f.clock.Add(time.Hour)
	inst, err := f.svc.InstallMeter(ctx, admin, as, c.ID, account.InstallInput{MeterID: m2.Meter.ID, FinalImportWh: &wh})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Reason != "replacement" {
		t.Fatalf("installation %+v", inst)
	}
	hist, err := f.svc.ConnectionHistory(ctx, cs, c.ID)
	if err != nil || len(hist) != 2 || hist[1].RemovedAt == nil || *hist[1].FinalImportWh != wh {
		t.Fatalf("history %+v %v", hist, err)
	}
	// The old meter is free again and could go to the pending connection;
	// the new one cannot be installed twice.
	if _, err := f.svc.InstallMeter(ctx, admin, as, p2.Connections[0].ID, account.InstallInput{MeterID: m2.Meter.ID}); !errors.Is(err, account.ErrConflict) {
		t.Fatalf("meter on two connections: %v", err)
	}
	// Another tenant's staff cannot see it.
	other := account.Principal{TenantID: f.t2.ID, UserID: 1, Role: account.RoleAdmin}
	if _, err := f.svc.GetConnection(ctx, account.OwnerTenant.ScopeFor(other), c.ID); !errors.Is(err, account.ErrConnectionNotFound) {
		t.Fatalf("cross-tenant connection: %v", err)
	}
	list, err := f.svc.ListProperties(ctx, cs, 0, account.Page{})
	if err != nil || len(list) != 2 || list[0].Address.Line1 != "1 Lake View" {
		t.Fatalf("list %+v %v", list, err)
	}
	// Addresses are sealed at rest.
	var dump string
	if err := f.pool.QueryRow(ctx, `SELECT string_agg(t::text, ' ') FROM properties t`).Scan(&dump); err != nil || bytes.Contains([]byte(dump), []byte("Lake View")) {
		t.Fatalf("property addresses in plaintext (%v)", err)
	}
	// Key rotation: re-encrypt everything under a new key.
	n, err := f.svc.Reencrypt(ctx)
	if err != nil || n != 0 {
		t.Fatalf("reencrypt with current key: %d %v", n, err)
	}
}

// totpCode computes an RFC 6238 code, as an authenticator app would.
func totpCode(t *testing.T, secretBase32 string, at time.Time) string {
	t.Helper()
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secretBase32)
	if err != nil {
		t.Fatal(err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/30))
	mac := hmac.New(sha1.New, secret)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	return fmt.Sprintf("%06d", (binary.BigEndian.Uint32(sum[off:off+4])&0x7fffffff)%1_000_000)
}

func TestTOTPSecondFactor(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u := f.registerVerified(t, "totp@example.com")
	login := account.LoginInput{Email: "totp@example.com", Password: "correct horse battery"}
	s, err := f.svc.Login(ctx, anon, login)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.svc.Authenticate(ctx, s.AccessToken)
	a := account.Actor{Principal: p}
	setup, err := f.svc.SetupTOTP(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(setup.URI, "otpauth://totp/meterd:totp@example.com?") {
		t.Errorf("uri %s", setup.URI)
	}
	// Not enforced until confirmed.
	if _, err := f.svc.Login(ctx, anon, login); err != nil {
		t.Fatalf("login before enabling: %v", err)
	}
	if err := f.svc.EnableTOTP(ctx, a, "000000"); err == nil {
		t.Fatal("wrong code enabled the second factor")
	}
	if err := f.svc.EnableTOTP(ctx, a, totpCode(t, setup.Secret, f.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(ctx, anon, login); !errors.Is(err, account.ErrSecondFactorRequired) {
		t.Fatalf("login without code: %v", err)
	}
	f.clock.Add(30 * time.Second)
	withCode := login
	withCode.TOTPCode = totpCode(t, setup.Secret, f.clock.Now())
	if _, err := f.svc.Login(ctx, anon, withCode); err != nil {
		t.Fatalf("login with code: %v", err)
	}
	if _, err := f.svc.Login(ctx, anon, withCode); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("replayed code: %v", err)
	}
	var sealed []byte
	if err := f.pool.QueryRow(ctx, `SELECT totp_secret FROM users WHERE id = $1`, u.ID).Scan(&sealed); err != nil || bytes.Contains(sealed, []byte(setup.Secret)) {
		t.Fatalf("TOTP secret at rest: %v", err)
	}
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.registerVerified(t, "pw@example.com")
	login := account.LoginInput{Email: "pw@example.com", Password: "correct horse battery"}
	s1, _ := f.svc.Login(ctx, anon, login)
	s2, _ := f.svc.Login(ctx, anon, login)
	p2, _ := f.svc.Authenticate(ctx, s2.AccessToken)
	if err := f.svc.ChangePassword(ctx, account.Actor{Principal: p2}, "wrong", "a brand new passphrase"); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("wrong current password: %v", err)
	}
	if err := f.svc.ChangePassword(ctx, account.Actor{Principal: p2}, "correct horse battery", "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, s1.AccessToken); !errors.Is(err, account.ErrUnauthenticated) {
		t.Fatalf("other session after password change: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, s2.AccessToken); err != nil {
		t.Fatalf("own session after password change: %v", err)
	}
	if _, err := f.svc.Login(ctx, anon, login); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("old password: %v", err)
	}
}

// TestKeyRotationReencrypt seals data under key 1, rotates to key 2 (key 1
// kept for reading), re-encrypts, and reads everything with key 2 alone.
func TestKeyRotationReencrypt(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u := f.registerVerified(t, "rot@example.com")
	a := account.Actor{Principal: account.Principal{TenantID: f.t1.ID, UserID: u.ID, Role: account.RoleConsumer}}
	scope := account.OwnerSelfOrTenant.ScopeFor(a.Principal)
	if _, err := f.svc.AddProperty(ctx, a, scope, account.PropertyInput{Address: account.Address{Line1: "5 Key Street", City: "Pune", PostalCode: "411001"},
		Connections: []account.ConnectionInput{{MeterNumber: "ROT-1"}}}); err != nil {
		t.Fatal(err)
	}
	k1 := keyring.Key{ID: "1", Secret: bytes.Repeat([]byte{7}, 32)}
	k2 := keyring.Key{ID: "2", Secret: bytes.Repeat([]byte{8}, 32)}
	service := func(keys ...keyring.Key) *account.Service {
		ring, err := keyring.New(keys)
		if err != nil {
			t.Fatal(err)
		}
		tokens, _ := account.NewTokens(account.TokenConfig{Keys: []keyring.Key{{ID: "k1", Secret: bytes.Repeat([]byte{9}, 32)}}})
		hasher, _ := account.NewHasher(account.HasherConfig{Params: cheap})
		svc, err := account.New(accountpg.New(f.pool), tokens, hasher, ring, account.Config{DefaultTenant: "demo", SessionCheckTTL: -1})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	if _, err := service(k2).GetProfile(ctx, a, scope, 0); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("key 2 alone before re-encryption: %v", err)
	}
	n, err := service(k2, k1).Reencrypt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Profile email (no phone or address at registration) and property
	// address; the outbox secret was delivered-pending too.
	if n < 2 {
		t.Fatalf("re-encrypted %d values", n)
	}
	only2 := service(k2)
	p, err := only2.GetProfile(ctx, a, scope, 0)
	if err != nil || p.Email != "rot@example.com" {
		t.Fatalf("profile with key 2 alone: %+v %v", p, err)
	}
	props, err := only2.ListProperties(ctx, scope, 0, account.Page{})
	if err != nil || props[0].Address.Line1 != "5 Key Street" {
		t.Fatalf("property with key 2 alone: %v", err)
	}
	if n, err := service(k2, k1).Reencrypt(ctx); err != nil || n != 0 {
		t.Fatalf("second pass re-encrypted %d (%v)", n, err)
	}
}

// BackdateService moves a connection's service start, and its only
// meter's installation, back; it leaves later starts and a connection
// with an earlier meter's history alone.
func TestBackdateService(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	store := accountpg.New(f.pool)
	u := f.registerVerified(t, "backdate@example.com")
	consumer := account.Actor{Principal: account.Principal{TenantID: f.t1.ID, UserID: u.ID, Role: account.RoleConsumer}}
	cs := account.OwnerSelfOrTenant.ScopeFor(consumer.Principal)
	admin := account.Actor{Principal: account.Principal{TenantID: f.t1.ID, Role: account.RoleAdmin}}
	as := account.OwnerTenant.ScopeFor(admin.Principal)
	if _, err := f.svc.ProvisionMeter(ctx, admin, as, account.MeterInput{ExternalID: "b-1", Serial: "SN-B1", Model: "sdm120", Protocol: account.ProtocolMQTT}); err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.AddProperty(ctx, consumer, cs, account.PropertyInput{Label: "Home", Address: account.Address{Line1: "1 Hill Road", City: "Pune", PostalCode: "411001"},
		Connections: []account.ConnectionInput{{MeterNumber: "SN-B1", TariffPlan: "domestic-lt"}}})
	if err != nil {
		t.Fatal(err)
	}
	conn := p.Connections[0].ID
	starts := func() (connected, installed, meter time.Time) {
		t.Helper()
		if err := f.pool.QueryRow(ctx, `SELECT c.connected_at, i.installed_at, m.installed_at FROM connections c
			JOIN meter_installations i ON i.connection_id = c.id AND i.removed_at IS NULL JOIN meters m ON m.id = i.meter_id
			WHERE c.id = $1`, conn).Scan(&connected, &installed, &meter); err != nil {
			t.Fatal(err)
		}
		return
	}
	back := time.Now().UTC().AddDate(0, -3, 0).Truncate(time.Hour)
	moved, err := store.BackdateService(ctx, f.t1.ID, conn, back)
	if err != nil || !moved {
		t.Fatalf("backdate: %v, %v", moved, err)
	}
	if c, i, m := starts(); !c.Equal(back) || !i.Equal(back) || !m.Equal(back) {
		t.Fatalf("starts %v %v %v, want %v", c, i, m, back)
	}
	// Again, or to a later time: nothing moves.
	for _, at := range []time.Time{back, back.Add(24 * time.Hour)} {
		if moved, err := store.BackdateService(ctx, f.t1.ID, conn, at); err != nil || moved {
			t.Errorf("backdate to %v again: %v, %v", at, moved, err)
		}
	}
	// After a replacement the installations keep their history: only the
	// connection's start moves.
	m2, err := f.svc.ProvisionMeter(ctx, admin, as, account.MeterInput{ExternalID: "b-2", Serial: "SN-B2", Model: "sdm120", Protocol: account.ProtocolMQTT})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour)
	if _, err := f.svc.InstallMeter(ctx, admin, as, conn, account.InstallInput{MeterID: m2.Meter.ID}); err != nil {
		t.Fatal(err)
	}
	earlier := back.AddDate(0, -1, 0)
	if moved, err := store.BackdateService(ctx, f.t1.ID, conn, earlier); err != nil || !moved {
		t.Fatalf("backdate after a replacement: %v, %v", moved, err)
	}
	if c, i, _ := starts(); !c.Equal(earlier) || i.Equal(earlier) {
		t.Errorf("after a replacement: connected %v, installed %v", c, i)
	}
	// Another tenant's connection is not found.
	if _, err := store.BackdateService(ctx, f.t2.ID, conn, earlier); !errors.Is(err, account.ErrConnectionNotFound) {
		t.Errorf("other tenant: %v", err)
	}
}
