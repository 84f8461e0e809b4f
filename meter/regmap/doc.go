// Package regmap holds Modbus register maps for common energy meters as data
// files embedded in the binary, and the arithmetic both sides of the wire
// share: a loader that validates every map, a planner that coalesces
// registers into as few read requests as possible, a decoder from register
// words to meter.Values, and the inverse encoder the simulator's Modbus server
// uses. The gateway and the simulator therefore read one definition of every
// meter model.
//
// The maps live in maps/<model>.json, one file per model; FORMAT is described
// on the Map type and in maps/README.md. Addresses are 0-based protocol
// addresses (what goes on the wire), not the 1-based "3xxxx/4xxxx" numbers
// datasheets print.
//
// regmap does no I/O: the poller reads blocks with its Modbus client and
// hands the words to Block.Decode; the simulator answers reads from an Image
// filled by Map.Encode. It imports only the standard library and meter; it
// must not import a Modbus library, ingest, simulator or any adapter.
package regmap
