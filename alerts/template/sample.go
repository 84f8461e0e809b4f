package template

import (
	"encoding/json"
	"time"
)

// samples are example payloads per event: what the producers send. They
// let a tenant override be checked before it is stored (Sample), and the
// tests render every default with them.
var samples = map[string]map[string]any{
	"account.verify_email": {"email": "asha@example.com", "link_path": "/verify?token=", "expires_at": "2026-03-16T10:00:00Z"},
	"ticket.created": {"ticket_id": json.Number("42"), "subject": "Meter display blank", "category": "meter", "priority": "normal",
		"status": "assigned", "sla_due_at": "2026-03-17T10:00:00Z", "awaiting_staff": false},
	"ticket.assigned":       {"ticket_id": json.Number("42"), "subject": "Meter display blank", "status": "assigned", "assignee_name": "Ravi"},
	"ticket.status_changed": {"ticket_id": json.Number("42"), "subject": "Meter display blank", "status": "resolved", "from": "in_progress", "to": "resolved", "note": "Replaced the display."},
	"ticket.comment":        {"ticket_id": json.Number("42"), "subject": "Meter display blank", "status": "in_progress", "comment_id": json.Number("7")},
	"bill.issued": {"bill_id": json.Number("9"), "number": "ED/2025-26/000123", "consumer_code": "E000017", "period_from": "2026-02-01",
		"period_to": "2026-02-28", "due_date": "2026-03-16", "total": "1834.00", "currency": "INR", "estimated": false},
	"bill.due_soon": {"bill_id": json.Number("9"), "bill_number": "ED/2025-26/000123", "consumer_code": "E000017", "due_date": "2026-03-16",
		"amount_due": "1834.00", "currency": "INR", "days_left": json.Number("3"), "source": "policy"},
	"payment.reminder": {"bill_id": json.Number("9"), "bill_number": "ED/2025-26/000123", "consumer_code": "E000017", "due_date": "2026-03-16",
		"amount_due": "1834.00", "currency": "INR", "days_overdue": json.Number("7"), "step": json.Number("2"), "min_channels": json.Number("2")},
	"payment.escalation": {"bill_id": json.Number("9"), "bill_number": "ED/2025-26/000123", "consumer_code": "E000017", "consumer_user_id": json.Number("5"),
		"due_date": "2026-03-16", "amount_due": "1834.00", "currency": "INR", "days_overdue": json.Number("15"), "step": json.Number("3")},
	"payment.succeeded": {"payment_id": json.Number("31"), "receipt_number": "RCPT/2025-26/000045", "bill_id": json.Number("9"), "bill_number": "ED/2025-26/000123",
		"amount": "1834.00", "currency": "INR", "method": "upi", "paid_at": "2026-03-10T06:45:00Z"},
	"usage.abnormal": {"alert_id": json.Number("3"), "kind": "consumption_threshold", "meter_ref": "sim-000017", "meter_kind": "electricity", "consumer_code": "E000017",
		"summary": "41.2 kWh used on 9 Mar 2026, above the plan's daily threshold of 20 kWh", "observed": json.Number("41.2"), "expected": json.Number("20"), "unit": "kWh", "at": "2026-03-09T00:00:00Z"},
	"meter.alert": {"alert_id": json.Number("4"), "kind": "tamper", "meter_ref": "sim-000017", "meter_kind": "electricity", "consumer_code": "E000017",
		"summary": "import register went back by 5120 kWh without a recorded reset", "observed": json.Number("-5120"), "unit": "kWh", "at": "2026-03-09T04:15:00Z"},
	"billing.run_summary": {"run_id": json.Number("12"), "service": "electricity", "period_from": "2026-02-01", "period_to": "2026-02-28", "status": "completed",
		"error": "", "total": json.Number("1000"), "billed": json.Number("990"), "unchanged": json.Number("0"), "skipped": json.Number("7"), "failed": json.Number("3")},
}

// Sample returns example data for event: a payload as its producer sends
// it, a sample tenant and recipient. Unknown events get an empty payload.
func Sample(event string) Data {
	p := map[string]any{}
	for k, v := range samples[event] {
		p[k] = v
	}
	zone, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		zone = time.UTC
	}
	return Data{
		Tenant: Branding{Name: "Example Power", SupportEmail: "help@example.com", SupportPhone: "1912", WebsiteURL: "https://power.example.com",
			Color: "#1f6feb", Footer: "Example Power Distribution Ltd."},
		Recipient: Recipient{Name: "Asha", Role: "consumer"},
		P:         p,
		Link:      "https://power.example.com/portal",
		Zone:      zone,
		Currency:  "INR",
	}
}

// SampleEvents lists the events Sample has a payload for.
func SampleEvents() []string {
	out := make([]string, 0, len(samples))
	for k := range samples {
		out = append(out, k)
	}
	return out
}
