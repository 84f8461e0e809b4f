package support

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
)

// Errors of the support desk.
var (
	// ErrInvalidQuery is wrapped by validation errors of tickets (InvalidQuery).
	ErrInvalidQuery = errors.New("invalid support query")
	// ErrTicketNotFound: no such ticket in scope (SupportTicketNotFound).
	ErrTicketNotFound = errors.New("support ticket not found")
	// ErrStaffUnavailable: no available staff member could take a ticket;
	// it stays queued (SupportStaffUnavailable).
	ErrStaffUnavailable = errors.New("no support staff available")
	// ErrInvalidTransition: the status change is not allowed from the
	// ticket's status, or not for the caller's role.
	ErrInvalidTransition = errors.New("status change not allowed")
	// ErrStaffNotFound: the user is not support staff of the tenant.
	ErrStaffNotFound = errors.New("support staff member not found")
)

// Categories lists the ticket categories; staff skills name them.
func Categories() []string {
	return []string{"billing", "payment", "meter", "connection", "outage", "usage", "account", "other"}
}

// Priority is a ticket's urgency; it sets the SLA.
type Priority string

// Priorities.
const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Status is a ticket's workflow state.
type Status string

// Statuses.
const (
	StatusOpen       Status = "open"
	StatusAssigned   Status = "assigned"
	StatusInProgress Status = "in_progress"
	StatusResolved   Status = "resolved"
	StatusClosed     Status = "closed"
)

// Ticket is a support ticket.
type Ticket struct {
	ID              int64
	TenantID        int64
	UserID          int64
	Category        string
	Priority        Priority
	Subject         string
	Description     string
	PropertyID      int64
	ConnectionID    int64
	Status          Status
	AssignedStaffID int64
	AssigneeName    string
	// AwaitingStaff is set while nobody could take the ticket.
	AwaitingStaff   bool
	QueuedSince     *time.Time
	SLADueAt        time.Time
	FirstResponseAt *time.Time
	ResolvedAt      *time.Time
	ClosedAt        *time.Time
	ReopenCount     int
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// SLABreached reports whether the ticket is past its SLA due time without
// being resolved (as of now).
func (t Ticket) SLABreached(now time.Time) bool {
	if t.ResolvedAt != nil {
		return t.ResolvedAt.After(t.SLADueAt)
	}
	return now.After(t.SLADueAt)
}

// Comment is a comment on a ticket.
type Comment struct {
	ID         int64
	AuthorID   int64
	AuthorName string
	AuthorRole account.Role
	Body       string
	Internal   bool
	CreatedAt  time.Time
}

// Event is one entry of a ticket's timeline.
type Event struct {
	ID      int64
	At      time.Time
	ActorID int64 // 0: the system
	Kind    string
	From    Status
	To      Status
	Note    string
}

// Detail is a ticket with its comments and timeline, as the caller may
// see them.
type Detail struct {
	Ticket
	Comments []Comment
	Timeline []Event
}

// Staff is a support staff member's desk settings and load.
type Staff struct {
	UserID         int64
	Name           string
	Email          string
	Skills         []string
	Available      bool
	MaxOpen        int
	OpenTickets    int
	LastAssignedAt *time.Time
}

// ValidCategory reports whether c is a category.
func ValidCategory(c string) bool { return slices.Contains(Categories(), c) }

// entry starts an audit entry.
func entry(a account.Actor, tenantID int64, action string, ticketID int64) audit.Entry {
	id := ""
	if ticketID != 0 {
		id = strconv.FormatInt(ticketID, 10)
	}
	return audit.Entry{TenantID: tenantID, ActorUserID: a.UserID, ActorRole: string(a.Role), Action: action,
		EntityType: "ticket", EntityID: id, Address: a.Address, RequestID: a.RequestID}
}

func invalid(field, msg string) error {
	v := account.NewValidator(ErrInvalidQuery)
	v.Add(field, msg)
	return v.Err()
}

func transitionError(from, to Status, why string) error {
	return fmt.Errorf("%w: %s → %s: %s", ErrInvalidTransition, from, to, why)
}
