package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/meterd/meterd/alerts"
)

// Defaults of Config.
const (
	DefaultMaxAttempts   = 8
	DefaultBackoff       = 30 * time.Second
	DefaultMaxBackoff    = time.Hour
	DefaultSendTimeout   = 20 * time.Second
	DefaultQueueLease    = 5 * time.Minute
	DefaultBatch         = 200
	DefaultBreakerTrip   = 5
	DefaultBreakerOpen   = 30 * time.Second
	DefaultMessageDomain = "meterd.invalid"
)

// Config configures the engine. Zero values take the documented defaults.
type Config struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// PublicURL is the base of links in messages (verification links,
	// bills, tickets). Default "http://localhost:8080".
	PublicURL string
	// LinkPaths maps an event to the path (under PublicURL) of its action
	// link, with "{key}" replaced by the payload's key ("/bills/{bill_id}").
	// Events not listed get no link, except account.verify_email, whose
	// link is PublicURL + link_path + token. Default DefaultLinkPaths.
	LinkPaths map[string]string
	// From is the default email sender ("meterd <noreply@example.com>");
	// a tenant's branding overrides it. Default "meterd <noreply@localhost>".
	From string
	// MessageIDDomain is the right part of email Message-IDs. Default
	// "meterd.invalid".
	MessageIDDomain string
	// MaxAttempts per channel before a delivery becomes a dead letter.
	// Default 8 for every channel.
	MaxAttempts map[alerts.Channel]int
	// Backoff is the delay before the second attempt; it doubles per
	// attempt up to MaxBackoff, with ±20 % jitter. Defaults 30 s and 1 h.
	Backoff, MaxBackoff time.Duration
	// SendTimeout bounds one provider call (render and attachments
	// included). Default 20 s.
	SendTimeout time.Duration
	// QueueLease is how long a queued delivery waits for its job before it
	// is queued again (a stale job, should it still run, finds its token
	// gone and does nothing). The sending lease is SendTimeout +
	// QueueLease: a live worker never outlasts it, a dead one's delivery
	// is retried (in doubt) after it. Default 5 min.
	QueueLease time.Duration
	// Batch is how many outbox rows and deliveries one pump takes. Default
	// 200.
	Batch int
	// BreakerTrip is the number of consecutive failed calls after which a
	// provider's circuit opens; BreakerOpen how long it stays open before
	// one probe is let through. Defaults 5 and 30 s.
	BreakerTrip int
	BreakerOpen time.Duration
	// Logger logs dead letters, lost leases and breaker changes. Default:
	// discard.
	Logger *slog.Logger
}

// DefaultLinkPaths are the action links of the events.
func DefaultLinkPaths() map[string]string {
	return map[string]string{
		alerts.EventBillIssued:          "/bills/{bill_id}",
		alerts.EventBillDueSoon:         "/bills/{bill_id}",
		alerts.EventPaymentReminder:     "/bills/{bill_id}",
		alerts.EventPaymentEscalation:   "/bills/{bill_id}",
		alerts.EventPaymentSucceeded:    "/payments/{payment_id}",
		alerts.EventTicketCreated:       "/support/tickets/{ticket_id}",
		alerts.EventTicketAssigned:      "/support/tickets/{ticket_id}",
		alerts.EventTicketStatusChanged: "/support/tickets/{ticket_id}",
		alerts.EventTicketComment:       "/support/tickets/{ticket_id}",
		alerts.EventUsageAbnormal:       "/alerts/{alert_id}",
		alerts.EventMeterAlert:          "/alerts/{alert_id}",
		alerts.EventBillRunSummary:      "/billing/runs/{run_id}",
	}
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://localhost:8080"
	}
	if c.LinkPaths == nil {
		c.LinkPaths = DefaultLinkPaths()
	}
	if c.From == "" {
		c.From = "meterd <noreply@localhost>"
	}
	if c.MessageIDDomain == "" {
		c.MessageIDDomain = DefaultMessageDomain
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.QueueLease == 0 {
		c.QueueLease = DefaultQueueLease
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.BreakerTrip == 0 {
		c.BreakerTrip = DefaultBreakerTrip
	}
	if c.BreakerOpen == 0 {
		c.BreakerOpen = DefaultBreakerOpen
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("notify: public URL %q must be an absolute http(s) URL", c.PublicURL))
		}
	}
	for ch, n := range c.MaxAttempts {
		if _, err := alerts.ParseChannel(string(ch)); err != nil || n < 1 || n > 100 {
			errs = append(errs, fmt.Errorf("notify: max attempts for %q must be 1–100", ch))
		}
	}
	for name, d := range map[string]time.Duration{"backoff": c.Backoff, "max backoff": c.MaxBackoff, "send timeout": c.SendTimeout, "queue lease": c.QueueLease, "breaker open": c.BreakerOpen} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("notify: %s must not be negative", name))
		}
	}
	if c.Backoff > 0 && c.MaxBackoff > 0 && c.MaxBackoff < c.Backoff {
		errs = append(errs, errors.New("notify: max backoff is below the backoff"))
	}
	if c.Batch < 0 || c.BreakerTrip < 0 {
		errs = append(errs, errors.New("notify: batch and breaker trip must not be negative"))
	}
	return errors.Join(errs...)
}
