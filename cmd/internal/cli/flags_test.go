package cli

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

type values struct {
	s    string
	n    int
	d    time.Duration
	x    float64
	b    bool
	list []string
}

func declare(getenv func(string) string, stderr *bytes.Buffer) (*Flags, *values) {
	v := &values{}
	f := NewFlags("test", "Usage: test [flags]", getenv, stderr)
	f.String(&v.s, "name", "T_NAME", "def", "a name")
	f.Int(&v.n, "count", "T_COUNT", 3, "a count")
	f.Duration(&v.d, "every", "T_EVERY", time.Minute, "an interval")
	f.Float(&v.x, "ratio", "T_RATIO", 0.5, "a ratio")
	f.Bool(&v.b, "on", "T_ON", false, "a switch")
	f.List(&v.list, "items", "T_ITEMS", "a,b", "items")
	return f, v
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Command line over environment over default; bad variables are errors.
func TestFlagsPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    values
		wantSet []string
		wantErr string
	}{
		{name: "defaults", want: values{s: "def", n: 3, d: time.Minute, x: 0.5, list: []string{"a", "b"}}},
		{name: "environment", env: map[string]string{"T_NAME": "env", "T_COUNT": "7", "T_EVERY": "5s", "T_RATIO": "0.25", "T_ON": "true", "T_ITEMS": " x, ,y "},
			want: values{s: "env", n: 7, d: 5 * time.Second, x: 0.25, b: true, list: []string{"x", "y"}}, wantSet: []string{"name", "count", "every", "ratio", "on", "items"}},
		{name: "command line wins", env: map[string]string{"T_NAME": "env", "T_COUNT": "7"}, args: []string{"--name", "cli", "--items", ""},
			want: values{s: "cli", n: 7, d: time.Minute, x: 0.5}, wantSet: []string{"name", "count", "items"}},
		{name: "empty variable is unset", env: map[string]string{"T_NAME": ""}, want: values{s: "def", n: 3, d: time.Minute, x: 0.5, list: []string{"a", "b"}}},
		{name: "bad variables", env: map[string]string{"T_COUNT": "x", "T_EVERY": "5", "T_RATIO": "?", "T_ON": "maybe"},
			wantErr: `$T_COUNT: "x" is not an integer` + "\n" + `$T_EVERY: "5" is not a duration (e.g. 30s, 5m)` + "\n" + `$T_RATIO: "?" is not a number` + "\n" + `$T_ON: "maybe" is not a boolean`},
		{name: "positional arguments", args: []string{"extra", "more"}, wantErr: "unexpected arguments: extra more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			f, v := declare(envOf(tt.env), &stderr)
			err := f.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.s != tt.want.s || v.n != tt.want.n || v.d != tt.want.d || v.x != tt.want.x || v.b != tt.want.b || !slices.Equal(v.list, tt.want.list) {
				t.Errorf("got %+v, want %+v", *v, tt.want)
			}
			for _, name := range []string{"name", "count", "every", "ratio", "on", "items"} {
				if got := f.IsSet(name); got != slices.Contains(tt.wantSet, name) {
					t.Errorf("IsSet(%q) = %v", name, got)
				}
			}
		})
	}
}

// --help lists every flag with its variable and returns flag.ErrHelp.
func TestFlagsHelp(t *testing.T) {
	var stderr bytes.Buffer
	f, _ := declare(envOf(nil), &stderr)
	if err := f.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v, want flag.ErrHelp", err)
	}
	out := stderr.String()
	for _, want := range []string{"Usage: test [flags]", "Flags (each also settable by the environment variable shown):", "a name [$T_NAME]", "items (comma-separated) [$T_ITEMS]"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		give string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{" a , ,b,", []string{"a", "b"}},
	}
	for _, tt := range tests {
		if got := SplitList(tt.give); !slices.Equal(got, tt.want) {
			t.Errorf("SplitList(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
