package template

import (
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/meter"
)

// funcs are the helpers templates may call:
//
//	money AMOUNT CURRENCY   "₹1,23,456.50" (Indian grouping for INR); the
//	                        amount is a decimal string or number
//	kwh WH                  Wh as kWh with 2 decimals ("12.35 kWh")
//	qty AMOUNT KIND         a register amount in the unit of the meter kind
//	                        (.P.meter_kind): Wh as kWh, or, for "water",
//	                        litres as kL, with 2 decimals ("12.35 kL")
//	water KIND              whether the meter kind is "water" (for wording:
//	                        {{if water .P.meter_kind}}water{{else}}electricity{{end}})
//	num X                   a number as given (decimal), "" for nil
//	date X                  a date ("2026-03-15" or a time) as "15 Mar 2026"
//	datetime X              a time in the tenant's zone, "15 Mar 2026, 14:05 IST"
//	default DEF X           X, or DEF when X is missing or empty
//	upper / lower / title   case helpers
func funcs() map[string]any {
	return map[string]any{
		"money":    money,
		"kwh":      kwh,
		"qty":      qty,
		"water":    isWater,
		"num":      num,
		"date":     func(v any) string { return date(v, nil) },
		"datetime": func(v any, zone *time.Location) string { return datetime(v, zone) },
		"default":  dflt,
		"upper":    strings.ToUpper,
		"lower":    strings.ToLower,
		"title":    title,
	}
}

func textFuncs() texttemplate.FuncMap { return funcs() }
func htmlFuncs() htmltemplate.FuncMap { return funcs() }

func toDecimal(v any) (decimal.Decimal, bool) {
	switch x := v.(type) {
	case nil:
		return decimal.Decimal{}, false
	case decimal.Decimal:
		return x, true
	case json.Number:
		d, err := decimal.NewFromString(string(x))
		return d, err == nil
	case string:
		d, err := decimal.NewFromString(strings.TrimSpace(x))
		return d, err == nil
	case int:
		return decimal.NewFromInt(int64(x)), true
	case int64:
		return decimal.NewFromInt(x), true
	case float64:
		return decimal.NewFromFloat(x), true
	}
	return decimal.Decimal{}, false
}

var symbols = map[string]string{"INR": "₹", "USD": "$", "EUR": "€", "GBP": "£"}

// money formats an amount with two decimals and its currency's symbol;
// INR uses Indian digit grouping (lakh, crore).
func money(amount any, currency any) string {
	d, ok := toDecimal(amount)
	if !ok {
		return fmt.Sprint(amount)
	}
	cur := strings.ToUpper(fmt.Sprint(currency))
	if currency == nil {
		cur = ""
	}
	neg := d.IsNegative()
	s := d.Abs().StringFixed(2)
	whole, frac, _ := strings.Cut(s, ".")
	whole = group(whole, cur == "INR")
	out := whole + "." + frac
	if sym, ok := symbols[cur]; ok {
		out = sym + out
	} else if cur != "" {
		out = cur + " " + out
	}
	if neg {
		out = "-" + out
	}
	return out
}

// group inserts thousands separators: 1,234,567 or, Indian style, 12,34,567.
func group(digits string, indian bool) string {
	if len(digits) <= 3 {
		return digits
	}
	head, tail := digits[:len(digits)-3], digits[len(digits)-3:]
	size := 3
	if indian {
		size = 2
	}
	var parts []string
	for len(head) > size {
		parts = append([]string{head[len(head)-size:]}, parts...)
		head = head[:len(head)-size]
	}
	parts = append([]string{head}, parts...)
	return strings.Join(parts, ",") + "," + tail
}

func kwh(wh any) string {
	d, ok := toDecimal(wh)
	if !ok {
		return fmt.Sprint(wh)
	}
	return d.Div(decimal.NewFromInt(1000)).StringFixed(2) + " kWh"
}

// isWater reports whether a payload's meter kind is water.
func isWater(kind any) bool {
	s, ok := kind.(string)
	return ok && meter.KindOf(s) == meter.KindWater
}

// qty formats a register amount (Wh, or litres for a water meter) in
// thousands with the kind's unit.
func qty(amount any, kind any) string {
	d, ok := toDecimal(amount)
	if !ok {
		return fmt.Sprint(amount)
	}
	k := meter.KindElectricity
	if isWater(kind) {
		k = meter.KindWater
	}
	return d.Div(decimal.NewFromInt(1000)).StringFixed(2) + " " + k.KiloUnit()
}

func num(v any) string {
	if v == nil {
		return ""
	}
	if d, ok := toDecimal(v); ok {
		return d.String()
	}
	return fmt.Sprint(v)
}

func parseTime(v any) (time.Time, bool, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, false, true
	case string:
		if t, err := time.Parse(time.DateOnly, x); err == nil {
			return t, true, true
		}
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t, false, true
		}
	}
	return time.Time{}, false, false
}

func date(v any, zone *time.Location) string {
	t, civil, ok := parseTime(v)
	if !ok {
		return fmt.Sprint(v)
	}
	if !civil && zone != nil {
		t = t.In(zone)
	}
	return t.Format("2 Jan 2006")
}

func datetime(v any, zone *time.Location) string {
	t, civil, ok := parseTime(v)
	if !ok {
		return fmt.Sprint(v)
	}
	if civil {
		return t.Format("2 Jan 2006")
	}
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format("2 Jan 2006, 15:04 MST")
}

func dflt(def, v any) any {
	switch x := v.(type) {
	case nil:
		return def
	case string:
		if x == "" {
			return def
		}
	}
	return v
}

func title(s string) string {
	words := strings.Fields(strings.ReplaceAll(s, "_", " "))
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}
