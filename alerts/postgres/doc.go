// Package postgres is alerts' storage on PostgreSQL with pgx: the
// notification outbox's fan-out and deliveries (leases, fencing tokens,
// attempts, dead letters), preferences, push devices, templates, branding
// and the reminder policy; the detector's reads of the rollups, counter
// events and liveness, and the alert lifecycle (one unresolved alert per
// meter and kind, notifications enqueued in the same transaction); and the
// reminder source on billing's bills table. Every change a person makes is
// written to the audit log in the same transaction.
//
// It implements notify.Store, reminder.Source, notify.Bills and
// detect.Store. pgx types never leave it; pgx errors become the alerts
// sentinels (ErrConflict, ErrInvalidInput, the not-found errors).
//
// postgres may import alerts and its domain subpackages and pgx; it must
// not import api, ingest or the simulator.
package postgres
