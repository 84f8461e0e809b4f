package peer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// SMS is a message Twilio accepted.
type SMS struct {
	SID, To, From, Body string
	StatusCallback      string
	Created             time.Time
}

// Twilio plays Twilio's Messages API for one account.
type Twilio struct {
	base
	Account, Token string
	now            func() time.Time

	mu   sync.Mutex
	sent []SMS
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// NewTwilio starts a Twilio peer for account (AC…) with auth token.
// Numbers that are not E.164, or end in 0000, are refused with Twilio's
// error 21211 (invalid 'To' number).
func NewTwilio(t testing.TB, account, token string, now func() time.Time) *Twilio {
	p := &Twilio{Account: account, Token: token, now: now}
	mux := http.NewServeMux()
	path := "/2010-04-01/Accounts/" + account + "/Messages.json"
	mux.HandleFunc("POST "+path, p.create)
	mux.HandleFunc("GET "+path, p.list)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.bad("unexpected %s %s", r.Method, r.URL.Path)
		twilioError(w, http.StatusNotFound, 20404, "The requested resource was not found")
	})
	p.start(t, mux)
	return p
}

// Sent returns the accepted messages.
func (p *Twilio) Sent() []SMS {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]SMS(nil), p.sent...)
}

func (p *Twilio) auth(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || user != p.Account || pass != p.Token {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return false
	}
	return true
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status})
}

func (p *Twilio) create(w http.ResponseWriter, r *http.Request) {
	if !p.auth(w, r) {
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		p.bad("content type %q", ct)
	}
	if err := r.ParseForm(); err != nil {
		p.bad("form: %v", err)
	}
	to, from, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("Body")
	if body == "" || (from == "" && r.PostForm.Get("MessagingServiceSid") == "") {
		p.bad("missing Body or From/MessagingServiceSid: %v", r.PostForm)
	}
	if p.outage(w, `{"code": 20500, "message": "Service unavailable", "more_info": "https://www.twilio.com/docs/errors/20500", "status": 503}`) {
		return
	}
	if !e164.MatchString(to) || strings.HasSuffix(to, "0000") {
		twilioError(w, http.StatusBadRequest, 21211, fmt.Sprintf("The 'To' number %s is not a valid phone number.", to))
		return
	}
	p.mu.Lock()
	m := SMS{SID: fmt.Sprintf("SM%032x", len(p.sent)+1), To: to, From: from, Body: body, StatusCallback: r.PostForm.Get("StatusCallback"), Created: p.now().UTC()}
	p.sent = append(p.sent, m)
	p.mu.Unlock()
	p.afterAccept()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(resource(p.Account, m))
}

func resource(account string, m SMS) map[string]any {
	return map[string]any{"sid": m.SID, "account_sid": account, "status": "queued", "to": m.To, "from": m.From, "body": m.Body,
		"date_created": m.Created.Format(time.RFC1123Z), "date_sent": nil, "error_code": nil, "error_message": nil,
		"direction": "outbound-api", "num_segments": "1", "uri": "/2010-04-01/Accounts/" + account + "/Messages/" + m.SID + ".json"}
}

func (p *Twilio) list(w http.ResponseWriter, r *http.Request) {
	if !p.auth(w, r) {
		return
	}
	q := r.URL.Query()
	to, from := q.Get("To"), q.Get("From")
	p.mu.Lock()
	var out []map[string]any
	for i := len(p.sent) - 1; i >= 0; i-- { // newest first, as Twilio lists
		m := p.sent[i]
		if (to == "" || m.To == to) && (from == "" || m.From == from) {
			out = append(out, resource(p.Account, m))
		}
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": out, "page": 0, "page_size": 50, "next_page_uri": nil,
		"uri": r.URL.RequestURI(), "first_page_uri": r.URL.RequestURI()})
}
