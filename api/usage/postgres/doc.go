// Package postgres implements usage.Store on PostgreSQL with pgx: it reads
// meter_latest (kept by the gateway), the readings rollups and meter
// installations, and inserts manual readings with their counter events.
package postgres
