package account

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/audit"
	"github.com/meterd/meterd/api/outbox"
)

// Store is the persistence port of the account domain (account/postgres).
// Every method that changes state runs in one transaction and writes the
// audit entry it is given, completed with the record's before and after
// snapshots, in that transaction. Methods taking a Scope never return or
// change records outside it, and report them as not found.
type Store interface {
	TenantByCode(ctx context.Context, code string) (Tenant, error)
	// EnsureTenant inserts t unless a tenant with its code exists, and
	// returns the stored tenant.
	EnsureTenant(ctx context.Context, t Tenant) (Tenant, error)
	TenantByID(ctx context.Context, id int64) (Tenant, error)

	// CreateUser inserts the user, then calls seal with the new id to get
	// the sealed profile, inserts it, and the optional verification token
	// and outbox message (their user ids set to the new user's). It
	// returns ErrEmailTaken if the email is registered in the tenant.
	CreateUser(ctx context.Context, u NewUser, seal func(userID int64) (SealedProfile, error), v *Verification, m *outbox.Message, a audit.Entry) (User, error)
	UserByEmail(ctx context.Context, tenantID int64, email string) (User, error)
	UserByID(ctx context.Context, tenantID, userID int64) (User, error)
	ListUsers(ctx context.Context, tenantID int64, role Role, p Page) ([]User, error)
	// UpdateUser applies the patch; suspending revokes the user's sessions.
	UpdateUser(ctx context.Context, tenantID, userID int64, p UserPatch, a audit.Entry) (User, error)

	// RecordLoginFailure counts a failed login: the count restarts when the
	// previous failure is older than window; reaching maxFailures locks the
	// account until now+lockFor. It returns the lock's end, if locked.
	RecordLoginFailure(ctx context.Context, userID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration, a audit.Entry) (*time.Time, error)
	// StartSession records a successful login (clearing failures, storing
	// a rehashed password or the TOTP step when given) and creates a
	// session with its first refresh token.
	StartSession(ctx context.Context, s NewSession, a audit.Entry) (sessionID int64, err error)
	// RotateRefresh exchanges the refresh token with hash old for one with
	// hash next (valid until nextExpires, capped at the session's end). A
	// token already used revokes the session, commits that, and returns
	// ErrRefreshReuse; an unknown, expired or revoked one returns
	// ErrUnauthenticated.
	RotateRefresh(ctx context.Context, old, next []byte, now time.Time, nextExpires time.Time, reuse audit.Entry) (Refreshed, error)
	// RevokeSession revokes one session of userID (no-op if already revoked).
	RevokeSession(ctx context.Context, userID, sessionID int64, reason string, a audit.Entry) error
	// SessionState returns what request authentication needs to know
	// about a session; ErrUnauthenticated if it does not exist.
	SessionState(ctx context.Context, sessionID int64) (SessionState, error)

	// AddVerification stores a verification token and enqueues its message.
	AddVerification(ctx context.Context, v Verification, m outbox.Message, a audit.Entry) error
	// UseVerification marks the token used and the user's email verified;
	// ErrTokenInvalid if unknown, used or expired.
	UseVerification(ctx context.Context, hash []byte, now time.Time, a audit.Entry) (User, error)
	// SetPassword stores a new hash and revokes the user's other sessions.
	SetPassword(ctx context.Context, userID int64, hash string, keepSession int64, a audit.Entry) error
	// SetTOTP stores the TOTP state of a user: secret (sealed, nil to
	// clear), whether it is enabled, and the last accepted step.
	SetTOTP(ctx context.Context, userID int64, secret []byte, enabled bool, lastStep int64, a audit.Entry) error

	Profile(ctx context.Context, tenantID, userID int64) (SealedProfile, error)
	// PutProfile creates or replaces the profile of userID.
	PutProfile(ctx context.Context, tenantID, userID int64, p SealedProfile, a audit.Entry) error

	ListProperties(ctx context.Context, scope Scope, ownerID int64, p Page) ([]SealedProperty, error)
	Property(ctx context.Context, scope Scope, id int64) (SealedProperty, error)
	// CreateProperty inserts a property (calling seal with its id for the
	// sealed address) and its connections; a connection whose meter number
	// names a provisioned meter that is not installed anywhere gets it
	// installed. ErrDuplicateProperty if a meter number is registered.
	CreateProperty(ctx context.Context, p NewProperty, seal func(propertyID int64) ([]byte, error), a audit.Entry) (int64, error)
	AddConnection(ctx context.Context, scope Scope, propertyID int64, c NewConnection, a audit.Entry) (int64, error)
	Connection(ctx context.Context, scope Scope, id int64) (Connection, error)
	UpdateConnection(ctx context.Context, tenantID, id int64, p ConnectionPatch, a audit.Entry) (Connection, error)
	// InstallMeter installs a meter on a connection from i.At, ending the
	// connection's current installation at the same instant.
	InstallMeter(ctx context.Context, tenantID, connectionID int64, i NewInstallation, a audit.Entry) (Installation, error)
	Installations(ctx context.Context, scope Scope, connectionID int64) ([]Installation, error)

	CreateMeter(ctx context.Context, m NewMeter, a audit.Entry) (Meter, error)
	Meter(ctx context.Context, tenantID, id int64) (Meter, error)
	ListMeters(ctx context.Context, tenantID int64, p Page) ([]Meter, error)
	SetMeterSecret(ctx context.Context, tenantID, id int64, hash string, a audit.Entry) error

	PutReminder(ctx context.Context, r Reminder, a audit.Entry) (Reminder, error)
	ListReminders(ctx context.Context, scope Scope) ([]Reminder, error)

	ListAudit(ctx context.Context, tenantID int64, entityType, entityID string, p Page) ([]audit.Entry, error)

	// Reseal calls fn for every sealed value (profiles, property
	// addresses, TOTP secrets, pending outbox secrets) for which needs
	// returns true, with the value's AAD, and stores what fn returns. It
	// returns how many values it rewrote.
	Reseal(ctx context.Context, needs func([]byte) bool, fn func(aad string, old []byte) ([]byte, error)) (int, error)

	// PurgeExpired deletes sessions, refresh tokens and verification
	// tokens that ended before cutoff; it returns how many rows went.
	PurgeExpired(ctx context.Context, cutoff time.Time) (int64, error)
}

