// Package modbus is the gateway's Modbus poller (goburrow/modbus): one
// scheduler per physical bus (a serial port, or a TCP gateway shared by
// many unit ids) with one request in flight, an inter-frame gap and a
// per-device timeout; polls aligned to the wall clock that skip a slot
// rather than pile up; coalesced block reads planned from the register
// maps in meter/regmap, one timestamp per block; a per-device circuit
// breaker (sony/gobreaker) so a dead meter costs one timeout per breaker
// period; and a connection closed and reopened after any error, which is
// what recovers from goburrow's transaction-id desync after a timeout
// (goburrow#64: the late reply otherwise answers every later request).
//
// Transports: Modbus TCP, RTU over a serial line, and RTU framing over TCP
// (serial-to-Ethernet converters in transparent mode), which goburrow lacks
// and this package adds as a transporter.
//
// Readings go to the ingest pipeline while the database takes them, and to
// the on-disk spool (ingest/spool) otherwise; the spool is replayed in order
// once writes succeed again. Readings the pipeline hands back at shutdown
// are spooled too, so none is lost.
//
// It imports ingest, ingest/spool, meter and meter/regmap; it must not
// import billing, alerts, api or simulator.
package modbus
