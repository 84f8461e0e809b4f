package api_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/channel/email"
	"github.com/meterd/meterd/alerts/detect"
	"github.com/meterd/meterd/alerts/devsink"
	"github.com/meterd/meterd/alerts/notify"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/alerts/reminder"
	"github.com/meterd/meterd/alerts/service"
	"github.com/meterd/meterd/alerts/template"
	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/billing"
)

// notifier is the notifications component on a test stack's database: the
// engine with an SMTP server on loopback (the real protocol) and log-only
// SMS and push providers, the reminder scheduler and the detector, all on
// one settable clock.
type notifier struct {
	t       *testing.T
	ps      *fullStack
	store   *alertspg.Store
	engine  *notify.Engine
	sched   *reminder.Scheduler
	scanner *detect.Scanner
	log     *devsink.Log

	mu  sync.Mutex
	now time.Time
}

func (n *notifier) clock() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.now
}

func (n *notifier) set(t time.Time) {
	n.mu.Lock()
	n.now = t
	n.mu.Unlock()
}

// billPDFs renders bills through the API's billing port.
type billPDFs struct{ ps *fullStack }

func (b billPDFs) BillPDF(ctx context.Context, tenantID, billID int64) (notify.Attachment, error) {
	data, bill, err := b.ps.svc.Billing.BillPDF(ctx, tenantID, 0, billID)
	if err != nil {
		return notify.Attachment{}, err
	}
	return notify.Attachment{Name: "bill-" + strings.ReplaceAll(bill.Number, "/", "-") + ".pdf", ContentType: "application/pdf", Data: data}, nil
}

func newNotifier(t *testing.T, ps *fullStack) *notifier {
	t.Helper()
	ctx := context.Background()
	n := &notifier{t: t, ps: ps, store: alertspg.New(ps.pool), log: devsink.NewLog(0), now: time.Now().UTC()}
	sink := devsink.NewSMTP(devsink.SMTPConfig{}, n.log)
	must(t, sink.Start(ctx))
	t.Cleanup(func() { _ = sink.Stop(context.Background()) })
	mail, err := email.New(email.Config{Host: "127.0.0.1", Port: sink.Port(), TLS: email.TLSNone, Timeout: 5 * time.Second})
	must(t, err)
	tpl, err := template.New()
	must(t, err)
	n.engine, err = notify.New(notify.Config{Now: n.clock, PublicURL: "https://portal.demo.example"},
		notify.Deps{Store: n.store, Templates: tpl, Opener: ps.ring, Bills: n.store, Documents: billPDFs{ps},
			Senders: []notify.Sender{mail, devsink.NewSender(alerts.ChannelSMS, n.log, nil), devsink.NewSender(alerts.ChannelPush, n.log, nil)}})
	must(t, err)
	n.sched = reminder.NewScheduler(n.store, n.clock, nil)
	n.scanner, err = detect.NewScanner(detect.Config{}, n.store, n.clock, nil)
	must(t, err)
	return n
}

// deliver runs the pump and every delivery it queues, as the River jobs
// would, until nothing is due.
func (n *notifier) deliver() {
	n.t.Helper()
	for {
		st, err := n.engine.Pump(context.Background())
		must(n.t, err)
		if len(st.Jobs) == 0 {
			return
		}
		for _, j := range st.Jobs {
			_, err := n.engine.Deliver(context.Background(), j)
			must(n.t, err)
		}
	}
}

// received returns the messages captured since `from` (a sequence number)
// to address (an email or a masked phone) on channel.
func (n *notifier) received(from int64, channel, to string) []devsink.Captured {
	var out []devsink.Captured
	for _, m := range n.log.All() {
		if m.Seq <= from || m.Channel != channel {
			continue
		}
		for _, x := range m.To {
			if x == to {
				out = append(out, m)
			}
		}
	}
	return out
}

func (n *notifier) mark() int64 {
	all := n.log.All()
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Seq
}

