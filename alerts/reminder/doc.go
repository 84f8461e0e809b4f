// Package reminder decides which bill reminders are due: upcoming due
// dates (the tenant's policy days before, and the consumer's own reminders
// from /api/notifications/reminder), overdue reminders at the policy's
// intervals with escalation (a second channel from one step, staff from a
// later one), all at the policy's send time in the tenant's zone, and never
// for a settled (paid or cancelled) bill.
//
// Plan is a pure function of the clock, the zone, the policy and the
// tenant's open bills; Scheduler runs it per tenant against a Source and
// enqueues the notices into the outbox. Every notice carries a dedupe key
// (bill, step, recipient), so running the scheduler twice, on two
// instances or after a crash, enqueues each reminder once; a scheduler that
// was down sends only the latest step that became due (never "due in 7
// days" when the bill is due in 2), and the delivery engine cancels a
// reminder whose bill was settled before it went out.
//
// reminder imports alerts and billing (civil dates); it does no I/O itself
// and must not import api, ingest or the simulator.
package reminder
