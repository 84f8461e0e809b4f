// Package postgres implements account.Store on PostgreSQL with pgx: users,
// profiles, sessions and refresh tokens, email verification, properties,
// connections, meter installations, meters, reminder preferences and the
// audit log. Every change runs in one transaction together with its audit
// entry (audit/postgres) and outbox message (outbox/postgres).
//
// pgx types never leave this package; PostgreSQL errors are translated into
// the account package's sentinels here.
package postgres
