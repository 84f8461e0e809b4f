package pdf

import (
	_ "embed" // fonts
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/signintech/gopdf"
	"rsc.io/qr"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/meter"
)

//go:embed fonts/DejaVuSans.ttf
var regularTTF []byte

//go:embed fonts/DejaVuSans-Bold.ttf
var boldTTF []byte

// Bill is what a printed bill shows. Amounts come from the stored bill;
// nothing is computed here but presentation.
type Bill struct {
	TenantName    string
	Currency      string // ISO 4217; INR prints ₹ with Indian digit grouping
	Service       string // electricity, water, sewerage
	Number        string
	Status        string // cancelled bills print a CANCELLED mark
	IssueDate     billing.Date
	DueDate       billing.Date
	Period        billing.Period
	ConsumerName  string
	ConsumerCode  string
	PropertyLabel string
	Address       []string // printed lines; may be empty
	MeterSerial   string
	TariffPlan    string
	TariffVersion string
	// Registers and consumption in the unit of the bill's meters (Kind):
	// Wh, or litres on a water bill.
	PreviousReadWh *int64
	CurrentReadWh  *int64
	ConsumptionWh  int64
	Estimated      bool
	Lines          []billing.BillLine
	Totals         billing.BillTotals
	History        []UsageBar // oldest first, up to 12
	ReplacesNumber string     // the cancelled bill this one replaces
}

// UsageBar is one period of the usage chart.
type UsageBar struct {
	Label     string          // e.g. "Apr 24"
	KWh       decimal.Decimal // kWh, or kL on a water bill (Kind.KiloUnit)
	Estimated bool
}

// Kind is what the bill's meters count: a water bill's registers and
// consumption are litres (its meters are water meters, see migration
// 00201), any other bill's Wh.
func (b *Bill) Kind() meter.Kind {
	if b.Service == "water" {
		return meter.KindWater
	}
	return meter.KindElectricity
}

// metered reports whether the bill shows consumption: electricity bills
// always do; water and sewerage bills only with readings (a sewerage or
// unmetered water charge counts fixtures, not volume).
func (b *Bill) metered() bool {
	return b.Service == "electricity" || b.PreviousReadWh != nil || b.CurrentReadWh != nil || b.ConsumptionWh != 0
}

// Payee is who a UPI payment goes to.
type Payee struct {
	VPA  string // virtual payment address, e.g. "billing@demo"
	Name string
}

// UPIURI returns the upi://pay URI of the NPCI linking specification for
// paying amount of a bill: payee address and name, amount, currency,
// transaction reference (the bill number) and a note.
func UPIURI(p Payee, b *Bill) string {
	q := url.Values{}
	q.Set("pa", p.VPA)
	q.Set("pn", p.Name)
	if b.Totals.Total.IsPositive() {
		q.Set("am", b.Totals.Total.StringFixed(2))
	}
	q.Set("cu", b.Currency)
	q.Set("tr", b.Number)
	q.Set("tn", "Bill "+b.Number)
	// Fixed key order (url.Values.Encode sorts keys) keeps the QR stable.
	return "upi://pay?" + strings.ReplaceAll(q.Encode(), "+", "%20")
}

// page geometry, points (A4).
const (
	pageW  = 595.28
	pageH  = 841.89
	margin = 36.0
	innerW = pageW - 2*margin
)

// Render draws the bill on one A4 page. The output is deterministic: the
// same bill and payee give the same bytes (the document date is the issue
// date, no random identifiers).
func Render(b *Bill, payee Payee) ([]byte, error) {
	var pdf gopdf.GoPdf
	pdf.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4, Unit: gopdf.UnitPT})
	pdf.SetInfo(gopdf.PdfInfo{
		Title: "Bill " + b.Number, Author: b.TenantName, Subject: b.Service + " bill " + b.Period.String(),
		Creator: "meterd", Producer: "meterd", CreationDate: b.IssueDate.Start(time.UTC),
	})
	if err := pdf.AddTTFFontData("dejavu", regularTTF); err != nil {
		return nil, fmt.Errorf("pdf font: %w", err)
	}
	if err := pdf.AddTTFFontDataWithOption("dejavu-bold", boldTTF, gopdf.TtfOption{}); err != nil {
		return nil, fmt.Errorf("pdf font: %w", err)
	}
	pdf.AddPage()
	r := &renderer{pdf: &pdf, b: b}
	r.header()
	y := r.lines(r.parties())
	y = r.summary(y + 8)
	r.chart(y+14, payee)
	if r.err != nil {
		return nil, fmt.Errorf("render bill %s: %w", b.Number, r.err)
	}
	out, err := pdf.GetBytesPdfReturnErr()
	if err != nil {
		return nil, fmt.Errorf("render bill %s: %w", b.Number, err)
	}
	return out, nil
}

