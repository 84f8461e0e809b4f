package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/notify"
)

// Config configures a webhook provider.
type Config struct {
	// Channel is sms or push.
	Channel alerts.Channel
	// URL receives the messages (https, or http on loopback).
	URL string
	// Secret signs the requests; "whsec_<base64>" as Standard Webhooks
	// issues them, or any other string used as the key bytes.
	Secret string
	// Timeout bounds one request. Default 10 s.
	Timeout time.Duration
	// Client is the HTTP client. Default a client with Timeout.
	Client *http.Client
	// Now is the clock of the signature timestamp. Default time.Now.
	Now func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Channel != alerts.ChannelSMS && c.Channel != alerts.ChannelPush {
		errs = append(errs, fmt.Errorf("webhook: channel %q must be sms or push", c.Channel))
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !isLoopback(u.Hostname()))) {
		errs = append(errs, fmt.Errorf("webhook: URL %q must be https (or http on loopback)", c.URL))
	}
	if len(c.Secret) < 16 {
		errs = append(errs, errors.New("webhook: secret must be at least 16 characters"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("webhook: timeout must not be negative"))
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// Sender is the webhook notify.Sender.
type Sender struct {
	cfg Config
	key []byte
}

var _ notify.Sender = (*Sender)(nil)

// New returns a webhook sender.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sender{cfg: cfg, key: Key(cfg.Secret)}, nil
}

// Key returns the signing key of a secret: the decoded bytes of a
// "whsec_" secret, the secret's bytes otherwise.
func Key(secret string) []byte {
	if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(b64); err == nil {
			return k
		}
	}
	return []byte(secret)
}

// Provider implements notify.Sender.
func (s *Sender) Provider() string { return "webhook" }

// Channel implements notify.Sender.
func (s *Sender) Channel() alerts.Channel { return s.cfg.Channel }

// Request is the JSON body of a webhook request.
type Request struct {
	Type   string    `json:"type"`
	ID     string    `json:"id"`
	Event  string    `json:"event"`
	Tenant string    `json:"tenant"`
	Locale string    `json:"locale"`
	To     To        `json:"to"`
	SMS    *SMSBody  `json:"sms,omitempty"`
	Push   *PushBody `json:"push,omitempty"`
}

// To is the recipient of a webhook request.
type To struct {
	Phone    string `json:"phone,omitempty"`
	Token    string `json:"token,omitempty"`
	Platform string `json:"platform,omitempty"`
}

// SMSBody is an SMS message.
type SMSBody struct {
	Text string `json:"text"`
}

// PushBody is a push notification.
type PushBody struct {
	Title string            `json:"title"`
	Body  string            `json:"body"`
	Link  string            `json:"link,omitempty"`
	Data  map[string]string `json:"data,omitempty"`
}

// Response is a provider's answer.
type Response struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
}

// Sign returns the webhook-signature value for a request.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ErrSignature is returned by Verify for a request that is not signed
// with the key, or is too old or too new.
var ErrSignature = errors.New("webhook: bad signature")

// Verify checks a received request's signature headers (for providers
// written in Go, and for tests): the signature must match one of the
// space-separated values and the timestamp be within tolerance of now.
func Verify(key []byte, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return fmt.Errorf("%w: missing webhook-id or webhook-timestamp", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %d outside the tolerance", ErrSignature, sec)
	}
	want := Sign(key, id, sec, body)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return ErrSignature
}

// Send implements notify.Sender.
func (s *Sender) Send(ctx context.Context, m *notify.Message) (notify.Receipt, bool, error) {
	req := Request{ID: m.IdempotencyKey, Event: m.Event, Tenant: m.Tenant, Locale: m.Locale}
	switch s.cfg.Channel {
	case alerts.ChannelSMS:
		req.Type, req.To, req.SMS = "notification.sms", To{Phone: m.To.Phone}, &SMSBody{Text: m.SMS}
	case alerts.ChannelPush:
		req.Type, req.To = "notification.push", To{Token: m.To.Token, Platform: m.To.Platform}
		req.Push = &PushBody{Title: m.PushTitle, Body: m.PushBody, Link: m.Link, Data: m.Data}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return notify.Receipt{}, false, fmt.Errorf("webhook: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return notify.Receipt{}, false, fmt.Errorf("webhook: %w", err)
	}
	now := s.cfg.Now()
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "meterd-notify/1")
	hr.Header.Set("Idempotency-Key", m.IdempotencyKey)
	hr.Header.Set("webhook-id", m.IdempotencyKey)
	hr.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	hr.Header.Set("webhook-signature", Sign(s.key, m.IdempotencyKey, now.Unix(), body))
	resp, err := s.cfg.Client.Do(hr)
	if err != nil {
		return notify.Receipt{}, true, notify.HTTPFailure(fmt.Errorf("webhook %s: %w", s.cfg.URL, err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var r Response
		_ = json.Unmarshal(raw, &r) // the body is optional
		if r.ID == "" {
			r.ID = m.IdempotencyKey
		}
		return notify.Receipt{MessageID: r.ID, Duplicate: r.Duplicate}, false, nil
	}
	err = fmt.Errorf("webhook %s: %s: %s", s.cfg.URL, resp.Status, strings.TrimSpace(string(raw)))
	if s.cfg.Channel == alerts.ChannelPush && resp.StatusCode == http.StatusGone {
		return notify.Receipt{}, false, fmt.Errorf("%w: %w", notify.ErrUnregistered, err)
	}
	if notify.RetryableStatus(resp.StatusCode) {
		if d := notify.RetryAfterHeader(resp.Header.Get("Retry-After"), now); d > 0 {
			return notify.Receipt{}, true, &notify.RetryAfterError{After: d, Err: err}
		}
		return notify.Receipt{}, true, err
	}
	return notify.Receipt{}, false, err
}
