package postgres

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Notification is a message for the notifications component, written to
// the outbox in the transaction of the change that causes it.
type Notification struct {
	TenantID  int64
	UserID    int64 // recipient
	Event     string
	Payload   map[string]any
	DedupeKey string // idempotency: the same key is one message
}

// Notification events billing enqueues.
const (
	// EventBillIssued: payload {bill_id, number, consumer_code, period_from,
	// period_to, total, due_date, currency, estimated}; to the consumer.
	EventBillIssued = "bill.issued"
	// EventRunSummary: payload {run_id, service, period_from, period_to,
	// total, billed, unchanged, skipped, failed, status, error, failures
	// and skips: [{consumer_code, reason}] (the first 50 of each)}; to
	// each official and admin of the tenant.
	EventRunSummary = "billing.run_summary"
)

// Outbox writes notifications in the caller's transaction. cmd implements
// it with the API's notification outbox; a nil Outbox writes nothing.
type Outbox interface {
	Enqueue(ctx context.Context, tx pgx.Tx, msgs []Notification) error
}

// AuditEntry is one audited change a person made through billing.
type AuditEntry struct {
	TenantID    int64
	ActorUserID int64
	ActorRole   string
	Action      string // "<entity>.<verb>": tariff.publish, bill_run.trigger, bill.cancel
	EntityType  string
	EntityID    string
	After       map[string]any
	Address     string
	RequestID   string
}

// Auditor writes audit entries in the caller's transaction. cmd implements
// it with the API's audit log; a nil Auditor writes nothing.
type Auditor interface {
	Write(ctx context.Context, tx pgx.Tx, e AuditEntry) error
}

// AuditContext is who makes a change and from where, for its audit entry.
type AuditContext struct {
	ActorUserID int64
	ActorRole   string
	Address     netip.Addr
	RequestID   string
}

func (a *AuditContext) entry(tenantID int64, action, entityType, entityID string, after map[string]any) AuditEntry {
	e := AuditEntry{TenantID: tenantID, ActorUserID: a.ActorUserID, ActorRole: a.ActorRole, Action: action, EntityType: entityType, EntityID: entityID, After: after, RequestID: a.RequestID}
	if a.Address.IsValid() {
		e.Address = a.Address.String()
	}
	return e
}

// Store is billing's PostgreSQL store.
type Store struct {
	pool   *pgxpool.Pool
	outbox Outbox
	audit  Auditor
	log    *slog.Logger
}

// Deps are the Store's optional collaborators.
type Deps struct {
	Outbox Outbox
	Audit  Auditor
	Logger *slog.Logger
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool, d Deps) *Store {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{pool: pool, outbox: d.Outbox, audit: d.Audit, log: log}
}
