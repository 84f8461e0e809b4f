// Package verify compares what a simulator run delivered (its manifest)
// with what the database holds, and reports lost, duplicated, wrong,
// wrongly accepted and unexpected readings.
//
// The rules, per meter of the manifest's fleet:
//
//   - Every reading in a manifest message must be stored exactly once, at
//     its own timestamp, with the same import and export registers and the
//     same power (float32). Absent: lost — unless every delivery of it was
//     at QoS 0, when it is counted as dropped_qos0 and is not a failure
//     (QoS 0 is fire and forget; a broker may drop it). Present with other
//     values: wrong.
//   - A stored reading at a timestamp the manifest does not list is
//     classified: if its registers equal those of another manifest reading
//     of the meter, the same reading was stored twice under two timestamps
//     (duplicated: a clock-shifted resend, a Tasmota reading re-stamped
//     with its arrival time …); if it is at a timestamp a malformed input
//     claimed (malformed JSON, wrong types, a far-future or far-past time,
//     an unknown meter), the gateway accepted what it had to reject
//     (accepted_invalid); if its registers are what the fleet's model gives
//     at that time, the simulator sent it but did not record it before it
//     stopped (unrecorded: kill -9 between the PUBACK and the manifest
//     write; not a failure); anything else is unexpected.
//   - Modbus meters have no messages (the poller decides when to read):
//     each stored reading's energy registers must match the model at its
//     timestamp within the register's resolution plus what the meter can
//     use in Options.ModbusSkew (wrong otherwise); a device with the wrong
//     word order should produce no stored reading at all.
//
// Report.OK is false on any lost, duplicated, wrong or accepted_invalid
// reading (and on unexpected ones with Options.Strict); metersim verify
// exits non-zero then.
//
// Memory: the manifest's expected readings are held per meter, about 40
// bytes each (400 MB for 10 million readings); the database rows stream.
//
// verify imports simulator and simulator/manifest; the database is behind
// the Store interface (simulator/postgres implements it).
package verify
