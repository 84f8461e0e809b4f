package pdf

import (
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/signintech/gopdf"
)

// Receipt is what a printed payment receipt shows. Amounts and the
// allocation come from the stored receipt; nothing is computed here but
// presentation. (Added by the payments component, issue 7.)
type Receipt struct {
	TenantName    string
	Currency      string
	Number        string // RCPT/2024-25/000001
	FinancialYear string
	IssuedAt      time.Time // in the tenant's zone; the document date
	PaidAt        time.Time // in the tenant's zone
	ConsumerName  string
	ConsumerCode  string
	BillNumber    string
	Amount        decimal.Decimal
	Method        string // card, netbanking, wallet, upi
	Instrument    string // "Visa •••• 1111", never a card number
	Provider      string
	ProviderRef   string // the provider's payment id
	Allocation    []ReceiptLine
	Advance       decimal.Decimal
	Bills         []ReceiptBill // bill states after the payment
}

// ReceiptLine is an amount the payment settled against one period's head.
type ReceiptLine struct {
	Period string // "1 Apr 2024 – 30 Apr 2024"
	Head   string
	Amount decimal.Decimal
}

// ReceiptBill is a bill's state after the payment.
type ReceiptBill struct {
	Number string
	Status string
	Paid   decimal.Decimal
	Total  decimal.Decimal
}

var methodNames = map[string]string{"card": "Card", "netbanking": "Net banking", "wallet": "Wallet", "upi": "UPI"}

// RenderReceipt draws the receipt on one A4 page, deterministically (the
// document date is the issue time).
func RenderReceipt(rc *Receipt) ([]byte, error) {
	var pdf gopdf.GoPdf
	pdf.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4, Unit: gopdf.UnitPT})
	pdf.SetInfo(gopdf.PdfInfo{Title: "Receipt " + rc.Number, Author: rc.TenantName, Subject: "Payment receipt for bill " + rc.BillNumber,
		Creator: "meterd", Producer: "meterd", CreationDate: rc.IssuedAt})
	if err := pdf.AddTTFFontData("dejavu", regularTTF); err != nil {
		return nil, fmt.Errorf("pdf font: %w", err)
	}
	if err := pdf.AddTTFFontDataWithOption("dejavu-bold", boldTTF, gopdf.TtfOption{}); err != nil {
		return nil, fmt.Errorf("pdf font: %w", err)
	}
	pdf.AddPage()
	r := &renderer{pdf: &pdf, b: &Bill{Currency: rc.Currency}}
	money := func(d decimal.Decimal) string { return Money(rc.Currency, d) }

	// Header band.
	r.rect(0, 0, pageW, 92, 0x1f, 0x4e, 0x79)
	pdf.SetTextColor(255, 255, 255)
	r.font(true, 20)
	r.text(margin, 18, rc.TenantName)
	r.font(false, 11)
	r.text(margin, 50, "Payment receipt")
	r.font(true, 11)
	r.right(pageW-margin, 46, "Receipt no. "+rc.Number)
	r.font(false, 10)
	r.right(pageW-margin, 62, "Issued "+rc.IssuedAt.Format("2 January 2006, 15:04 MST"))
	pdf.SetTextColor(0, 0, 0)

	// Amount.
	y := 112.0
	r.font(false, 10)
	r.text(margin, y, "Amount received")
	r.font(true, 26)
	r.text(margin, y+14, money(rc.Amount))

	// Facts in two columns.
	y += 58
	left := [][2]string{{"Received from", rc.ConsumerName}, {"Consumer code", rc.ConsumerCode}, {"Towards bill", rc.BillNumber}, {"Financial year", rc.FinancialYear}}
	method := methodNames[rc.Method]
	if method == "" {
		method = rc.Method
	}
	if rc.Instrument != "" && !strings.EqualFold(rc.Instrument, method) {
		method += " · " + rc.Instrument
	}
	rightCol := [][2]string{{"Paid at", rc.PaidAt.Format("2 Jan 2006, 15:04 MST")}, {"Method", method}, {"Provider", rc.Provider}, {"Provider reference", rc.ProviderRef}}
	for i := range max(len(left), len(rightCol)) {
		if i < len(left) {
			r.font(false, 9)
			r.text(margin, y+float64(i)*16, left[i][0])
			r.font(false, 10)
			r.text(margin+90, y-1+float64(i)*16, left[i][1])
		}
		if i < len(rightCol) {
			r.font(false, 9)
			r.text(margin+innerW/2+6, y+float64(i)*16, rightCol[i][0])
			r.font(false, 10)
			r.text(margin+innerW/2+100, y-1+float64(i)*16, rightCol[i][1])
		}
	}

	// Allocation.
	y += float64(max(len(left), len(rightCol)))*16 + 18
	r.font(true, 11)
	r.text(margin, y, "How the payment was applied (oldest period first)")
	y += 20
	r.rect(margin, y, innerW, 18, 0xe8, 0xee, 0xf4)
	r.font(true, 9)
	r.text(margin+6, y+4, "Period")
	r.text(margin+200, y+4, "Charge")
	r.right(pageW-margin-6, y+4, "Amount")
	y += 22
	r.font(false, 9)
	for _, l := range rc.Allocation {
		r.text(margin+6, y, l.Period)
		r.text(margin+200, y, strings.ReplaceAll(l.Head, "_", " "))
		r.right(pageW-margin-6, y, money(l.Amount))
		y += 14
	}
	if rc.Advance.IsPositive() {
		r.font(true, 9)
		r.text(margin+6, y, "Carried forward as advance")
		r.right(pageW-margin-6, y, money(rc.Advance))
		y += 14
	}
	pdf.SetStrokeColor(0xb0, 0xb8, 0xc4)
	pdf.SetLineWidth(0.5)
	pdf.Line(margin, y+2, pageW-margin, y+2)
	y += 8
	r.font(true, 10)
	r.text(margin+6, y, "Total")
	r.right(pageW-margin-6, y, money(rc.Amount))

	// Bills after the payment.
	if len(rc.Bills) > 0 {
		y += 30
		r.font(true, 11)
		r.text(margin, y, "Your bills after this payment")
		y += 20
		for _, b := range rc.Bills {
			r.font(false, 9)
			r.text(margin+6, y, b.Number)
			r.text(margin+200, y, strings.ReplaceAll(b.Status, "_", " "))
			r.right(pageW-margin-6, y, money(b.Paid)+" of "+money(b.Total)+" paid")
			y += 14
		}
	}
	r.font(false, 8)
	r.text(margin, pageH-margin-10, "This receipt is issued electronically by "+rc.TenantName+" and needs no signature. Card details are never stored.")
	if r.err != nil {
		return nil, fmt.Errorf("render receipt %s: %w", rc.Number, r.err)
	}
	out, err := pdf.GetBytesPdfReturnErr()
	if err != nil {
		return nil, fmt.Errorf("render receipt %s: %w", rc.Number, err)
	}
	return out, nil
}
