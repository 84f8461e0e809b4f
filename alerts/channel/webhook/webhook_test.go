package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/channel/webhook"
	"github.com/meterd/meterd/alerts/internal/peer"
	"github.com/meterd/meterd/alerts/notify"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestSendAndDeduplicate(t *testing.T) {
	ctx := context.Background()
	p := peer.NewWebhook(t, secret, time.Now)
	sms, err := webhook.New(webhook.Config{Channel: alerts.ChannelSMS, URL: p.URL(), Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	m := &notify.Message{IdempotencyKey: "key-1", Event: "payment.succeeded", Tenant: "acme", To: notify.Address{Phone: "+919876543210"}, SMS: "Receipt RCPT/1"}
	first, retry, err := sms.Send(ctx, m)
	if err != nil || retry || first.Duplicate {
		t.Fatalf("first: %+v %v %v", first, retry, err)
	}
	again, _, err := sms.Send(ctx, m)
	if err != nil || !again.Duplicate || again.MessageID != first.MessageID {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	if n := len(p.Sent()); n != 1 || p.Repeats() != 1 {
		t.Fatalf("sent %d, repeats %d; want one send", n, p.Repeats())
	}
	p.SetMode(peer.Down)
	if _, retry, err := sms.Send(ctx, &notify.Message{IdempotencyKey: "key-2", To: notify.Address{Phone: "+919876543210"}, SMS: "x"}); err == nil || !retry {
		t.Fatalf("down: retry %v, err %v", retry, err)
	}
	p.SetMode(peer.Up)

	push, err := webhook.New(webhook.Config{Channel: alerts.ChannelPush, URL: p.URL(), Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	_, retry, err = push.Send(ctx, &notify.Message{IdempotencyKey: "key-3", To: notify.Address{Token: "dead-1", Platform: "web"}, PushTitle: "t", PushBody: "b"})
	if err == nil || retry || !errors.Is(err, notify.ErrUnregistered) {
		t.Fatalf("410: retry %v, err %v", retry, err)
	}
}

// A request signed with another key, or too old, fails verification.
func TestVerify(t *testing.T) {
	key := webhook.Key(secret)
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"k"}`)
	h := http.Header{}
	h.Set("webhook-id", "k")
	h.Set("webhook-timestamp", "1700000000")
	h.Set("webhook-signature", "v1,bogus "+webhook.Sign(key, "k", 1_700_000_000, body))
	tests := []struct {
		name string
		key  []byte
		now  time.Time
		body []byte
		ok   bool
	}{
		{"valid (second of two signatures)", key, now, body, true},
		{"other key", []byte("another-key-0123456789"), now, body, false},
		{"changed body", key, now, []byte(`{"id":"x"}`), false},
		{"too old", key, now.Add(10 * time.Minute), body, false},
	}
	for _, tt := range tests {
		err := webhook.Verify(tt.key, h, tt.body, 5*time.Minute, tt.now)
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
