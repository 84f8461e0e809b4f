package reminder

import (
	"fmt"
	"slices"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/billing"
)

// Policy is a tenant's reminder and escalation policy (reminder_policies).
type Policy struct {
	// DueDays are the days before the due date to remind.
	DueDays []int
	// OverdueDays are the days after the due date to remind; each is a
	// step of the escalation ladder (the first is step 1).
	OverdueDays []int
	// SecondChannelStep: from this overdue step on, the reminder goes on
	// at least two channels (0: never).
	SecondChannelStep int
	// StaffStep: from this overdue step on, staff are told too (0: never).
	StaffStep int
	// StaffRole and StaffDepartment name the staff: active users of the
	// role (and department, for officials).
	StaffRole       string
	StaffDepartment string
	// SendAt is the local time reminders go out.
	SendAt alerts.TimeOfDay
}

// DefaultPolicy is the policy of a tenant without a reminder_policies row.
func DefaultPolicy() Policy {
	return Policy{DueDays: []int{7, 3, 1}, OverdueDays: []int{1, 7, 15}, SecondChannelStep: 2, StaffStep: 3,
		StaffRole: "official", StaffDepartment: "billing", SendAt: 10 * 60}
}

// Validate checks a policy; errors wrap alerts.ErrReminderSetting.
func (p Policy) Validate() error {
	v := alerts.NewValidator(alerts.ErrReminderSetting)
	for _, d := range p.DueDays {
		v.Check(d >= 1 && d <= 60, "due_days", "must be between 1 and 60 days")
	}
	v.Check(len(p.DueDays) <= 10 && len(p.OverdueDays) <= 10, "days", "at most 10 reminders each")
	for _, d := range p.OverdueDays {
		v.Check(d >= 1 && d <= 365, "overdue_days", "must be between 1 and 365 days")
	}
	v.Check(!hasDup(p.DueDays) && !hasDup(p.OverdueDays), "days", "must not repeat")
	v.Check(p.SecondChannelStep >= 0 && p.SecondChannelStep <= len(p.OverdueDays), "second_channel_step", "must be 0 or an overdue step (1–%d)", len(p.OverdueDays))
	v.Check(p.StaffStep >= 0 && p.StaffStep <= len(p.OverdueDays), "staff_step", "must be 0 or an overdue step (1–%d)", len(p.OverdueDays))
	v.Check(p.StaffRole == "official" || p.StaffRole == "support" || p.StaffRole == "admin", "staff_role", "must be official, support or admin")
	v.Check(p.SendAt >= 0 && p.SendAt < 24*60, "send_at", "must be a time of day")
	return v.Err()
}

func hasDup(xs []int) bool {
	s := slices.Clone(xs)
	slices.Sort(s)
	return len(slices.Compact(s)) != len(xs)
}

// Bill is an open bill as reminders see it.
type Bill struct {
	ID           int64
	TenantID     int64
	UserID       int64 // the consumer; 0: nobody to remind
	Number       string
	ConsumerCode string
	Currency     string
	DueDate      billing.Date
	// AmountDue is what is still payable (total − paid), a decimal string.
	AmountDue string
	// Settled: paid in full or cancelled.
	Settled bool
}

// UserReminder is a consumer's own reminder preference
// (reminder_preferences): days before the due date, on a channel, for one
// bill (BillID) or all their bills (BillID 0).
type UserReminder struct {
	ID         int64
	UserID     int64
	BillID     int64
	DaysBefore int
	Channel    alerts.Channel
}

// Notice is a notification to enqueue.
type Notice struct {
	TenantID  int64
	UserID    int64
	Event     string
	Channel   alerts.Channel // "": the recipient's preferences
	Payload   map[string]any
	DedupeKey string
	// Due is the local time the notice became due.
	Due time.Time
}

// Plan returns the reminders due at now for a tenant's open bills. staff
// are the users told from the policy's staff step on.
func Plan(now time.Time, loc *time.Location, p Policy, bills []Bill, own []UserReminder, staff []int64) []Notice {
	pl := planner{now: now, loc: loc, p: p, today: billing.DateOf(now, loc)}
	var out []Notice
	for _, b := range bills {
		if b.Settled || b.UserID == 0 {
			continue
		}
		if pl.today.After(b.DueDate) {
			out = pl.overdue(out, b, staff)
		} else {
			out = pl.upcoming(out, b, own)
		}
	}
	return out
}

type planner struct {
	now   time.Time
	loc   *time.Location
	p     Policy
	today billing.Date
}

// at is the send time on day d.
func (pl planner) at(d billing.Date) time.Time { return pl.p.SendAt.On(d.Start(pl.loc), pl.loc) }