// NewUser is a user to create.
type NewUser struct {
	TenantID     int64
	Email        string
	Role         Role
	Department   string
	PasswordHash string
	Verified     bool
}

// SealedProfile is a profile as stored: contact details sealed.
type SealedProfile struct {
	Name      string
	Email     []byte
	Phone     []byte
	Address   []byte
	UpdatedAt time.Time
}

// UserPatch changes a user; nil fields stay.
type UserPatch struct {
	Status     *UserStatus
	Role       *Role
	Department *string
	Unlock     bool // clear failed logins and any lockout
}

// NewSession is a successful login.
type NewSession struct {
	UserID         int64
	TenantID       int64
	Now            time.Time
	Rehash         string // new password hash to store, or ""
	TOTPStep       int64  // accepted TOTP step to record, or 0
	RefreshHash    []byte
	RefreshExpires time.Time
	SessionExpires time.Time
	Address        string
	UserAgent      string
}

// Refreshed is the result of a refresh-token rotation.
type Refreshed struct {
	User           User
	SessionID      int64
	RefreshExpires time.Time
}

// SessionState is a session as authentication sees it.
type SessionState struct {
	SessionID  int64
	UserID     int64
	TenantID   int64
	Role       Role
	Department string
	UserStatus UserStatus
	Revoked    bool
	ExpiresAt  time.Time
}

// Verification is an email verification token (its hash) for a user.
type Verification struct {
	TenantID  int64
	UserID    int64
	Email     string
	Hash      []byte
	ExpiresAt time.Time
}

// SealedProperty is a property as stored, with its connections.
type SealedProperty struct {
	ID          int64
	TenantID    int64
	UserID      int64
	Label       string
	Address     []byte
	Connections []Connection
	CreatedAt   time.Time
}

// NewProperty is a property to create with its connections.
type NewProperty struct {
	TenantID    int64
	UserID      int64
	Label       string
	Connections []NewConnection
	InstalledBy int64
}

// NewConnection is a connection to create. An empty ConsumerCode is
// generated from the id.
type NewConnection struct {
	Service      ServiceType
	ConsumerCode string
	MeterNumber  string
	Attributes
	InstalledBy int64
	// Now is when a meter found free gets installed.
	Now time.Time
}

// ConnectionPatch changes a connection; nil fields stay.
type ConnectionPatch struct {
	Status           *ConnectionStatus
	TariffPlan       *string
	ConnectionType   *string
	SanctionedLoadKW *decimal.Decimal
	UsageCategory    *string
	WaterClosets     *int
	Toilets          *int
	RoadCutting      *[]RoadCutting
	PlotSizeM2       *decimal.Decimal
}

// NewInstallation is a meter installation.
type NewInstallation struct {
	MeterID         int64
	At              time.Time
	InitialImportWh *int64
	InitialExportWh *int64
	// FinalImportWh/ExportWh are the registers of the meter being
	// replaced, if any, at At.
	FinalImportWh *int64
	FinalExportWh *int64
	Reason        string // new, replacement, reconnection
	RemovalReason string // for the installation being ended: replaced, faulty
	InstalledBy   int64
}

// NewMeter is a meter to provision.
type NewMeter struct {
	TenantID         int64
	ExternalID       string
	Serial           string
	Model            string
	Protocol         Protocol
	Settings         []byte
	Multiplier       decimal.Decimal
	ExpectedInterval time.Duration
	SecretHash       string // "sha256:<hex>" or ""
}
