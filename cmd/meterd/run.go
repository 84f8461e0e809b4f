package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/meterd/meterd/cmd/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// env is what a command may take from the process: nothing else reads the
// environment or writes to the terminal.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// flags are the commands' flags: each with an environment variable.
type flags = cli.Flags

func newFlags(name, usage string, getenv func(string) string, stderr io.Writer) *flags {
	return cli.NewFlags(name, usage, getenv, stderr)
}

func commands() []cli.Command[env] {
	return []cli.Command[env]{
		{Name: "dev", Summary: "run everything on this machine: private PostgreSQL, migrations, API, jobs (make run)", Run: runDev},
		{Name: "serve", Summary: "run the API and background workers against $DATABASE_URL", Run: runServe},
		{Name: "ingest", Summary: "run the ingestion gateway alone against $DATABASE_URL", Run: runIngest},
		{Name: "migrate", Summary: "apply database migrations and report the storage profile", Run: runMigrate},
		{Name: "keys", Summary: "generate key files; re-encrypt personal data after a key rotation", Run: runKeys},
		{Name: "billrun", Summary: "run a bill run for a tenant's cycle with a progress bar; list and re-run dead letters", Run: runBillrun},
		{Name: "billing", Summary: "billing tools: quote a tariff, publish and list tariff versions, write a bill's PDF", Run: runBilling},
		{Name: "version", Summary: "print the version", Run: runVersion},
	}
}

// run executes one meterd command and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	p := cli.Program[env]{Name: "meterd", Title: "smart-meter ingestion gateway and utility billing backend", Commands: commands()}
	return p.Run(ctx, env{getenv: getenv, stdout: stdout, stderr: stderr}, args, stderr)
}

func runVersion(_ context.Context, e env, args []string) error {
	f := newFlags("version", "Usage: meterd version", e.getenv, e.stderr)
	if err := f.Parse(args); err != nil {
		return err
	}
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(e.stdout, "meterd %s (%s)\n", version, goVersion)
	return nil
}

// runtimeConfig is the Go runtime's garbage-collector settings of a
// long-running command, applied once, process-wide, before it starts.
type runtimeConfig struct {
	gcPercent   int
	memLimitMiB int
}

// register declares the flags; gcPercent is the role's default: the API
// holds a small heap and answers requests, so it trades memory for fewer
// collections (and a shorter latency tail); the gateway keeps the
// runtime's 100 and its memory low.
func (c *runtimeConfig) register(f *flags, gcPercent int) {
	f.Int(&c.gcPercent, "gc-percent", "METERD_GC_PERCENT", gcPercent, "heap growth that triggers a garbage collection, in percent of the live heap (as GOGC; -1 disables)")
	f.Int(&c.memLimitMiB, "memory-limit-mib", "METERD_MEMORY_LIMIT_MIB", 0, "soft memory limit of the Go runtime in MiB (garbage is collected harder near it); 0 leaves the runtime's default")
}

func (c runtimeConfig) Validate() error {
	if c.gcPercent < -1 || c.memLimitMiB < 0 {
		return errors.New("gc-percent must be -1 or more and memory-limit-mib must not be negative")
	}
	return nil
}

// apply sets the process's collector.
func (c runtimeConfig) apply() {
	debug.SetGCPercent(c.gcPercent)
	if c.memLimitMiB > 0 {
		debug.SetMemoryLimit(int64(c.memLimitMiB) << 20)
	}
}

// logConfig is the logging part of every long-running command.
type logConfig struct {
	level  string
	format string
}

func (c *logConfig) register(f *flags, defaultFormat string) {
	f.String(&c.level, "log-level", "METERD_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	f.String(&c.format, "log-format", "METERD_LOG_FORMAT", defaultFormat, "log format: text or json")
}

func (c logConfig) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", c.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.format)
}
