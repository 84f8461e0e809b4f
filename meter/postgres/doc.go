// Package postgres is the PostgreSQL adapter of the meter domain: the
// readings writer (optimistic COPY with a staged ON CONFLICT DO NOTHING
// fallback), the meter directory the gateway resolves references and MQTT
// credentials against, rejected input, counter events, and the per-meter
// latest state and liveness (table meter_latest).
//
// Every SQL statement about meters and readings lives here; pgx types never
// leave the package. Database failures are translated into the sentinels in
// errors.go (ErrTransient, ErrMissingPartition, ErrBadRow) so callers decide
// on retries without knowing SQLSTATEs.
//
// meter_latest, for readers outside the gateway (the API's real-time usage):
// one row per meter that has ever sent a reading; ts/received_at and the
// instantaneous columns describe the newest reading by source time (late
// readings never move it back); last_seen is the newest arrival of any
// reading; import_wh/import_ts and export_wh/export_ts are the newest values
// of each energy register. The gateway upserts it in batches shortly after
// readings commit, so it may lag readings by a few seconds. Use
// Store.Latest to read it.
//
// It imports meter, pgx and deploy/schema (for the missing-partition test);
// it must not import ingest, billing, alerts, api or simulator.
package postgres
