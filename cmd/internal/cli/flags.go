package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Flags is a flag set whose defaults can come from environment variables:
// a flag given on the command line wins over its variable, which wins over
// the built-in default. Every flag documents its variable in --help. A
// variable that does not parse is reported by Parse.
type Flags struct {
	fs      *flag.FlagSet
	getenv  func(string) string
	errs    []error
	lists   []listFlag
	fromEnv map[string]bool
}

// NewFlags returns an empty flag set for the command name; usage heads its
// --help text, which goes to stderr with parse errors.
func NewFlags(name, usage string, getenv func(string) string, stderr io.Writer) *Flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags (each also settable by the environment variable shown):\n", usage)
		fs.PrintDefaults()
	}
	return &Flags{fs: fs, getenv: getenv, fromEnv: map[string]bool{}}
}

// env returns the flag's variable when it is set and not empty.
func (f *Flags) env(name, env string) (string, bool) {
	if env == "" {
		return "", false
	}
	v := f.getenv(env)
	if v != "" {
		f.fromEnv[name] = true
	}
	return v, v != ""
}

func describe(usage, env string) string {
	if env == "" {
		return usage
	}
	return usage + " [$" + env + "]"
}

// String declares a string flag; env "" means no variable.
func (f *Flags) String(p *string, name, env, def, usage string) {
	if v, ok := f.env(name, env); ok {
		def = v
	}
	f.fs.StringVar(p, name, def, describe(usage, env))
}

// Int declares an integer flag.
func (f *Flags) Int(p *int, name, env string, def int, usage string) {
	f.fs.IntVar(p, name, fromEnv(f, name, env, def, strconv.Atoi, "an integer"), describe(usage, env))
}

// Duration declares a duration flag ("30s", "5m").
func (f *Flags) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	f.fs.DurationVar(p, name, fromEnv(f, name, env, def, time.ParseDuration, "a duration (e.g. 30s, 5m)"), describe(usage, env))
}

// Float declares a floating-point flag.
func (f *Flags) Float(p *float64, name, env string, def float64, usage string) {
	parse := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	f.fs.Float64Var(p, name, fromEnv(f, name, env, def, parse, "a number"), describe(usage, env))
}

// Bool declares a boolean flag.
func (f *Flags) Bool(p *bool, name, env string, def bool, usage string) {
	f.fs.BoolVar(p, name, fromEnv(f, name, env, def, strconv.ParseBool, "a boolean"), describe(usage, env))
}

// fromEnv returns the flag's default: its variable parsed when set, else
// def. A variable that does not parse is recorded for Parse to report
// ("$VAR: "x" is not an integer").
func fromEnv[T any](f *Flags, name, env string, def T, parse func(string) (T, error), what string) T {
	v, ok := f.env(name, env)
	if !ok {
		return def
	}
	x, err := parse(v)
	if err != nil {
		f.errs = append(f.errs, fmt.Errorf("$%s: %q is not %s", env, v, what))
		return def
	}
	return x
}

// List declares a comma-separated string list; empty items are dropped.
func (f *Flags) List(p *[]string, name, env, def, usage string) {
	var raw string
	f.String(&raw, name, env, def, usage+" (comma-separated)")
	f.lists = append(f.lists, listFlag{p: p, raw: &raw})
}

type listFlag struct {
	p   *[]string
	raw *string
}

// Parse parses args and reports environment errors too; positional
// arguments are refused. --help returns flag.ErrHelp.
func (f *Flags) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if len(f.errs) > 0 {
		return errors.Join(f.errs...)
	}
	for _, l := range f.lists {
		*l.p = SplitList(*l.raw)
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(f.fs.Args(), " "))
	}
	return nil
}

// IsSet reports, after Parse, whether the flag name was given on the
// command line or by its environment variable (rather than left at its
// built-in default).
func (f *Flags) IsSet(name string) bool {
	if f.fromEnv[name] {
		return true
	}
	set := false
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// SplitList returns the items of a comma-separated list, trimmed, empty
// ones dropped: what List parses.
func SplitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
