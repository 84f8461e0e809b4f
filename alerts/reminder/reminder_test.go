package reminder

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/billing"
)

// fired runs Plan every step from `from` to `to`, as the periodic job
// would, and returns each dedupe key with the first clock time it came
// out (the outbox keeps only the first).
func fired(from, to time.Time, step time.Duration, plan func(now time.Time) []Notice) map[string]time.Time {
	out := map[string]time.Time{}
	for now := from; !now.After(to); now = now.Add(step) {
		for _, n := range plan(now) {
			if _, seen := out[n.DedupeKey]; !seen {
				out[n.DedupeKey] = now
			}
		}
	}
	return out
}

// In a zone with daylight saving (New York, which springs forward on 8
// March 2026), reminders and escalations fire at 10:00 local on the right
// days, before and after the change, the consumer's own reminder replaces
// the policy's on the same day, and nothing fires for a bill once paid.
func TestPlanTimingNewYork(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultPolicy() // 7, 3, 1 days before; 1, 7, 15 after; second channel from step 2; staff from step 3; 10:00
	due := billing.NewDate(2026, time.March, 10)
	bill := Bill{ID: 9, TenantID: 1, UserID: 5, Number: "ED/1", ConsumerCode: "E1", Currency: "USD", DueDate: due, AmountDue: "120.50"}
	own := []UserReminder{{ID: 77, UserID: 5, BillID: 0, DaysBefore: 3, Channel: alerts.ChannelSMS}}
	staff := []int64{40, 41}
	paidOn := time.Date(2026, 3, 30, 9, 0, 0, 0, ny) // after step 3; the bill is then settled

	var plans []Notice
	seen := map[string]bool{}
	got := fired(time.Date(2026, 2, 20, 0, 0, 0, 0, ny), time.Date(2026, 4, 30, 0, 0, 0, 0, ny), 15*time.Minute, func(now time.Time) []Notice {
		b := bill
		b.Settled = !now.Before(paidOn)
		ns := Plan(now, ny, p, []Bill{b}, own, staff)
		for _, n := range ns {
			if !seen[n.DedupeKey] { // the outbox keeps the first
				seen[n.DedupeKey] = true
				plans = append(plans, n)
			}
		}
		return ns
	})
	local := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, ny) }
	want := map[string]time.Time{
		"bill_due:9:7":           local(2026, 3, 3, 10),  // EST: 15:00 UTC
		"bill_due:9:user:77:3":   local(2026, 3, 7, 10),  // the consumer's own (SMS) replaces the policy's day 3
		"bill_due:9:1":           local(2026, 3, 9, 10),  // EDT: 14:00 UTC
		"bill_overdue:9:1":       local(2026, 3, 11, 10), // due date passed
		"bill_overdue:9:2":       local(2026, 3, 17, 10), // second channel from here
		"bill_overdue:9:3":       local(2026, 3, 25, 10),
		"bill_escalation:9:3:40": local(2026, 3, 25, 10), // staff from step 3
		"bill_escalation:9:3:41": local(2026, 3, 25, 10),
	}
	if len(got) != len(want) {
		t.Errorf("fired %d reminders, want %d: %v", len(got), len(want), keys(got))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !g.Equal(w) {
			t.Errorf("%s fired at %v, want %v", k, g.In(ny), w)
		}
	}
	if got["bill_due:9:1"].UTC().Hour() != 14 || got["bill_due:9:7"].UTC().Hour() != 15 {
		t.Error("the send time did not follow daylight saving")
	}
	for _, n := range plans {
		switch n.DedupeKey {
		case "bill_due:9:user:77:3":
			if n.Channel != alerts.ChannelSMS || n.Payload["source"] != "consumer" || n.Payload["days_left"] != 3 {
				t.Errorf("own reminder: %+v", n)
			}
		case "bill_due:9:1":
			if n.Channel != "" || n.Payload["days_left"] != 1 || n.Payload["amount_due"] != "120.50" {
				t.Errorf("policy reminder: %+v", n)
			}
		case "bill_overdue:9:1":
			if _, ok := n.Payload["min_channels"]; ok || n.Payload["days_overdue"] != 1 {
				t.Errorf("step 1: %+v", n.Payload)
			}
		case "bill_overdue:9:2", "bill_overdue:9:3":
			if n.Payload["min_channels"] != 2 {
				t.Errorf("%s without a second channel: %+v", n.DedupeKey, n.Payload)
			}
		case "bill_escalation:9:3:40":
			if n.Event != alerts.EventPaymentEscalation || n.UserID != 40 || n.Payload["consumer_user_id"] != int64(5) || n.Payload["days_overdue"] != 15 {
				t.Errorf("escalation: %+v", n)
			}
		}
	}
	for _, n := range plans {
		if !n.Due.Before(paidOn) {
			t.Errorf("%s planned after the bill was paid", n.DedupeKey)
		}
	}
}

// A scheduler that was down sends only the latest reminder that became
// due, never a stale one; in Kolkata (UTC+5:30) the send time is 04:30 UTC.
func TestPlanCatchUp(t *testing.T) {
	kol, _ := time.LoadLocation("Asia/Kolkata")
	p := DefaultPolicy()
	due := billing.NewDate(2026, time.March, 10)
	b := Bill{ID: 1, TenantID: 1, UserID: 2, DueDate: due, AmountDue: "10"}
	tests := []struct {
		now  time.Time
		want []string
	}{
		{now: time.Date(2026, 3, 3, 4, 29, 0, 0, time.UTC), want: nil},
		{now: time.Date(2026, 3, 3, 4, 30, 0, 0, time.UTC), want: []string{"bill_due:1:7"}},
		{now: time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC), want: []string{"bill_due:1:3"}},     // down since the 3rd: not "7 days"
		{now: time.Date(2026, 3, 10, 18, 29, 0, 0, time.UTC), want: []string{"bill_due:1:1"}},   // 23:59 local on the due date
		{now: time.Date(2026, 3, 10, 18, 30, 0, 0, time.UTC), want: nil},                        // the 11th local: overdue, before 10:00
		{now: time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC), want: []string{"bill_overdue:1:3"}}, // down for weeks: the latest step only
	}
	for _, tt := range tests {
		var got []string
		for _, n := range Plan(tt.now, kol, p, []Bill{b}, nil, nil) {
			got = append(got, n.DedupeKey)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("at %v: %v, want %v", tt.now.In(kol), got, tt.want)
		}
	}
	b.Settled = true
	if ns := Plan(time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC), kol, p, []Bill{b}, nil, nil); len(ns) != 0 {
		t.Errorf("settled bill: %v", ns)
	}
}

func TestPolicyValidate(t *testing.T) {
	ok := DefaultPolicy()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Policy){
		func(p *Policy) { p.DueDays = []int{0} },
		func(p *Policy) { p.DueDays = []int{3, 3} },
		func(p *Policy) { p.OverdueDays = []int{400} },
		func(p *Policy) { p.StaffStep = 9 },
		func(p *Policy) { p.SecondChannelStep = -1 },
		func(p *Policy) { p.StaffRole = "consumer" },
	}
	for i, f := range bad {
		p := DefaultPolicy()
		f(&p)
		if err := p.Validate(); !errors.Is(err, alerts.ErrReminderSetting) {
			t.Errorf("case %d: %v, want ReminderSetting", i, err)
		}
	}
}

func keys(m map[string]time.Time) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s@%s", k, v.Format(time.RFC3339)))
	}
	sort.Strings(out)
	return out
}
