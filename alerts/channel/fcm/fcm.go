package fcm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/notify"
)

// TokenSource returns an OAuth 2.0 access token for the FCM scope.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	// Invalidate drops a cached token the server refused.
	Invalidate()
}

// Config configures the FCM sender.
type Config struct {
	// BaseURL is the API root. Default "https://fcm.googleapis.com".
	BaseURL   string
	ProjectID string
	Tokens    TokenSource
	// Timeout bounds one request. Default 10 s.
	Timeout time.Duration
	Client  *http.Client
	Now     func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.ProjectID == "" {
		errs = append(errs, errors.New("fcm: project id is required"))
	}
	if c.Tokens == nil {
		errs = append(errs, errors.New("fcm: a token source (service account) is required"))
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("fcm: base URL %q is not a URL", c.BaseURL))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("fcm: timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// Sender is the FCM notify.Sender.
type Sender struct{ cfg Config }

var _ notify.Sender = (*Sender)(nil)

// New returns an FCM sender.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://fcm.googleapis.com"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sender{cfg: cfg}, nil
}

// Provider implements notify.Sender.
func (s *Sender) Provider() string { return "fcm" }

// Channel implements notify.Sender.
func (s *Sender) Channel() alerts.Channel { return alerts.ChannelPush }

// SendRequest is the body of messages:send.
type SendRequest struct {
	ValidateOnly bool    `json:"validate_only,omitempty"`
	Message      Message `json:"message"`
}

// Message is FCM's v1 Message (the fields meterd sets).
type Message struct {
	Token        string            `json:"token"`
	Notification *Notification     `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      *AndroidConfig    `json:"android,omitempty"`
	APNS         *APNSConfig       `json:"apns,omitempty"`
	Webpush      *WebpushConfig    `json:"webpush,omitempty"`
}

// Notification is the cross-platform notification.
type Notification struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// AndroidConfig is the Android-specific part.
type AndroidConfig struct {
	CollapseKey  string               `json:"collapse_key,omitempty"`
	Priority     string               `json:"priority,omitempty"`
	Notification *AndroidNotification `json:"notification,omitempty"`
}

// AndroidNotification is the Android notification.
type AndroidNotification struct {
	Tag string `json:"tag,omitempty"`
}

// APNSConfig is the Apple-specific part.
type APNSConfig struct {
	Headers map[string]string `json:"headers,omitempty"`
}

// WebpushConfig is the web push part.
type WebpushConfig struct {
	Headers    map[string]string  `json:"headers,omitempty"`
	FCMOptions *WebpushFCMOptions `json:"fcm_options,omitempty"`
}

// WebpushFCMOptions carries the click link.
type WebpushFCMOptions struct {
	Link string `json:"link,omitempty"`
}

// ErrorBody is Google's error answer.
type ErrorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type      string `json:"@type"`
			ErrorCode string `json:"errorCode"`
		} `json:"details"`
	} `json:"error"`
}

// CollapseID is the collapse key, tag and topic of a delivery: its
// idempotency key without hyphens (32 hex characters fit web push's
// 32-character Topic and APNs' 64-byte apns-collapse-id).
func CollapseID(key string) string {
	k := strings.ReplaceAll(key, "-", "")
	if len(k) > 32 {
		k = k[:32]
	}
	return k
}

// Send implements notify.Sender.
func (s *Sender) Send(ctx context.Context, m *notify.Message) (notify.Receipt, bool, error) {
	if m.To.Token == "" {
		return notify.Receipt{}, false, errors.New("fcm: no device token")
	}
	cid := CollapseID(m.IdempotencyKey)
	msg := Message{
		Token:        m.To.Token,
		Notification: &Notification{Title: m.PushTitle, Body: m.PushBody},
		Data:         m.Data,
		Android:      &AndroidConfig{CollapseKey: cid, Priority: "HIGH", Notification: &AndroidNotification{Tag: cid}},
		APNS:         &APNSConfig{Headers: map[string]string{"apns-collapse-id": cid}},
		Webpush:      &WebpushConfig{Headers: map[string]string{"Topic": cid}},
	}
	if strings.HasPrefix(m.Link, "https://") {
		msg.Webpush.FCMOptions = &WebpushFCMOptions{Link: m.Link}
	}
	body, err := json.Marshal(SendRequest{Message: msg})
	if err != nil {
		return notify.Receipt{}, false, fmt.Errorf("fcm: %w", err)
	}
	token, err := s.cfg.Tokens.Token(ctx)
	if err != nil {
		return notify.Receipt{}, true, fmt.Errorf("fcm: access token: %w", err)
	}
	u := s.cfg.BaseURL + "/v1/projects/" + url.PathEscape(s.cfg.ProjectID) + "/messages:send"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return notify.Receipt{}, false, fmt.Errorf("fcm: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return notify.Receipt{}, true, notify.HTTPFailure(fmt.Errorf("fcm: %w", err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK {
		var ok struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &ok); err != nil || ok.Name == "" {
			return notify.Receipt{}, true, fmt.Errorf("fcm: answer without a message name: %s", raw)
		}
		return notify.Receipt{MessageID: ok.Name}, false, nil
	}
	var eb ErrorBody
	_ = json.Unmarshal(raw, &eb)
	code := ""
	for _, d := range eb.Error.Details {
		if d.ErrorCode != "" {
			code = d.ErrorCode
		}
	}
	err = fmt.Errorf("fcm: %s: %s %s: %s", resp.Status, eb.Error.Status, code, eb.Error.Message)
	switch {
	case code == "UNREGISTERED" || code == "SENDER_ID_MISMATCH":
		return notify.Receipt{}, false, fmt.Errorf("%w: %w", notify.ErrUnregistered, err)
	case resp.StatusCode == http.StatusUnauthorized:
		s.cfg.Tokens.Invalidate()
		return notify.Receipt{}, true, err
	case code == "QUOTA_EXCEEDED" || notify.RetryableStatus(resp.StatusCode):
		if d := notify.RetryAfterHeader(resp.Header.Get("Retry-After"), s.cfg.Now()); d > 0 {
			return notify.Receipt{}, true, &notify.RetryAfterError{After: d, Err: err}
		}
		return notify.Receipt{}, true, err
	}
	return notify.Receipt{}, false, err
}