func payload(b Bill, extra map[string]any) map[string]any {
	m := map[string]any{"bill_id": b.ID, "bill_number": b.Number, "consumer_code": b.ConsumerCode,
		"due_date": b.DueDate.String(), "amount_due": b.AmountDue, "currency": b.Currency}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// upcoming adds the due-soon reminders of b (until the end of its due
// date): the consumer's own, and the policy's unless the consumer has one
// for the same day.
func (pl planner) upcoming(out []Notice, b Bill, own []UserReminder) []Notice {
	mine := map[int]bool{}
	due := func(d int) bool { return !pl.now.Before(pl.at(b.DueDate.AddDays(-d))) }
	for _, r := range own {
		if r.UserID != b.UserID || (r.BillID != 0 && r.BillID != b.ID) {
			continue
		}
		mine[r.DaysBefore] = true
		// Late (the scheduler was down): only while no later reminder of
		// the consumer's has become due.
		if !due(r.DaysBefore) || later(own, b, r.DaysBefore, due) {
			continue
		}
		out = append(out, Notice{TenantID: b.TenantID, UserID: b.UserID, Event: alerts.EventBillDueSoon, Channel: r.Channel,
			Payload:   payload(b, map[string]any{"days_left": pl.today.DaysUntil(b.DueDate), "source": "consumer"}),
			DedupeKey: fmt.Sprintf("bill_due:%d:user:%d:%d", b.ID, r.ID, r.DaysBefore), Due: pl.at(b.DueDate.AddDays(-r.DaysBefore)).In(pl.loc)})
	}
	if step, fire, ok := latest(pl.now, pl.p.DueDays, func(d int) time.Time { return pl.at(b.DueDate.AddDays(-d)) }); ok && !mine[step] {
		out = append(out, Notice{TenantID: b.TenantID, UserID: b.UserID, Event: alerts.EventBillDueSoon,
			Payload:   payload(b, map[string]any{"days_left": pl.today.DaysUntil(b.DueDate), "source": "policy"}),
			DedupeKey: fmt.Sprintf("bill_due:%d:%d", b.ID, step), Due: fire.In(pl.loc)})
	}
	return out
}

// overdue adds the latest overdue step of b that became due, with its
// escalation.
func (pl planner) overdue(out []Notice, b Bill, staff []int64) []Notice {
	days := slices.Clone(pl.p.OverdueDays)
	slices.Sort(days)
	for i := len(days) - 1; i >= 0; i-- {
		fire := pl.at(b.DueDate.AddDays(days[i]))
		if pl.now.Before(fire) {
			continue
		}
		step, overdue := i+1, b.DueDate.DaysUntil(pl.today)
		extra := map[string]any{"days_overdue": overdue, "step": step}
		if pl.p.SecondChannelStep > 0 && step >= pl.p.SecondChannelStep {
			extra["min_channels"] = 2
		}
		out = append(out, Notice{TenantID: b.TenantID, UserID: b.UserID, Event: alerts.EventPaymentReminder, Payload: payload(b, extra),
			DedupeKey: fmt.Sprintf("bill_overdue:%d:%d", b.ID, step), Due: fire.In(pl.loc)})
		if pl.p.StaffStep > 0 && step >= pl.p.StaffStep {
			for _, s := range staff {
				out = append(out, Notice{TenantID: b.TenantID, UserID: s, Event: alerts.EventPaymentEscalation,
					Payload:   payload(b, map[string]any{"days_overdue": overdue, "step": step, "consumer_user_id": b.UserID}),
					DedupeKey: fmt.Sprintf("bill_escalation:%d:%d:%d", b.ID, step, s), Due: fire.In(pl.loc)})
			}
		}
		break // only the latest step that became due
	}
	return out
}

// latest returns the step among steps (days before the due date, largest
// first) whose fire time passed most recently.
func latest(now time.Time, steps []int, fire func(int) time.Time) (int, time.Time, bool) {
	var best int
	var bestAt time.Time
	ok := false
	for _, d := range steps {
		f := fire(d)
		if now.Before(f) {
			continue
		}
		if !ok || f.After(bestAt) {
			best, bestAt, ok = d, f, true
		}
	}
	return best, bestAt, ok
}

// later reports whether the consumer has another reminder for b, closer to
// the due date than days, that is already due.
func later(own []UserReminder, b Bill, days int, due func(int) bool) bool {
	for _, r := range own {
		if r.UserID == b.UserID && (r.BillID == 0 || r.BillID == b.ID) && r.DaysBefore < days && due(r.DaysBefore) {
			return true
		}
	}
	return false
}

// Horizon returns the due dates Plan can act on at today: from the
// largest overdue day back to the largest reminder day ahead.
func (p Policy) Horizon(today billing.Date, ownMax int) (from, to billing.Date) {
	back := slices.Max(append([]int{0}, p.OverdueDays...))
	ahead := slices.Max(append([]int{ownMax}, p.DueDays...))
	return today.AddDays(-back - 1), today.AddDays(ahead + 1)
}
