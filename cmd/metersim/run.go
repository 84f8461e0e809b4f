package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/meterd/meterd/cmd/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// env is what a command may take from the process.
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
		{Name: "run", Summary: "publish a simulated fleet's readings over MQTT (live, or a time-warp backfill)", Run: runRun},
		{Name: "modbus", Summary: "serve a simulated fleet's meters over Modbus TCP", Run: runModbus},
		{Name: "provision", Summary: "create the fleet's tenant and meters in a meterd database", Run: runProvision},
		{Name: "verify", Summary: "compare a database with a run's manifest: lost, duplicated, wrong readings", Run: runVerify},
		{Name: "version", Summary: "print the version", Run: runVersion},
	}
}

// errVerifyFailed makes verify exit 1 after printing its report.
var errVerifyFailed = errors.New("verification failed")

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	p := cli.Program[env]{Name: "metersim", Title: "a virtual smart-meter fleet for tests, demos and load", Commands: commands(),
		Reported: []error{errVerifyFailed}}
	return p.Run(ctx, env{getenv: getenv, stdout: stdout, stderr: stderr}, args, stderr)
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
