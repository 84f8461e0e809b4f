package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
	"github.com/meterd/meterd/api/outbox"
	outboxpg "github.com/meterd/meterd/api/outbox/postgres"
	"github.com/meterd/meterd/api/support"

	"github.com/meterd/meterd/api/internal/sqlwhere"
)

// Store is support.Store on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

var _ support.Store = (*Store)(nil)

// New returns a Store.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// assignLockKey is the first key of the per-tenant advisory lock that
// serializes assignment ("SP").
const assignLockKey = 0x5350

// drainBatch bounds how many queued tickets one change tries to assign.
const drainBatch = 20

const ticketSelect = `SELECT t.id, t.tenant_id, t.user_id, t.category, t.priority, t.subject, t.description,
		coalesce(t.property_id, 0), coalesce(t.connection_id, 0), t.status, coalesce(t.assigned_staff_id, 0),
		coalesce(p.name, ''), t.awaiting_staff, t.queued_since, t.sla_due_at, t.first_response_at, t.resolved_at,
		t.closed_at, t.reopen_count, t.created_at, t.updated_at
	FROM support_tickets t LEFT JOIN user_profiles p ON p.user_id = t.assigned_staff_id`

func scanTicket(r pgx.Row) (support.Ticket, error) {
	var t support.Ticket
	err := r.Scan(&t.ID, &t.TenantID, &t.UserID, &t.Category, &t.Priority, &t.Subject, &t.Description,
		&t.PropertyID, &t.ConnectionID, &t.Status, &t.AssignedStaffID, &t.AssigneeName, &t.AwaitingStaff,
		&t.QueuedSince, &t.SLADueAt, &t.FirstResponseAt, &t.ResolvedAt, &t.ClosedAt, &t.ReopenCount,
		&t.CreatedAt, &t.UpdatedAt)
	return t, err
}

func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	var ve *account.ValidationError
	for _, known := range []error{support.ErrTicketNotFound, support.ErrInvalidTransition, support.ErrStaffNotFound} {
		if errors.Is(err, known) {
			return err
		}
	}
	if errors.As(err, &ve) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func invalid(field, msg string) error {
	v := account.NewValidator(support.ErrInvalidQuery)
	v.Add(field, msg)
	return v.Err()
}

// CreateTicket implements support.Store.
func (s *Store) CreateTicket(ctx context.Context, nt support.NewTicket, e audit.Entry) (support.Ticket, error) {
	var t support.Ticket
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var role string
		if err := tx.QueryRow(ctx, `SELECT role FROM users WHERE tenant_id = $1 AND id = $2`, nt.TenantID, nt.UserID).Scan(&role); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return invalid("user_id", "is not a user of this utility")
			}
			return err
		}
		if nt.PropertyID != 0 {
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM properties WHERE tenant_id = $1 AND id = $2 AND user_id = $3)`,
				nt.TenantID, nt.PropertyID, nt.UserID).Scan(&ok); err != nil {
				return err
			}
			if !ok {
				return invalid("property_id", "is not one of the consumer's properties")
			}
		}
		if nt.ConnectionID != 0 {
			var prop int64
			err := tx.QueryRow(ctx, `SELECT c.property_id FROM connections c JOIN properties p ON p.id = c.property_id
				WHERE c.tenant_id = $1 AND c.id = $2 AND p.user_id = $3`, nt.TenantID, nt.ConnectionID, nt.UserID).Scan(&prop)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && nt.PropertyID != 0 && prop != nt.PropertyID) {
				return invalid("connection_id", "is not one of the consumer's connections")
			}
			if err != nil {
				return err
			}
			if nt.PropertyID == 0 {
				nt.PropertyID = prop
			}
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO support_tickets (tenant_id, user_id, category, priority, subject, description,
				property_id, connection_id, sla_due_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id`,
			nt.TenantID, nt.UserID, nt.Category, nt.Priority, nt.Subject, nt.Description,
			nullID(nt.PropertyID), nullID(nt.ConnectionID), nt.SLADueAt, nt.Now).Scan(&id); err != nil {
			return err
		}
		created, err := addEvent(ctx, tx, nt.TenantID, id, nt.CreatedBy, "created", "", support.StatusOpen, "", true)
		if err != nil {
			return err
		}
		if _, err := tryAssign(ctx, tx, nt.TenantID, id, 0, nt.Now); err != nil {
			return err
		}
		if t, err = scanTicket(tx.QueryRow(ctx, ticketSelect+` WHERE t.id = $1`, id)); err != nil {
			return err
		}
		if err := notify(ctx, tx, t, t.UserID, outbox.EventTicketCreated, created, map[string]any{
			"category": t.Category, "priority": t.Priority, "sla_due_at": t.SLADueAt.UTC(), "awaiting_staff": t.AwaitingStaff,
		}); err != nil {
			return err
		}
		e.EntityID = strconv.FormatInt(id, 10)
		return writeAudit(ctx, tx, e, nil, id)
	})
	return t, wrap(err, "create ticket")
}

