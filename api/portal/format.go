package portal

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Funcs are the template functions of the portal's pages.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"money":     Money,
		"kwh":       KWh,
		"kwh3":      KWh3,
		"qty":       Quantity,
		"power":     Power,
		"date":      Date,
		"datetime":  DateTime,
		"billdate":  BillDate,
		"ago":       Ago,
		"human":     Human,
		"unixms":    func(t time.Time) int64 { return t.UnixMilli() },
		"deref":     deref,
		"derefi":    derefInt,
		"dict":      dict,
		"has":       func(m map[string]string, k string) bool { _, ok := m[k]; return ok },
		"fid":       FieldID,
		"method":    MethodName,
		"head":      HeadName,
		"fieldname": FieldName,
		"add":       func(a, b int) int { return a + b },
		"pct": func(part, whole int) int {
			if whole <= 0 {
				return 0
			}
			return part * 100 / whole
		},
	}
}

// Money formats an amount in a currency: Indian rupees with the ₹ sign
// and Indian digit grouping (₹1,23,456.78), other currencies with their
// code and thousands grouping. Amounts show two decimals; negative amounts
// a leading minus sign (−₹12.00).
func Money(currency string, d decimal.Decimal) string {
	neg := d.IsNegative()
	s := d.Abs().StringFixed(2)
	whole, frac, _ := strings.Cut(s, ".")
	var out string
	if currency == "" || strings.EqualFold(currency, "INR") {
		out = "₹" + groupIndian(whole) + "." + frac
	} else {
		out = strings.ToUpper(currency) + " " + groupThousands(whole) + "." + frac
	}
	if neg && !d.Round(2).IsZero() {
		out = "−" + out
	}
	return out
}

// groupIndian groups digits as lakhs and crores: the last three, then
// pairs (12,34,567).
func groupIndian(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	head, tail := digits[:len(digits)-3], digits[len(digits)-3:]
	var parts []string
	for len(head) > 2 {
		parts = append([]string{head[len(head)-2:]}, parts...)
		head = head[:len(head)-2]
	}
	if head != "" {
		parts = append([]string{head}, parts...)
	}
	return strings.Join(append(parts, tail), ",")
}

func groupThousands(digits string) string {
	var b strings.Builder
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// KWh formats an energy in Wh as kWh with two decimals ("12.35 kWh").
func KWh(wh int64) string { return energy(wh, 2) }

// KWh3 formats a register value in Wh as kWh with three decimals, as
// meters display it ("1,234.567 kWh").
func KWh3(wh int64) string { return energy(wh, 3) }

func energy(wh int64, places int32) string {
	d := decimal.New(wh, -3).StringFixed(places)
	neg := strings.HasPrefix(d, "-")
	d = strings.TrimPrefix(d, "-")
	whole, frac, _ := strings.Cut(d, ".")
	s := groupThousands(whole) + "." + frac + " kWh"
	if neg {
		s = "−" + s
	}
	return s
}

// Quantity formats a billed quantity (kWh, kW, days) with at most three
// decimals, as the bill PDF prints it.
func Quantity(d decimal.Decimal) string {
	if d.IsInteger() {
		return d.String()
	}
	return d.Round(3).String()
}

// Power formats a power in W: watts below 1 kW, kW with two decimals
// above; "—" when unknown.
func Power(w *float64) string {
	if w == nil {
		return "—"
	}
	if *w < 1000 && *w > -1000 {
		return strconv.FormatFloat(*w, 'f', 0, 64) + " W"
	}
	return strconv.FormatFloat(*w/1000, 'f', 2, 64) + " kW"
}

// Date formats a time as a date in loc ("2 Jan 2026"); the zero time is
// "—".
func Date(loc *time.Location, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(orUTC(loc)).Format("2 Jan 2006")
}

// DateTime formats a time in loc with its zone ("2 Jan 2026, 14:05 IST").
func DateTime(loc *time.Location, t any) string {
	var tt time.Time
	switch v := t.(type) {
	case time.Time:
		tt = v
	case *time.Time:
		if v == nil {
			return "—"
		}
		tt = *v
	default:
		return fmt.Sprint(t)
	}
	if tt.IsZero() {
		return "—"
	}
	return tt.In(orUTC(loc)).Format("2 Jan 2006, 15:04 MST")
}

// BillDate formats a calendar date ("2026-01-31", or anything printing as
// one) as "31 Jan 2026".
func BillDate(d any) string {
	s := fmt.Sprint(d)
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	return t.Format("2 Jan 2006")
}

// Ago formats an age: "just now", "42 s ago", "5 min ago", "3 h ago",
// "2 days ago".
func Ago(d time.Duration) string {
	switch {
	case d < 2*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// Human turns a code ("in_progress", "partially_paid") into words ("In
// progress", "Partially paid").
func Human(v any) string {
	s := strings.ReplaceAll(fmt.Sprint(v), "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

func deref(p any) any {
	switch v := p.(type) {
	case *int64:
		if v == nil {
			return int64(0)
		}
		return *v
	case *float64:
		if v == nil {
			return float64(0)
		}
		return *v
	case *string:
		if v == nil {
			return ""
		}
		return *v
	case *decimal.Decimal:
		if v == nil {
			return decimal.Zero
		}
		return *v
	case *int:
		if v == nil {
			return 0
		}
		return *v
	}
	return p
}

func derefInt(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// dict builds a map from key, value pairs, to pass several values to a
// partial.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// FieldID is the element id of a form field: "f-" and the field's name
// with anything but letters and digits turned into dashes.
func FieldID(name string) string {
	var b strings.Builder
	b.WriteString("f-")
	for _, r := range name {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// FieldName is a field's name in words: its last path element
// ("connections[0].meter_number" → "Meter number").
func FieldName(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 && i < len(path)-1 {
		path = path[i+1:]
	}
	return Human(path)
}

// MethodName names a payment method for people.
func MethodName(m any) string {
	switch s := fmt.Sprint(m); s {
	case "upi":
		return "UPI"
	case "card":
		return "Card"
	case "netbanking":
		return "Net banking"
	case "wallet":
		return "Wallet"
	default:
		return Human(s)
	}
}

// HeadName names a tax head: short codes (ED) stay as they are, others
// become words (ROUND_OFF → Round off).
func HeadName(code string) string {
	if len(code) <= 3 {
		return strings.ToUpper(code)
	}
	return Human(strings.ToLower(code))
}
