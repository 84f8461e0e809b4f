package fcm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts/channel/fcm"
	"github.com/meterd/meterd/alerts/internal/peer"
	"github.com/meterd/meterd/alerts/notify"
)

func newSender(t *testing.T, p *peer.FCM) *fcm.Sender {
	t.Helper()
	key, err := fcm.ParseServiceAccount(p.KeyJSON)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := fcm.NewServiceAccount(key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fcm.New(fcm.Config{BaseURL: p.URL(), ProjectID: p.Project, Tokens: ts})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func msg(token string) *notify.Message {
	return &notify.Message{IdempotencyKey: "0f8fad5b-d9cb-469f-a165-70867728950e", To: notify.Address{Token: token, Platform: "android"},
		PushTitle: "New bill ED/1", PushBody: "₹1,834.00 due on 16 Mar 2026", Link: "https://power.example.com/bills/9",
		Data: map[string]string{"event": "bill.issued", "bill_id": "9"}}
}

func TestSend(t *testing.T) {
	ctx := context.Background()
	p := peer.NewFCM(t, "meterd-test")
	s := newSender(t, p)
	tests := []struct {
		token     string
		mode      peer.Mode
		wantErr   bool
		wantRetry bool
		wantUnreg bool
		wantAfter time.Duration
	}{
		{token: "fcm-token-1"},
		{token: "fcm-token-2"},
		{token: "dead-token", wantErr: true, wantUnreg: true},
		{token: "fcm-token-3", mode: peer.Down, wantErr: true, wantRetry: true},
		{token: "fcm-token-3", mode: peer.RateLimited, wantErr: true, wantRetry: true, wantAfter: 2 * time.Minute},
	}
	for _, tt := range tests {
		p.SetMode(tt.mode)
		rec, retry, err := s.Send(ctx, msg(tt.token))
		if (err != nil) != tt.wantErr || retry != tt.wantRetry || errors.Is(err, notify.ErrUnregistered) != tt.wantUnreg {
			t.Errorf("%s mode %d: retry %v, err %v", tt.token, tt.mode, retry, err)
		}
		var ra *notify.RetryAfterError
		if tt.wantAfter > 0 && (!errors.As(err, &ra) || ra.After != tt.wantAfter) {
			t.Errorf("%s: want Retry-After %v, got %v", tt.token, tt.wantAfter, err)
		}
		if err == nil && !strings.HasPrefix(rec.MessageID, "projects/meterd-test/messages/") {
			t.Errorf("receipt %q", rec.MessageID)
		}
	}
	sent := p.Sent()
	if len(sent) != 2 {
		t.Fatalf("sent %d, want 2", len(sent))
	}
	x := sent[0]
	want := "0f8fad5bd9cb469fa16570867728950e"
	if x.Title != "New bill ED/1" || x.CollapseKey != want || x.Tag != want || x.APNSCollapseID != want || x.Topic != want || x.Data["bill_id"] != "9" {
		t.Fatalf("message = %+v", x)
	}
	if p.Grants() != 1 {
		t.Errorf("access tokens granted %d times, want 1 (cached)", p.Grants())
	}
}