func writeAudit(ctx context.Context, tx pgx.Tx, e audit.Entry, before map[string]any, id int64) error {
	after, err := auditpg.Snapshot(ctx, tx, "support_tickets", "id", id)
	if err != nil {
		return err
	}
	e.Before, e.After = before, after
	if e.EntityID == "" {
		e.EntityID = strconv.FormatInt(id, 10)
	}
	return auditpg.Write(ctx, tx, e)
}

// addEvent appends a timeline event and returns its id.
func addEvent(ctx context.Context, tx pgx.Tx, tenantID, ticketID, actorID int64, kind string, from, to support.Status, note string, visible bool) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO support_ticket_events (tenant_id, ticket_id, actor_id, kind, from_status, to_status, note, visible_to_consumer)
		VALUES ($1, $2, $3, $4, nullif($5, ''), nullif($6, ''), $7, $8) RETURNING id`,
		tenantID, ticketID, nullID(actorID), kind, string(from), string(to), note, visible).Scan(&id)
	return id, err
}

// notify enqueues a ticket notification for recipient, keyed by the event
// that caused it so that it is enqueued once.
func notify(ctx context.Context, tx pgx.Tx, t support.Ticket, recipient int64, event string, eventID int64, extra map[string]any) error {
	payload := map[string]any{"ticket_id": t.ID, "subject": t.Subject, "status": t.Status}
	for k, v := range extra {
		payload[k] = v
	}
	return outboxpg.Enqueue(ctx, tx, outbox.Message{
		TenantID: t.TenantID, UserID: recipient, Event: event, Payload: payload,
		DedupeKey: fmt.Sprintf("ticket_event:%d:%d", eventID, recipient),
	})
}

// tryAssign assigns ticket id to the least-loaded available staff member
// whose skills include its category (preferring preferred when eligible),
// or queues and flags it. It reports whether it assigned.
func tryAssign(ctx context.Context, tx pgx.Tx, tenantID, id, preferred int64, now time.Time) (bool, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2::int)`, assignLockKey, tenantID); err != nil {
		return false, err
	}
	var category string
	var queued bool
	if err := tx.QueryRow(ctx, `SELECT category, awaiting_staff FROM support_tickets WHERE id = $1 FOR UPDATE`, id).Scan(&category, &queued); err != nil {
		return false, err
	}
	var staff int64
	err := tx.QueryRow(ctx, `SELECT s.user_id FROM support_staff s
			JOIN users u ON u.id = s.user_id AND u.status = 'active' AND u.role = 'support'
			CROSS JOIN LATERAL (SELECT count(*) AS n FROM support_tickets t
				WHERE t.assigned_staff_id = s.user_id AND t.status IN ('assigned', 'in_progress')) l
		WHERE s.tenant_id = $1 AND s.available AND $2 = ANY (s.skills) AND l.n < s.max_open
		ORDER BY (s.user_id = $3) DESC, l.n, s.last_assigned_at NULLS FIRST, s.user_id
		LIMIT 1`, tenantID, category, preferred).Scan(&staff)
	if errors.Is(err, pgx.ErrNoRows) {
		if queued {
			return false, nil
		}
		if _, err := tx.Exec(ctx, `UPDATE support_tickets SET awaiting_staff = true, queued_since = coalesce(queued_since, $2), updated_at = $2
			WHERE id = $1`, id, now); err != nil {
			return false, err
		}
		_, err := addEvent(ctx, tx, tenantID, id, 0, "queued", "", "", "no support staff with the skill '"+category+"' is available; the ticket is queued", true)
		return false, err
	}
	if err != nil {
		return false, err
	}
	return true, assignTo(ctx, tx, tenantID, id, staff, 0, "", now)
}

