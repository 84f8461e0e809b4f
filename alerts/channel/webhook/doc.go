// Package webhook is a generic SMS or push provider reached by a signed
// HTTP webhook: meterd POSTs each message as JSON to the provider's URL,
// signed as the Standard Webhooks specification describes
// (https://www.standardwebhooks.com), and the provider sends it on.
//
// The request:
//
//	POST <url>
//	Content-Type: application/json
//	Idempotency-Key: <delivery key>      stable across retries
//	webhook-id: <delivery key>
//	webhook-timestamp: <unix seconds>
//	webhook-signature: v1,<base64 HMAC-SHA256(secret, id "." timestamp "." body)>
//
//	{"type": "notification.sms" | "notification.push",
//	 "id": "<delivery key>", "event": "bill.issued", "tenant": "acme", "locale": "en",
//	 "to": {"phone": "+91…"} | {"token": "…", "platform": "android"},
//	 "sms": {"text": "…"} | "push": {"title": "…", "body": "…", "link": "…", "data": {…}}}
//
// The provider's contract: a 2xx answer accepts the message, with an
// optional JSON body {"id": "<provider message id>", "duplicate": true|false};
// a repeated Idempotency-Key within 24 hours is answered with the original
// result and not sent again (duplicate true). 408, 425, 429 and 5xx are
// retried (Retry-After honoured); 410 Gone on push means the device token
// is gone; other 4xx refuse the message for good.
//
// webhook imports alerts and alerts/notify; it must not import api, ingest
// or the simulator.
package webhook
