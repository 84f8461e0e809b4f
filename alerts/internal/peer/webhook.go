package peer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts/channel/webhook"
)

// Hook is a message a webhook provider accepted (and so sent).
type Hook struct {
	ID      string
	Request webhook.Request
}

// Webhook plays a provider behind the generic signed webhook: it checks
// the Standard Webhooks signature and remembers Idempotency-Keys for the
// test's life, answering a repeat with the original id and duplicate
// true without sending again. Push tokens starting with "dead" get 410.
type Webhook struct {
	base
	key []byte
	now func() time.Time

	mu      sync.Mutex
	sent    []Hook
	byKey   map[string]string
	repeats int
}

// NewWebhook starts a webhook peer verifying with secret.
func NewWebhook(t testing.TB, secret string, now func() time.Time) *Webhook {
	p := &Webhook{key: webhook.Key(secret), now: now, byKey: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /send", p.handle)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.bad("unexpected %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	p.start(t, mux)
	return p
}

// URL is where to POST.
func (p *Webhook) URL() string { return p.base.URL() + "/send" }

// Sent returns the messages sent (repeats not counted).
func (p *Webhook) Sent() []Hook {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Hook(nil), p.sent...)
}

// Repeats returns how many requests repeated an Idempotency-Key.
func (p *Webhook) Repeats() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.repeats
}

func (p *Webhook) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(p.key, r.Header, body, 5*time.Minute, p.now()); err != nil {
		p.bad("signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	var req webhook.Request
	if err := json.Unmarshal(body, &req); err != nil || key == "" || req.ID != key || r.Header.Get("webhook-id") != key {
		p.bad("body or keys: %v %q %q", err, key, req.ID)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	switch req.Type {
	case "notification.sms":
		if req.SMS == nil || req.SMS.Text == "" || req.To.Phone == "" {
			p.bad("sms without text or phone: %s", body)
		}
	case "notification.push":
		if req.Push == nil || req.Push.Title == "" || req.To.Token == "" {
			p.bad("push without title or token: %s", body)
		}
	default:
		p.bad("type %q", req.Type)
	}
	if p.outage(w, `{"error": "unavailable"}`) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	p.mu.Lock()
	if id, ok := p.byKey[key]; ok {
		p.repeats++
		p.mu.Unlock()
		fmt.Fprintf(w, `{"id": %q, "duplicate": true}`, id)
		return
	}
	if req.Push != nil && len(req.To.Token) >= 4 && req.To.Token[:4] == "dead" {
		p.mu.Unlock()
		w.WriteHeader(http.StatusGone)
		fmt.Fprint(w, `{"error": "token unregistered"}`)
		return
	}
	id := fmt.Sprintf("wh-%d", len(p.sent)+1)
	p.byKey[key] = id
	p.sent = append(p.sent, Hook{ID: id, Request: req})
	p.mu.Unlock()
	p.afterAccept()
	fmt.Fprintf(w, `{"id": %q, "duplicate": false}`, id)
}
