package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/meterd/meterd/alerts"
)

// Sender delivers rendered messages on one channel through one provider.
// Send follows Alertmanager's notifier contract: it returns whether a
// failure is worth retrying; (false, err) means the provider refused the
// message for good (an invalid number, an unregistered device) and the
// delivery becomes a dead letter at once. Send must honour ctx's deadline
// and be safe for concurrent use.
type Sender interface {
	// Provider names the provider ("smtp", "twilio", "fcm", "webhook",
	// "log"); it labels metrics and the breaker and is stored with each
	// attempt.
	Provider() string
	Channel() alerts.Channel
	Send(ctx context.Context, m *Message) (Receipt, bool, error)
}

// Reconciler is implemented by senders that can ask their provider
// whether a message was already accepted. The engine calls Find before
// re-sending a delivery whose previous attempt is in doubt (its worker
// died after calling the provider but before recording the outcome).
type Reconciler interface {
	Find(ctx context.Context, m *Message) (Receipt, bool, error)
}

// Receipt is what a provider returns for an accepted message.
type Receipt struct {
	// MessageID is the provider's id (Twilio SID, FCM message name, the
	// SMTP server's queue id when it gives one, the Message-ID otherwise).
	MessageID string
	// Duplicate is true when the provider recognised the idempotency key
	// and answered with the original message instead of sending again.
	Duplicate bool
}

// Message is one rendered notification for one recipient on one channel.
type Message struct {
	DeliveryID     int64
	NotificationID int64
	Attempt        int
	// IdempotencyKey is stable across the delivery's attempts: the
	// webhook's Idempotency-Key header, the FCM collapse key and tag.
	IdempotencyKey string
	// MessageID is the email Message-ID (without angle brackets), stable
	// across attempts: idempotency key @ the configured domain.
	MessageID string
	Channel   alerts.Channel
	Event     string
	Tenant    string // tenant code
	Locale    string
	// FirstAttemptAt is when the first recorded attempt started (or the
	// delivery was created); reconcilers
	// search the provider's records from it.
	FirstAttemptAt time.Time

	To Address
	// From and ReplyTo are email addresses (From may be "Name <addr>").
	From    string
	ReplyTo string

	Subject   string
	Text      string
	HTML      string
	SMS       string
	PushTitle string
	PushBody  string
	// Link is the action link (push click action).
	Link string
	// Data are string pairs for push payloads (event, ids).
	Data        map[string]string
	Attachments []Attachment
}

// Address is where a message goes; only the channel's field is set.
type Address struct {
	Name     string
	Email    string
	Phone    string // E.164
	Token    string // push registration token
	Platform string // android | ios | web
}

// Attachment is a file attached to an email.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// RetryAfterError is a retryable failure whose provider said when to try
// again (HTTP 429/503 Retry-After, FCM QUOTA_EXCEEDED).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

// Unwrap returns the cause.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// ErrUnregistered is wrapped by push senders when the provider says the
// device token is gone for good; the engine disables the device.
var ErrUnregistered = errors.New("push token unregistered")

// ErrProviderUnavailable is wrapped by the failure of an attempt the
// circuit breaker refused without calling the provider.
var ErrProviderUnavailable = errors.New("provider circuit open")

// RetryAfterHeader parses an HTTP Retry-After value (seconds or an HTTP
// date) relative to now; 0 when absent or unparsable.
func RetryAfterHeader(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// RetryableStatus reports whether an HTTP status from a provider is worth
// retrying: 408, 425, 429 and 5xx. Other 4xx refuse the message for good.
func RetryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500
}

// errAmbiguous marks a failure after which the provider may or may not
// have the message (a timeout or a broken connection once the request was
// written).
type errAmbiguous struct{ error }

func (e errAmbiguous) Unwrap() error { return e.error }

// Ambiguous wraps err as a failure of unknown outcome: the next attempt
// of the delivery is in doubt and reconciles before sending (Reconciler)
// or relies on the provider's idempotency.
func Ambiguous(err error) error { return errAmbiguous{err} }

// IsAmbiguous reports whether err is (or wraps) an Ambiguous failure.
func IsAmbiguous(err error) bool {
	var a errAmbiguous
	return errors.As(err, &a)
}

// HTTPFailure classifies the error of an HTTP client call: a failure to
// dial means the request never left (retry, not in doubt); anything later
// (a timeout, a reset) leaves the outcome unknown.
func HTTPFailure(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return err
	}
	return Ambiguous(err)
}
