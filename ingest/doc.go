// Package ingest is the gateway: it takes readings from MQTT and Modbus
// sources, decodes and validates them, deduplicates and batches them, and
// writes them to the store without loss or duplication.
//
// Subpackages hold the sources (ingest/mqtt, ingest/modbus), the embedded
// broker and the spool. ingest may import meter and its adapters; it must
// not import billing, alerts or api.
package ingest
