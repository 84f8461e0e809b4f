package devsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPConfig configures the SMTP sink.
type SMTPConfig struct {
	// Addr is the listen address. Default "127.0.0.1:0" (a free port).
	Addr string
	// Username and Password, when set, are required (AUTH PLAIN).
	Username, Password string
	// TLS, when set, enables STARTTLS with this configuration.
	TLS *tls.Config
	// Logger logs each message's recipients and subject. Default: discard.
	Logger *slog.Logger
}

// SMTP is an SMTP server that captures messages into a Log. It is a
// lifecycle component (Start, Stop).
type SMTP struct {
	cfg SMTPConfig
	log *Log
	srv *smtp.Server
	ln  net.Listener
	wg  sync.WaitGroup

	mu     sync.Mutex
	reject func(rcpt string) error
	accept func(c Captured)
}

// NewSMTP returns an SMTP sink writing into log.
func NewSMTP(cfg SMTPConfig, log *Log) *SMTP {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &SMTP{cfg: cfg, log: log}
}

// Reject makes the sink answer every RCPT with fn's error (a
// *smtp.SMTPError: 421/451 are temporary, 550 permanent) until it is
// called with nil. Tests use it to play an outage.
func (s *SMTP) Reject(fn func(rcpt string) error) {
	s.mu.Lock()
	s.reject = fn
	s.mu.Unlock()
}

// OnAccept calls fn after each message is captured and before the server
// answers the end of DATA (tests use it to stop a client right there).
func (s *SMTP) OnAccept(fn func(c Captured)) {
	s.mu.Lock()
	s.accept = fn
	s.mu.Unlock()
}

// Start listens and serves in the background.
func (s *SMTP) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("smtp sink: %w", err)
	}
	s.ln = ln
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = s.cfg.TLS == nil
	srv.TLSConfig = s.cfg.TLS
	srv.MaxMessageBytes = 25 << 20
	srv.MaxRecipients = 50
	srv.ErrorLog = discardLogger{}
	s.srv = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(ln) // returns when closed
	}()
	return nil
}

// Stop closes the listener and open sessions.
func (s *SMTP) Stop(context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.wg.Wait()
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	return err
}

// Addr returns the listen address (host:port).
func (s *SMTP) Addr() string { return s.ln.Addr().String() }

// Port returns the listen port.
func (s *SMTP) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

type session struct {
	s      *SMTP
	authed bool
	from   string
	rcpts  []string
}

func (x *session) AuthMechanisms() []string {
	if x.s.cfg.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != x.s.cfg.Username || pass != x.s.cfg.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		x.authed = true
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.cfg.Username != "" && !x.authed {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	reject := x.s.reject
	x.s.mu.Unlock()
	if reject != nil {
		if err := reject(to); err != nil {
			return err
		}
	}
	x.rcpts = append(x.rcpts, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	c, err := Parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unparsable message: " + err.Error()}
	}
	c.To = append([]string(nil), x.rcpts...)
	c.Channel, c.Provider = "email", "smtp-sink"
	c = x.s.log.Add(c)
	x.s.cfg.Logger.Info("dev email captured", "to", strings.Join(c.To, ","), "subject", c.Subject, "attachments", len(c.Attachments), "seq", c.Seq)
	x.s.mu.Lock()
	accept := x.s.accept
	x.s.mu.Unlock()
	if accept != nil {
		accept(c)
	}
	return nil
}

func (x *session) Reset() { x.from, x.rcpts = "", nil }

func (x *session) Logout() error { return nil }

// Parse reads an RFC 5322 message: headers, the text and HTML parts and
// the attachments (multipart/mixed and multipart/alternative, base64 and
// quoted-printable as Go's multipart reader decodes them).
func Parse(raw []byte) (Captured, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Captured{}, err
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	c := Captured{From: msg.Header.Get("From"), Subject: subject, MessageID: msg.Header.Get("Message-Id"), Raw: raw, Headers: map[string]string{}}
	for k, v := range msg.Header {
		if len(v) > 0 {
			c.Headers[k] = v[0]
		}
	}
	if err := walk(&c, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body); err != nil {
		return c, err
	}
	return c, nil
}

func walk(c *Captured, contentType, encoding, disposition string, body io.Reader) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(c, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p); err != nil {
				return err
			}
		}
	}
	data, err := io.ReadAll(decodeTransfer(encoding, body))
	if err != nil {
		return err
	}
	if d, dp, err := mime.ParseMediaType(disposition); err == nil && (d == "attachment" || dp["filename"] != "") {
		c.Attachments = append(c.Attachments, File{Name: dp["filename"], ContentType: mt, Size: len(data), Data: data})
		return nil
	}
	switch mt {
	case "text/plain":
		c.Text += string(data)
	case "text/html":
		c.HTML += string(data)
	default:
		c.Attachments = append(c.Attachments, File{Name: params["name"], ContentType: mt, Size: len(data), Data: data})
	}
	return nil
}
