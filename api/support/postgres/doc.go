// Package postgres implements support.Store on PostgreSQL with pgx. Ticket
// assignment takes a per-tenant transaction-scoped advisory lock, so
// concurrent tickets never overfill a staff member's capacity.
package postgres