type renderer struct {
	pdf *gopdf.GoPdf
	b   *Bill
	err error
}

func (r *renderer) font(bold bool, size float64) {
	name := "dejavu"
	if bold {
		name = "dejavu-bold"
	}
	if err := r.pdf.SetFont(name, "", size); err != nil && r.err == nil {
		r.err = err
	}
}

// text writes s with its top-left corner at x, y.
func (r *renderer) text(x, y float64, s string) {
	r.pdf.SetXY(x, y)
	if err := r.pdf.Cell(nil, s); err != nil && r.err == nil {
		r.err = err
	}
}

// right writes s ending at x.
func (r *renderer) right(x, y float64, s string) {
	w, err := r.pdf.MeasureTextWidth(s)
	if err != nil && r.err == nil {
		r.err = err
	}
	r.text(x-w, y, s)
}

func (r *renderer) rect(x, y, w, h float64, red, green, blue uint8) {
	r.pdf.SetFillColor(red, green, blue)
	r.pdf.RectFromUpperLeftWithStyle(x, y, w, h, "F")
}

func (r *renderer) money(d decimal.Decimal) string { return Money(r.b.Currency, d) }

func (r *renderer) header() {
	b := r.b
	r.rect(0, 0, pageW, 92, 0x1f, 0x4e, 0x79)
	r.pdf.SetTextColor(255, 255, 255)
	size := 20.0
	for r.font(true, size); size > 10; size-- {
		if w, err := r.pdf.MeasureTextWidth(b.TenantName); err != nil || w <= innerW {
			break
		}
		r.font(true, size-1)
	}
	r.text(margin, 18, b.TenantName)
	r.font(false, 11)
	r.text(margin, 50, strings.ToUpper(b.Service[:1])+b.Service[1:]+" bill")
	r.font(true, 11)
	r.right(pageW-margin, 46, "Bill no. "+b.Number)
	r.font(false, 10)
	r.right(pageW-margin, 62, "Issued "+longDate(b.IssueDate)+"  ·  Due "+longDate(b.DueDate))
	r.pdf.SetTextColor(0, 0, 0)
	if b.Status == "cancelled" {
		r.pdf.SetTextColor(0xc0, 0, 0)
		r.font(true, 12)
		r.text(margin, 70, "CANCELLED")
		r.pdf.SetTextColor(0, 0, 0)
	} else if b.ReplacesNumber != "" {
		r.font(false, 9)
		r.text(margin, 70, "Replaces bill "+b.ReplacesNumber)
	}
}

// parties draws consumer and meter facts in two columns and returns the
// y below them.
func (r *renderer) parties() float64 {
	b := r.b
	top := 108.0
	r.font(true, 11)
	r.text(margin, top, "Consumer")
	r.text(margin+innerW/2+6, top, "Meter and period")
	r.pdf.SetStrokeColor(0x1f, 0x4e, 0x79)
	r.pdf.SetLineWidth(0.8)
	r.pdf.Line(margin, top+16, margin+innerW/2-6, top+16)
	r.pdf.Line(margin+innerW/2+6, top+16, pageW-margin, top+16)
	left := [][2]string{{"Name", b.ConsumerName}, {"Consumer code", b.ConsumerCode}, {"Property", b.PropertyLabel}}
	for _, a := range b.Address {
		left = append(left, [2]string{"", a})
	}
	unit := " " + b.Kind().KiloUnit()
	reading := func(units *int64) string {
		if units == nil {
			return "—"
		}
		return kwh(decimal.New(*units, -3)) + unit
	}
	cons := kwh(decimal.New(b.ConsumptionWh, -3)) + unit
	if !b.metered() {
		cons = "not metered"
	}
	if b.Estimated {
		cons += "  (ESTIMATED)"
	}
	rightCol := [][2]string{
		{"Meter", b.MeterSerial}, {"Tariff", strings.TrimSpace(b.TariffPlan + " " + b.TariffVersion)},
		{"Period", shortDate(b.Period.From) + " – " + shortDate(b.Period.To) + fmt.Sprintf(" (%d days)", b.Period.Days())},
		{"Previous reading", reading(b.PreviousReadWh)}, {"Current reading", reading(b.CurrentReadWh)}, {"Consumption", cons},
	}
	for i, kv := range left {
		r.font(false, 9)
		r.text(margin, top+24+float64(i)*15, kv[0])
		r.font(false, 10)
		r.text(margin+82, top+23+float64(i)*15, kv[1])
	}
	for i, kv := range rightCol {
		r.font(false, 9)
		r.text(margin+innerW/2+6, top+24+float64(i)*15, kv[0])
		r.font(kv[0] == "Consumption", 10)
		if kv[0] == "Consumption" && b.Estimated {
			r.pdf.SetTextColor(0xb0, 0x50, 0x00)
		}
		r.text(margin+innerW/2+92, top+23+float64(i)*15, kv[1])
		r.pdf.SetTextColor(0, 0, 0)
	}
	return top + 24 + float64(max(len(left), len(rightCol)))*15 + 16
}