// TestNotificationRequirementCases walks the requirement's test cases 10
// (abnormal usage notifications), 15 (upcoming due dates), 16 (automated
// pending-payment reminders), 17 (payment and bill confirmations) and 20
// (updates on the status of support queries) end to end: the events come
// from the real producers — a bill run, the sandbox payment gateway's
// signed webhooks, the support desk over HTTP, the detector over rollups
// of readings — and are delivered by the notification engine to an SMTP
// server and log-only SMS and push providers; reminders fire on a clock
// set to the tenant's local send time (Asia/Kolkata, UTC+5:30).
func TestNotificationRequirementCases(t *testing.T) {
	ps := newFullStack(t)
	n := newNotifier(t, ps)
	ctx := context.Background()
	asha := ps.register("demo", "asha.notify@example.com", "Asha Rao")
	want(t, ps.do("PUT", "/api/user-profiles", asha.Token, map[string]any{"name": "Asha Rao", "phone": "+919876543210"}), 200, "")
	billsOfficial := ps.staffUser("demo", "dues@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
	bills := ps.billsFor(asha, 3)
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	var tenant int64
	must(t, ps.pool.QueryRow(ctx, `SELECT id FROM tenants WHERE code = 'demo'`).Scan(&tenant))
	dueOf := func(b map[string]any) billing.Date {
		d, err := billing.ParseDate(b["due_date"].(string))
		must(t, err)
		return d
	}
	at := func(d billing.Date, hh, mm int) time.Time {
		return time.Date(d.Year(), d.Month(), d.Day(), hh, mm, 0, 0, kolkata)
	}
	numberOf := func(b map[string]any) string { return b["number"].(string) }

	t.Run("TC17 bill confirmations with the PDF", func(t *testing.T) {
		mark := n.mark()
		n.set(time.Now().UTC())
		n.deliver()
		got := n.received(mark, "email", "asha.notify@example.com")
		issued := 0
		for _, m := range got {
			if strings.Contains(m.Subject, "Your bill") {
				issued++
				if len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/pdf" || !strings.HasPrefix(string(m.Attachments[0].Data), "%PDF") {
					t.Errorf("bill email without its PDF: %+v", m.Attachments)
				}
			}
		}
		if issued != 3 {
			t.Fatalf("%d bill emails, want 3: %v", issued, subjects(got))
		}
	})

	due := dueOf(bills[0])
	t.Run("TC15 upcoming due dates at 10:00 IST, seven and three days before", func(t *testing.T) {
		for _, days := range []int{7, 3} {
			mark := n.mark()
			n.set(at(due.AddDays(-days), 9, 59))
			k, err := n.sched.Run(ctx)
			must(t, err)
			if k != 0 {
				t.Fatalf("%d days before: %d reminders before the send time", days, k)
			}
			n.set(at(due.AddDays(-days), 10, 0))
			k, err = n.sched.Run(ctx)
			must(t, err)
			if k != 3 {
				t.Fatalf("%d days before: %d reminders at 10:00, want one per bill", days, k)
			}
			if again, _ := n.sched.Run(ctx); again != 0 {
				t.Fatalf("the scheduler enqueued %d reminders twice", again)
			}
			n.deliver()
			mails := n.received(mark, "email", "asha.notify@example.com")
			sms := n.received(mark, "sms", "+919876543210")
			if len(mails) != 3 || len(sms) != 3 {
				t.Fatalf("due reminders: %d emails, %d SMS; want 3 each (%v)", len(mails), len(sms), subjects(mails))
			}
			if !strings.Contains(mails[0].Subject, "is due on") || !strings.Contains(mails[0].Text, fmt.Sprintf("in %d days", days)) || !strings.Contains(sms[0].Text, "is due on") {
				t.Fatalf("reminder: %q / %q", mails[0].Subject, sms[0].Text)
			}
		}
	})

	var receipt string
	t.Run("TC17 payment confirmation with the receipt number", func(t *testing.T) {
		mark := n.mark()
		r := ps.post("/api/payments", asha.Token, map[string]any{"bill_id": num(bills[0]["id"]), "amount": bills[0]["total"], "method": "upi"}, newKey())
		want(t, r, 201, "")
		pay := r.JSON(t)
		ps.checkoutSandbox(pay, "upi_success")
		receipt = ps.payment(asha.Token, num(pay["id"]))["receipt_number"].(string)
		n.deliver()
		mails := n.received(mark, "email", "asha.notify@example.com")
		sms := n.received(mark, "sms", "+919876543210")
		if len(mails) != 1 || !strings.Contains(mails[0].Subject, "Payment received: receipt "+receipt) || len(sms) != 1 || !strings.Contains(sms[0].Text, receipt) {
			t.Fatalf("payment confirmation: %v / %v", subjects(mails), subjects(sms))
		}
	})

	t.Run("TC16 pending-payment reminders with escalation, never for a paid bill", func(t *testing.T) {
		// Day 1 after the due date, 10:00 IST: bills 1 and 2 are overdue;
		// bill 0 is paid and gets nothing.
		mark := n.mark()
		n.set(at(due.AddDays(1), 10, 0))
		k, err := n.sched.Run(ctx)
		must(t, err)
		if k != 2 {
			t.Fatalf("%d overdue reminders, want 2 (the paid bill has none)", k)
		}
		n.deliver()
		mails := n.received(mark, "email", "asha.notify@example.com")
		for _, m := range mails {
			if strings.Contains(m.Subject, numberOf(bills[0])) {
				t.Fatalf("a reminder for the paid bill: %q", m.Subject)
			}
		}
		if len(mails) != 2 || !strings.HasPrefix(mails[0].Subject, "Overdue:") {
			t.Fatalf("step 1: %v", subjects(mails))
		}
		// Day 7: step 2 reaches the consumer on a second channel too. Bill
		// 1 is paid after the reminder was enqueued and before it went out:
		// its reminder is cancelled, not sent.
		mark = n.mark()
		n.set(at(due.AddDays(7), 10, 0))
		k, err = n.sched.Run(ctx)
		must(t, err)
		if k != 2 {
			t.Fatalf("step 2: %d reminders", k)
		}
		r := ps.post("/api/payments", asha.Token, map[string]any{"bill_id": num(bills[1]["id"]), "amount": bills[1]["total"], "method": "netbanking"}, newKey())
		want(t, r, 201, "")
		ps.checkoutSandbox(r.JSON(t), "netbanking_success")
		n.deliver()
		mails = n.received(mark, "email", "asha.notify@example.com")
		sms := n.received(mark, "sms", "+919876543210")
		reminders := func(ms []devsink.Captured, number string) int {
			c := 0
			for _, m := range ms {
				if strings.Contains(m.Subject, number) && strings.Contains(m.Subject, "Overdue") || strings.Contains(m.Text, number) && strings.Contains(m.Text, "overdue") {
					c++
				}
			}
			return c
		}
		if reminders(mails, numberOf(bills[1])) != 0 || reminders(sms, numberOf(bills[1])) != 0 {
			t.Fatalf("a reminder went out for bill 1 after it was paid")
		}
		if reminders(mails, numberOf(bills[2])) != 1 || reminders(sms, numberOf(bills[2])) != 1 {
			t.Fatalf("step 2 for bill 2: %v / %v, want email and SMS", subjects(mails), subjects(sms))
		}
		var cancelled int
		must(t, ps.pool.QueryRow(ctx, `SELECT count(*) FROM notification_deliveries d JOIN notification_outbox o ON o.id = d.outbox_id
			WHERE o.event = 'payment.reminder' AND d.status = 'cancelled' AND d.last_error LIKE '%settled%'`).Scan(&cancelled))
		if cancelled == 0 {
			t.Fatal("no reminder delivery was cancelled for the settled bill")
		}
		// Day 15: step 3 also tells the billing officials (escalation).
		mark = n.mark()
		n.set(at(due.AddDays(15), 10, 0))
		k, err = n.sched.Run(ctx)
		must(t, err)
		n.deliver()
		staff := n.received(mark, "email", billsOfficial.Email)
		if len(staff) != 1 || !strings.HasPrefix(staff[0].Subject, "Escalation: bill "+numberOf(bills[2])) {
			t.Fatalf("escalation to the billing official: %v (%d enqueued)", subjects(staff), k)
		}
		if got := n.received(mark, "email", "asha.notify@example.com"); reminders(got, numberOf(bills[2])) != 1 {
			t.Fatalf("step 3 to the consumer: %v", subjects(got))
		}
	})

	t.Run("TC20 updates on the status of a support query", func(t *testing.T) {
		support := ps.staffUser("demo", "desk@demo.example.com", account.RoleSupport, "")
		want(t, ps.do("PUT", "/api/support/staff/me", support.Token, map[string]any{"skills": []string{"billing"}, "available": true}), 200, "")
		mark := n.mark()
		r := ps.do("POST", "/api/notifications/query", asha.Token, map[string]any{"category": "billing", "subject": "Bill looks high", "description": "My bill doubled this month."})
		want(t, r, 201, "")
		ticket := num(r.JSON(t)["id"])
		for _, st := range []string{"in_progress", "resolved", "closed"} {
			want(t, ps.do("POST", fmt.Sprintf("/api/tickets/%d/status", ticket), support.Token, map[string]any{"status": st, "note": "update: " + st}), 200, "")
		}
		n.deliver()
		mails := n.received(mark, "email", "asha.notify@example.com")
		var got []string
		for _, m := range mails {
			got = append(got, m.Subject)
		}
		all := strings.Join(got, " | ")
		for _, w := range []string{fmt.Sprintf("Ticket #%d received", ticket), fmt.Sprintf("Ticket #%d assigned", ticket),
			fmt.Sprintf("Ticket #%d is now In Progress", ticket), fmt.Sprintf("Ticket #%d is now Resolved", ticket), fmt.Sprintf("Ticket #%d is now Closed", ticket)} {
			if !strings.Contains(all, w) {
				t.Errorf("missing %q in %s", w, all)
			}
		}
		if staff := n.received(mark, "email", support.Email); len(staff) != 1 || !strings.Contains(staff[0].Subject, "Assigned to you") {
			t.Errorf("assignee: %v", subjects(staff))
		}
	})

	t.Run("TC10 abnormal usage triggers a notification", func(t *testing.T) {
		svc := service.New(n.store, ps.ring, nil, n.clock)
		must(t, svc.SetThreshold(ctx, tenant, alerts.Threshold{Service: "electricity", Plan: "lt-domestic", DailyWh: 20_000}, alerts.Actor{Role: "official"}))
		_, err := svc.RegisterDevice(ctx, tenant, asha.ID, "android", "phone", "fcm-registration-token-of-asha")
		must(t, err)
		// A new meter on a new property: 48 kWh on one day, against the
		// plan's 20 kWh.
		metering := ps.staffUser("demo", "meters@demo.example.com", account.RoleOfficial, account.DepartmentMetering)
		r := ps.do("POST", "/api/meters", metering.Token, map[string]any{"external_id": "abn-1", "serial": "ABN-1", "model": "sdm120", "protocol": "mqtt"})
		want(t, r, 201, "")
		meter := num(r.JSON(t)["meter"].(map[string]any)["id"])
		want(t, ps.do("POST", "/api/users/properties", asha.Token, map[string]any{"label": "Shop", "address": map[string]any{"line1": "9 Market Road", "city": "Pune", "postal_code": "411002"},
			"meter_number": "ABN-1", "tariff_plan": "lt-domestic", "sanctioned_load_kw": "5"}), 201, "")
		today := billing.DateOf(time.Now(), kolkata)
		day := today.AddDays(-2).Start(kolkata)
		ps.readings(meter, day, 96, 15*time.Minute, 2_000_000, 500)
		mark := n.mark()
		n.set(time.Now().UTC())
		rz := kolkata
		found, err := n.scanner.ScanDays(ctx, detect.Tenant{ID: tenant, Zone: kolkata}, rz, day.Add(-24*time.Hour), day, today.Start(kolkata))
		must(t, err)
		if found == 0 {
			t.Fatal("no finding for 48 kWh against a 20 kWh daily threshold")
		}
		list, err := n.store.Alerts(ctx, alerts.AlertFilter{TenantID: tenant, UserID: asha.ID, Kinds: []alerts.Kind{alerts.KindConsumptionThreshold}})
		must(t, err)
		if len(list) != 1 || list[0].MeterRef != "abn-1" || list[0].Observed < 47 || list[0].Status != alerts.StatusOpen {
			t.Fatalf("alerts %+v", list)
		}
		n.deliver()
		mails := n.received(mark, "email", "asha.notify@example.com")
		var push []devsink.Captured
		for _, m := range n.log.All() {
			if m.Seq > mark && m.Channel == "push" {
				push = append(push, m)
			}
		}
		if len(mails) != 1 || !strings.Contains(mails[0].Subject, "Unusual electricity use on meter abn-1") || !strings.Contains(mails[0].Text, "above the lt-domestic plan's daily threshold of 20.0 kWh") {
			t.Fatalf("abnormal usage email: %v", subjects(mails))
		}
		if len(push) != 1 || push[0].Subject != "Unusual electricity use" || push[0].Data["alert_id"] != fmt.Sprint(list[0].ID) {
			t.Fatalf("abnormal usage push: %+v", push)
		}
	})
}

func subjects(ms []devsink.Captured) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Subject
	}
	return out
}
