// Package meter is the domain of metering: meters, readings, quantities and
// units, register maps, payload decoders and counter arithmetic (resets,
// rollovers, replacements).
//
// It is the root every other domain builds on, so it imports only the
// standard library. It must not import pgx, Fiber, MQTT or Modbus libraries,
// nor any other meterd package; adapters live in subpackages (meter/postgres)
// or in ingest.
package meter
