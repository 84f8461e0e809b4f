// Package fcm sends push notifications through the Firebase Cloud
// Messaging HTTP v1 API, as documented at
// https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send:
//
//	POST https://fcm.googleapis.com/v1/projects/{project_id}/messages:send
//	Authorization: Bearer <OAuth 2.0 access token, scope firebase.messaging>
//	{"message": {"token": "…",
//	             "notification": {"title": "…", "body": "…"},
//	             "data": {"event": "bill.issued", …},
//	             "android": {"collapse_key": "…", "notification": {"tag": "…"}},
//	             "apns": {"headers": {"apns-collapse-id": "…"}},
//	             "webpush": {"headers": {"Topic": "…"}, "fcm_options": {"link": "https://…"}}}}
//
//	200 {"name": "projects/{project_id}/messages/{message_id}"}
//	4xx/5xx {"error": {"code": 404, "message": "…", "status": "NOT_FOUND",
//	         "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
//	                      "errorCode": "UNREGISTERED"}]}}
//
// Error codes: UNREGISTERED and SENDER_ID_MISMATCH disable the device
// (notify.ErrUnregistered); INVALID_ARGUMENT refuses the message;
// QUOTA_EXCEEDED, UNAVAILABLE and INTERNAL are retried (Retry-After
// honoured); a 401 drops the cached access token and is retried.
//
// FCM takes no idempotency key. Every attempt of a delivery carries the
// same collapse key, notification tag, apns-collapse-id and web push Topic
// (derived from the delivery's idempotency key), so a resend after an
// in-doubt attempt replaces the first notification on the device instead
// of showing a second one.
//
// Access tokens come from a TokenSource; ServiceAccount implements the
// OAuth 2.0 JWT bearer grant with a Google service-account key.
//
// fcm imports alerts, alerts/notify and golang-jwt; it must not import
// api, ingest or the simulator.
package fcm
