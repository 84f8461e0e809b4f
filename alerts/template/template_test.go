package template

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func newSet(t *testing.T) *Set {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every default renders every block with a producer's payload, in every
// locale that has it, leaving no placeholder behind.
func TestDefaultsRender(t *testing.T) {
	s := newSet(t)
	for _, event := range SampleEvents() {
		for _, locale := range []string{"en", "hi"} {
			r, err := s.Render(event, locale, "", Sample(event))
			if err != nil {
				t.Fatalf("%s@%s: %v", event, locale, err)
			}
			for name, v := range map[string]string{"subject": r.Subject, "text": r.Text, "html": r.HTML, "sms": r.SMS, "push_title": r.PushTitle, "push_body": r.PushBody} {
				if strings.TrimSpace(v) == "" {
					t.Errorf("%s@%s: %s is empty", event, locale, name)
				}
				if strings.Contains(v, "<no value>") || strings.Contains(v, "%!") {
					t.Errorf("%s@%s: %s has a placeholder: %q", event, locale, name, v)
				}
			}
			if strings.Contains(r.Subject, "\n") || strings.Contains(r.SMS, "\n") {
				t.Errorf("%s@%s: subject or SMS spans lines", event, locale)
			}
		}
	}
}

func TestRenderContent(t *testing.T) {
	s := newSet(t)
	tests := []struct {
		give      string
		locale    string
		wantParts []string // in subject, text or SMS
		wantHTML  []string
	}{
		{give: "bill.issued", locale: "en", wantParts: []string{"ED/2025-26/000123", "₹1,834.00", "16 Mar 2026"}, wantHTML: []string{"#1f6feb", "Example Power", "help@example.com"}},
		{give: "payment.succeeded", locale: "en", wantParts: []string{"RCPT/2025-26/000045", "₹1,834.00", "10 Mar 2026, 12:15 IST", "Upi"}},
		{give: "payment.succeeded", locale: "hi", wantParts: []string{"रसीद", "RCPT/2025-26/000045"}},
		{give: "ticket.status_changed", locale: "en", wantParts: []string{"#42", "In Progress", "Resolved", "Replaced the display."}},
		{give: "account.verify_email", locale: "en", wantParts: []string{"asha@example.com", "https://power.example.com/portal"}},
		{give: "billing.run_summary", locale: "en", wantParts: []string{"990 billed", "3 failed", "dead letters"}},
		{give: "no.such_event", locale: "en", wantParts: []string{"No.such Event"}},
	}
	for _, tt := range tests {
		t.Run(tt.give+"@"+tt.locale, func(t *testing.T) {
			r, err := s.Render(tt.give, tt.locale, "", Sample(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			all := r.Subject + "\n" + r.Text + "\n" + r.SMS + "\n" + r.PushTitle + "\n" + r.PushBody
			for _, p := range tt.wantParts {
				if !strings.Contains(all, p) {
					t.Errorf("missing %q in\n%s", p, all)
				}
			}
			for _, p := range tt.wantHTML {
				if !strings.Contains(r.HTML, p) {
					t.Errorf("HTML missing %q", p)
				}
			}
		})
	}
}

// Payload values are escaped in HTML and left alone in text.
func TestHTMLEscapes(t *testing.T) {
	s := newSet(t)
	d := Sample("ticket.created")
	d.P["subject"] = `<script>alert("x")</script>`
	r, err := s.Render("ticket.created", "en", "", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;") {
		t.Errorf("HTML not escaped: %s", r.HTML)
	}
	if !strings.Contains(r.Text, `<script>alert("x")</script>`) {
		t.Errorf("text changed the subject: %s", r.Text)
	}
}

// A tenant override replaces the blocks it defines; the rest come from the
// default. Rendering twice (the second time on a fresh clone) works.
func TestOverride(t *testing.T) {
	s := newSet(t)
	src := `{{define "subject"}}[{{.Tenant.Name}}] Invoice {{.P.number}}{{end}}{{define "sms"}}Pay {{money .P.total .P.currency}} by {{date .P.due_date}}{{end}}`
	for range 2 {
		r, err := s.Render("bill.issued", "en", src, Sample("bill.issued"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Subject != "[Example Power] Invoice ED/2025-26/000123" {
			t.Errorf("subject = %q", r.Subject)
		}
		if r.SMS != "Pay ₹1,834.00 by 16 Mar 2026" {
			t.Errorf("sms = %q", r.SMS)
		}
		if !strings.Contains(r.Text, "The bill is attached as a PDF.") {
			t.Errorf("text not from the default: %q", r.Text)
		}
	}
	// The default is unchanged by the override.
	r, err := s.Render("bill.issued", "en", "", Sample("bill.issued"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(r.Subject, "[") {
		t.Errorf("override leaked into the default: %q", r.Subject)
	}
	for _, bad := range []string{`{{define "subject"}}{{.P.bill_number}`, `{{define "sms"}}{{nosuchfunc}}{{end}}`, `{{define "text"}}{{.P.total.x.y}}{{end}}`} {
		if err := s.Validate("bill.issued", "en", bad, Sample("bill.issued")); !errors.Is(err, ErrTemplate) {
			t.Errorf("Validate(%q) = %v, want ErrTemplate", bad, err)
		}
	}
}

func TestLocales(t *testing.T) {
	s := newSet(t)
	tests := []struct {
		user, tenant string
		overrides    map[string]bool
		event        string
		wantList     []string
		wantPick     string
	}{
		{user: "hi-IN", tenant: "en", event: "bill.issued", wantList: []string{"hi-IN", "hi", "en"}, wantPick: "hi"},
		{user: "", tenant: "hi", event: "bill.issued", wantList: []string{"hi", "en"}, wantPick: "hi"},
		{user: "hi", tenant: "en", event: "billing.run_summary", wantList: []string{"hi", "en"}, wantPick: "en"},
		{user: "ta", tenant: "en", event: "bill.issued", overrides: map[string]bool{"ta": true}, wantList: []string{"ta", "en"}, wantPick: "ta"},
		{user: "fr", tenant: "", event: "bill.issued", wantList: []string{"fr", "en"}, wantPick: "en"},
	}
	for _, tt := range tests {
		got := Locales(tt.user, tt.tenant)
		if !slices.Equal(got, tt.wantList) {
			t.Errorf("Locales(%q, %q) = %v, want %v", tt.user, tt.tenant, got, tt.wantList)
		}
		if p := s.Pick(tt.event, got, tt.overrides); p != tt.wantPick {
			t.Errorf("Pick(%s, %v) = %q, want %q", tt.event, got, p, tt.wantPick)
		}
	}
}

func TestMoney(t *testing.T) {
	tests := []struct {
		give     any
		currency any
		want     string
	}{
		{"1234567.5", "INR", "₹12,34,567.50"},
		{"1234567.5", "USD", "$1,234,567.50"},
		{"-12.345", "EUR", "-€12.35"},
		{"999", "XYZ", "XYZ 999.00"},
		{"100", nil, "100.00"},
		{"abc", "INR", "abc"},
	}
	for _, tt := range tests {
		if got := money(tt.give, tt.currency); got != tt.want {
			t.Errorf("money(%v, %v) = %q, want %q", tt.give, tt.currency, got, tt.want)
		}
	}
}

// Abnormal usage on a water meter says water, not electricity, in every
// locale; the quantity helper follows the meter kind.
func TestUsageAbnormalFollowsMeterKind(t *testing.T) {
	s := newSet(t)
	tests := []struct {
		kind, locale string
		want, reject []string
	}{
		{"water", "en", []string{"Unusual water use", "unusual water use", "leak", "1.2 kL used"}, []string{"electricity", "kWh"}},
		{"water", "hi", []string{"असामान्य पानी खपत", "रिसाव"}, []string{"बिजली", "kWh"}},
		{"electricity", "en", []string{"Unusual electricity use", "appliances"}, []string{"water", "kL"}},
		{"electricity", "hi", []string{"असामान्य बिजली खपत"}, []string{"पानी"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"@"+tt.locale, func(t *testing.T) {
			d := Sample("usage.abnormal")
			d.P["meter_kind"] = tt.kind
			if tt.kind == "water" {
				d.P["summary"], d.P["unit"] = "1.2 kL used on 9 Mar 2026, above the plan's daily threshold of 1.0 kL", "kL"
			}
			r, err := s.Render("usage.abnormal", tt.locale, "", d)
			if err != nil {
				t.Fatal(err)
			}
			all := r.Subject + "\n" + r.Text + "\n" + r.HTML + "\n" + r.SMS + "\n" + r.PushTitle + "\n" + r.PushBody
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("missing %q in\n%s", w, all)
				}
			}
			for _, w := range tt.reject {
				if strings.Contains(all, w) {
					t.Errorf("has %q in\n%s", w, all)
				}
			}
		})
	}
}

func TestQty(t *testing.T) {
	tests := []struct {
		give, kind any
		want       string
	}{
		{"12345", "water", "12.35 kL"},
		{int64(12345), "electricity", "12.35 kWh"},
		{"12345", nil, "12.35 kWh"},
		{"x", "water", "x"},
	}
	for _, tt := range tests {
		if got := qty(tt.give, tt.kind); got != tt.want {
			t.Errorf("qty(%v, %v) = %q, want %q", tt.give, tt.kind, got, tt.want)
		}
	}
}
