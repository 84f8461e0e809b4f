package peer

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Mode is how a peer answers send requests.
type Mode int

// Modes.
const (
	Up          Mode = iota // accept
	Down                    // 503 Service Unavailable
	RateLimited             // 429 with Retry-After: 120
)

// base holds what every peer shares: the server, its mode, the requests
// it rejected as malformed (a test fails on any), and the messages it
// accepted.
type base struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	mode      Mode
	requests  int // send requests received, any outcome
	malformed []string
	hook      func() // called after a message is accepted, before answering
}

func (b *base) start(t testing.TB, h http.Handler) {
	b.t = t
	b.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		b.srv.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, m := range b.malformed {
			t.Errorf("provider peer got a malformed request: %s", m)
		}
	})
}

// URL is the peer's base URL.
func (b *base) URL() string { return b.srv.URL }

// SetMode changes how the peer answers.
func (b *base) SetMode(m Mode) {
	b.mu.Lock()
	b.mode = m
	b.mu.Unlock()
}

// Requests returns how many send requests arrived (accepted or not).
func (b *base) Requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests
}

// AfterAccept sets a function called after a message is accepted and
// before the answer is written (tests stop the client there).
func (b *base) AfterAccept(fn func()) {
	b.mu.Lock()
	b.hook = fn
	b.mu.Unlock()
}

func (b *base) bad(format string, args ...any) {
	b.mu.Lock()
	b.malformed = append(b.malformed, fmt.Sprintf(format, args...))
	b.mu.Unlock()
}

// outage answers according to the mode; it reports whether it answered.
func (b *base) outage(w http.ResponseWriter, body string) bool {
	b.mu.Lock()
	b.requests++
	m := b.mode
	b.mu.Unlock()
	switch m {
	case Down:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, body)
		return true
	case RateLimited:
		w.Header().Set("Retry-After", "120")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, body)
		return true
	}
	return false
}

func (b *base) afterAccept() {
	b.mu.Lock()
	h := b.hook
	b.mu.Unlock()
	if h != nil {
		h()
	}
}
