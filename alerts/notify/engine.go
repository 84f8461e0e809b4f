package notify

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/template"
)

// Opener opens values sealed with AES-GCM under the keyring (contact
// details, push tokens, outbox secrets). cmd hands in api/keyring's Ring.
type Opener interface {
	Open(sealed []byte, aad string) ([]byte, error)
}

// Bills tells whether a bill is settled (paid or cancelled), so reminders
// for it are cancelled. Billing's tables implement it (alerts/postgres);
// nil: no bill is ever settled.
type Bills interface {
	BillSettled(ctx context.Context, tenantID, billID int64) (bool, error)
}

// Documents renders the PDF of a bill for bill.issued emails. Billing
// implements it; nil: bill emails go without the PDF.
type Documents interface {
	BillPDF(ctx context.Context, tenantID, billID int64) (Attachment, error)
}

// AADs of the sealed values the engine opens: the schema's contract
// (migrations 300 and 500).
func profileAAD(column string, userID int64) string {
	return "user_profiles." + column + ":" + strconv.FormatInt(userID, 10)
}

// DeviceAAD is the additional data a push token is sealed with.
func DeviceAAD(tokenHash []byte) string {
	return "push_devices.token_enc:" + hex.EncodeToString(tokenHash)
}

func secretAAD(dedupeKey string) string { return "notification_outbox.secret:" + dedupeKey }

// Deps are the engine's collaborators.
type Deps struct {
	Store     Store
	Templates *template.Set
	Opener    Opener
	// Senders: at most one per channel. A channel without a sender is not
	// planned (as if nobody had an address on it).
	Senders   []Sender
	Bills     Bills
	Documents Documents
	Metrics   *Metrics
}

// Engine fans out the outbox and delivers messages.
type Engine struct {
	cfg     Config
	d       Deps
	planner Planner
	senders map[alerts.Channel]*guarded
}

