package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

// TestClosingLog: a client read failing on a closed connection is a
// warning while the broker runs and a debug line once Stop has begun;
// other warnings stay warnings.
func TestClosingLog(t *testing.T) {
	var buf bytes.Buffer
	var closing atomic.Bool
	log := slog.New(closingLog{Handler: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}), closing: &closing}).
		With("component", "broker")
	closed := &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	log.Warn("", "listener", "tcp", "error", closed)
	closing.Store(true)
	log.Warn("", "listener", "tcp", "error", closed)
	log.Warn("client write failed", "error", errors.New("broken pipe"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "use of closed network connection") || !strings.Contains(lines[1], "broken pipe") {
		t.Fatalf("log:\n%s", buf.String())
	}
}
