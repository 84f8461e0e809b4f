// Package meter is the domain of metering: meters, readings, quantities and
// units, plausibility limits, reject reasons and counter arithmetic (resets,
// rollovers, replacements).
//
// Subpackages provide the rest of the pure domain, with no I/O:
//   - meter/regmap: Modbus register maps as embedded data files, block
//     planning, and the register decoder and encoder that the poller and
//     the simulator share;
//   - meter/payload: the MQTT topic scheme and payload formats (canonical
//     JSON, Tasmota, Shelly Gen2, ThingsBoard), with decoders and encoders.
//
// Adapters live elsewhere: meter/postgres, and the sources in ingest.
//
// meter is the root every other domain builds on, so it imports only the
// standard library. It must not import pgx, Fiber, MQTT or Modbus libraries,
// nor any other meterd package.
package meter
