// Package alerts detects abnormal usage over the rollups and tells people
// what matters: notifications (outbox, channels, preferences), reminders and
// escalation.
//
// It may import meter and billing; it must not import ingest or api.
package alerts
