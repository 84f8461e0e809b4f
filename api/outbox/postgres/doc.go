// Package postgres enqueues outbox messages in PostgreSQL with pgx, inside
// the caller's transaction.
package postgres
