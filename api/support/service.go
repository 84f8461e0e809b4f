package support

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/meterd/meterd/api/account"
)

// Config configures the support desk.
type Config struct {
	// SLA is the resolution time per priority. Defaults: urgent 4 h, high
	// 8 h, normal 24 h, low 72 h.
	SLA map[Priority]time.Duration
	// ReopenWindow is how long after resolution a consumer may reopen a
	// ticket. Default 14 days.
	ReopenWindow time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	def := map[Priority]time.Duration{PriorityUrgent: 4 * time.Hour, PriorityHigh: 8 * time.Hour, PriorityNormal: 24 * time.Hour, PriorityLow: 72 * time.Hour}
	if c.SLA == nil {
		c.SLA = def
	}
	for p, d := range def {
		if _, ok := c.SLA[p]; !ok {
			c.SLA[p] = d
		}
	}
	if c.ReopenWindow == 0 {
		c.ReopenWindow = 14 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	for p, d := range c.SLA {
		if d <= 0 {
			return errors.New("support: SLA for " + string(p) + " must be positive")
		}
	}
	if c.ReopenWindow < 0 {
		return errors.New("support: ReopenWindow must not be negative")
	}
	return nil
}

// Service is the support desk.
type Service struct {
	store Store
	cfg   Config
}

// New returns a Service.
func New(store Store, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Service{store: store, cfg: cfg}, nil
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.cfg.Now() }

// TicketInput is a query or issue raised by a consumer (or by staff on a
// consumer's behalf).
type TicketInput struct {
	UserID       int64 // staff raising for a consumer; 0: the caller
	Category     string
	Priority     Priority // default normal
	Subject      string   // default: the start of the description
	Description  string
	PropertyID   int64
	ConnectionID int64
}

func textProblem(s string, required bool, maxRunes int) string {
	switch {
	case strings.TrimSpace(s) == "" && required:
		return "is required"
	case !utf8.ValidString(s):
		return "must be valid UTF-8 text"
	case utf8.RuneCountInString(s) > maxRunes:
		return "is too long"
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return "must not contain control characters"
		}
	}
	return ""
}

// Raise creates a ticket and assigns it to the least-loaded available
// staff member whose skills match its category. If nobody can take it, the
// ticket is still created, queued and flagged (AwaitingStaff), and it is
// assigned as soon as someone frees up; the caller tells the consumer
// (SupportStaffUnavailable).
func (s *Service) Raise(ctx context.Context, a account.Actor, scope account.Scope, in TicketInput) (Ticket, error) {
	owner := a.UserID
	if in.UserID != 0 && in.UserID != a.UserID {
		if scope.Owned() {
			return Ticket{}, invalid("user_id", "consumers raise tickets for themselves")
		}
		owner = in.UserID
	}
	in.Category = strings.ToLower(strings.TrimSpace(in.Category))
	in.Subject = strings.TrimSpace(in.Subject)
	in.Description = strings.TrimSpace(in.Description)
	if in.Priority == "" {
		in.Priority = PriorityNormal
	}
	v := account.NewValidator(ErrInvalidQuery)
	if in.Category == "" {
		v.Add("category", "is required: one of "+strings.Join(Categories(), ", "))
	} else if !ValidCategory(in.Category) {
		v.Add("category", "must be one of "+strings.Join(Categories(), ", "))
	}
	if _, ok := s.cfg.SLA[in.Priority]; !ok {
		v.Add("priority", "must be low, normal, high or urgent")
	}
	if m := textProblem(in.Description, true, 5000); m != "" {
		v.Add("description", m)
	} else if utf8.RuneCountInString(in.Description) < 10 {
		v.Add("description", "must say what the problem is (at least 10 characters)")
	}
	if m := textProblem(in.Subject, false, 200); m != "" {
		v.Add("subject", m)
	}
	v.Check(in.PropertyID >= 0, "property_id", "must be a property id")
	v.Check(in.ConnectionID >= 0, "connection_id", "must be a connection id")
	if err := v.Err(); err != nil {
		return Ticket{}, err
	}
	if in.Subject == "" {
		in.Subject = firstLine(in.Description, 80)
	}
	now := s.cfg.Now().UTC()
	return s.store.CreateTicket(ctx, NewTicket{
		TenantID: scope.TenantID, UserID: owner, Category: in.Category, Priority: in.Priority,
		Subject: in.Subject, Description: in.Description, PropertyID: in.PropertyID, ConnectionID: in.ConnectionID,
		SLADueAt: now.Add(s.cfg.SLA[in.Priority]), CreatedBy: a.UserID, Now: now,
	}, entry(a, scope.TenantID, "ticket.create", 0))
}

