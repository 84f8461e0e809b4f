package alerts

import (
	"fmt"
	"slices"
)

// Channel is how a notification reaches a person.
type Channel string

// Channels.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
	ChannelPush  Channel = "push"
)

// Channels lists every channel in fallback order: when a notification must
// reach someone on a channel they did not choose (no address for the
// preferred one, an escalation's second channel), the first one with an
// address is used.
func Channels() []Channel { return []Channel{ChannelEmail, ChannelSMS, ChannelPush} }

// ParseChannel returns the channel named s.
func ParseChannel(s string) (Channel, error) {
	c := Channel(s)
	if slices.Contains(Channels(), c) {
		return c, nil
	}
	return "", fmt.Errorf("%w: channel %q is not email, sms or push", ErrInvalidInput, s)
}

// Rings reports whether the channel interrupts the person (so quiet hours
// hold it back). Email does not.
func (c Channel) Rings() bool { return c == ChannelSMS || c == ChannelPush }

// Event names: the notification_outbox.event values meterd produces. The
// payload fields each carries are listed; payloads hold template data only,
// never contact details (except the address being verified) or secrets.
const (
	// EventVerifyEmail (api/account): {email, link_path, expires_at}; the
	// sealed secret is the token appended to link_path. Forced to email.
	EventVerifyEmail = "account.verify_email"
	// EventTicketCreated (api/support): {ticket_id, subject, category,
	// priority, status, sla_due_at, awaiting_staff}.
	EventTicketCreated = "ticket.created"
	// EventTicketAssigned (api/support): {ticket_id, subject, status,
	// assignee_name}; to the assignee with role "staff".
	EventTicketAssigned = "ticket.assigned"
	// EventTicketStatusChanged (api/support): {ticket_id, subject, from,
	// to, note}.
	EventTicketStatusChanged = "ticket.status_changed"
	// EventTicketComment (api/support): {ticket_id, subject, comment_id}.
	EventTicketComment = "ticket.comment"
	// EventBillIssued (billing/postgres): {bill_id, number, consumer_code,
	// period_from, period_to, total, due_date, currency, estimated}; the
	// bill PDF is attached to the email.
	EventBillIssued = "bill.issued"
	// EventBillDueSoon (alerts/reminder): {bill_id, bill_number,
	// consumer_code, due_date, amount_due, currency, days_left, source}
	// where source is "policy" or "consumer" (the consumer's own reminder).
	EventBillDueSoon = "bill.due_soon"
	// EventPaymentReminder (alerts/reminder): {bill_id, bill_number,
	// consumer_code, due_date, amount_due, currency, days_overdue, step,
	// min_channels}.
	EventPaymentReminder = "payment.reminder"
	// EventPaymentEscalation (alerts/reminder): to staff; {bill_id,
	// bill_number, consumer_code, consumer_user_id, due_date, amount_due,
	// currency, days_overdue, step}.
	EventPaymentEscalation = "payment.escalation"
	// EventPaymentSucceeded (payments): {payment_id, receipt_number,
	// bill_id, bill_number, amount, currency, method, paid_at}.
	EventPaymentSucceeded = "payment.succeeded"
	// EventUsageAbnormal (alerts): to the consumer; {alert_id, kind,
	// meter_ref, meter_kind (electricity|water), consumer_code, summary,
	// observed, expected, unit, at}.
	EventUsageAbnormal = "usage.abnormal"
	// EventMeterAlert (alerts): to the metering staff; same payload as
	// EventUsageAbnormal.
	EventMeterAlert = "meter.alert"
	// EventBillRunSummary (billing/postgres): the demand generation summary,
	// one row per official and admin of the tenant after each bill run;
	// {run_id, service, period_from, period_to, status, error, total,
	// billed, unchanged, skipped, failed}.
	EventBillRunSummary = "billing.run_summary"
)

// Audience is who an outbox row addresses when it names no user.
type Audience string

