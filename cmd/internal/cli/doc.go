// Package cli is what meterd's binaries (cmd/meterd, cmd/metersim) share
// on the command line: Flags, a flag set whose defaults come from
// environment variables, and Program, the subcommand table that dispatches
// "<binary> <command> [flags]", prints the usage and turns a command's
// error into the exit code.
//
// Only the binaries under cmd use it; it imports only the standard library.
package cli
