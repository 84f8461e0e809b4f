package account

import (
	"context"
	"errors"
)

// ErrReminderSetting is wrapped by invalid reminder requests
// (ReminderSetting).
var ErrReminderSetting = errors.New("reminder cannot be set")

// BillOwnership answers whether a bill exists and belongs to a consumer.
// Billing implements it; until it is wired, reminders can only be set for
// all bills.
type BillOwnership interface {
	BillOwnedBy(ctx context.Context, tenantID, userID, billID int64) (bool, error)
}

// ReminderInput is a reminder preference.
type ReminderInput struct {
	BillID     int64 // 0: all bills
	DaysBefore int
	Channel    string
	Enabled    *bool // default true
}

// SetReminder stores the caller's reminder preference for one bill or for
// all bills, replacing an earlier one for the same bill.
func (s *Service) SetReminder(ctx context.Context, a Actor, scope Scope, in ReminderInput) (Reminder, error) {
	bills := s.cfg.Bills
	v := NewValidator(ErrReminderSetting)
	v.Check(in.DaysBefore >= 1 && in.DaysBefore <= 60, "days_before", "must be between 1 and 60")
	switch in.Channel {
	case "email", "sms", "push":
	case "":
		v.Add("channel", "is required: email, sms or push")
	default:
		v.Add("channel", "must be email, sms or push")
	}
	v.Check(in.BillID >= 0, "bill_id", "must be a bill id")
	if in.BillID > 0 {
		if bills == nil {
			v.Add("bill_id", "reminders for a single bill need billing, which is not enabled; omit bill_id to be reminded of every bill")
		} else if err := v.Err(); err == nil {
			ok, err := bills.BillOwnedBy(ctx, scope.TenantID, a.UserID, in.BillID)
			if err != nil {
				return Reminder{}, err
			}
			v.Check(ok, "bill_id", "is not one of your bills")
		}
	}
	if err := v.Err(); err != nil {
		return Reminder{}, err
	}
	enabled := true
	if in.Enabled != nil {
		enabled = *in.Enabled
	}
	r := Reminder{TenantID: scope.TenantID, UserID: a.UserID, BillID: in.BillID, DaysBefore: in.DaysBefore, Channel: in.Channel, Enabled: enabled}
	return s.store.PutReminder(ctx, r, a.entry(scope.TenantID, "reminder.set", "user", a.UserID))
}

// ListReminders lists the reminder preferences in scope.
func (s *Service) ListReminders(ctx context.Context, scope Scope) ([]Reminder, error) {
	return s.store.ListReminders(ctx, scope)
}
