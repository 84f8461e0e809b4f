// Package schema owns meterd's database schema: the goose migrations embedded
// in this package, River's own schema, and the two storage profiles.
//
// At first migrate the profile is chosen and recorded: *timescale* when
// `CREATE EXTENSION timescaledb` succeeds (readings is a hypertable, the
// rollups are continuous aggregates), else *postgres* (readings is
// range-partitioned by time and the rollups are tables kept current from a
// dirty-bucket log). Both profiles expose the same table and column names, so
// nothing above this package knows which one is in use. Upkeep (partitions
// ahead, rollup refresh, compression, retention) runs as River periodic jobs
// defined here, because only this package knows the profile.
//
// schema imports pgx, goose and River; it must not import any meterd domain
// package (meter, billing, alerts) or the API.
package schema
