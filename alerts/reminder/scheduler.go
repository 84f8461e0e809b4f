package reminder

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/meterd/meterd/billing"
)

// Tenant is a tenant with its zone and policy.
type Tenant struct {
	ID     int64
	Zone   *time.Location
	Policy Policy
}

// Source is where the scheduler reads bills and writes notices;
// alerts/postgres implements it on billing's bills table and the outbox.
type Source interface {
	// Tenants lists tenants with their zones and policies.
	Tenants(ctx context.Context) ([]Tenant, error)
	// OpenBills lists a tenant's bills due in [from, to] that are not
	// settled (issued, partially paid or overdue), with the amount due.
	OpenBills(ctx context.Context, tenantID int64, from, to billing.Date) ([]Bill, error)
	// UserReminders lists the enabled reminder preferences of users.
	UserReminders(ctx context.Context, tenantID int64, userIDs []int64) ([]UserReminder, error)
	// Staff lists the active users of role (and department) of a tenant.
	Staff(ctx context.Context, tenantID int64, role, department string) ([]int64, error)
	// Enqueue writes notices to the outbox, skipping dedupe keys already
	// there, and returns how many it wrote.
	Enqueue(ctx context.Context, notices []Notice) (int, error)
}

// Scheduler plans and enqueues reminders for every tenant.
type Scheduler struct {
	src Source
	now func() time.Time
	log *slog.Logger
}

// NewScheduler returns a scheduler; now nil is time.Now.
func NewScheduler(src Source, now func() time.Time, log *slog.Logger) *Scheduler {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{src: src, now: now, log: log}
}

// Run enqueues the reminders due now and returns how many were new.
func (s *Scheduler) Run(ctx context.Context) (int, error) {
	now := s.now()
	tenants, err := s.src.Tenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("reminders: %w", err)
	}
	total := 0
	for _, t := range tenants {
		n, err := s.tenant(ctx, t, now)
		total += n
		if err != nil {
			return total, fmt.Errorf("reminders for tenant %d: %w", t.ID, err)
		}
	}
	return total, nil
}

func (s *Scheduler) tenant(ctx context.Context, t Tenant, now time.Time) (int, error) {
	// Consumers' own reminders reach at most 60 days ahead (the API's
	// limit); the horizon covers them and the policy.
	from, to := t.Policy.Horizon(billing.DateOf(now, t.Zone), 60)
	bills, err := s.src.OpenBills(ctx, t.ID, from, to)
	if err != nil || len(bills) == 0 {
		return 0, err
	}
	users := make([]int64, 0, len(bills))
	for _, b := range bills {
		users = append(users, b.UserID)
	}
	own, err := s.src.UserReminders(ctx, t.ID, users)
	if err != nil {
		return 0, err
	}
	var staff []int64
	if t.Policy.StaffStep > 0 {
		if staff, err = s.src.Staff(ctx, t.ID, t.Policy.StaffRole, t.Policy.StaffDepartment); err != nil {
			return 0, err
		}
	}
	notices := Plan(now, t.Zone, t.Policy, bills, own, staff)
	if len(notices) == 0 {
		return 0, nil
	}
	return s.src.Enqueue(ctx, notices)
}
