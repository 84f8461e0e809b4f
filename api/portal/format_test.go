package portal

import (
	"bytes"
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestMoney(t *testing.T) {
	for _, tt := range []struct {
		currency, give, want string
	}{
		{"INR", "0", "₹0.00"},
		{"INR", "998", "₹998.00"},
		{"INR", "1049.5", "₹1,049.50"},
		{"INR", "123456.789", "₹1,23,456.79"},
		{"INR", "12345678.9", "₹1,23,45,678.90"},
		{"INR", "-0.49", "−₹0.49"},
		{"INR", "-0.001", "₹0.00"},
		{"", "100000", "₹1,00,000.00"},
		{"USD", "1234567.5", "USD 1,234,567.50"},
	} {
		if got := Money(tt.currency, decimal.RequireFromString(tt.give)); got != tt.want {
			t.Errorf("Money(%s, %s) = %q, want %q", tt.currency, tt.give, got, tt.want)
		}
	}
}

func TestEnergyAndPower(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{KWh(0), "0.00 kWh"},
		{KWh(218130), "218.13 kWh"},
		{KWh(1234567), "1,234.57 kWh"},
		{KWh3(1404405), "1,404.405 kWh"},
		{KWh(-1500), "−1.50 kWh"},
		{Quantity(decimal.RequireFromString("122.58064516129032258")), "122.581"},
		{Quantity(decimal.NewFromInt(5)), "5"},
		{Power(nil), "—"},
		{Power(ptr(920.4)), "920 W"},
		{Power(ptr(4321)), "4.32 kW"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func ptr(f float64) *float64 { return &f }

func TestTimes(t *testing.T) {
	ist, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 31, 20, 0, 0, 0, time.UTC) // 1 Feb 01:30 in India
	for _, tt := range []struct{ got, want string }{
		{Date(ist, at), "1 Feb 2026"},
		{DateTime(ist, at), "1 Feb 2026, 01:30 IST"},
		{DateTime(ist, &at), "1 Feb 2026, 01:30 IST"},
		{DateTime(ist, (*time.Time)(nil)), "—"},
		{Date(nil, at), "31 Jan 2026"},
		{BillDate("2026-04-30"), "30 Apr 2026"},
		{BillDate("not a date"), "not a date"},
		{Ago(500 * time.Millisecond), "just now"},
		{Ago(42 * time.Second), "42 s ago"},
		{Ago(5*time.Minute + 10*time.Second), "5 min ago"},
		{Ago(3 * time.Hour), "3 h ago"},
		{Ago(75 * time.Hour), "3 days ago"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Human("in_progress"), "In progress"},
		{FieldID("connections[0].meter_number"), "f-connections-0--meter-number"},
		{FieldName("connections[0].meter_number"), "Meter number"},
		{FieldName("address.postal_code"), "Postal code"},
		{FieldName("email"), "Email"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestViews parses every template, serves every static file with a
// content-hashed URL, and checks the rules the content security policy
// makes: no inline script and no event-handler attributes anywhere.
func TestViews(t *testing.T) {
	v, err := NewViews()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css", "portal.css", "portal.js", "htmx.LICENSE.txt", "uPlot.LICENSE.txt"} {
		u, err := v.asset(name)
		if err != nil || !regexp.MustCompile(`^/assets/`+regexp.QuoteMeta(name)+`\?v=[0-9a-f]{12}$`).MatchString(u) {
			t.Errorf("asset %s: %q %v", name, u, err)
		}
	}
	if _, err := v.asset("missing.js"); err == nil {
		t.Error("an unknown asset has a URL")
	}
	static, err := Static()
	if err != nil {
		t.Fatal(err)
	}
	htmx, err := fs.ReadFile(static, "htmx.min.js")
	if err != nil || !bytes.Contains(htmx, []byte(`version:"2.0.11"`)) {
		t.Errorf("vendored htmx is not 2.0.11: %v", err)
	}
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|<script>|\son[a-z]+=|javascript:`)
	files, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil || len(files) < 30 {
		t.Fatalf("%d templates: %v", len(files), err)
	}
	for _, f := range files {
		b, err := templateFiles.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := inline.Find(b); m != nil {
			t.Errorf("%s: %q would need an inline script", f, m)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")
		if !strings.HasPrefix(name, "_") && !v.Has(name) {
			t.Errorf("page %s not parsed", name)
		}
	}
	if err := v.Page(&bytes.Buffer{}, "nope", nil); err == nil {
		t.Error("an unknown page rendered")
	}
}