// assignTo gives ticket id to staff, records the event and notifies the
// consumer and the assignee.
func assignTo(ctx context.Context, tx pgx.Tx, tenantID, id, staff, actorID int64, note string, now time.Time) error {
	var from support.Status
	if err := tx.QueryRow(ctx, `SELECT status FROM support_tickets WHERE id = $1 FOR UPDATE`, id).Scan(&from); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE support_tickets SET assigned_staff_id = $2, status = 'assigned', awaiting_staff = false,
			queued_since = NULL, updated_at = $3 WHERE id = $1`, id, staff, now); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE support_staff SET last_assigned_at = $2 WHERE user_id = $1`, staff, now); err != nil {
		return err
	}
	ev, err := addEvent(ctx, tx, tenantID, id, actorID, "assigned", from, support.StatusAssigned, note, true)
	if err != nil {
		return err
	}
	t, err := scanTicket(tx.QueryRow(ctx, ticketSelect+` WHERE t.id = $1`, id))
	if err != nil {
		return err
	}
	extra := map[string]any{"assignee_name": t.AssigneeName}
	if err := notify(ctx, tx, t, t.UserID, outbox.EventTicketAssigned, ev, extra); err != nil {
		return err
	}
	return notify(ctx, tx, t, staff, outbox.EventTicketAssigned, ev, map[string]any{"role": "staff", "category": t.Category, "priority": t.Priority})
}

// drainQueue assigns queued tickets of a tenant, most urgent and oldest
// first, until one cannot be assigned or a batch is done.
func drainQueue(ctx context.Context, tx pgx.Tx, tenantID int64, now time.Time) (int, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM support_tickets WHERE tenant_id = $1 AND awaiting_staff
		ORDER BY CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END, created_at, id
		LIMIT $2`, tenantID, drainBatch)
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		ok, err := tryAssign(ctx, tx, tenantID, id, 0, now)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Ticket implements support.Store.
func (s *Store) Ticket(ctx context.Context, scope account.Scope, id int64) (support.Ticket, error) {
	t, err := scanTicket(s.pool.QueryRow(ctx, ticketSelect+` WHERE t.tenant_id = $1 AND ($2 = 0 OR t.user_id = $2) AND t.id = $3`,
		scope.TenantID, scope.UserID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, support.ErrTicketNotFound
	}
	return t, wrap(err, "ticket")
}

// ListTickets implements support.Store: newest first; Page.After is the
// smallest id of the previous page.
func (s *Store) ListTickets(ctx context.Context, scope account.Scope, f support.Filter, p account.Page) ([]support.Ticket, error) {
	var w sqlwhere.Where
	w.Add("t.tenant_id = ?", scope.TenantID)
	if scope.UserID != 0 {
		w.Add("t.user_id = ?", scope.UserID)
	}
	if f.Status != "" {
		w.Add("t.status = ?", string(f.Status))
	}
	if f.AssigneeID != 0 {
		w.Add("t.assigned_staff_id = ?", f.AssigneeID)
	}
	if f.Queued {
		w.Cond("t.awaiting_staff")
	}
	if p.After != 0 {
		w.Add("t.id < ?", p.After)
	}
	rows, err := s.pool.Query(ctx, ticketSelect+` WHERE `+w.String()+` ORDER BY t.id DESC LIMIT `+w.Next(p.Limit), w.Args()...)
	if err != nil {
		return nil, wrap(err, "list tickets")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (support.Ticket, error) { return scanTicket(r) })
	return list, wrap(err, "list tickets")
}

// Comments implements support.Store.
func (s *Store) Comments(ctx context.Context, ticketID int64, internal bool) ([]support.Comment, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.id, c.author_id, coalesce(p.name, ''), u.role, c.body, c.internal, c.created_at
		FROM support_ticket_comments c JOIN users u ON u.id = c.author_id LEFT JOIN user_profiles p ON p.user_id = c.author_id
		WHERE c.ticket_id = $1 AND ($2 OR NOT c.internal) ORDER BY c.id`, ticketID, internal)
	if err != nil {
		return nil, wrap(err, "comments")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (support.Comment, error) {
		var c support.Comment
		err := r.Scan(&c.ID, &c.AuthorID, &c.AuthorName, &c.AuthorRole, &c.Body, &c.Internal, &c.CreatedAt)
		return c, err
	})
	return list, wrap(err, "comments")
}

