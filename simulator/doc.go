// Package simulator is a virtual meter fleet for tests, demos and load: a
// deterministic model of 1 to 999,999 meters (identities, credentials,
// register-map models, load profiles with solar, integrated energy
// registers) and the faults to inject into it. Everything is a pure
// function of Config: the same config gives the same meters, readings and
// faults, whoever computes them, which is what lets verify recompute what
// was sent.
//
// Subpackages do the I/O: mqttpub publishes over MQTT, modbussrv serves
// Modbus TCP, manifest records the ground truth, verify compares it with
// the database, postgres provisions the fleet and reads readings back.
// README.md shows how to use each from Go and from the metersim CLI.
//
// simulator may import meter (register maps, payload formats); it must not
// import ingest, billing, alerts or api, so that it stays an independent
// peer of the gateway it tests, nor any I/O library.
package simulator
