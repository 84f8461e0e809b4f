// Package broker is meterd's embedded MQTT broker (mochi-mqtt) for
// 'meterd dev' and small sites: meters log in with per-meter credentials
// checked against meters.mqtt_secret_hash, an ACL that denies by default
// lets a meter publish only to its own topics (the meter/payload topic
// scheme) and subscribe to nothing, the broker stamps every meter's publish
// with its authenticated identity for the gateway, and session expiry and
// in-flight queues are capped.
//
// The gateway consumes from it like from any external broker, over MQTT
// with a persistent session (ingest/mqtt), so both modes share one code
// path. Sessions and queued messages live in memory: a crash of the
// process loses what the broker had accepted but not yet delivered and
// acknowledged. Sites that need zero loss across crashes use an external
// broker with persistence (Mosquitto, EMQX) instead.
//
// It imports ingest (for the meter resolver) and meter/payload; it must not
// import billing, alerts, api or simulator.
package broker
