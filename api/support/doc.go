// Package support is the support desk: tickets (a query raised through
// /api/notifications/query is a ticket too) with category, priority and
// description; automatic assignment to available staff whose skills match
// the category, least loaded first; a queue for tickets nobody can take
// (SupportStaffUnavailable), drained as soon as someone frees up; the status
// workflow open → assigned → in progress → resolved → closed with reopen;
// comments, a timeline the consumer sees, and an SLA due time by priority.
// Every change writes its audit entry and the consumer's notification to
// the outbox in the same transaction.
//
// Service is the entry point; Store is its port (support/postgres).
// support must not import Fiber or any HTTP package, nor pgx.
package support
