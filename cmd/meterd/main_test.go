package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// syncBuffer is an io.Writer safe for the command and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// process is a meterd command running in the test, like a separate process.
type process struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc // what SIGINT does in main
	done           chan int
}

func start(t *testing.T, env map[string]string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	getenv := func(k string) string { return env[k] }
	go func() { p.done <- run(ctx, args, getenv, p.stdout, p.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Error("command did not stop")
		}
	})
	return p
}

// stop is Ctrl-C: it returns the exit code. The 30 s bound only catches a
// hang; how fast shutdown is, is not asserted here.
func (p *process) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case code := <-p.done:
		p.done <- code // for Cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("command did not stop; stderr:\n%s", p.stderr.String())
		return -1
	}
}

// waitFor polls until f succeeds, the command ends, or a minute passes.
func (p *process) waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !f() {
		select {
		case code := <-p.done:
			p.done <- code
			t.Fatalf("command exited with %d while waiting for %s; stderr:\n%s", code, what, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stderr:\n%s", what, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJSON(url string) (int, map[string]any, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	err = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, err
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	apiLine  = regexp.MustCompile(`API\s+http://(\S+)`)
	billLine = regexp.MustCompile(`bill (\S+) for (\S+): (\S+) due \S+, issued — http://(\S+)/bills/(\d+) `)
)

// devEmails returns the text of the emails the dev notification sink
// captured for to.
func devEmails(t *testing.T, addr, to string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/dev/notifications")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Messages []struct {
			Channel string   `json:"channel"`
			To      []string `json:"to"`
			Text    string   `json:"text"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range body.Messages {
		if m.Channel == "email" && slices.Contains(m.To, to) {
			out = append(out, m.Text)
		}
	}
	return out
}

// TestDev runs `meterd dev` as `make run` does: it becomes ready with a
// storage profile, stops cleanly on Ctrl-C with its PostgreSQL gone, and
// a second run reuses the data. On a fresh data directory the demo
// consumer's meter gets months of simulated readings and the last complete
// month is billed: the banner names the bill and how to pay it, and the
// bill's email links to the address dev listens on (an ephemeral port
// here, not the public-URL default); the second run bills nothing again.
func TestDev(t *testing.T) {
	dir := t.TempDir()
	// The postgres OS user must be able to reach the data directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"dev", "--data-dir", filepath.Join(dir, "state"), "--pg-port", "0", "--http-addr", "127.0.0.1:0", "--log-level", "debug"}
	var bill string
	for i, wantNew := range []bool{true, false} {
		t.Run(fmt.Sprintf("run %d", i+1), func(t *testing.T) {
			p := start(t, nil, args...)
			var addr string
			p.waitFor(t, "the banner", func() bool {
				m := apiLine.FindStringSubmatch(p.stdout.String())
				if m != nil {
					addr = m[1]
				}
				return m != nil
			})
			code, body, err := getJSON("http://" + addr + "/readyz")
			if err != nil || code != 200 {
				t.Fatalf("readyz: %d %v %v", code, body, err)
			}
			if prof := body["profile"]; prof != string(schema.ProfilePostgres) && prof != string(schema.ProfileTimescale) {
				t.Errorf("readyz profile %v", prof)
			}
			if got := strings.Contains(p.stderr.String(), "initialised a new PostgreSQL cluster"); got != wantNew {
				t.Errorf("initialised a new cluster: %v, want %v", got, wantNew)
			}
			banner := p.stdout.String()
			m := billLine.FindStringSubmatch(banner)
			if m == nil || m[4] != addr || !strings.Contains(banner, "log in at http://"+addr+"/login as consumer@demo.meterd.test") ||
				!strings.Contains(banner, "/bills/"+m[5]+"/pay") || !strings.Contains(banner, "simulated readings every 15m0s since") {
				t.Fatalf("banner does not offer the demo bill:\n%s", banner)
			}
			if wantNew {
				bill = m[1]
				if !strings.Contains(banner, "bill run 1 for "+m[2]+": 1 billed") {
					t.Errorf("the first run did not bill %s:\n%s", m[2], banner)
				}
				var link string
				p.waitFor(t, "the bill's email", func() bool {
					for _, text := range devEmails(t, addr, "consumer@demo.meterd.test") {
						if strings.Contains(text, bill) {
							link = text
							return true
						}
					}
					return false
				})
				if !strings.Contains(link, "http://"+addr+"/bills/"+m[5]) || strings.Contains(link, "localhost:8080") {
					t.Errorf("the bill's email does not link to http://%s/bills/%s:\n%s", addr, m[5], link)
				}
			} else if m[1] != bill || strings.Contains(banner, "bill run") {
				t.Errorf("second run: bill %s (first %s), or billed again:\n%s", m[1], bill, banner)
			}
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "state", "pgdata", "postmaster.pid")); !os.IsNotExist(err) {
				t.Errorf("postgres still running after Ctrl-C (postmaster.pid: %v)", err)
			}
			if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				t.Error("API still answering after Ctrl-C")
			}
		})
	}
}

// TestMigrateTwoAtOnce runs two `meterd migrate` commands against one
// empty database at the same time.
func TestMigrateTwoAtOnce(t *testing.T) {
	t.Parallel()
	url := schematest.EmptyURL(t)
	var wg sync.WaitGroup
	outs := make([]*syncBuffer, 2)
	codes := make([]int, 2)
	for i := range outs {
		outs[i] = &syncBuffer{}
		wg.Go(func() {
			codes[i] = run(context.Background(), []string{"migrate", "--database-url", url}, func(string) string { return "" }, outs[i], outs[i])
		})
	}
	wg.Wait()
	for i, code := range codes {
		if code != 0 || !strings.Contains(outs[i].String(), "storage profile:") {
			t.Errorf("migrate %d: exit %d\n%s", i, code, outs[i].String())
		}
	}
	// And once more: nothing left to do.
	out := &syncBuffer{}
	if code := run(context.Background(), []string{"migrate"}, func(k string) string {
		if k == "DATABASE_URL" {
			return url
		}
		return ""
	}, out, out); code != 0 || strings.Contains(out.String(), "applied migration") {
		t.Errorf("third migrate: exit %d\n%s", code, out.String())
	}
}

// TestServeDrainsFirst checks that on shutdown /readyz turns 503 while the
// server still answers, before it stops.
func TestServeDrainsFirst(t *testing.T) {
	t.Parallel()
	url := schematest.URL(t, schema.ProfilePostgres)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := start(t, withKeys(t, map[string]string{"DATABASE_URL": url, "METERD_HTTP_DRAIN_DELAY": "2s"}), "serve", "--http-addr", addr)
	p.waitFor(t, "readiness", func() bool {
		code, _, err := getJSON("http://" + addr + "/readyz")
		return err == nil && code == 200
	})
	p.cancel()
	p.waitFor(t, "draining", func() bool {
		code, body, err := getJSON("http://" + addr + "/readyz")
		return err == nil && code == 503 && body["status"] == "draining"
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr.String())
	}
}

func TestServeRefusesUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	url := schematest.EmptyURL(t)
	p := start(t, withKeys(t, nil), "serve", "--database-url", url, "--http-addr", "127.0.0.1:0")
	select {
	case code := <-p.done:
		p.done <- code
		if code != 1 || !strings.Contains(p.stderr.String(), "not migrated") {
			t.Errorf("exit %d, stderr:\n%s", code, p.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("serve kept running against an unmigrated database")
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		give     []string
		env      map[string]string
		wantCode int
		wantOut  string
	}{
		{"no command", nil, nil, 2, "Usage: meterd <command>"},
		{"help", []string{"help"}, nil, 0, "Commands:"},
		{"unknown", []string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{"version", []string{"version"}, nil, 0, "meterd dev"},
		{"flag help", []string{"serve", "--help"}, nil, 0, "$METERD_HTTP_ADDR"},
		{"serve without a database", []string{"serve"}, nil, 1, "no database"},
		{"bad env value", []string{"serve"}, map[string]string{"METERD_HTTP_REQUEST_TIMEOUT": "soon"}, 1, `$METERD_HTTP_REQUEST_TIMEOUT: "soon" is not a duration`},
		{"bad profile", []string{"migrate", "--database-url", "postgres://x/y", "--profile", "mysql"}, nil, 1, `unknown profile "mysql"`},
		{"stray argument", []string{"version", "extra"}, nil, 1, "unexpected arguments: extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncBuffer{}
			code := run(context.Background(), tt.give, func(k string) string { return tt.env[k] }, out, out)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("exit %d (want %d), output:\n%s\nwant it to contain %q", code, tt.wantCode, out.String(), tt.wantOut)
			}
		})
	}
}

// withKeys adds the key files serve needs (JWT signing, field encryption)
// to env, created in a temporary directory.
func withKeys(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	dir := t.TempDir()
	for _, k := range []struct{ env, typ string }{{"METERD_JWT_KEYS_FILE", "jwt"}, {"METERD_FIELD_KEYS_FILE", "field"}} {
		file := filepath.Join(dir, k.typ+".keys")
		var buf syncBuffer
		if code := run(context.Background(), []string{"keys", "generate", "--type", k.typ, "--out", file}, func(string) string { return "" }, &buf, &buf); code != 0 {
			t.Fatalf("keys generate: %s", buf.String())
		}
		out[k.env] = file
	}
	return out
}
