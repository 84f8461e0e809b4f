package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/support"
	supportpg "github.com/meterd/meterd/api/support/postgres"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

type desk struct {
	pool   *pgxpool.Pool
	svc    *support.Service
	tenant int64
	now    time.Time
}

func newDesk(t *testing.T) *desk {
	t.Helper()
	pool := schematest.New(t)
	d := &desk{pool: pool, now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	if err := pool.QueryRow(context.Background(), `INSERT INTO tenants (code, name) VALUES ('demo', 'Demo') RETURNING id`).Scan(&d.tenant); err != nil {
		t.Fatal(err)
	}
	svc, err := support.New(supportpg.New(pool), support.Config{Now: func() time.Time { return d.now }})
	if err != nil {
		t.Fatal(err)
	}
	d.svc = svc
	return d
}

func (d *desk) user(t *testing.T, tenant int64, email string, role account.Role) account.Actor {
	t.Helper()
	var id int64
	err := d.pool.QueryRow(context.Background(), `INSERT INTO users (tenant_id, email, role, department, password_hash)
		VALUES ($1, $2, $3, CASE WHEN $3 = 'official' THEN 'operations' END, '$argon2id$test') RETURNING id`, tenant, email, role).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pool.Exec(context.Background(), `INSERT INTO user_profiles (tenant_id, user_id, name) VALUES ($1, $2, $3)`, tenant, id, email); err != nil {
		t.Fatal(err)
	}
	return account.Actor{Principal: account.Principal{TenantID: tenant, UserID: id, Role: role}, Address: "192.0.2.1"}
}

func (d *desk) staff(t *testing.T, admin account.Actor, a account.Actor, maxOpen int, skills ...string) {
	t.Helper()
	avail := true
	if _, err := d.svc.PutStaff(context.Background(), admin, account.OwnerTenant.ScopeFor(admin.Principal), a.UserID,
		support.StaffInput{Skills: &skills, Available: &avail, MaxOpen: &maxOpen}); err != nil {
		t.Fatal(err)
	}
}

func scope(a account.Actor) account.Scope { return account.OwnerSelfOrTenant.ScopeFor(a.Principal) }

func TestQueueWhenNobodyAvailableThenAssign(t *testing.T) {
	d := newDesk(t)
	ctx := context.Background()
	consumer := d.user(t, d.tenant, "c@example.com", account.RoleConsumer)
	admin := d.user(t, d.tenant, "a@example.com", account.RoleAdmin)
	agent := d.user(t, d.tenant, "s@example.com", account.RoleSupport)

	tk, err := d.svc.Raise(ctx, consumer, scope(consumer), support.TicketInput{Category: "billing", Priority: support.PriorityHigh,
		Description: "My bill for February shows twice the usual amount."})
	if err != nil {
		t.Fatal(err)
	}
	if !tk.AwaitingStaff || tk.Status != support.StatusOpen || tk.QueuedSince == nil {
		t.Fatalf("ticket %+v", tk)
	}
	if !tk.SLADueAt.Equal(d.now.Add(8 * time.Hour)) {
		t.Errorf("SLA due %v, want created + 8h", tk.SLADueAt)
	}
	// A staff member with another skill does not take it.
	d.staff(t, admin, agent, 5, "meter")
	if got, _ := d.svc.Get(ctx, consumer, scope(consumer), tk.ID); !got.AwaitingStaff {
		t.Fatal("assigned to staff without the skill")
	}
	// With the skill, the queue drains at once.
	d.staff(t, admin, agent, 5, "meter", "billing")
	got, err := d.svc.Get(ctx, consumer, scope(consumer), tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.AwaitingStaff || got.Status != support.StatusAssigned || got.AssignedStaffID != agent.UserID || got.AssigneeName != "s@example.com" {
		t.Fatalf("after staff freed up: %+v", got.Ticket)
	}
	kinds := []string{}
	for _, e := range got.Timeline {
		kinds = append(kinds, e.Kind)
	}
	if len(kinds) != 3 || kinds[0] != "created" || kinds[1] != "queued" || kinds[2] != "assigned" {
		t.Errorf("timeline %v", kinds)
	}
	var events []string
	rows, _ := d.pool.Query(ctx, `SELECT event FROM notification_outbox WHERE user_id = $1 ORDER BY id`, consumer.UserID)
	for rows.Next() {
		var e string
		_ = rows.Scan(&e)
		events = append(events, e)
	}
	if len(events) != 2 || events[0] != "ticket.created" || events[1] != "ticket.assigned" {
		t.Errorf("consumer notifications %v", events)
	}
}

func TestLeastLoadedAndCapacityUnderConcurrency(t *testing.T) {
	d := newDesk(t)
	ctx := context.Background()
	consumer := d.user(t, d.tenant, "c@example.com", account.RoleConsumer)
	admin := d.user(t, d.tenant, "a@example.com", account.RoleAdmin)
	s1 := d.user(t, d.tenant, "s1@example.com", account.RoleSupport)
	s2 := d.user(t, d.tenant, "s2@example.com", account.RoleSupport)
	d.staff(t, admin, s1, 3, "outage")
	d.staff(t, admin, s2, 3, "outage")

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := d.svc.Raise(ctx, consumer, scope(consumer), support.TicketInput{Category: "outage", Description: "No power in our street since morning."})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []account.Actor{s1, s2} {
		st, err := d.svc.GetStaff(ctx, scope(admin), s.UserID)
		if err != nil || st.OpenTickets != 3 {
			t.Fatalf("staff %d load %d (%v), want 3 each", s.UserID, st.OpenTickets, err)
		}
	}
	queued, err := d.svc.List(ctx, scope(admin), support.Filter{Queued: true}, account.Page{})
	if err != nil || len(queued) != 4 {
		t.Fatalf("queued %d (%v), want 4", len(queued), err)
	}
	// s1 resolves one: the oldest queued ticket goes to s1 in the same
	// transaction.
	mine, _ := d.svc.List(ctx, scope(s1), support.Filter{AssigneeID: s1.UserID}, account.Page{})
	if _, err := d.svc.Transition(ctx, s1, scope(s1), mine[0].ID, support.StatusResolved, "Feeder fault fixed."); err != nil {
		t.Fatal(err)
	}
	if q, _ := d.svc.List(ctx, scope(admin), support.Filter{Queued: true}, account.Page{}); len(q) != 3 {
		t.Fatalf("queued after a resolution: %d, want 3", len(q))
	}
	if st, _ := d.svc.GetStaff(ctx, scope(admin), s1.UserID); st.OpenTickets != 3 {
		t.Fatalf("s1 load after drain %d, want 3", st.OpenTickets)
	}
}

func TestWorkflowAndVisibility(t *testing.T) {
	d := newDesk(t)
	ctx := context.Background()
	consumer := d.user(t, d.tenant, "c@example.com", account.RoleConsumer)
	other := d.user(t, d.tenant, "c2@example.com", account.RoleConsumer)
	admin := d.user(t, d.tenant, "a@example.com", account.RoleAdmin)
	agent := d.user(t, d.tenant, "s@example.com", account.RoleSupport)
	agent2 := d.user(t, d.tenant, "s2@example.com", account.RoleSupport)
	d.staff(t, admin, agent, 5, "meter")

	tk, err := d.svc.Raise(ctx, consumer, scope(consumer), support.TicketInput{Category: "meter", Description: "The meter display is blank."})
	if err != nil || tk.AssignedStaffID != agent.UserID {
		t.Fatalf("raise: %+v %v", tk, err)
	}
	if _, err := d.svc.Get(ctx, other, scope(other), tk.ID); !errors.Is(err, support.ErrTicketNotFound) {
		t.Fatalf("another consumer's view: %v", err)
	}
	if _, err := d.svc.Transition(ctx, agent2, scope(agent2), tk.ID, support.StatusInProgress, ""); !errors.Is(err, support.ErrInvalidTransition) {
		t.Fatalf("non-assignee start: %v", err)
	}
	if _, err := d.svc.Transition(ctx, consumer, scope(consumer), tk.ID, support.StatusResolved, "done"); !errors.Is(err, support.ErrInvalidTransition) {
		t.Fatalf("consumer resolves: %v", err)
	}
	steps := []struct {
		who  account.Actor
		to   support.Status
		note string
	}{
		{agent, support.StatusInProgress, ""},
		{agent, support.StatusResolved, "Replaced the display board."},
		{consumer, support.StatusOpen, "Blank again this morning."},
	}
	for _, st := range steps {
		if tk, err = d.svc.Transition(ctx, st.who, scope(st.who), tk.ID, st.to, st.note); err != nil {
			t.Fatalf("→ %s: %v", st.to, err)
		}
	}
	// Reopened: back to the previous assignee.
	if tk.Status != support.StatusAssigned || tk.AssignedStaffID != agent.UserID || tk.ReopenCount != 1 {
		t.Fatalf("after reopen %+v", tk)
	}
	if _, err := d.svc.Comment(ctx, agent, scope(agent), tk.ID, "Check the wiring first.", true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.svc.Comment(ctx, agent, scope(agent), tk.ID, "A technician visits tomorrow.", false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.svc.Comment(ctx, consumer, scope(consumer), tk.ID, "secret", true); err == nil {
		t.Fatal("consumer wrote an internal note")
	}
	cv, _ := d.svc.Get(ctx, consumer, scope(consumer), tk.ID)
	sv, _ := d.svc.Get(ctx, agent, scope(agent), tk.ID)
	if len(cv.Comments) != 1 || len(sv.Comments) != 2 || cv.FirstResponseAt == nil {
		t.Fatalf("consumer sees %d comments, staff %d", len(cv.Comments), len(sv.Comments))
	}
	if len(sv.Timeline)-len(cv.Timeline) != 1 {
		t.Fatalf("timeline: consumer sees %d events, staff %d; want exactly the internal note hidden", len(cv.Timeline), len(sv.Timeline))
	}
	// Invalid input names the field.
	_, err = d.svc.Raise(ctx, consumer, scope(consumer), support.TicketInput{Category: "weather", Description: "short"})
	var ve *account.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, support.ErrInvalidQuery) || len(ve.Fields) != 2 {
		t.Fatalf("invalid query: %v", err)
	}
	// Another tenant never sees it.
	var t2 int64
	_ = d.pool.QueryRow(ctx, `INSERT INTO tenants (code, name) VALUES ('other', 'Other') RETURNING id`).Scan(&t2)
	foreign := d.user(t, t2, "x@example.com", account.RoleAdmin)
	if _, err := d.svc.Get(ctx, foreign, scope(foreign), tk.ID); !errors.Is(err, support.ErrTicketNotFound) {
		t.Fatalf("cross-tenant: %v", err)
	}
}
