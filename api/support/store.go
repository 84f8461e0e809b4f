package support

import (
	"context"
	"time"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
)

// Store is the support desk's persistence port. Ticket changes run in one
// transaction with their timeline event, audit entry and outbox messages;
// assignment is serialized per tenant so two tickets never both take a
// staff member's last free slot.
type Store interface {
	// CreateTicket inserts the ticket and tries to assign it at once.
	CreateTicket(ctx context.Context, t NewTicket, a audit.Entry) (Ticket, error)
	Ticket(ctx context.Context, scope account.Scope, id int64) (Ticket, error)
	ListTickets(ctx context.Context, scope account.Scope, f Filter, p account.Page) ([]Ticket, error)
	Comments(ctx context.Context, ticketID int64, internal bool) ([]Comment, error)
	Timeline(ctx context.Context, ticketID int64, all bool) ([]Event, error)
	AddComment(ctx context.Context, t Ticket, c NewComment, a audit.Entry) (Comment, error)
	// Transition moves a ticket from its current status (checked again
	// under lock) to to; reopening re-runs assignment; resolving or
	// closing frees the assignee's slot and drains the queue.
	Transition(ctx context.Context, t Ticket, to Status, actorID int64, note string, now time.Time, a audit.Entry) (Ticket, error)
	// Assign gives a ticket to a staff member (manual assignment).
	Assign(ctx context.Context, t Ticket, staffID, actorID int64, note string, now time.Time, a audit.Entry) (Ticket, error)
	// AssignQueued assigns queued tickets (oldest first) of one tenant, or
	// of all tenants when tenantID is 0, and returns how many it assigned.
	AssignQueued(ctx context.Context, tenantID int64, now time.Time) (int, error)

	Staff(ctx context.Context, tenantID, userID int64) (Staff, error)
	ListStaff(ctx context.Context, tenantID int64) ([]Staff, error)
	// PutStaff creates or updates a support staff member's settings; a
	// member becoming available (or gaining skills or capacity) drains the
	// queue.
	PutStaff(ctx context.Context, tenantID, userID int64, s StaffPatch, now time.Time, a audit.Entry) (Staff, error)
}

// NewTicket is a ticket to create.
type NewTicket struct {
	TenantID     int64
	UserID       int64
	Category     string
	Priority     Priority
	Subject      string
	Description  string
	PropertyID   int64
	ConnectionID int64
	SLADueAt     time.Time
	CreatedBy    int64
	Now          time.Time
}

// Filter narrows a ticket listing.
type Filter struct {
	Status     Status
	AssigneeID int64 // 0: any
	Queued     bool  // only tickets awaiting staff
}

// NewComment is a comment to add.
type NewComment struct {
	AuthorID int64
	Body     string
	Internal bool
	// FromStaff marks a staff reply (sets the first response time).
	FromStaff bool
}

// StaffPatch changes a staff member's settings; nil fields stay.
type StaffPatch struct {
	Skills    *[]string
	Available *bool
	MaxOpen   *int
}
