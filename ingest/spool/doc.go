// Package spool is an append-only, bounded, crash-safe on-disk queue of
// records: the Modbus poller writes its readings here while the database
// cannot take them, and replays them in order once it can.
//
// Records live in segment files (dir/NNNNNNNNNNNNNNNNNNNN.seg), each record
// framed as length, CRC-32C and append time. A cursor file names the first
// record not yet committed; segments wholly before it are deleted. After a
// crash, a torn record at the tail is cut off and replay resumes at the
// cursor, so a record can be replayed twice (the writer is idempotent) but
// never lost once Append returned.
//
// It imports only the standard library.
package spool
