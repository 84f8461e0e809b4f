// Package payload decodes and encodes the MQTT payload formats meterd
// accepts, chosen by topic: canonical JSON (meterd's own, one reading or a
// batch per message), Tasmota tele/<meter>/SENSOR with its ENERGY object,
// Shelly Gen2+ NotifyStatus notifications (EM, EM1, EMData, EM1Data) and
// ThingsBoard telemetry (device and gateway APIs). FORMAT.md in this
// directory is the reference for the topic scheme and every payload.
//
// Decoders turn a topic and payload into readings that name their meter by a
// reference string (meters.external_id); resolving it to meters.id, checking
// readings against meter.Limits, deduplicating and storing are the gateway's
// job. Every decoding failure is a *meter.RejectError with a stable reason.
// The encoders (canonical JSON, Tasmota) are what the simulator publishes
// with, so both sides share one definition of each format.
//
// payload does no I/O and imports only the standard library and meter; it
// must not import an MQTT library, ingest, simulator or any adapter.
package payload
