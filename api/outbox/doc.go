// Package outbox describes the messages the API asks the notifications
// component to deliver: a row in notification_outbox written in the same
// transaction as the change that causes it (outbox/postgres), so a change
// and its notification commit or fail together. Delivery (templates,
// channels, retries) belongs to the notifications component (issue 8).
//
// outbox imports only the standard library.
package outbox
