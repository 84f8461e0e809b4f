package devsink

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/notify"
)

// The log keeps the newest messages, Wait returns once enough arrived, and
// the handler lists them newest first, filters by channel and serves one
// message's HTML part.
func TestLogAndHandler(t *testing.T) {
	l := NewLog(2)
	sms := NewSender(alerts.ChannelSMS, l, nil)
	push := NewSender(alerts.ChannelPush, l, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, s := range []*Sender{sms, push, sms} {
		m := &notify.Message{Event: "bill.issued", To: notify.Address{Phone: "+919876543210", Token: "token-0123456789"}, SMS: "sms " + string(rune('a'+i)),
			PushTitle: "title", PushBody: "body"}
		if _, _, err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	all, err := l.Wait(ctx, 3)
	if err != nil || len(all) != 2 || all[0].Seq != 2 || all[1].Text != "sms c" {
		t.Fatalf("kept %+v, %v", all, err)
	}
	rec := httptest.NewRecorder()
	Handler(l).ServeHTTP(rec, httptest.NewRequest("GET", "/dev/notifications?channel=sms", nil))
	var body struct{ Messages []Captured }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Messages) != 1 || body.Messages[0].Seq != 3 {
		t.Fatalf("handler: %s", rec.Body)
	}
	l.Add(Captured{Channel: "email", To: []string{"a@example.com"}, Subject: "s", HTML: "<p>hi</p>"})
	rec = httptest.NewRecorder()
	Handler(l).ServeHTTP(rec, httptest.NewRequest("GET", "/dev/notifications?seq=4&part=html", nil))
	if rec.Body.String() != "<p>hi</p>" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("html part: %q", rec.Body)
	}
	rec = httptest.NewRecorder()
	Handler(l).ServeHTTP(rec, httptest.NewRequest("GET", "/dev/notifications?format=html", nil))
	if !strings.Contains(rec.Body.String(), "Notifications captured by meterd dev") {
		t.Fatal("html page")
	}
}
