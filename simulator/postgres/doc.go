// Package postgres is the simulator's database adapter: it provisions a
// fleet (the tenant and its meters, with MQTT secret hashes and connection
// settings) so the gateway accepts it, and reads stored readings back for
// verify (it implements verify.Store). All of the simulator's SQL lives
// here, hand-written for pgx.
//
// It may import pgx, simulator and simulator/verify; it must not import
// ingest, billing, alerts or api.
package postgres