// lines draws the line table from y and returns the y below it.
func (r *renderer) lines(y float64) float64 {
	cols := []float64{margin + 6, margin + 300, margin + 390, pageW - margin - 6} // description, quantity (right), rate (right), amount (right)
	r.rect(margin, y, innerW, 18, 0xe8, 0xee, 0xf4)
	r.font(true, 9)
	r.text(cols[0], y+4, "Description")
	r.right(cols[1], y+4, "Quantity")
	r.right(cols[2], y+4, "Rate")
	r.right(cols[3], y+4, "Amount")
	y += 22
	section := billing.BillSection("")
	for _, l := range r.b.Lines {
		if l.Section != section {
			section = l.Section
			if section != billing.SectionCurrent {
				y += 3
				r.font(true, 9)
				r.text(cols[0], y, map[billing.BillSection]string{billing.SectionArrears: "Arrears", billing.SectionAdvance: "Advance and payments"}[section])
				y += 14
			}
		}
		r.font(false, 9)
		r.text(cols[0], y, l.Description)
		switch {
		case l.HasQuantity && l.Unit == "%": // a tax or subsidy: its base and percentage
			r.right(cols[1], y, r.money(l.Quantity))
			r.right(cols[2], y, l.Rate.String()+" %")
		case l.HasQuantity:
			r.right(cols[1], y, kwh(l.Quantity)+" "+l.Unit)
			r.right(cols[2], y, r.money(l.Rate))
		}
		r.right(cols[3], y, r.money(l.Amount))
		y += 14
	}
	r.pdf.SetStrokeColor(0xb0, 0xb8, 0xc4)
	r.pdf.SetLineWidth(0.5)
	r.pdf.Line(margin, y+2, pageW-margin, y+2)
	return y + 6
}

func (r *renderer) summary(y float64) float64 {
	t := r.b.Totals
	x1, x2 := pageW-margin-250, pageW-margin-6
	rows := [][2]string{
		{"Current charges", r.money(t.Current)},
		{"Arrears", r.money(t.Arrears)},
		{"Advance and payments", r.money(t.Advance)},
		{"Round-off (included above)", r.money(t.RoundOff)},
	}
	for _, kv := range rows {
		r.font(false, 10)
		r.text(x1, y, kv[0])
		r.right(x2, y, kv[1])
		y += 15
	}
	r.rect(x1-6, y, 256, 24, 0x1f, 0x4e, 0x79)
	r.pdf.SetTextColor(255, 255, 255)
	r.font(true, 12)
	r.text(x1, y+5, "Total payable")
	r.right(x2, y+5, r.money(t.Total))
	r.pdf.SetTextColor(0, 0, 0)
	y += 30
	r.font(false, 9)
	r.text(x1, y, "Pay by "+longDate(r.b.DueDate)+"; minimum payable "+r.money(t.MinimumPayable))
	return y + 14
}

// chart draws the usage bars (vector rectangles), on a bill that counts
// consumption, and the payment QR code.
func (r *renderer) chart(y float64, payee Payee) {
	if r.b.metered() {
		r.usage(y)
	}
	r.qr(y, payee)
}

