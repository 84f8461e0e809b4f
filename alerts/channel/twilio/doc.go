// Package twilio sends SMS through Twilio's Programmable Messaging REST
// API (2010-04-01 Messages resource), as documented at
// https://www.twilio.com/docs/messaging/api/message-resource:
//
//	POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json
//	Authorization: Basic base64(AccountSid:AuthToken)   (or an API key SID:secret)
//	Content-Type: application/x-www-form-urlencoded
//	To=+15558675310&From=+15017122661&Body=…[&MessagingServiceSid=MG…][&StatusCallback=https://…]
//
//	201 Created  {"sid": "SM…", "status": "queued", "to": "…", "from": "…", "body": "…",
//	              "date_created": "Thu, 30 Jul 2015 20:12:31 +0000", "error_code": null, …}
//	4xx/5xx      {"code": 21211, "message": "The 'To' number … is not a valid phone number.",
//	              "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}
//
// 429 (20429) and 5xx are retried; other 4xx refuse the message for good,
// except 401/403 (credentials: the provider side, retried so the breaker
// opens and staff see dead letters rather than a silent stop).
//
// Twilio's Messages API takes no idempotency key, so the sender is a
// notify.Reconciler: before re-sending an in-doubt delivery it reads the
// list of messages to the same number (GET Messages.json?To=…&From=…,
// newest first) and treats one created since the first attempt with the
// same body as already sent.
//
// twilio imports alerts and alerts/notify; it must not import api, ingest
// or the simulator.
package twilio
