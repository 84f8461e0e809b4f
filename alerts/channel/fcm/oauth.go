package fcm

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Scope is the OAuth 2.0 scope of FCM sends.
const Scope = "https://www.googleapis.com/auth/firebase.messaging"

// ServiceAccountKey is the JSON key file Google issues for a service
// account (the fields meterd uses).
type ServiceAccountKey struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// ParseServiceAccount reads a service-account key file.
func ParseServiceAccount(b []byte) (ServiceAccountKey, error) {
	var k ServiceAccountKey
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("fcm: service account key: %w", err)
	}
	if k.Type != "service_account" || k.ClientEmail == "" || k.PrivateKey == "" {
		return k, errors.New("fcm: not a service account key (type, client_email, private_key)")
	}
	if k.TokenURI == "" {
		k.TokenURI = "https://oauth2.googleapis.com/token"
	}
	return k, nil
}

// ServiceAccount is a TokenSource using the OAuth 2.0 JWT bearer grant
// (RFC 7523): it signs an RS256 assertion with the service account's key
// and exchanges it at the key's token_uri for an access token, cached
// until a minute before it expires.
type ServiceAccount struct {
	key    ServiceAccountKey
	signer *rsa.PrivateKey
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewServiceAccount returns a token source for key. client nil: a client
// with a 10 s timeout; now nil: time.Now.
func NewServiceAccount(key ServiceAccountKey, client *http.Client, now func() time.Time) (*ServiceAccount, error) {
	pk, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(key.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("fcm: service account private key: %w", err)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &ServiceAccount{key: key, signer: pk, client: client, now: now}, nil
}

// Invalidate implements TokenSource.
func (s *ServiceAccount) Invalidate() {
	s.mu.Lock()
	s.token = ""
	s.mu.Unlock()
}

// Token implements TokenSource.
func (s *ServiceAccount) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Before(s.expires) {
		return s.token, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss":   s.key.ClientEmail,
		"scope": Scope,
		"aud":   s.key.TokenURI,
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	})
	if s.key.PrivateKeyID != "" {
		t.Header["kid"] = s.key.PrivateKeyID
	}
	assertion, err := t.SignedString(s.signer)
	if err != nil {
		return "", fmt.Errorf("fcm: sign assertion: %w", err)
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.key.TokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("fcm: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fcm: token request: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fcm: token endpoint: %s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(raw, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("fcm: token endpoint answer: %s", raw)
	}
	s.token = tr.AccessToken
	s.expires = now.Add(time.Duration(tr.ExpiresIn)*time.Second - time.Minute)
	return s.token, nil
}
