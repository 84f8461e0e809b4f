// Package email sends notification emails over SMTP with go-mail: text and
// HTML alternatives, attachments (the bill PDF), a stable Message-ID per
// delivery, STARTTLS or implicit TLS, and SMTP AUTH.
//
// email imports alerts/notify and go-mail; it must not import api, ingest
// or the simulator.
package email
