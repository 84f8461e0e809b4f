package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
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

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "run everything on this machine: private PostgreSQL, migrations, API, jobs (make run)", runDev},
		{"serve", "run the API and background workers against $DATABASE_URL", runServe},
		{"ingest", "run the ingestion gateway alone against $DATABASE_URL", runIngest},
		{"migrate", "apply database migrations and report the storage profile", runMigrate},
		{"keys", "generate key files; re-encrypt personal data after a key rotation", runKeys},
		{"billrun", "run a bill run for a tenant's cycle with a progress bar; list and re-run dead letters", runBillrun},
		{"billing", "billing tools: quote a tariff, publish and list tariff versions, write a bill's PDF", runBilling},
		{"version", "print the version", runVersion},
	}
}

// run executes one meterd command and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	i := slices.IndexFunc(cmds, func(c command) bool { return c.name == args[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "meterd: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	err := cmds[i].run(ctx, e, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "meterd %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds []command) {
	var b strings.Builder
	b.WriteString("meterd — smart-meter ingestion gateway and utility billing backend\n\nUsage: meterd <command> [flags]\n\nCommands:\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'meterd <command> --help' for a command's flags.\n")
	fmt.Fprint(w, b.String())
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
