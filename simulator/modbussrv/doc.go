// Package modbussrv serves a simulated fleet's Modbus meters over Modbus
// TCP with simonvetter/modbus: one listener per simulated gateway (a
// serial-to-TCP bridge in front of a string of meters), many unit ids
// behind each. Every request is answered from the meter's model at the
// current time, encoded with the meter's register map (meter/regmap), so
// the registers advance as time passes and the word order and data types
// are those of the model. SunSpec devices carry the SunS marker and model
// chain at 40000; Eastron-like devices expose their serial number as a
// uint32 in holding registers 0xFC00–0xFC01.
//
// The faults: slow replies past the poller's timeout (per request), Modbus
// exception 2 on the optional registers of devices that lack them, devices
// that word-swap every multi-register value, gaps (the gateway answers
// exception 0x0B, target device failed to respond), and the meter events
// of the model (resets, rollovers, replacements with a new serial).
//
// modbussrv may import simulator, simulator/manifest, meter and
// simonvetter/modbus; it must not import ingest, billing, alerts or api.
package modbussrv
