// Package localpg runs a private PostgreSQL cluster on this machine: it finds
// the server binaries, runs initdb (as the postgres OS user when the caller is
// root, because initdb and postgres refuse to run as root), applies settings
// sized to the machine's memory and CPUs the way timescaledb-tune would,
// starts the server on loopback and stops it.
//
// `meterd dev` uses it for its cluster under ./.meterd/, and the test harness
// (deploy/schema/schematest) for one throwaway cluster per test binary.
//
// It imports only the standard library and pgx (to wait for readiness); it
// must not import any meterd domain package.
package localpg
