// Package mqttpub publishes a simulated fleet's readings to an MQTT broker
// with eclipse/paho.golang (MQTT v5): canonical JSON (one reading or a
// batch per message) and Tasmota SENSOR, at QoS 0 or 1, each meter logging
// in with its own credentials (or, for brokers without per-meter auth, over
// a few shared connections), live at the fleet's interval or as fast as
// the broker takes them over a past window (time warp). It injects the
// delivery and malformed-input faults the fleet config asks for and
// records every delivered reading and every fault in the manifest.
//
// mqttpub may import simulator, simulator/manifest, meter and paho; it must
// not import ingest, billing, alerts or api, nor the embedded broker
// (mochi-mqtt is for tests only).
package mqttpub
