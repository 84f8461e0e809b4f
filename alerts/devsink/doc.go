// Package devsink makes notifications observable without external
// services: an SMTP server on loopback (emersion/go-smtp) that keeps and
// logs what it receives, log-only SMS and push senders, and an HTTP handler
// listing the captured messages. `meterd dev` wires it in place of real
// providers; tests use the SMTP server as their protocol peer.
//
// Logs carry the channel, recipient and subject only, never bodies (they
// hold verification links). The handler shows bodies: it is mounted by
// `meterd dev` on loopback only.
//
// devsink imports alerts, alerts/notify and go-smtp; it must not import
// api, ingest or the simulator.
package devsink
