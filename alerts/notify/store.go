package notify

import (
	"context"
	"encoding/json"
	"time"

	"github.com/meterd/meterd/alerts"
)

// Store is what the engine needs from storage; alerts/postgres implements
// it. Every method that changes a delivery takes the lease token it holds,
// so a worker that lost its lease (it stalled past lease_until and the row
// was queued again) cannot overwrite the newer attempt.
type Store interface {
	// FanOut claims up to limit pending outbox rows available at now
	// (FOR UPDATE SKIP LOCKED), resolves their recipients, calls plan for
	// each, inserts the deliveries it returns and marks the row 'sending'
	// ('cancelled' with a reason when plan returns none), in one
	// transaction. It returns the number of rows claimed.
	FanOut(ctx context.Context, now time.Time, limit int, plan func(Outbox, []Recipient) []NewDelivery) (int, error)
	// Queue takes up to limit deliveries that are due (pending with
	// next_attempt_at ≤ now) or whose lease ended (queued or sending with
	// lease_until ≤ now; a sending one becomes in_doubt), gives each a new
	// token and lease_until = now + lease, marks them 'queued' and returns
	// them.
	Queue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Job, error)
	// Lease turns the queued delivery id held by token into 'sending'
	// until now + lease and returns what the attempt needs; ok is false
	// when the token no longer holds it (a stale job).
	Lease(ctx context.Context, id int64, token string, now time.Time, lease time.Duration) (Work, bool, error)
	// Finish records the outcome of the attempt held by token, updates the
	// outbox row when its last delivery becomes final, and reports whether
	// the token still held the lease.
	Finish(ctx context.Context, id int64, token string, r Result) (bool, error)
}

// Job is a queued delivery: the River job's arguments.
type Job struct {
	DeliveryID int64  `json:"delivery_id"`
	Token      string `json:"token"`
}

// Work is everything one attempt of a delivery needs.
type Work struct {
	DeliveryID     int64
	OutboxID       int64
	TenantID       int64
	UserID         int64
	Channel        alerts.Channel
	DeviceID       int64
	Reason         string
	Attempt        int // this attempt's number (previous attempts + 1)
	MaxAttempts    int
	InDoubt        bool
	IdempotencyKey string
	// FirstAttemptAt is when the first recorded attempt started, or when
	// the delivery was created (an attempt whose worker died is not
	// recorded): reconcilers search the provider from it.
	FirstAttemptAt time.Time

	Event     string
	Payload   json.RawMessage
	Secret    []byte // sealed; nil when the message carries none
	DedupeKey string

	Tenant   Tenant
	Branding *Branding // nil: no row, defaults apply

	// Recipient, when UserID is not 0.
	Name        string
	Role        string
	LoginEmail  string
	EmailSealed []byte
	PhoneSealed []byte
	Locale      string // the user's template locale, "" for none
	Quiet       alerts.QuietHours

	// Device, for push.
	DeviceTokenSealed []byte
	DeviceTokenHash   []byte
	DevicePlatform    string
	DeviceDisabled    bool

	// Overrides are the tenant's templates for the event, by locale.
	Overrides map[string]string
}

// Tenant is the tenant a message is from.
type Tenant struct {
	ID       int64
	Code     string
	Name     string
	Zone     *time.Location
	Currency string
}

// Branding is a tenant's notification_branding row.
type Branding struct {
	DisplayName   string
	FromAddress   string
	ReplyTo       string
	SupportEmail  string
	SupportPhone  string
	WebsiteURL    string
	LogoURL       string
	Color         string
	Footer        string
	DefaultLocale string
}

// Outcome is how an attempt ended.
type Outcome string

// Outcomes. Sent, Reconciled, Failed and Cancelled make the delivery
// final (Failed as a dead letter); Retry schedules the next attempt.
const (
	OutcomeSent       Outcome = "sent"
	OutcomeReconciled Outcome = "reconciled" // found at the provider after an in-doubt attempt
	OutcomeRetry      Outcome = "retry"
	OutcomeFailed     Outcome = "failed"
	OutcomeCancelled  Outcome = "cancelled" // no provider call: not wanted any more
)

// Result is the outcome of one attempt.
type Result struct {
	Outcome   Outcome
	Attempt   int
	StartedAt time.Time
	Now       time.Time
	// Called is true when the provider was called (or the breaker refused
	// the call): the attempt counts and is recorded.
	Called            bool
	Provider          string
	ProviderMessageID string
	Error             string
	// NextAttemptAt for OutcomeRetry.
	NextAttemptAt  time.Time
	DeferredReason string
	// AddressHint is the address, masked, for display.
	AddressHint string
	// DisableDevice: the provider said the push token is gone.
	DisableDevice bool
	// InDoubt: the provider may have the message (an ambiguous failure, or
	// a reconciliation that could not tell); the next attempt reconciles.
	InDoubt bool
}
