package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts"
)

func TestPlan(t *testing.T) {
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	// 23:30 in Kolkata on 10 March 2026.
	night := time.Date(2026, 3, 10, 18, 0, 0, 0, time.UTC)
	day := time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC) // 11:30 local
	quiet := &alerts.QuietHours{From: 22 * 60, To: 7 * 60}
	all := map[alerts.Channel]bool{alerts.ChannelEmail: true, alerts.ChannelSMS: true, alerts.ChannelPush: true}
	full := Recipient{UserID: 1, HasEmail: true, HasPhone: true, Devices: []int64{11, 12}}
	withPrefs := func(r Recipient, p alerts.Preferences) Recipient { r.Prefs = p; return r }
	tests := []struct {
		name      string
		event     string
		channel   alerts.Channel
		payload   string
		r         Recipient
		available map[alerts.Channel]bool
		now       time.Time
		want      string // channel:reason[@local release time] per delivery, sorted as planned
	}{
		{name: "event defaults", event: alerts.EventBillDueSoon, r: full, now: day, want: "email:preference sms:preference"},
		{name: "user default row", event: alerts.EventBillIssued, now: day,
			r:    withPrefs(full, alerts.Preferences{Default: alerts.Preference{ChannelsSet: true, Channels: []alerts.Channel{alerts.ChannelPush}}}),
			want: "push:preference#11 push:preference#12"},
		{name: "event row beats default row", event: alerts.EventTicketStatusChanged, now: day,
			r: withPrefs(full, alerts.Preferences{
				Default: alerts.Preference{ChannelsSet: true, Channels: []alerts.Channel{alerts.ChannelPush}},
				Events:  map[string]alerts.Preference{alerts.EventTicketStatusChanged: {ChannelsSet: true, Channels: []alerts.Channel{alerts.ChannelSMS}}}}),
			want: "sms:preference"},
		{name: "muted", event: alerts.EventTicketCreated, now: day,
			r:    withPrefs(full, alerts.Preferences{Events: map[string]alerts.Preference{alerts.EventTicketCreated: {ChannelsSet: true}}}),
			want: ""},
		{name: "muted transactional event still emails", event: alerts.EventPaymentSucceeded, now: day,
			r:    withPrefs(full, alerts.Preferences{Default: alerts.Preference{ChannelsSet: true}}),
			want: "email:fallback"},
		{name: "no phone: fallback to email", event: alerts.EventPaymentReminder, now: day,
			r:    withPrefs(Recipient{UserID: 1, HasEmail: true}, alerts.Preferences{Default: alerts.Preference{ChannelsSet: true, Channels: []alerts.Channel{alerts.ChannelSMS}}}),
			want: "email:fallback"},
		{name: "no sms provider: not planned", event: alerts.EventBillDueSoon, r: full, now: day,
			available: map[alerts.Channel]bool{alerts.ChannelEmail: true}, want: "email:preference"},
		{name: "forced channel ignores preferences", event: alerts.EventVerifyEmail, channel: alerts.ChannelEmail, now: night,
			r:    withPrefs(full, alerts.Preferences{Default: alerts.Preference{ChannelsSet: true}, Events: nil}),
			want: "email:forced"},
		{name: "escalation adds a second channel", event: alerts.EventPaymentReminder, payload: `{"min_channels": 2}`, now: day,
			r:    withPrefs(full, alerts.Preferences{Default: alerts.Preference{ChannelsSet: true, Channels: []alerts.Channel{alerts.ChannelEmail}}}),
			want: "email:preference sms:escalation"},
		{name: "escalation as a string number", event: alerts.EventPaymentReminder, payload: `{"min_channels": "3"}`, now: day,
			r:    withPrefs(full, alerts.Preferences{Default: alerts.Preference{ChannelsSet: true, Channels: []alerts.Channel{alerts.ChannelSMS}}}),
			want: "sms:preference email:escalation push:escalation#11 push:escalation#12"},
		{name: "quiet hours hold sms and push, not email", event: alerts.EventUsageAbnormal, now: night,
			r: withPrefs(full, alerts.Preferences{Default: alerts.Preference{ChannelsSet: true, Quiet: quiet,
				Channels: []alerts.Channel{alerts.ChannelEmail, alerts.ChannelSMS, alerts.ChannelPush}}}),
			want: "email:preference sms:preference@07:00 push:preference#11@07:00 push:preference#12@07:00"},
		{name: "quiet hours of the event row", event: alerts.EventBillDueSoon, now: night,
			r:    withPrefs(full, alerts.Preferences{Events: map[string]alerts.Preference{alerts.EventBillDueSoon: {Quiet: &alerts.QuietHours{From: 23 * 60, To: 23*60 + 45}}}}),
			want: "email:preference sms:preference@23:45"},
		{name: "outside quiet hours", event: alerts.EventBillDueSoon, now: day,
			r:    withPrefs(full, alerts.Preferences{Default: alerts.Preference{Quiet: quiet}}),
			want: "email:preference sms:preference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			av := tt.available
			if av == nil {
				av = all
			}
			p := Planner{Available: av}
			payload := tt.payload
			if payload == "" {
				payload = "{}"
			}
			row := Outbox{ID: 1, TenantID: 1, UserID: tt.r.UserID, Event: tt.event, Channel: tt.channel, Payload: json.RawMessage(payload), Zone: kolkata}
			var got []string
			for _, d := range p.Plan(row, []Recipient{tt.r}, tt.now) {
				s := string(d.Channel) + ":" + d.Reason
				if d.DeviceID != 0 {
					s += fmt.Sprintf("#%d", d.DeviceID)
				}
				if !d.NextAttemptAt.Equal(tt.now) {
					s += "@" + d.NextAttemptAt.In(kolkata).Format("15:04")
					if d.DeferredReason != "quiet_hours" {
						t.Errorf("deferred without a reason: %+v", d)
					}
				}
				if d.MaxAttempts != DefaultMaxAttempts {
					t.Errorf("max attempts %d", d.MaxAttempts)
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("got  %q\nwant %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	e := &Engine{cfg: Config{Backoff: 30 * time.Second, MaxBackoff: 10 * time.Minute}}
	prev := time.Duration(0)
	for attempt := 1; attempt <= 10; attempt++ {
		d := e.backoff(42, attempt)
		base := min(30*time.Second<<(attempt-1), 10*time.Minute)
		if d < base*8/10 || d > base*12/10 {
			t.Errorf("attempt %d: %v outside ±20%% of %v", attempt, d, base)
		}
		if attempt <= 5 && d <= prev*6/10 {
			t.Errorf("attempt %d: %v does not grow from %v", attempt, d, prev)
		}
		if d != e.backoff(42, attempt) {
			t.Error("backoff is not reproducible")
		}
		prev = d
	}
}

func TestMask(t *testing.T) {
	for give, want := range map[string]string{"asha@example.net": "a***@example.net", "x": "***"} {
		if got := MaskEmail(give); got != want {
			t.Errorf("MaskEmail(%q) = %q, want %q", give, got, want)
		}
	}
	for give, want := range map[string]string{"+919876543210": "+91******3210", "12345": "***"} {
		if got := MaskPhone(give); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", give, got, want)
		}
	}
}
