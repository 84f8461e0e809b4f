// Package broker is meterd's embedded MQTT broker (mochi-mqtt) for
// 'meterd dev' and small sites: meters log in with per-meter credentials
// checked against meters.mqtt_secret_hash ("sha256:<hex>", through the
// ingest resolver's cache), an ACL that denies by default lets a meter
// publish only to its own topics (the meter/payload topic scheme) and
// subscribe to nothing, and session expiry and in-flight queues are
// capped. An optional TLS listener serves MQTT over TLS.
//
// The broker does not forward meters' messages to a subscriber: its
// publish hook hands each one to the gateway in-process (ingest.Sink) and
// lets mochi acknowledge it only after its batch has committed. A meter
// therefore keeps, and resends, whatever the database does not hold: no
// broker persistence is needed, and a crash of the process loses nothing.
// The subscriber route was tried and dropped: mochi v2.7.9 deadlocks a QoS
// 1 subscriber under concurrent publishers (Inflight.NextImmediate takes
// its read lock twice; a publisher's Inflight.Set waiting between the two
// blocks both for ever), and it parks messages beyond a client's receive
// maximum in a way that leaks the client's send quota.
//
// Throughput per meter connection is one message per commit (a few per
// second), plenty for meters publishing every few minutes; concentrators
// should batch (canonical batches, ThingsBoard gateway API). Large sites
// run an external broker with persistence (Mosquitto, EMQX) and the
// ingest/mqtt subscriber.
//
// It imports ingest (resolver, messages) and meter/payload; it must not
// import billing, alerts, api or simulator.
package broker
