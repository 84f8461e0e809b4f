// Package mqtt is the gateway's MQTT source: an MQTT v5 subscriber
// (paho.golang autopaho) that hands every message to the ingest pipeline
// and acknowledges it only after the batch holding its readings (and
// rejects) has committed. It keeps a persistent session (clean start off,
// session expiry set) so the broker holds messages while the gateway is
// down or the database is, subscribes at QoS 1 through an optional shared
// subscription ($share/<group>/…) so several gateways split the load,
// caps the messages in flight (MQTT ReceiveMaximum), and reconnects with
// exponential backoff and jitter.
//
// It works against meterd's embedded broker (ingest/broker) and any MQTT
// v5 broker; see broker-notes in the repository's shared references for
// the broker settings that keep messages from being dropped.
//
// It imports ingest and paho; it must not import billing, alerts, api or
// simulator.
package mqtt
