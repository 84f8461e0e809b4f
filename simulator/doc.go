// Package simulator is a virtual meter fleet for tests, demos and load: load
// profiles, an MQTT publisher, a Modbus TCP server, fault injection and a
// ground-truth manifest of everything sent.
//
// It may import meter (register maps, payload formats); it must not import
// ingest, billing, alerts or api, so that it stays an independent peer of the
// gateway it tests.
package simulator
