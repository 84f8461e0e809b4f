package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// env is what a command may take from the process.
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
		{"run", "publish a simulated fleet's readings over MQTT (live, or a time-warp backfill)", runRun},
		{"modbus", "serve a simulated fleet's meters over Modbus TCP", runModbus},
		{"provision", "create the fleet's tenant and meters in a meterd database", runProvision},
		{"verify", "compare a database with a run's manifest: lost, duplicated, wrong readings", runVerify},
		{"version", "print the version", runVersion},
	}
}

// errVerifyFailed makes verify exit 1 after printing its report.
var errVerifyFailed = errors.New("verification failed")

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
		fmt.Fprintf(stderr, "metersim: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	err := cmds[i].run(ctx, e, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errVerifyFailed):
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "metersim %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds []command) {
	var b strings.Builder
	b.WriteString("metersim — a virtual smart-meter fleet for tests, demos and load\n\nUsage: metersim <command> [flags]\n\nCommands:\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'metersim <command> --help' for a command's flags.\n")
	fmt.Fprint(w, b.String())
}

func runVersion(_ context.Context, e env, args []string) error {
	f := newFlags("version", "Usage: metersim version", e.getenv, e.stderr)
	if err := f.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "metersim %s\n", version)
	return nil
}

// logConfig is the logging part of the long-running commands.
type logConfig struct{ level string }

func (c *logConfig) register(f *flags) {
	f.String(&c.level, "log-level", "METERSIM_LOG_LEVEL", "info", "log level: debug, info, warn or error")
}

func (c logConfig) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", c.level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}
