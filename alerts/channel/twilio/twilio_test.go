package twilio_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts/channel/twilio"
	"github.com/meterd/meterd/alerts/internal/peer"
	"github.com/meterd/meterd/alerts/notify"
)

const account, token = "AC0123456789abcdef0123456789abcdef", "secret-token"

func newSender(t *testing.T, p *peer.Twilio, token string) *twilio.Sender {
	t.Helper()
	s, err := twilio.New(twilio.Config{BaseURL: p.URL(), AccountSID: account, AuthToken: token, From: "+15005550006",
		StatusCallback: "https://meterd.example.com/hooks/twilio"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSend(t *testing.T) {
	ctx := context.Background()
	p := peer.NewTwilio(t, account, token, time.Now)
	s := newSender(t, p, token)
	tests := []struct {
		give      string
		mode      peer.Mode
		wantRetry bool
		wantErr   bool
		wantAfter time.Duration
	}{
		{give: "+919876543210"},
		{give: "+911230000000", wantErr: true},                                   // 21211: refused for good
		{give: "+919876543210", mode: peer.Down, wantErr: true, wantRetry: true}, // 503
		{give: "+919876543210", mode: peer.RateLimited, wantErr: true, wantRetry: true, wantAfter: 2 * time.Minute}, // 429
	}
	for _, tt := range tests {
		p.SetMode(tt.mode)
		rec, retry, err := s.Send(ctx, &notify.Message{To: notify.Address{Phone: tt.give}, SMS: "Bill ED/1 of ₹1,834.00 is due."})
		if (err != nil) != tt.wantErr || retry != tt.wantRetry {
			t.Errorf("%s mode %d: retry %v, err %v", tt.give, tt.mode, retry, err)
		}
		var ra *notify.RetryAfterError
		if tt.wantAfter > 0 && (!errors.As(err, &ra) || ra.After != tt.wantAfter) {
			t.Errorf("%s mode %d: want Retry-After %v, got %v", tt.give, tt.mode, tt.wantAfter, err)
		}
		if err == nil && !strings.HasPrefix(rec.MessageID, "SM") {
			t.Errorf("receipt %q is not a message SID", rec.MessageID)
		}
	}
	sent := p.Sent()
	if len(sent) != 1 || sent[0].To != "+919876543210" || sent[0].From != "+15005550006" || sent[0].Body != "Bill ED/1 of ₹1,834.00 is due." ||
		sent[0].StatusCallback != "https://meterd.example.com/hooks/twilio" {
		t.Fatalf("sent = %+v", sent)
	}
}

// Wrong credentials are retried (the provider side), not dead-lettered.
func TestUnauthorizedIsRetried(t *testing.T) {
	p := peer.NewTwilio(t, account, token, time.Now)
	_, retry, err := newSender(t, p, "wrong").Send(context.Background(), &notify.Message{To: notify.Address{Phone: "+919876543210"}, SMS: "x"})
	if err == nil || !retry || !strings.Contains(err.Error(), "20003") {
		t.Fatalf("retry %v, err %v", retry, err)
	}
}

// Find recognises a message already accepted since the first attempt,
// with the same body, and nothing else.
func TestFind(t *testing.T) {
	ctx := context.Background()
	p := peer.NewTwilio(t, account, token, time.Now)
	s := newSender(t, p, token)
	first := time.Now()
	m := &notify.Message{To: notify.Address{Phone: "+919876543210"}, SMS: "Receipt RCPT/1", FirstAttemptAt: first}
	if _, found, err := s.Find(ctx, m); err != nil || found {
		t.Fatalf("before sending: found %v, err %v", found, err)
	}
	rec, _, err := s.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := s.Find(ctx, m)
	if err != nil || !found || got.MessageID != rec.MessageID {
		t.Fatalf("after sending: %v %v %v", got, found, err)
	}
	other := *m
	other.SMS = "Receipt RCPT/2"
	if _, found, _ := s.Find(ctx, &other); found {
		t.Fatal("found a message with another body")
	}
	later := *m
	later.FirstAttemptAt = first.Add(time.Hour)
	if _, found, _ := s.Find(ctx, &later); found {
		t.Fatal("found a message created before the first attempt")
	}
}
