// Package postgres writes and lists audit entries in PostgreSQL with pgx.
// Stores of other domains call Write and Snapshot inside their own
// transactions, so an entry commits with the change it describes.
package postgres