// Audiences.
const (
	// AudienceUser: the row's user_id (the default).
	AudienceUser Audience = "user"
	// AudienceAddress: the email address in the payload ("email"), for
	// messages to an address that is not a user yet.
	AudienceAddress Audience = "address"
	// AudienceOfficials: every active official of the tenant (of the
	// payload's "department" if given) and the admins.
	AudienceOfficials Audience = "officials"
)

// EventSpec describes an event: how it is delivered when nobody said
// otherwise.
type EventSpec struct {
	Name        string
	Description string
	// DefaultChannels are used when the recipient has no preference.
	DefaultChannels []Channel
	// Transactional events reach the recipient even when they muted every
	// channel for it: by email.
	Transactional bool
	// Urgent events ignore quiet hours.
	Urgent bool
	// Audience is who a row without user_id addresses.
	Audience Audience
	// SettledCancels: the payload's bill_id names a bill; a delivery not yet
	// sent when the bill is settled (paid, cancelled) is cancelled.
	SettledCancels bool
	// AttachBillPDF: the email carries the bill's PDF (payload bill_id).
	AttachBillPDF bool
	// Preferable reports whether consumers may set preferences for it.
	Preferable bool
}

var catalog = []EventSpec{
	{Name: EventVerifyEmail, Description: "email address verification", DefaultChannels: []Channel{ChannelEmail}, Transactional: true, Urgent: true, Audience: AudienceAddress},
	{Name: EventTicketCreated, Description: "support ticket created", DefaultChannels: []Channel{ChannelEmail}, Preferable: true},
	{Name: EventTicketAssigned, Description: "support ticket assigned", DefaultChannels: []Channel{ChannelEmail}, Preferable: true},
	{Name: EventTicketStatusChanged, Description: "support ticket status changed", DefaultChannels: []Channel{ChannelEmail, ChannelPush}, Preferable: true},
	{Name: EventTicketComment, Description: "comment on a support ticket", DefaultChannels: []Channel{ChannelEmail}, Preferable: true},
	{Name: EventBillIssued, Description: "bill issued (PDF attached)", DefaultChannels: []Channel{ChannelEmail}, Transactional: true, AttachBillPDF: true, Preferable: true},
	{Name: EventBillDueSoon, Description: "bill due date coming up", DefaultChannels: []Channel{ChannelEmail, ChannelSMS}, SettledCancels: true, Preferable: true},
	{Name: EventPaymentReminder, Description: "payment overdue reminder", DefaultChannels: []Channel{ChannelEmail, ChannelSMS}, SettledCancels: true, Preferable: true},
	{Name: EventPaymentEscalation, Description: "overdue bill escalated to staff", DefaultChannels: []Channel{ChannelEmail}, SettledCancels: true},
	{Name: EventPaymentSucceeded, Description: "payment received (receipt)", DefaultChannels: []Channel{ChannelEmail, ChannelSMS}, Transactional: true, Preferable: true},
	{Name: EventUsageAbnormal, Description: "abnormal usage on your meter", DefaultChannels: []Channel{ChannelEmail, ChannelPush}, Preferable: true},
	{Name: EventMeterAlert, Description: "meter alert for staff", DefaultChannels: []Channel{ChannelEmail}},
	{Name: EventBillRunSummary, Description: "demand generation summary for officials", DefaultChannels: []Channel{ChannelEmail}},
}

// Events returns the event catalog.
func Events() []EventSpec {
	out := make([]EventSpec, len(catalog))
	for i, e := range catalog {
		e.DefaultChannels = slices.Clone(e.DefaultChannels)
		if e.Audience == "" {
			e.Audience = AudienceUser
		}
		out[i] = e
	}
	return out
}

// LookupEvent returns the spec of the named event. Events not in the
// catalog (a producer newer than this binary) are delivered by email to
// their user with no special handling; ok is false for them.
func LookupEvent(name string) (EventSpec, bool) {
	for _, e := range Events() {
		if e.Name == name {
			return e, true
		}
	}
	return EventSpec{Name: name, DefaultChannels: []Channel{ChannelEmail}, Audience: AudienceUser}, false
}
