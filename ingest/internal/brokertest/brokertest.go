// Package brokertest runs Debian's Mosquitto for tests, configured the way
// meterd's deployment needs it (persistence, unlimited queues and
// in-flight windows; see the shared broker notes), as a separate process
// that can be restarted. It is imported only by tests.
package brokertest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Mosquitto is a running broker.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	bin  string
	conf string
	dir  string
	cmd  *exec.Cmd
	logf *os.File
}

// Find returns the mosquitto binary, or skips the test with a message.
func Find(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/bin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("mosquitto not installed (run .ci/install-deps test); external-broker test skipped")
	return ""
}

// Start runs a private Mosquitto on a free loopback port. It is killed when
// the test ends.
func Start(t testing.TB) *Mosquitto {
	t.Helper()
	bin := Find(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	conf := strings.Join([]string{
		"listener " + strconv.Itoa(port) + " 127.0.0.1",
		"allow_anonymous true",
		"persistence true",
		"persistence_location " + dir + "/",
		"autosave_interval 1",
		// Mosquitto's defaults drop QoS 1 messages beyond 1000 queued
		// per client without telling anyone (broker notes).
		"max_queued_messages 0",
		"max_queued_bytes 0",
		"max_inflight_messages 0",
		"persistent_client_expiration 1d",
		"log_dest stderr",
	}, "\n") + "\n"
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	m := &Mosquitto{Addr: "127.0.0.1:" + strconv.Itoa(port), bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), dir: dir}
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m.start(t)
	t.Cleanup(func() { m.kill() })
	return m
}

func (m *Mosquitto) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(m.dir, "mosquitto.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.cmd, m.logf = cmd, logf
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v", m.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart stops the broker gracefully (it writes its persistence file) and
// starts it again on the same port with the same data.
func (m *Mosquitto) Restart(t testing.TB) {
	t.Helper()
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	_ = m.cmd.Wait()
	_ = m.logf.Close()
	m.start(t)
}

func (m *Mosquitto) kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
	}
	if m.logf != nil {
		_ = m.logf.Close()
	}
}

// Log returns what the broker logged so far.
func (m *Mosquitto) Log() string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
	return string(b)
}
