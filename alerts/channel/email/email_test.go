package email_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts/channel/email"
	"github.com/meterd/meterd/alerts/devsink"
	"github.com/meterd/meterd/alerts/notify"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		DNSNames: []string{"smtp.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, pool
}

func message() *notify.Message {
	return &notify.Message{DeliveryID: 7, Event: "payment.succeeded", MessageID: "abc-123@mail.example.com",
		From: "Example Power <bills@power.example.com>", To: notify.Address{Name: "Asha Rao", Email: "asha@example.net"},
		Subject: "Payment received: receipt RCPT/1 for ₹1,834.00", Text: "Thank you.\n", HTML: "<p>Thank you.</p>",
		Attachments: []notify.Attachment{{Name: "receipt.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4 receipt")}}}
}

// STARTTLS with SMTP AUTH against a real server: the message arrives
// with its UTF-8 subject, both alternatives, the attachment and the
// Message-ID; a wrong password and a server without STARTTLS fail with a
// retryable error and deliver nothing.
func TestSTARTTLSAndAuth(t *testing.T) {
	ctx := context.Background()
	cert, roots := selfSigned(t)
	log := devsink.NewLog(0)
	sink := devsink.NewSMTP(devsink.SMTPConfig{Username: "meterd", Password: "s3cret", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}, log)
	if err := sink.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sink.Stop(ctx) }()
	plain := devsink.NewSMTP(devsink.SMTPConfig{}, devsink.NewLog(0))
	if err := plain.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = plain.Stop(ctx) }()

	tests := []struct {
		name      string
		cfg       email.Config
		wantErr   bool
		wantRetry bool
	}{
		{name: "starttls+plain auth", cfg: email.Config{Host: "127.0.0.1", Port: sink.Port(), ServerName: "smtp.test", RootCAs: roots, Username: "meterd", Password: "s3cret", Auth: "plain"}},
		{name: "wrong password", cfg: email.Config{Host: "127.0.0.1", Port: sink.Port(), ServerName: "smtp.test", RootCAs: roots, Username: "meterd", Password: "nope", Auth: "plain"}, wantErr: true, wantRetry: true},
		{name: "untrusted certificate", cfg: email.Config{Host: "127.0.0.1", Port: sink.Port(), ServerName: "smtp.test", Username: "meterd", Password: "s3cret"}, wantErr: true, wantRetry: true},
		{name: "mandatory TLS, server without STARTTLS", cfg: email.Config{Host: "127.0.0.1", Port: plain.Port()}, wantErr: true, wantRetry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Timeout = 5 * time.Second
			s, err := email.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec, retry, err := s.Send(ctx, message())
			if (err != nil) != tt.wantErr || retry != tt.wantRetry {
				t.Fatalf("retry %v, err %v", retry, err)
			}
			if err == nil && rec.MessageID != "<abc-123@mail.example.com>" {
				t.Errorf("receipt %q", rec.MessageID)
			}
		})
	}
	msgs := log.All()
	if len(msgs) != 1 {
		t.Fatalf("captured %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "Payment received: receipt RCPT/1 for ₹1,834.00" || m.MessageID != "<abc-123@mail.example.com>" ||
		!strings.Contains(m.Headers["To"], "Asha Rao") || m.Text != "Thank you.\r\n" && m.Text != "Thank you.\n" ||
		m.HTML != "<p>Thank you.</p>" || len(m.Attachments) != 1 || string(m.Attachments[0].Data) != "%PDF-1.4 receipt" {
		t.Fatalf("captured %+v", m)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []email.Config{{}, {Host: "h", TLS: "sometimes"}, {Host: "h", Username: "u"}, {Host: "h", Auth: "kerberos"}, {Host: "h", Port: 70000}} {
		if _, err := email.New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
