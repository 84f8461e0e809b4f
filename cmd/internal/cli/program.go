package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Command is one subcommand of a binary. E is what the binary hands its
// commands from the process (its environment, standard output and error).
type Command[E any] struct {
	Name    string
	Summary string // one line for the usage
	Run     func(ctx context.Context, e E, args []string) error
}

// Program is a binary's command table.
type Program[E any] struct {
	Name     string // the binary, "meterd"
	Title    string // what it is, after the name on the usage's first line
	Commands []Command[E]
	// Reported are errors a command has already explained on its own
	// output: they exit 1 without a message (errors.Is).
	Reported []error
}

// Run executes the command args[0] with the rest of args and returns the
// process exit code: 0 on success or --help, 1 when the command fails
// (its error printed to stderr as "<name> <command>: <error>"), 2 for no
// command or an unknown one (with the usage). "help", "-h" and "--help"
// print the usage and exit 0.
func (p Program[E]) Run(ctx context.Context, e E, args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		p.Usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	i := slices.IndexFunc(p.Commands, func(c Command[E]) bool { return c.Name == args[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", p.Name, args[0])
		p.Usage(stderr)
		return 2
	}
	err := p.Commands[i].Run(ctx, e, args[1:])
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case slices.ContainsFunc(p.Reported, func(r error) bool { return errors.Is(err, r) }):
		return 1
	}
	fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, args[0], err)
	return 1
}

// Usage writes the program's usage: its title and the commands with their
// summaries.
func (p Program[E]) Usage(w io.Writer) {
	width := 0
	for _, c := range p.Commands {
		width = max(width, len(c.Name))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s — %s\n\nUsage: %[1]s <command> [flags]\n\nCommands:\n", p.Name, p.Title)
	for _, c := range p.Commands {
		fmt.Fprintf(&b, "  %-*s %s\n", width+2, c.Name, c.Summary)
	}
	fmt.Fprintf(&b, "\nRun '%s <command> --help' for a command's flags.\n", p.Name)
	fmt.Fprint(w, b.String())
}
