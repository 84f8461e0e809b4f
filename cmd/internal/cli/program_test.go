package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

type testEnv struct{ out *bytes.Buffer }

var errExplained = errors.New("already explained")

func testProgram() Program[testEnv] {
	return Program[testEnv]{
		Name: "tool", Title: "a test tool",
		Commands: []Command[testEnv]{
			{Name: "ok", Summary: "succeeds", Run: func(_ context.Context, e testEnv, args []string) error {
				e.out.WriteString("ran ok " + strings.Join(args, " "))
				return nil
			}},
			{Name: "fail", Summary: "fails", Run: func(context.Context, testEnv, []string) error { return errors.New("boom") }},
			{Name: "explained", Summary: "fails quietly", Run: func(context.Context, testEnv, []string) error {
				return errors.Join(errors.New("wrapped"), errExplained)
			}},
			{Name: "helpme", Summary: "asks for help", Run: func(context.Context, testEnv, []string) error { return flag.ErrHelp }},
		},
		Reported: []error{errExplained},
	}
}

func TestProgramRun(t *testing.T) {
	tests := []struct {
		give       []string
		want       int
		wantOut    string
		wantStderr string // contained in stderr; "" means stderr is empty
	}{
		{give: nil, want: 2, wantStderr: "Usage: tool <command> [flags]"},
		{give: []string{"help"}, want: 0, wantStderr: "Commands:\n  ok          succeeds\n  fail        fails\n"},
		{give: []string{"--help"}, want: 0, wantStderr: "tool — a test tool"},
		{give: []string{"-h"}, want: 0, wantStderr: "Run 'tool <command> --help' for a command's flags."},
		{give: []string{"nope"}, want: 2, wantStderr: "tool: unknown command \"nope\"\n\ntool — a test tool"},
		{give: []string{"ok", "a", "b"}, want: 0, wantOut: "ran ok a b"},
		{give: []string{"fail"}, want: 1, wantStderr: "tool fail: boom\n"},
		{give: []string{"explained"}, want: 1},
		{give: []string{"helpme"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			var out, stderr bytes.Buffer
			code := testProgram().Run(context.Background(), testEnv{out: &out}, tt.give, &stderr)
			if code != tt.want || out.String() != tt.wantOut {
				t.Errorf("exit %d, stdout %q; want %d, %q", code, out.String(), tt.want, tt.wantOut)
			}
			if tt.wantStderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