// New returns an engine.
func New(cfg Config, d Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if d.Store == nil || d.Templates == nil || d.Opener == nil {
		return nil, errors.New("notify: store, templates and opener are required")
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	e := &Engine{cfg: cfg, d: d, senders: map[alerts.Channel]*guarded{}}
	e.planner = Planner{Available: map[alerts.Channel]bool{}, MaxAttempts: cfg.MaxAttempts}
	for _, s := range d.Senders {
		c := s.Channel()
		if _, dup := e.senders[c]; dup {
			return nil, fmt.Errorf("notify: two senders for %s", c)
		}
		e.senders[c] = newGuarded(s, cfg, d.Metrics)
		e.planner.Available[c] = true
	}
	return e, nil
}

// Channels lists the channels with a sender.
func (e *Engine) Channels() []alerts.Channel {
	var out []alerts.Channel
	for _, c := range alerts.Channels() {
		if e.planner.Available[c] {
			out = append(out, c)
		}
	}
	return out
}

// BreakerStates reports each provider's circuit: closed, half-open, open.
func (e *Engine) BreakerStates() map[string]string {
	out := map[string]string{}
	for _, g := range e.senders {
		out[g.s.Provider()] = g.cb.State().String()
	}
	return out
}

// PumpStats says what one pump did.
type PumpStats struct {
	Claimed int   // outbox rows fanned out
	Jobs    []Job // deliveries queued: insert a job for each
}

// Pump fans out pending outbox rows into deliveries and queues the
// deliveries that are due (or whose lease ended). The caller inserts a
// delivery job for each returned Job; if it dies first, the queue lease
// ends and the next pump queues them again.
func (e *Engine) Pump(ctx context.Context) (PumpStats, error) {
	now := e.cfg.Now().UTC()
	var st PumpStats
	for {
		n, err := e.d.Store.FanOut(ctx, now, e.cfg.Batch, func(row Outbox, rs []Recipient) []NewDelivery {
			return e.planner.Plan(row, rs, now)
		})
		if err != nil {
			return st, fmt.Errorf("notify fan-out: %w", err)
		}
		st.Claimed += n
		e.d.Metrics.fanout.Add(float64(n))
		if n < e.cfg.Batch {
			break
		}
	}
	jobs, err := e.d.Store.Queue(ctx, now, e.cfg.QueueLease, e.cfg.Batch)
	if err != nil {
		return st, fmt.Errorf("notify queue: %w", err)
	}
	st.Jobs = jobs
	return st, nil
}

// Deliver makes one attempt of the delivery a job names and records its
// outcome. It returns the outcome ("" for a stale job whose token lost the
// lease) and an error only when the outcome could not be recorded.
func (e *Engine) Deliver(ctx context.Context, job Job) (Outcome, error) {
	start := e.cfg.Now().UTC()
	lease := e.cfg.SendTimeout + e.cfg.QueueLease
	w, ok, err := e.d.Store.Lease(ctx, job.DeliveryID, job.Token, start, lease)
	if err != nil {
		return "", fmt.Errorf("notify lease %d: %w", job.DeliveryID, err)
	}
	if !ok {
		return "", nil
	}
	r := e.attempt(ctx, w, start)
	r.Attempt, r.StartedAt, r.Now = w.Attempt, start, e.cfg.Now().UTC()
	ok, err = e.d.Store.Finish(ctx, w.DeliveryID, job.Token, r)
	if err != nil {
		return r.Outcome, fmt.Errorf("notify finish %d: %w", w.DeliveryID, err)
	}
	if !ok {
		e.cfg.Logger.Warn("notification lease lost before the outcome was recorded", "delivery", w.DeliveryID, "outcome", r.Outcome)
		return "", nil
	}
	e.d.Metrics.outcomes.WithLabelValues(string(w.Channel), r.Provider, string(r.Outcome)).Inc()
	switch r.Outcome {
	case OutcomeFailed:
		e.cfg.Logger.Warn("notification dead letter", "delivery", w.DeliveryID, "notification", w.OutboxID, "event", w.Event,
			"channel", w.Channel, "attempts", w.Attempt, "error", r.Error)
	case OutcomeReconciled:
		e.cfg.Logger.Info("in-doubt notification found at the provider; not sent again", "delivery", w.DeliveryID, "provider_id", r.ProviderMessageID)
	}
	return r.Outcome, nil
}

// attempt runs one attempt and returns its result (without the times).
func (e *Engine) attempt(ctx context.Context, w Work, start time.Time) Result {
	g := e.senders[w.Channel]
	if g == nil {
		return Result{Outcome: OutcomeFailed, Called: true, Error: fmt.Sprintf("no %s provider is configured", w.Channel)}
	}
	r := Result{Provider: g.s.Provider()}
	spec, _ := alerts.LookupEvent(w.Event)
	if spec.SettledCancels && e.d.Bills != nil {
		if billID, _ := strconv.ParseInt(payloadString(w.Payload, "bill_id"), 10, 64); billID > 0 {
			settled, err := e.d.Bills.BillSettled(ctx, w.TenantID, billID)
			if err != nil {
				return e.retry(w, r, start, fmt.Errorf("check bill %d: %w", billID, err), false)
			}
			if settled {
				r.Outcome, r.Error = OutcomeCancelled, fmt.Sprintf("bill %d is settled", billID)
				return r
			}
		}
	}
	if w.Channel == alerts.ChannelPush && (w.DeviceDisabled || w.DeviceTokenSealed == nil) {
		r.Outcome, r.Error = OutcomeCancelled, "push device removed"
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
	defer cancel()
	m, hint, err := e.compose(ctx, w)
	r.AddressHint = hint
	if err != nil {
		var tmp temporary
		if errors.Is(err, ErrNoAddress) {
			r.Outcome, r.Error = OutcomeCancelled, err.Error()
			return r
		}
		if errors.As(err, &tmp) {
			return e.retry(w, r, start, err, true)
		}
		r.Outcome, r.Called, r.Error = OutcomeFailed, true, err.Error()
		return r
	}
	if w.InDoubt {
		if rc, ok := g.s.(Reconciler); ok {
			rec, found, err := rc.Find(ctx, m)
			switch {
			case err != nil:
				// Unknown whether it went: sending again could duplicate it.
				r.InDoubt = true
				return e.retry(w, r, start, fmt.Errorf("reconcile in-doubt attempt: %w", err), true)
			case found:
				r.Outcome, r.Called, r.ProviderMessageID = OutcomeReconciled, true, rec.MessageID
				return r
			}
		}
	}
	rec, retry, err := g.send(ctx, m)
	r.Called = true
	if err == nil {
		r.Outcome, r.ProviderMessageID = OutcomeSent, rec.MessageID
		return r
	}
	if errors.Is(err, ErrUnregistered) {
		r.DisableDevice = true
	}
	r.InDoubt = IsAmbiguous(err)
	if !retry {
		r.Outcome, r.Error = OutcomeFailed, err.Error()
		return r
	}
	return e.retry(w, r, start, err, true)
}

// retry returns a retry result, or a dead letter after the last attempt.
func (e *Engine) retry(w Work, r Result, now time.Time, err error, called bool) Result {
	r.Called = called
	r.Error = err.Error()
	if called && w.Attempt >= w.MaxAttempts {
		r.Outcome = OutcomeFailed
		r.Error = fmt.Sprintf("gave up after %d attempts: %v", w.Attempt, err)
		return r
	}
	delay := e.backoff(w.DeliveryID, w.Attempt)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > delay {
		delay = min(ra.After, e.cfg.MaxBackoff)
	}
	next := now.Add(delay)
	if w.Channel.Rings() {
		spec, _ := alerts.LookupEvent(w.Event)
		if !spec.Urgent {
			if rel := w.Quiet.Release(next, w.Tenant.Zone); rel.After(next) {
				next, r.DeferredReason = rel, "quiet_hours"
			}
		}
	}
	r.Outcome, r.NextAttemptAt = OutcomeRetry, next
	return r
}

// backoff is Backoff × 2^(attempt−1), at most MaxBackoff, ±20 % jitter
// drawn from the delivery and attempt (so it is reproducible).
func (e *Engine) backoff(id int64, attempt int) time.Duration {
	d := e.cfg.Backoff
	for i := 1; i < attempt && d < e.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, e.cfg.MaxBackoff)
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d", id, attempt)
	f := 0.8 + 0.4*float64(h.Sum64()%1000)/1000
	return time.Duration(float64(d) * f)
}

// temporary marks a compose failure worth retrying (a bill PDF that did
// not render this time).
type temporary struct{ error }

func (t temporary) Unwrap() error { return t.error }

// ErrNoAddress is returned when the recipient has no address on the
// delivery's channel any more (it was removed after the fan-out).
var ErrNoAddress = errors.New("no address on this channel")

// compose opens the recipient's address and renders the message.
func (e *Engine) compose(ctx context.Context, w Work) (*Message, string, error) {
	m := &Message{
		DeliveryID: w.DeliveryID, NotificationID: w.OutboxID, Attempt: w.Attempt,
		IdempotencyKey: w.IdempotencyKey, MessageID: w.IdempotencyKey + "@" + e.cfg.MessageIDDomain,
		Channel: w.Channel, Event: w.Event, Tenant: w.Tenant.Code, FirstAttemptAt: w.FirstAttemptAt,
		From: e.cfg.From,
	}
	var hint string
	switch w.Channel {
	case alerts.ChannelEmail:
		addr := w.LoginEmail
		if w.UserID == 0 {
			addr = payloadString(w.Payload, "email")
		} else if w.EmailSealed != nil {
			v, err := e.d.Opener.Open(w.EmailSealed, profileAAD("email_enc", w.UserID))
			if err != nil {
				return nil, "", fmt.Errorf("open contact email: %w", err)
			}
			if s := strings.TrimSpace(string(v)); s != "" {
				addr = s
			}
		}
		if addr == "" {
			return nil, "", ErrNoAddress
		}
		m.To.Email, hint = addr, MaskEmail(addr)
	case alerts.ChannelSMS:
		if w.PhoneSealed == nil {
			return nil, "", ErrNoAddress
		}
		v, err := e.d.Opener.Open(w.PhoneSealed, profileAAD("phone_enc", w.UserID))
		if err != nil {
			return nil, "", fmt.Errorf("open contact phone: %w", err)
		}
		if strings.TrimSpace(string(v)) == "" {
			return nil, "", ErrNoAddress
		}
		m.To.Phone = strings.TrimSpace(string(v))
		hint = MaskPhone(m.To.Phone)
	case alerts.ChannelPush:
		v, err := e.d.Opener.Open(w.DeviceTokenSealed, DeviceAAD(w.DeviceTokenHash))
		if err != nil {
			return nil, "", fmt.Errorf("open push token: %w", err)
		}
		m.To.Token, m.To.Platform = string(v), w.DevicePlatform
		hint = fmt.Sprintf("%s device #%d", w.DevicePlatform, w.DeviceID)
	}
	m.To.Name = w.Name

	data := template.Data{Recipient: template.Recipient{Name: w.Name, Role: w.Role}, Zone: w.Tenant.Zone, Currency: w.Tenant.Currency}
	data.Tenant = template.Branding{Name: w.Tenant.Name, Color: "#1f6feb"}
	tenantLocale := ""
	if b := w.Branding; b != nil {
		if b.DisplayName != "" {
			data.Tenant.Name = b.DisplayName
		}
		data.Tenant.SupportEmail, data.Tenant.SupportPhone = b.SupportEmail, b.SupportPhone
		data.Tenant.WebsiteURL, data.Tenant.LogoURL, data.Tenant.Footer = b.WebsiteURL, b.LogoURL, b.Footer
		if b.Color != "" {
			data.Tenant.Color = b.Color
		}
		if b.FromAddress != "" {
			m.From = data.Tenant.Name + " <" + b.FromAddress + ">"
		}
		m.ReplyTo = b.ReplyTo
		tenantLocale = b.DefaultLocale
	}
	dec := json.NewDecoder(strings.NewReader(string(w.Payload)))
	dec.UseNumber()
	if err := dec.Decode(&data.P); err != nil {
		return nil, hint, fmt.Errorf("payload of %s: %w", w.Event, err)
	}
	link, err := e.link(w)
	if err != nil {
		return nil, hint, err
	}
	data.Link, m.Link = link, link

	have := map[string]bool{}
	for l := range w.Overrides {
		have[l] = true
	}
	locale := e.d.Templates.Pick(w.Event, template.Locales(w.Locale, tenantLocale), have)
	out, err := e.d.Templates.Render(w.Event, locale, w.Overrides[locale], data)
	if err != nil {
		return nil, hint, err
	}
	m.Locale = locale
	m.Subject, m.Text, m.HTML, m.SMS, m.PushTitle, m.PushBody = out.Subject, out.Text, out.HTML, out.SMS, out.PushTitle, out.PushBody
	m.Data = map[string]string{"event": w.Event, "notification_id": strconv.FormatInt(w.OutboxID, 10)}
	for _, k := range []string{"bill_id", "ticket_id", "alert_id", "payment_id", "run_id"} {
		if v := payloadString(w.Payload, k); v != "" {
			m.Data[k] = v
		}
	}
	if link != "" {
		m.Data["link"] = link
	}

	spec, _ := alerts.LookupEvent(w.Event)
	if spec.AttachBillPDF && w.Channel == alerts.ChannelEmail && e.d.Documents != nil {
		billID, _ := strconv.ParseInt(payloadString(w.Payload, "bill_id"), 10, 64)
		if billID > 0 {
			a, err := e.d.Documents.BillPDF(ctx, w.TenantID, billID)
			if err != nil {
				return nil, hint, temporary{fmt.Errorf("bill %d PDF: %w", billID, err)}
			}
			m.Attachments = append(m.Attachments, a)
		}
	}
	return m, hint, nil
}

var linkKey = regexp.MustCompile(`\{([a-z_]+)\}`)

// link returns the action link of a message.
func (e *Engine) link(w Work) (string, error) {
	base := strings.TrimRight(e.cfg.PublicURL, "/")
	if w.Event == alerts.EventVerifyEmail {
		if w.Secret == nil {
			return "", errors.New("verification email without its token")
		}
		tok, err := e.d.Opener.Open(w.Secret, secretAAD(w.DedupeKey))
		if err != nil {
			return "", fmt.Errorf("open verification token: %w", err)
		}
		return base + payloadString(w.Payload, "link_path") + url.QueryEscape(string(tok)), nil
	}
	p, ok := e.cfg.LinkPaths[w.Event]
	if !ok {
		return "", nil
	}
	missing := false
	p = linkKey.ReplaceAllStringFunc(p, func(k string) string {
		v := payloadString(w.Payload, k[1:len(k)-1])
		if v == "" {
			missing = true
		}
		return url.PathEscape(v)
	})
	if missing {
		return "", nil
	}
	return base + p, nil
}

// MaskEmail shows an address's first letter and domain: a***@example.com.
func MaskEmail(s string) string {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" {
		return "***"
	}
	return local[:1] + "***@" + domain
}

// MaskPhone shows a number's country prefix and last four digits.
func MaskPhone(s string) string {
	if len(s) <= 6 {
		return "***"
	}
	head := 3
	if !strings.HasPrefix(s, "+") {
		head = 0
	}
	return s[:head] + strings.Repeat("*", len(s)-head-4) + s[len(s)-4:]
}
