// Package peer runs local HTTP servers that play the notification
// providers in tests: Twilio's Messages API, FCM HTTP v1 with Google's
// OAuth token endpoint, and a Standard Webhooks receiver. Each checks the
// documented request shape (method, path, authentication, content type,
// fields) and answers as the provider documents, and can be told to fail
// (an outage, a rate limit, a refusal) to exercise retries and breakers.
//
// peer is imported by tests only; it must not import api.
package peer
