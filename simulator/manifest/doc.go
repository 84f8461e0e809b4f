// Package manifest is the simulator's ground truth: a file recording every
// valid reading the simulator delivered and every fault it injected, written
// as it goes so that a crash (kill -9) leaves a readable file up to the last
// complete record, and read back as a stream by verify.
//
// # Format (version 1)
//
// The file starts with the 8 bytes "MSIMMAN1". Then come records, each
//
//	uint32 little-endian  payload length n (at most 16 MiB)
//	uint32 little-endian  CRC-32C (Castagnoli) of the payload
//	n bytes               payload; its first byte is the record type
//
// Record types:
//
//	'H' header (always first): JSON of Header — the fleet config (seed,
//	    start, interval, faults …), the source (mqtt or modbus), QoS and
//	    the tool that wrote it. verify rebuilds the fleet from it.
//	'M' message: one MQTT message the broker accepted (PUBACK at QoS 1,
//	    written to the socket at QoS 0), or a Modbus poll window. uvarint
//	    meter index, byte QoS, byte flags, uvarint reading count, then per
//	    reading: varint timestamp in µs (the first absolute since the Unix
//	    epoch, later ones as the difference from the previous), uvarint
//	    import Wh, uvarint export Wh, float32 power W (4 bytes, little
//	    endian). About 14–20 bytes per reading.
//	'F' fault: byte kind, uvarint meter index + 1 (0: none), varint time
//	    in µs, then three length-prefixed strings: the meter reference the
//	    fault's input claimed, a detail text (JSON), and a flag byte
//	    followed, if set, by the varint µs timestamp the database must not
//	    hold for that reference.
//	'E' end: written by Close; its absence means the writer did not stop
//	    cleanly (the data before it is still good).
//
// A reader stops at the first record that is incomplete or fails its CRC.
// If that record reaches the end of the file it is a torn write from a
// crash and is ignored (Reader.Torn reports it); anywhere else it is
// corruption (ErrCorrupt).
//
// manifest imports only the standard library and simulator.
package manifest
