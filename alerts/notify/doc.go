// Package notify delivers the notification outbox: fan-out into one
// delivery per recipient and channel, and the delivery engine.
//
// Fan-out (Engine.Pump, run by a River periodic job) claims pending
// outbox rows FOR UPDATE SKIP LOCKED and plans their deliveries
// (Planner): the forced channel, else the recipient's preferences for the
// event, else its default channels; only channels with a provider and an
// address; a fallback channel when nothing chosen can reach the person;
// extra channels up to the payload's min_channels (escalation); one
// delivery per push device; ringing channels (SMS, push) held until the
// end of the recipient's quiet hours in the tenant's zone. Pump then
// queues due deliveries: each gets a fresh lease token and a River job.
//
// Delivery (Engine.Deliver, a River worker) leases its row with the token,
// renders the templates, opens the address (sealed in the database;
// Opener), calls the provider through its circuit breaker (gobreaker) with
// a timeout, and records the outcome with a compare-and-set on the token.
// Retryable failures back off exponentially (Backoff doubling to
// MaxBackoff, ±20 % jitter, Retry-After honoured, quiet hours respected);
// after MaxAttempts, or a refusal for good, the delivery is a dead letter
// (NotificationSending) that stays visible until staff retry it. An open
// breaker counts as a failed attempt that never reached the provider.
//
// Duplicates. Two live workers never send the same delivery: the lease
// (SendTimeout + QueueLease) outlives any attempt, and a stale job's token
// no longer matches. A worker that dies after the provider accepted a
// message but before the outcome is recorded leaves its lease to expire;
// the pump queues the row again marked in_doubt, and the next attempt
// relies on the channel's guarantee:
//
//   - webhook (SMS or push): the Idempotency-Key header is stable per
//     delivery; the provider answers a repeat with the original result, so
//     the message is sent once.
//   - Twilio SMS: Twilio's Messages API takes no idempotency key, so the
//     engine asks first (Reconciler: messages to the number since the first
//     attempt with the same body); found means sent, not sent again.
//   - FCM push: FCM takes no idempotency key either; a resend carries the
//     same collapse key, tag and apns-collapse-id, so the device replaces
//     the first notification and shows one.
//   - email (SMTP): at least once. A resend carries the same Message-ID;
//     mail systems that de-duplicate by Message-ID show one, others may show
//     two. The window is the time between the server's 250 to DATA and the
//     commit of the outcome.
//
// A worker that dies before calling the provider causes no duplicate on
// any channel: the message is simply sent by the next attempt.
//
// notify may import alerts, alerts/template, gobreaker and Prometheus; it
// does no SQL (Store is implemented by alerts/postgres) and must not import
// api, ingest or the simulator.
package notify