// Timeline implements support.Store.
func (s *Store) Timeline(ctx context.Context, ticketID int64, all bool) ([]support.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, coalesce(actor_id, 0), kind, coalesce(from_status, ''), coalesce(to_status, ''), note
		FROM support_ticket_events WHERE ticket_id = $1 AND ($2 OR visible_to_consumer) ORDER BY id`, ticketID, all)
	if err != nil {
		return nil, wrap(err, "timeline")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (support.Event, error) {
		var e support.Event
		err := r.Scan(&e.ID, &e.At, &e.ActorID, &e.Kind, &e.From, &e.To, &e.Note)
		return e, err
	})
	return list, wrap(err, "timeline")
}

// AddComment implements support.Store.
func (s *Store) AddComment(ctx context.Context, t support.Ticket, nc support.NewComment, e audit.Entry) (support.Comment, error) {
	var c support.Comment
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO support_ticket_comments (tenant_id, ticket_id, author_id, body, internal)
			VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at`, t.TenantID, t.ID, nc.AuthorID, nc.Body, nc.Internal).Scan(&c.ID, &c.CreatedAt); err != nil {
			return err
		}
		if nc.FromStaff && !nc.Internal {
			if _, err := tx.Exec(ctx, `UPDATE support_tickets SET first_response_at = coalesce(first_response_at, now()), updated_at = now() WHERE id = $1`, t.ID); err != nil {
				return err
			}
		}
		ev, err := addEvent(ctx, tx, t.TenantID, t.ID, nc.AuthorID, "commented", "", "", "", !nc.Internal)
		if err != nil {
			return err
		}
		if !nc.Internal {
			// Tell the other side: the consumer of a staff reply, the
			// assignee of a consumer's comment.
			recipient := t.UserID
			if !nc.FromStaff {
				recipient = t.AssignedStaffID
			}
			if recipient != 0 && recipient != nc.AuthorID {
				if err := notify(ctx, tx, t, recipient, outbox.EventTicketComment, ev, map[string]any{"comment_id": c.ID}); err != nil {
					return err
				}
			}
		}
		e.After = map[string]any{"comment_id": c.ID, "internal": nc.Internal}
		if err := auditpg.Write(ctx, tx, e); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT c.author_id, coalesce(p.name, ''), u.role, c.body, c.internal
			FROM support_ticket_comments c JOIN users u ON u.id = c.author_id LEFT JOIN user_profiles p ON p.user_id = c.author_id
			WHERE c.id = $1`, c.ID).Scan(&c.AuthorID, &c.AuthorName, &c.AuthorRole, &c.Body, &c.Internal)
	})
	return c, wrap(err, "add comment")
}

// Transition implements support.Store.
func (s *Store) Transition(ctx context.Context, t support.Ticket, to support.Status, actorID int64, note string, now time.Time, e audit.Entry) (support.Ticket, error) {
	var out support.Ticket
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := auditpg.Snapshot(ctx, tx, "support_tickets", "id", t.ID)
		if err != nil {
			return err
		}
		var cur support.Status
		var assignee int64
		if err := tx.QueryRow(ctx, `SELECT status, coalesce(assigned_staff_id, 0) FROM support_tickets WHERE id = $1 FOR UPDATE`, t.ID).Scan(&cur, &assignee); err != nil {
			return err
		}
		if cur != t.Status {
			return fmt.Errorf("%w: the ticket changed to %s meanwhile", support.ErrInvalidTransition, cur)
		}
		kind := "status_changed"
		var q string
		switch to {
		case support.StatusInProgress:
			q = `UPDATE support_tickets SET status = 'in_progress', first_response_at = coalesce(first_response_at, $2), updated_at = $2 WHERE id = $1`
		case support.StatusResolved:
			q = `UPDATE support_tickets SET status = 'resolved', resolved_at = $2, first_response_at = coalesce(first_response_at, $2), updated_at = $2 WHERE id = $1`
		case support.StatusClosed:
			q = `UPDATE support_tickets SET status = 'closed', closed_at = $2, updated_at = $2 WHERE id = $1`
		case support.StatusOpen:
			kind = "reopened"
			q = `UPDATE support_tickets SET status = 'open', assigned_staff_id = NULL, resolved_at = NULL, closed_at = NULL,
				reopen_count = reopen_count + 1, updated_at = $2 WHERE id = $1`
		default:
			return fmt.Errorf("%w: to %s", support.ErrInvalidTransition, to)
		}
		if _, err := tx.Exec(ctx, q, t.ID, now); err != nil {
			return err
		}
		ev, err := addEvent(ctx, tx, t.TenantID, t.ID, actorID, kind, cur, to, note, true)
		if err != nil {
			return err
		}
		if actorID != t.UserID {
			nt := t
			nt.Status = to
			if err := notify(ctx, tx, nt, t.UserID, outbox.EventTicketStatusChanged, ev, map[string]any{"from": cur, "to": to, "note": note}); err != nil {
				return err
			}
		}
		switch to {
		case support.StatusOpen:
			if _, err := tryAssign(ctx, tx, t.TenantID, t.ID, assignee, now); err != nil {
				return err
			}
		case support.StatusResolved, support.StatusClosed:
			if cur == support.StatusAssigned || cur == support.StatusInProgress {
				if _, err := drainQueue(ctx, tx, t.TenantID, now); err != nil {
					return err
				}
			}
		}
		if err := writeAudit(ctx, tx, e, before, t.ID); err != nil {
			return err
		}
		out, err = scanTicket(tx.QueryRow(ctx, ticketSelect+` WHERE t.id = $1`, t.ID))
		return err
	})
	return out, wrap(err, "transition ticket")
}

// Assign implements support.Store.
func (s *Store) Assign(ctx context.Context, t support.Ticket, staffID, actorID int64, note string, now time.Time, e audit.Entry) (support.Ticket, error) {
	var out support.Ticket
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := auditpg.Snapshot(ctx, tx, "support_tickets", "id", t.ID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2::int)`, assignLockKey, t.TenantID); err != nil {
			return err
		}
		var cur support.Status
		var prev int64
		if err := tx.QueryRow(ctx, `SELECT status, coalesce(assigned_staff_id, 0) FROM support_tickets WHERE id = $1 FOR UPDATE`, t.ID).Scan(&cur, &prev); err != nil {
			return err
		}
		if cur == support.StatusResolved || cur == support.StatusClosed {
			return fmt.Errorf("%w: the ticket is %s", support.ErrInvalidTransition, cur)
		}
		if err := assignTo(ctx, tx, t.TenantID, t.ID, staffID, actorID, note, now); err != nil {
			return err
		}
		if prev != 0 && prev != staffID {
			if _, err := drainQueue(ctx, tx, t.TenantID, now); err != nil {
				return err
			}
		}
		if err := writeAudit(ctx, tx, e, before, t.ID); err != nil {
			return err
		}
		out, err = scanTicket(tx.QueryRow(ctx, ticketSelect+` WHERE t.id = $1`, t.ID))
		return err
	})
	return out, wrap(err, "assign ticket")
}