// firstLine returns the first line of s, cut to max runes.
func firstLine(s string, maxRunes int) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:maxRunes-1])) + "…"
}

// Get returns a ticket with the comments and timeline the caller may see:
// consumers see neither internal comments nor internal events.
func (s *Service) Get(ctx context.Context, a account.Actor, scope account.Scope, id int64) (Detail, error) {
	t, err := s.store.Ticket(ctx, scope, id)
	if err != nil {
		return Detail{}, err
	}
	staff := a.Role.Staff()
	d := Detail{Ticket: t}
	if d.Comments, err = s.store.Comments(ctx, id, staff); err != nil {
		return Detail{}, err
	}
	if d.Timeline, err = s.store.Timeline(ctx, id, staff); err != nil {
		return Detail{}, err
	}
	return d, nil
}

// List lists tickets in scope, newest first. Support staff see the
// tickets assigned to them unless they ask for all or the queue.
func (s *Service) List(ctx context.Context, scope account.Scope, f Filter, p account.Page) ([]Ticket, error) {
	if f.Status != "" && !validStatus(f.Status) {
		return nil, invalid("status", "must be open, assigned, in_progress, resolved or closed")
	}
	return s.store.ListTickets(ctx, scope, f, p.Normalize())
}

func validStatus(st Status) bool {
	return slices.Contains([]Status{StatusOpen, StatusAssigned, StatusInProgress, StatusResolved, StatusClosed}, st)
}

// Comment adds a comment. Consumers comment on their own tickets and
// cannot write internal notes.
func (s *Service) Comment(ctx context.Context, a account.Actor, scope account.Scope, id int64, body string, internal bool) (Comment, error) {
	t, err := s.store.Ticket(ctx, scope, id)
	if err != nil {
		return Comment{}, err
	}
	body = strings.TrimSpace(body)
	v := account.NewValidator(ErrInvalidQuery)
	if m := textProblem(body, true, 5000); m != "" {
		v.Add("body", m)
	}
	if internal && !a.Role.Staff() {
		v.Add("internal", "only staff write internal notes")
	}
	if err := v.Err(); err != nil {
		return Comment{}, err
	}
	return s.store.AddComment(ctx, t, NewComment{AuthorID: a.UserID, Body: body, Internal: internal, FromStaff: a.Role.Staff()},
		entry(a, scope.TenantID, "ticket.comment", id))
}

// Transition changes a ticket's status. The rules:
//   - consumers may close their resolved ticket, and reopen a resolved or
//     closed one within the reopen window;
//   - support staff move their assigned tickets to in progress and resolved
//     (a resolution note is required), close resolved ones, and reopen;
//   - officials and administrators may do all of that for any ticket.
//
// open → assigned happens by assignment only (automatic or Assign).
func (s *Service) Transition(ctx context.Context, a account.Actor, scope account.Scope, id int64, to Status, note string) (Ticket, error) {
	t, err := s.store.Ticket(ctx, scope, id)
	if err != nil {
		return Ticket{}, err
	}
	note = strings.TrimSpace(note)
	if m := textProblem(note, false, 2000); m != "" {
		return Ticket{}, invalid("note", m)
	}
	if !validStatus(to) {
		return Ticket{}, invalid("status", "must be in_progress, resolved, closed or open (reopen)")
	}
	now := s.cfg.Now().UTC()
	from := t.Status
	allowed := map[Status][]Status{
		StatusAssigned:   {StatusInProgress, StatusResolved},
		StatusInProgress: {StatusResolved},
		StatusResolved:   {StatusClosed, StatusOpen},
		StatusClosed:     {StatusOpen},
	}
	if !slices.Contains(allowed[from], to) {
		return Ticket{}, transitionError(from, to, "not a step of the workflow")
	}
	switch a.Role {
	case account.RoleConsumer:
		switch to {
		case StatusOpen:
			since := t.ResolvedAt
			if t.ClosedAt != nil {
				since = t.ClosedAt
			}
			if since != nil && now.Sub(*since) > s.cfg.ReopenWindow {
				return Ticket{}, transitionError(from, to, "the reopen window has passed; raise a new query")
			}
		case StatusClosed:
		default:
			return Ticket{}, transitionError(from, to, "consumers may only close or reopen their tickets")
		}
	case account.RoleSupport:
		if (to == StatusInProgress || to == StatusResolved) && t.AssignedStaffID != a.UserID {
			return Ticket{}, transitionError(from, to, "the ticket is assigned to someone else")
		}
	}
	if to == StatusResolved && note == "" {
		return Ticket{}, invalid("note", "is required when resolving: say how it was resolved")
	}
	if to == StatusOpen && note == "" && a.Role == account.RoleConsumer {
		return Ticket{}, invalid("note", "is required when reopening: say what is still wrong")
	}
	action := "ticket.status_changed"
	if to == StatusOpen {
		action = "ticket.reopen"
	}
	return s.store.Transition(ctx, t, to, a.UserID, note, now, entry(a, scope.TenantID, action, id))
}

