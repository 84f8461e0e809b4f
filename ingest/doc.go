// Package ingest is the gateway: it takes readings from MQTT and Modbus
// sources, decodes and validates them, deduplicates and batches them, and
// writes them to the store without loss or duplication.
//
// The root holds what every source shares:
//   - MessageDecoder: an MQTT message to an Envelope (payload decoded by
//     topic, meter references resolved by the Resolver, readings checked
//     against meter.Limits, every failure a reject with the raw payload);
//   - Pipeline: bounded intake with backpressure, batches by size or
//     linger, in-batch dedupe, idempotent writes (optimistic COPY with a
//     staged ON CONFLICT fallback, in meter/postgres), retries with
//     backoff, missing partitions created, bad rows triaged one by one.
//     An Envelope's Done runs after its batch committed: that is when MQTT
//     acknowledges and when the Modbus spool advances;
//   - Sink: one message stored synchronously, for the embedded broker,
//     which acknowledges a meter's publish only after it committed;
//   - Tracker: latest state and liveness per meter, counter events
//     (resets, rollovers, replacements) from meter.StepCounter, with each
//     register's arithmetic from its Modbus map or, for MQTT meters, from
//     the meter model's map (ModelSpecs);
//   - Metrics: the gateway's Prometheus metrics (no meter-id labels).
//
// Subpackages hold the sources and their infrastructure: ingest/mqtt (the
// autopaho subscriber for external brokers), ingest/broker (the embedded
// mochi broker with per-meter credentials and a deny-by-default ACL),
// ingest/modbus (the poller) and ingest/spool (the on-disk spool for Modbus
// readings).
//
// Zero loss is shown end to end with the simulator (restart_test.go: kill
// -9 of 'meterd ingest', PostgreSQL and broker restarts mid-stream, each
// checked by simulator/verify); benchmarks report against same-run
// baselines (bench_test.go, mqtt/bench_test.go, modbus/bench_test.go; the
// 100 000-meter memory run needs -tags loadbench).
//
// ingest may import meter and its adapters (meter/postgres); it must not
// import billing, alerts, api or simulator (tests may use the simulator).
package ingest