// AssignQueued implements support.Store.
func (s *Store) AssignQueued(ctx context.Context, tenantID int64, now time.Time) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT tenant_id FROM support_tickets WHERE awaiting_staff AND ($1 = 0 OR tenant_id = $1)`, tenantID)
	if err != nil {
		return 0, wrap(err, "queued tenants")
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, wrap(err, "queued tenants")
	}
	total := 0
	for _, tid := range tenants {
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			n, err := drainQueue(ctx, tx, tid, now)
			total += n
			return err
		})
		if err != nil {
			return total, wrap(err, "assign queued")
		}
	}
	return total, nil
}

const staffSelect = `SELECT u.id, coalesce(p.name, ''), u.email, coalesce(s.skills, '{}'), coalesce(s.available, false),
		coalesce(s.max_open, 20),
		(SELECT count(*) FROM support_tickets t WHERE t.assigned_staff_id = u.id AND t.status IN ('assigned', 'in_progress')),
		s.last_assigned_at
	FROM users u LEFT JOIN support_staff s ON s.user_id = u.id LEFT JOIN user_profiles p ON p.user_id = u.id
	WHERE u.tenant_id = $1 AND u.role = 'support'`

func scanStaff(r pgx.Row) (support.Staff, error) {
	var st support.Staff
	err := r.Scan(&st.UserID, &st.Name, &st.Email, &st.Skills, &st.Available, &st.MaxOpen, &st.OpenTickets, &st.LastAssignedAt)
	return st, err
}

// Staff implements support.Store.
func (s *Store) Staff(ctx context.Context, tenantID, userID int64) (support.Staff, error) {
	st, err := scanStaff(s.pool.QueryRow(ctx, staffSelect+` AND u.id = $2`, tenantID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return st, support.ErrStaffNotFound
	}
	return st, wrap(err, "staff")
}

// ListStaff implements support.Store.
func (s *Store) ListStaff(ctx context.Context, tenantID int64) ([]support.Staff, error) {
	rows, err := s.pool.Query(ctx, staffSelect+` ORDER BY u.id LIMIT 1000`, tenantID)
	if err != nil {
		return nil, wrap(err, "list staff")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (support.Staff, error) { return scanStaff(r) })
	return list, wrap(err, "list staff")
}

// PutStaff implements support.Store.
func (s *Store) PutStaff(ctx context.Context, tenantID, userID int64, p support.StaffPatch, now time.Time, e audit.Entry) (support.Staff, error) {
	var st support.Staff
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2 AND role = 'support')`, tenantID, userID).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return support.ErrStaffNotFound
		}
		before, err := auditpg.Snapshot(ctx, tx, "support_staff", "user_id", userID)
		if err != nil {
			return err
		}
		var skills []string
		if p.Skills != nil {
			skills = *p.Skills
		}
		if _, err := tx.Exec(ctx, `INSERT INTO support_staff (user_id, tenant_id, skills, available, max_open)
			VALUES ($1, $2, coalesce($3, '{}'::text[]), coalesce($4, true), coalesce($5, 20))
			ON CONFLICT (user_id) DO UPDATE SET skills = coalesce($3, support_staff.skills),
				available = coalesce($4, support_staff.available), max_open = coalesce($5, support_staff.max_open),
				updated_at = now()`, userID, tenantID, skillsParam(p.Skills, skills), p.Available, p.MaxOpen); err != nil {
			return err
		}
		if _, err := drainQueue(ctx, tx, tenantID, now); err != nil {
			return err
		}
		after, err := auditpg.Snapshot(ctx, tx, "support_staff", "user_id", userID)
		if err != nil {
			return err
		}
		e.Before, e.After = before, after
		if err := auditpg.Write(ctx, tx, e); err != nil {
			return err
		}
		st, err = scanStaff(tx.QueryRow(ctx, staffSelect+` AND u.id = $2`, tenantID, userID))
		return err
	})
	return st, wrap(err, "put staff")
}

func skillsParam(set *[]string, skills []string) any {
	if set == nil {
		return nil
	}
	if skills == nil {
		return []string{}
	}
	return skills
}