// Assign gives a ticket to a support staff member (officials and admins).
func (s *Service) Assign(ctx context.Context, a account.Actor, scope account.Scope, id, staffID int64, note string) (Ticket, error) {
	t, err := s.store.Ticket(ctx, scope, id)
	if err != nil {
		return Ticket{}, err
	}
	if t.Status == StatusResolved || t.Status == StatusClosed {
		return Ticket{}, transitionError(t.Status, StatusAssigned, "reopen the ticket first")
	}
	if _, err := s.store.Staff(ctx, scope.TenantID, staffID); err != nil {
		if errors.Is(err, ErrStaffNotFound) {
			return Ticket{}, invalid("staff_id", "is not support staff of this utility")
		}
		return Ticket{}, err
	}
	return s.store.Assign(ctx, t, staffID, a.UserID, strings.TrimSpace(note), s.cfg.Now().UTC(), entry(a, scope.TenantID, "ticket.assign", id))
}

// StaffInput changes a staff member's desk settings.
type StaffInput struct {
	Skills    *[]string
	Available *bool
	MaxOpen   *int
}

// PutStaff updates a support staff member's settings: admins set anyone's
// skills and capacity; support staff set their own availability (and
// skills). Becoming available assigns queued tickets at once.
func (s *Service) PutStaff(ctx context.Context, a account.Actor, scope account.Scope, userID int64, in StaffInput) (Staff, error) {
	if userID == 0 {
		userID = a.UserID
	}
	if a.Role == account.RoleSupport && userID != a.UserID {
		return Staff{}, account.ErrUnauthorized
	}
	v := account.NewValidator(account.ErrInvalidInput)
	if in.Skills != nil {
		skills := make([]string, 0, len(*in.Skills))
		for i, sk := range *in.Skills {
			sk = strings.ToLower(strings.TrimSpace(sk))
			if !ValidCategory(sk) {
				v.Add("skills["+itoa(i)+"]", "must be one of "+strings.Join(Categories(), ", "))
			}
			if !slices.Contains(skills, sk) {
				skills = append(skills, sk)
			}
		}
		slices.Sort(skills)
		*in.Skills = skills
	}
	if in.MaxOpen != nil {
		v.Check(*in.MaxOpen >= 1 && *in.MaxOpen <= 500, "max_open", "must be between 1 and 500")
		if a.Role == account.RoleSupport {
			v.Add("max_open", "is set by an administrator")
		}
	}
	if err := v.Err(); err != nil {
		return Staff{}, err
	}
	e := entry(a, scope.TenantID, "support_staff.update", 0)
	e.EntityType, e.EntityID = "support_staff", itoa(int(userID))
	return s.store.PutStaff(ctx, scope.TenantID, userID, StaffPatch(in), s.cfg.Now().UTC(), e)
}

func itoa(i int) string { return strconv.Itoa(i) }

// GetStaff returns a staff member's settings and load.
func (s *Service) GetStaff(ctx context.Context, scope account.Scope, userID int64) (Staff, error) {
	return s.store.Staff(ctx, scope.TenantID, userID)
}

// ListStaff lists the tenant's support staff with their load.
func (s *Service) ListStaff(ctx context.Context, scope account.Scope) ([]Staff, error) {
	return s.store.ListStaff(ctx, scope.TenantID)
}

// AssignQueued assigns queued tickets of every tenant to staff who are now
// free; a periodic job calls it as a backstop to the immediate draining.
func (s *Service) AssignQueued(ctx context.Context) (int, error) {
	return s.store.AssignQueued(ctx, 0, s.cfg.Now().UTC())
}
