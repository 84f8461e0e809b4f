package twilio

import (
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

// Config configures the Twilio sender.
type Config struct {
	// BaseURL is the API root. Default "https://api.twilio.com".
	BaseURL string
	// AccountSID owns the messages; Username/Password authenticate (an
	// API key SID and secret); when Username is empty, AccountSID and
	// AuthToken do.
	AccountSID string
	AuthToken  string
	Username   string
	Password   string
	// From is the sender number (E.164) or alphanumeric sender id;
	// MessagingServiceSID (MG…) may be given instead.
	From                string
	MessagingServiceSID string
	// StatusCallback, when set, is passed to Twilio for delivery receipts.
	StatusCallback string
	// Timeout bounds one request. Default 10 s.
	Timeout time.Duration
	Client  *http.Client
	Now     func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if !strings.HasPrefix(c.AccountSID, "AC") {
		errs = append(errs, errors.New("twilio: account SID (AC…) is required"))
	}
	if c.Username == "" && c.AuthToken == "" {
		errs = append(errs, errors.New("twilio: an auth token or an API key is required"))
	}
	if (c.From == "") == (c.MessagingServiceSID == "") {
		errs = append(errs, errors.New("twilio: set exactly one of From and MessagingServiceSid"))
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("twilio: base URL %q is not a URL", c.BaseURL))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("twilio: timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// Sender is the Twilio notify.Sender and notify.Reconciler.
type Sender struct {
	cfg Config
}

var (
	_ notify.Sender     = (*Sender)(nil)
	_ notify.Reconciler = (*Sender)(nil)
)

// New returns a Twilio sender.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.twilio.com"
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
	if cfg.Username == "" {
		cfg.Username, cfg.Password = cfg.AccountSID, cfg.AuthToken
	}
	return &Sender{cfg: cfg}, nil
}

// Provider implements notify.Sender.
func (s *Sender) Provider() string { return "twilio" }

// Channel implements notify.Sender.
func (s *Sender) Channel() alerts.Channel { return alerts.ChannelSMS }

// Message is the part of Twilio's Message resource meterd reads.
type Message struct {
	SID          string  `json:"sid"`
	Status       string  `json:"status"`
	To           string  `json:"to"`
	From         string  `json:"from"`
	Body         string  `json:"body"`
	DateCreated  string  `json:"date_created"`
	ErrorCode    *int    `json:"error_code"`
	ErrorMessage *string `json:"error_message"`
}

// apiError is Twilio's error body.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func (s *Sender) messagesURL() string {
	return s.cfg.BaseURL + "/2010-04-01/Accounts/" + url.PathEscape(s.cfg.AccountSID) + "/Messages.json"
}

// Send implements notify.Sender.
func (s *Sender) Send(ctx context.Context, m *notify.Message) (notify.Receipt, bool, error) {
	if m.To.Phone == "" {
		return notify.Receipt{}, false, errors.New("twilio: no recipient number")
	}
	form := url.Values{"To": {m.To.Phone}, "Body": {m.SMS}}
	if s.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", s.cfg.MessagingServiceSID)
	} else {
		form.Set("From", s.cfg.From)
	}
	if s.cfg.StatusCallback != "" {
		form.Set("StatusCallback", s.cfg.StatusCallback)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.messagesURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return notify.Receipt{}, false, fmt.Errorf("twilio: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var msg Message
	status, retry, err := s.do(req, &msg)
	if err != nil {
		return notify.Receipt{}, retry, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return notify.Receipt{}, true, fmt.Errorf("twilio: unexpected status %d", status)
	}
	if msg.Status == "failed" || msg.Status == "undelivered" {
		return notify.Receipt{MessageID: msg.SID}, false, fmt.Errorf("twilio: message %s %s", msg.SID, msg.Status)
	}
	return notify.Receipt{MessageID: msg.SID}, false, nil
}

// Find implements notify.Reconciler: a message to the same number, created
// since the delivery's first attempt (less a minute of clock skew), with
// the same body.
func (s *Sender) Find(ctx context.Context, m *notify.Message) (notify.Receipt, bool, error) {
	q := url.Values{"To": {m.To.Phone}, "PageSize": {"50"}}
	if s.cfg.From != "" {
		q.Set("From", s.cfg.From)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.messagesURL()+"?"+q.Encode(), nil)
	if err != nil {
		return notify.Receipt{}, false, fmt.Errorf("twilio: %w", err)
	}
	var page struct {
		Messages []Message `json:"messages"`
	}
	if _, _, err := s.do(req, &page); err != nil {
		return notify.Receipt{}, false, err
	}
	since := m.FirstAttemptAt.Add(-time.Minute)
	for _, x := range page.Messages {
		created, err := time.Parse(time.RFC1123Z, x.DateCreated)
		if err != nil || created.Before(since) {
			continue
		}
		if x.Body == m.SMS && x.Status != "failed" && x.Status != "undelivered" && x.Status != "canceled" {
			return notify.Receipt{MessageID: x.SID}, true, nil
		}
	}
	return notify.Receipt{}, false, nil
}

// do sends req with basic auth and decodes a 2xx JSON answer into out. It
// returns the status, and for failures whether they are worth retrying.
func (s *Sender) do(req *http.Request, out any) (int, bool, error) {
	req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return 0, true, notify.HTTPFailure(fmt.Errorf("twilio: %w", err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, true, fmt.Errorf("twilio: answer: %w", err)
		}
		return resp.StatusCode, false, nil
	}
	var ae apiError
	_ = json.Unmarshal(raw, &ae)
	err = fmt.Errorf("twilio: %s: error %d: %s", resp.Status, ae.Code, ae.Message)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return resp.StatusCode, true, err
	case notify.RetryableStatus(resp.StatusCode):
		if d := notify.RetryAfterHeader(resp.Header.Get("Retry-After"), s.cfg.Now()); d > 0 {
			return resp.StatusCode, true, &notify.RetryAfterError{After: d, Err: err}
		}
		return resp.StatusCode, true, err
	}
	return resp.StatusCode, false, err
}