func (r *renderer) usage(y float64) {
	r.font(true, 11)
	r.text(margin, y, "Your consumption, last 12 periods ("+r.b.Kind().KiloUnit()+")")
	bars := r.b.History
	if len(bars) > 12 {
		bars = bars[len(bars)-12:]
	}
	chartX, chartY, chartW, chartH := margin, y+22, 340.0, 130.0
	r.pdf.SetStrokeColor(0x80, 0x80, 0x80)
	r.pdf.SetLineWidth(0.5)
	r.pdf.Line(chartX, chartY+chartH, chartX+chartW, chartY+chartH)
	maxKWh := decimal.Zero
	for _, b := range bars {
		maxKWh = decimal.Max(maxKWh, b.KWh)
	}
	slot := chartW / 12
	for i, b := range bars {
		h := 0.0
		if maxKWh.IsPositive() {
			h = b.KWh.Div(maxKWh).InexactFloat64() * (chartH - 14)
		}
		x := chartX + float64(i)*slot + slot*0.15
		if b.Estimated {
			r.rect(x, chartY+chartH-h, slot*0.7, h, 0xe0, 0x8a, 0x1e)
		} else {
			r.rect(x, chartY+chartH-h, slot*0.7, h, 0x2e, 0x75, 0xb6)
		}
		r.font(false, 6.5)
		r.text(x-2, chartY+chartH-h-9, kwh(b.KWh.Round(0)))
		r.text(x-2, chartY+chartH+3, b.Label)
	}
	r.font(false, 7)
	r.rect(chartX, chartY+chartH+16, 7, 7, 0x2e, 0x75, 0xb6)
	r.text(chartX+10, chartY+chartH+15, "measured")
	r.rect(chartX+60, chartY+chartH+16, 7, 7, 0xe0, 0x8a, 0x1e)
	r.text(chartX+70, chartY+chartH+15, "estimated")
}

// qr draws the UPI payment QR code of a bill with something to pay.
func (r *renderer) qr(y float64, payee Payee) {
	if payee.VPA == "" || !r.b.Totals.Total.IsPositive() || r.b.Status == "cancelled" || r.b.Status == "paid" {
		return
	}
	code, err := qr.Encode(UPIURI(payee, r.b), qr.M)
	if err != nil {
		if r.err == nil {
			r.err = fmt.Errorf("qr: %w", err)
		}
		return
	}
	size := 120.0
	qx, qy := pageW-margin-size, y+18
	cell := size / float64(code.Size+8)
	r.rect(qx, qy, size, size, 255, 255, 255)
	r.pdf.SetFillColor(0, 0, 0)
	for yy := 0; yy < code.Size; yy++ {
		for xx := 0; xx < code.Size; {
			if !code.Black(xx, yy) {
				xx++
				continue
			}
			run := 1
			for code.Black(xx+run, yy) {
				run++
			}
			r.pdf.RectFromUpperLeftWithStyle(qx+float64(xx+4)*cell, qy+float64(yy+4)*cell, float64(run)*cell, cell, "F")
			xx += run
		}
	}
	r.font(true, 9)
	r.right(pageW-margin, qy+size+4, "Scan to pay with any UPI app")
	r.font(false, 7.5)
	r.right(pageW-margin, qy+size+17, payee.VPA+" · "+r.money(r.b.Totals.Total))
}

// Money formats an amount with its currency: ₹ and Indian digit grouping
// (1,04,906.00) for INR, the ISO code and thousands otherwise.
func Money(currency string, d decimal.Decimal) string {
	neg := d.IsNegative()
	s := d.Abs().StringFixed(2)
	whole, frac, _ := strings.Cut(s, ".")
	var groups []string
	if currency == "INR" && len(whole) > 3 {
		groups = append(groups, whole[len(whole)-3:])
		whole = whole[:len(whole)-3]
		for len(whole) > 2 {
			groups = append([]string{whole[len(whole)-2:]}, groups...)
			whole = whole[:len(whole)-2]
		}
		groups = append([]string{whole}, groups...)
	} else {
		for len(whole) > 3 {
			groups = append([]string{whole[len(whole)-3:]}, groups...)
			whole = whole[:len(whole)-3]
		}
		groups = append([]string{whole}, groups...)
	}
	out := strings.Join(groups, ",") + "." + frac
	sym := currency + " "
	if currency == "INR" {
		sym = "₹"
	}
	if neg {
		return "−" + sym + out
	}
	return sym + out
}

// kwh formats thousands of register units (kWh or kL) with up to three
// decimals.
func kwh(d decimal.Decimal) string {
	if d.IsInteger() {
		return d.String()
	}
	return d.Round(3).String()
}

func longDate(d billing.Date) string  { return d.Start(time.UTC).Format("2 January 2006") }
func shortDate(d billing.Date) string { return d.Start(time.UTC).Format("2 Jan 2006") }
