package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/channel/email"
	"github.com/meterd/meterd/alerts/devsink"
	"github.com/meterd/meterd/alerts/internal/fixture"
	"github.com/meterd/meterd/alerts/notify"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/alerts/template"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// harness is a database, an SMTP sink and a clock; engines are built on
// it with the senders a test wants.
type harness struct {
	t     *testing.T
	ctx   context.Context
	pool  *pgxpool.Pool
	store *alertspg.Store
	clock *fixture.Clock
	log   *devsink.Log
	smtp  *devsink.SMTP
	tpl   *template.Set
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	pool := schematest.New(t)
	log := devsink.NewLog(0)
	sink := devsink.NewSMTP(devsink.SMTPConfig{}, log)
	if err := sink.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Stop(context.Background()) })
	tpl, err := template.New()
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, ctx: ctx, pool: pool, store: alertspg.New(pool), clock: fixture.NewClock(time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)),
		log: log, smtp: sink, tpl: tpl}
}

func (h *harness) emailSender() *email.Sender {
	h.t.Helper()
	s, err := email.New(email.Config{Host: "127.0.0.1", Port: h.smtp.Port(), TLS: email.TLSNone, Timeout: 5 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) engine(cfg notify.Config, d notify.Deps) *notify.Engine {
	h.t.Helper()
	cfg.Now = h.clock.Now
	if cfg.PublicURL == "" {
		cfg.PublicURL = "https://power.example.com"
	}
	d.Store, d.Templates, d.Opener = h.store, h.tpl, fixture.Ring{}
	e, err := notify.New(cfg, d)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

// run pumps and delivers every queued job, once, and returns the outcomes.
func (h *harness) run(e *notify.Engine) []notify.Outcome {
	h.t.Helper()
	st, err := e.Pump(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []notify.Outcome
	for _, j := range st.Jobs {
		o, err := e.Deliver(h.ctx, j)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func (h *harness) deliveries(outboxID int64) []alerts.Delivery {
	h.t.Helper()
	n, err := h.store.Notification(h.ctx, alertspg.Scope{}, outboxID)
	if err != nil {
		h.t.Fatal(err)
	}
	return n.Deliveries
}

type pdfDocs struct {
	mu    sync.Mutex
	calls int
}

func (p *pdfDocs) BillPDF(_ context.Context, tenantID, billID int64) (notify.Attachment, error) {
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	return notify.Attachment{Name: "bill-ED-2025-26-000123.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4\n% meterd test bill\n%%EOF\n")}, nil
}

// A bill.issued event reaches the consumer's contact address through a
// real SMTP server, with the bill PDF attached, a stable Message-ID and
// the tenant's branding; the outbox row and its delivery end 'sent'.
func TestEmailWithAttachment(t *testing.T) {
	h := newHarness(t)
	tenant := fixture.Tenant(t, h.pool, "Asia/Kolkata")
	if _, err := h.pool.Exec(h.ctx, `INSERT INTO notification_branding (tenant_id, display_name, from_address, brand_color, support_email)
		VALUES ($1, 'Example Power', 'bills@power.example.com', '#aa3300', 'help@power.example.com')`, tenant); err != nil {
		t.Fatal(err)
	}
	user := fixture.NewUser(t, h.pool, tenant, fixture.User{Name: "Asha", Email: "login@example.com", Contact: "asha@example.net", Phone: "+919876543210"})
	payload := template.Sample(alerts.EventBillIssued).P
	oid := fixture.Enqueue(t, h.pool, fixture.Outbox{TenantID: tenant, UserID: user, Event: alerts.EventBillIssued, Payload: payload})
	docs := &pdfDocs{}
	e := h.engine(notify.Config{MessageIDDomain: "mail.power.example.com"}, notify.Deps{Senders: []notify.Sender{h.emailSender()}, Documents: docs})

	if got := h.run(e); len(got) != 1 || got[0] != notify.OutcomeSent {
		t.Fatalf("outcomes = %v, want one sent", got)
	}
	msgs, err := h.log.Wait(h.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "asha@example.net" {
		t.Errorf("to = %v, want the profile's contact address", m.To)
	}
	if !strings.Contains(m.Subject, "ED/2025-26/000123") || !strings.Contains(m.Subject, "₹1,834.00") {
		t.Errorf("subject = %q", m.Subject)
	}
	if !strings.Contains(m.From, "bills@power.example.com") || !strings.Contains(m.From, "Example Power") {
		t.Errorf("from = %q, want the tenant's sender", m.From)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/pdf" || !strings.HasPrefix(string(m.Attachments[0].Data), "%PDF-1.4") ||
		m.Attachments[0].Name != "bill-ED-2025-26-000123.pdf" {
		t.Errorf("attachments = %+v, want the bill PDF", m.Attachments)
	}
	if !strings.Contains(m.HTML, "#aa3300") || !strings.Contains(m.Text, "Due date:    16 Mar 2026") {
		t.Errorf("body not branded or rendered:\n%s", m.Text)
	}
	if !strings.Contains(m.Text, "https://power.example.com/bills/9") {
		t.Errorf("text lacks the bill link:\n%s", m.Text)
	}
	ds := h.deliveries(oid)
	if len(ds) != 1 || ds[0].Status != alerts.DeliverySent || ds[0].Attempts != 1 || ds[0].AddressHint != "a***@example.net" {
		t.Fatalf("deliveries = %+v", ds)
	}
	wantID := "<" + ds[0].ProviderMessageID[1:len(ds[0].ProviderMessageID)-1] + ">"
	if m.MessageID != wantID || !strings.HasSuffix(m.MessageID, "@mail.power.example.com>") {
		t.Errorf("Message-ID = %q, want %q", m.MessageID, wantID)
	}
	if m.Headers["Auto-Submitted"] != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", m.Headers["Auto-Submitted"])
	}
	var status string
	if err := h.pool.QueryRow(h.ctx, `SELECT status FROM notification_outbox WHERE id = $1`, oid).Scan(&status); err != nil || status != "sent" {
		t.Fatalf("outbox status = %q, %v", status, err)
	}
	// Nothing more to do.
	if got := h.run(e); len(got) != 0 {
		t.Fatalf("second pump delivered %v", got)
	}
}

// The verification email goes to the address in the payload (no user
// yet) and carries the sealed token in its link.
func TestVerificationLink(t *testing.T) {
	h := newHarness(t)
	tenant := fixture.Tenant(t, h.pool, "UTC")
	key := "verify_email:abc"
	secret, _ := fixture.Ring{}.Seal([]byte("tok/en+1"), "notification_outbox.secret:"+key)
	fixture.Enqueue(t, h.pool, fixture.Outbox{TenantID: tenant, Event: alerts.EventVerifyEmail, Channel: "email", DedupeKey: key, Secret: secret,
		Payload: map[string]any{"email": "new@example.org", "link_path": "/verify?token=", "expires_at": "2026-03-11T06:00:00Z"}})
	e := h.engine(notify.Config{}, notify.Deps{Senders: []notify.Sender{h.emailSender()}})
	if got := h.run(e); len(got) != 1 || got[0] != notify.OutcomeSent {
		t.Fatalf("outcomes = %v", got)
	}
	m := h.log.All()[0]
	if m.To[0] != "new@example.org" || !strings.Contains(m.Text, "https://power.example.com/verify?token=tok%2Fen%2B1") {
		t.Fatalf("to %v, text:\n%s", m.To, m.Text)
	}
}

// A permanent SMTP refusal (550) makes a dead letter at once; a temporary
// one (451) is retried with backoff.
func TestSMTPRefusals(t *testing.T) {
	h := newHarness(t)
	tenant := fixture.Tenant(t, h.pool, "UTC")
	user := fixture.NewUser(t, h.pool, tenant, fixture.User{})
	e := h.engine(notify.Config{}, notify.Deps{Senders: []notify.Sender{h.emailSender()}})

	h.smtp.Reject(func(string) error { return errSMTP(550, "no such mailbox") })
	dead := fixture.Enqueue(t, h.pool, fixture.Outbox{TenantID: tenant, UserID: user, Event: alerts.EventTicketCreated, Payload: template.Sample(alerts.EventTicketCreated).P})
	if got := h.run(e); len(got) != 1 || got[0] != notify.OutcomeFailed {
		t.Fatalf("550: outcomes = %v, want failed", got)
	}
	if ds := h.deliveries(dead); ds[0].Status != alerts.DeliveryDead || !strings.Contains(ds[0].LastError, "550") {
		t.Fatalf("550: delivery = %+v", ds[0])
	}

	h.smtp.Reject(func(string) error { return errSMTP(451, "try later") })
	retried := fixture.Enqueue(t, h.pool, fixture.Outbox{TenantID: tenant, UserID: user, Event: alerts.EventTicketCreated, Payload: template.Sample(alerts.EventTicketCreated).P})
	if got := h.run(e); len(got) != 1 || got[0] != notify.OutcomeRetry {
		t.Fatalf("451: outcomes = %v, want retry", got)
	}
	ds := h.deliveries(retried)
	if ds[0].Status != alerts.DeliveryPending || ds[0].NextAttemptAt.Sub(h.clock.Now()) < 20*time.Second {
		t.Fatalf("451: delivery = %+v", ds[0])
	}
	h.smtp.Reject(nil)
	if got := h.run(e); len(got) != 0 {
		t.Fatalf("retry ran before its backoff: %v", got)
	}
	h.clock.Advance(time.Minute)
	if got := h.run(e); len(got) != 1 || got[0] != notify.OutcomeSent {
		t.Fatalf("after backoff: %v", got)
	}
	if ds := h.deliveries(retried); ds[0].Attempts != 2 || len(ds[0].History) != 2 || ds[0].History[0].Outcome != "retry" {
		t.Fatalf("history = %+v", ds[0].History)
	}
}

func errSMTP(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}
