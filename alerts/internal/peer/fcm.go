package peer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Push is a message FCM accepted.
type Push struct {
	Name, Token, Title, Body string
	CollapseKey, Tag         string
	APNSCollapseID, Topic    string
	Data                     map[string]string
}

// FCM plays the FCM HTTP v1 API of one project and Google's OAuth 2.0
// token endpoint. Tokens starting with "dead" are UNREGISTERED.
type FCM struct {
	base
	Project string
	// KeyJSON is a service-account key file whose token_uri is this peer.
	KeyJSON []byte
	key     *rsa.PrivateKey

	mu     sync.Mutex
	tokens map[string]bool // access tokens issued
	sent   []Push
	grants int
}

// NewFCM starts an FCM peer for project.
func NewFCM(t testing.TB, project string) *FCM {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &FCM{Project: project, key: k, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /v1/projects/"+project+"/messages:send", p.send)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.bad("unexpected %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	p.start(t, mux)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p.KeyJSON, _ = json.Marshal(map[string]string{
		"type": "service_account", "project_id": project, "private_key_id": "kid-1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "meterd@" + project + ".iam.gserviceaccount.com", "token_uri": p.URL() + "/token",
	})
	return p
}

// Sent returns the accepted messages.
func (p *FCM) Sent() []Push {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Push(nil), p.sent...)
}

// Grants returns how many access tokens were issued.
func (p *FCM) Grants() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.grants
}

// token is the JWT bearer grant (RFC 7523) as Google documents it.
func (p *FCM) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		p.bad("token grant %v", r.PostForm)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error": "unsupported_grant_type"}`)
		return
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(t *jwt.Token) (any, error) { return &p.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(p.URL()+"/token"))
	if err != nil || !tok.Valid || claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" ||
		claims["iss"] != "meterd@"+p.Project+".iam.gserviceaccount.com" || tok.Header["kid"] != "kid-1" {
		p.bad("assertion %v: %v", claims, err)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error": "invalid_grant"}`)
		return
	}
	p.mu.Lock()
	p.grants++
	at := fmt.Sprintf("ya29.test-%d", p.grants)
	p.tokens[at] = true
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token": %q, "expires_in": 3599, "token_type": "Bearer"}`, at)
}

func fcmError(w http.ResponseWriter, status int, st, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg, "status": st,
		"details": []map[string]any{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}}}})
}

func (p *FCM) send(w http.ResponseWriter, r *http.Request) {
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	valid := ok && p.tokens[bearer]
	p.mu.Unlock()
	if !valid {
		p.bad("bad bearer token %q", bearer)
		fcmError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "", "Request had invalid authentication credentials.")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		p.bad("content type %q", ct)
	}
	var req struct {
		ValidateOnly bool `json:"validate_only"`
		Message      struct {
			Token        string `json:"token"`
			Notification struct {
				Title string `json:"title"`
				Body  string `json:"body"`
			} `json:"notification"`
			Data    map[string]string `json:"data"`
			Android struct {
				CollapseKey  string `json:"collapse_key"`
				Notification struct {
					Tag string `json:"tag"`
				} `json:"notification"`
			} `json:"android"`
			APNS struct {
				Headers map[string]string `json:"headers"`
			} `json:"apns"`
			Webpush struct {
				Headers map[string]string `json:"headers"`
			} `json:"webpush"`
		} `json:"message"`
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		p.bad("body: %v", err)
		fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	m := req.Message
	if m.Token == "" || m.Notification.Title == "" || m.Notification.Body == "" {
		p.bad("message without token or notification: %+v", m)
	}
	if len(m.Webpush.Headers["Topic"]) > 32 || len(m.APNS.Headers["apns-collapse-id"]) > 64 {
		p.bad("collapse ids too long: %v %v", m.Webpush.Headers, m.APNS.Headers)
	}
	if p.outage(w, `{"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE",
		"details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNAVAILABLE"}]}}`) {
		return
	}
	if strings.HasPrefix(m.Token, "dead") {
		fcmError(w, http.StatusNotFound, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
		return
	}
	p.mu.Lock()
	name := fmt.Sprintf("projects/%s/messages/0:%d", p.Project, 1000+len(p.sent))
	p.sent = append(p.sent, Push{Name: name, Token: m.Token, Title: m.Notification.Title, Body: m.Notification.Body,
		CollapseKey: m.Android.CollapseKey, Tag: m.Android.Notification.Tag, APNSCollapseID: m.APNS.Headers["apns-collapse-id"],
		Topic: m.Webpush.Headers["Topic"], Data: m.Data})
	p.mu.Unlock()
	p.afterAccept()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"name": %q}`, name)
}
