// Package alerts detects abnormal usage over the rollups and tells people
// what matters: notifications (outbox, channels, preferences, templates),
// reminders and escalation.
//
// The root holds the vocabulary every subpackage shares and nothing that
// does I/O: alert kinds, severities and the lifecycle (open, acknowledged,
// resolved); the detector's Finding; notification channels; the event
// catalog (which events exist, their default channels, who they address,
// what they attach, whether a paid bill cancels them); preferences with
// quiet hours in the tenant's zone; and the errors the API maps to the
// requirement's exceptions (NotificationSending, ReminderSetting,
// AbnormalUsage).
//
// Subpackages:
//
//	alerts/detect         the detection rules, pure functions over rollup series
//	alerts/notify         outbox fan-out, delivery engine (leases, retries,
//	                      breakers, dead letters), message rendering
//	alerts/template       embedded and tenant templates per event and locale
//	alerts/reminder       due-date reminders, overdue ladder and escalation
//	alerts/channel/...    providers: email (SMTP), twilio (SMS), fcm (push),
//	                      webhook (signed generic), logsink (development)
//	alerts/devsink        development SMTP sink and message log
//	alerts/postgres       the SQL (pgx)
//	alerts/jobs           River workers and periodic jobs
//
// alerts may import meter and billing (and the standard library,
// shopspring/decimal); it must not import api, ingest or the simulator
// (tests may use the simulator). What it needs from api (opening sealed
// contact details) it declares as a narrow interface that cmd satisfies.
package alerts
