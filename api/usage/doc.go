// Package usage answers consumers' and staff's questions about energy use:
// the latest reading and current power of each meter with its age and
// liveness; manual reading entry validated against the meter's history
// (meter.Limits and meter.StepCounter: no register going backwards without
// a recorded reset, no future timestamps, no absurd jumps); and hourly,
// daily and monthly consumption series from the rollups, with CSV and SVG
// renderings.
//
// Consumers only ever see readings of meters during the spans they were
// installed on the consumer's own connections.
//
// Service is the entry point; Store is its port (usage/postgres). usage
// must not import Fiber or any HTTP package, nor pgx.
package usage
