package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/notify"
)

// TLS modes.
const (
	TLSMandatory     = "mandatory"     // STARTTLS required (default)
	TLSOpportunistic = "opportunistic" // STARTTLS when offered
	TLSImplicit      = "implicit"      // TLS from the first byte (SMTPS, port 465)
	TLSNone          = "none"          // plain text (loopback sinks only)
)

// Config configures the SMTP sender.
type Config struct {
	// Host and Port of the SMTP server (submission). Port default 587,
	// or 465 with TLSImplicit.
	Host string
	Port int
	// TLS is mandatory (default), opportunistic, implicit or none.
	TLS string
	// ServerName overrides the name the certificate is checked against;
	// RootCAs, when set, replaces the system roots (tests, private CAs).
	ServerName string
	RootCAs    *x509.CertPool
	// Username and Password enable SMTP AUTH with Auth (plain, login,
	// cram-md5, or auto: the strongest the server offers; default auto).
	Username, Password string
	Auth               string
	// HELO is the name sent in EHLO. Default the OS host name.
	HELO string
	// Timeout bounds connecting and each SMTP command. Default 15 s.
	Timeout time.Duration
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("email: SMTP host is required"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("email: SMTP port %d is out of range", c.Port))
	}
	switch c.TLS {
	case "", TLSMandatory, TLSOpportunistic, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("email: TLS mode %q is not mandatory, opportunistic, implicit or none", c.TLS))
	}
	switch c.Auth {
	case "", "auto", "plain", "login", "cram-md5":
	default:
		errs = append(errs, fmt.Errorf("email: auth %q is not plain, login, cram-md5 or auto", c.Auth))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, errors.New("email: set both SMTP username and password, or neither"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("email: timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// Sender is the SMTP notify.Sender.
type Sender struct {
	cfg  Config
	opts []gomail.Option
}

var _ notify.Sender = (*Sender)(nil)

// New returns an SMTP sender.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSMandatory
	}
	if cfg.Port == 0 {
		cfg.Port = 587
		if cfg.TLS == TLSImplicit {
			cfg.Port = 465
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(cfg.Timeout)}
	tc := &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if cfg.ServerName != "" {
		tc.ServerName = cfg.ServerName
	}
	switch cfg.TLS {
	case TLSMandatory:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithTLSConfig(tc))
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic), gomail.WithTLSConfig(tc))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSConfig(tc))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.Username != "" {
		mech := gomail.SMTPAuthAutoDiscover
		switch cfg.Auth {
		case "plain":
			mech = gomail.SMTPAuthPlain
		case "login":
			mech = gomail.SMTPAuthLogin
		case "cram-md5":
			mech = gomail.SMTPAuthCramMD5
		}
		opts = append(opts, gomail.WithSMTPAuth(mech), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	return &Sender{cfg: cfg, opts: opts}, nil
}

// Provider implements notify.Sender.
func (s *Sender) Provider() string { return "smtp" }

// Channel implements notify.Sender.
func (s *Sender) Channel() alerts.Channel { return alerts.ChannelEmail }

// Build returns the MIME message for m (exported for the dev sink and
// tests).
func Build(m *notify.Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return nil, fmt.Errorf("email from %q: %w", m.From, err)
	}
	msg.FromMailAddress(from)
	if m.To.Name != "" {
		err = msg.AddToFormat(m.To.Name, m.To.Email)
	} else {
		err = msg.To(m.To.Email)
	}
	if err != nil {
		return nil, fmt.Errorf("email to: %w", err)
	}
	if m.ReplyTo != "" {
		if err := msg.ReplyTo(m.ReplyTo); err != nil {
			return nil, fmt.Errorf("email reply-to: %w", err)
		}
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.MessageID)
	msg.SetDate()
	// RFC 3834: automatic replies must not answer this.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Meterd-Event", m.Event)
	msg.SetGenHeader("X-Meterd-Delivery", strconv.FormatInt(m.DeliveryID, 10))
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	for _, a := range m.Attachments {
		ct := gomail.ContentType(a.ContentType)
		if ct == "" {
			ct = gomail.TypeAppOctetStream
		}
		if err := msg.AttachReader(a.Name, bytes.NewReader(a.Data), gomail.WithFileContentType(ct)); err != nil {
			return nil, fmt.Errorf("email attachment %s: %w", a.Name, err)
		}
	}
	return msg, nil
}

// Send implements notify.Sender: one SMTP transaction per message.
// Temporary (4xx) replies and connection failures are retried; a 5xx reply
// to RCPT or to the message itself is a refusal for good.
func (s *Sender) Send(ctx context.Context, m *notify.Message) (notify.Receipt, bool, error) {
	if m.To.Email == "" {
		return notify.Receipt{}, false, errors.New("email: no recipient address")
	}
	msg, err := Build(m)
	if err != nil {
		return notify.Receipt{}, false, err
	}
	c, err := gomail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return notify.Receipt{}, false, fmt.Errorf("email client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		err = fmt.Errorf("smtp %s: %w", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)), err)
		if ambiguous(err) {
			err = notify.Ambiguous(err)
		}
		return notify.Receipt{}, retryable(err), err
	}
	return notify.Receipt{MessageID: "<" + m.MessageID + ">"}, false, nil
}

// ambiguous reports whether the server may have accepted the message: the
// connection failed after the message was written, before its reply.
func ambiguous(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && se.Reason == gomail.ErrSMTPDataClose && se.ErrorCode() == 0
}

// retryable classifies an SMTP failure.
func retryable(err error) bool {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return true // dial, TLS, auth: the server's problem
	}
	if se.IsTemp() {
		return true
	}
	switch se.Reason {
	case gomail.ErrGetRcpts, gomail.ErrGetSender, gomail.ErrNoUnencoded:
		return false // the message itself is unusable
	case gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		// A 5xx reply refuses this recipient or message for good; a broken
		// connection (no reply code) is worth another try.
		code := se.ErrorCode()
		return code < 500 || code > 599
	}
	return true
}
