package pdf

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestRenderReceipt(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	d := decimal.RequireFromString
	rc := &Receipt{TenantName: "Demo Power Distribution", Currency: "INR", Number: "RCPT/2024-25/000007", FinancialYear: "2024-25",
		IssuedAt: time.Date(2024, 6, 10, 12, 15, 0, 0, ist), PaidAt: time.Date(2024, 6, 10, 12, 14, 0, 0, ist),
		ConsumerName: "Asha Rao", ConsumerCode: "E000042", BillNumber: "DEMO/2024-25/000042", Amount: d("1100.00"),
		Method: "card", Instrument: "Visa •••• 1111", Provider: "razorpay", ProviderRef: "pay_29QQoUBi66xm2f",
		Allocation: []ReceiptLine{{Period: "1 Apr 2024 – 30 Apr 2024", Head: "late_payment_surcharge", Amount: d("4.06")},
			{Period: "1 Apr 2024 – 30 Apr 2024", Head: "energy", Amount: d("515.00")}, {Period: "1 May 2024 – 31 May 2024", Head: "energy", Amount: d("530.00")}},
		Advance: d("50.94"),
		Bills:   []ReceiptBill{{Number: "DEMO/2024-25/000042", Status: "paid", Paid: d("1049.06"), Total: d("1049.06")}}}
	out, err := RenderReceipt(rc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := RenderReceipt(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("%PDF-")) || !bytes.Equal(out, again) {
		t.Fatal("receipt is not a deterministic PDF")
	}
	text, _ := pdfToText(t, out)
	for _, want := range []string{"Payment receipt", "RCPT/2024-25/000007", "₹1,100.00", "Asha Rao", "E000042", "DEMO/2024-25/000042",
		"Card · Visa •••• 1111", "pay_29QQoUBi66xm2f", "late payment surcharge", "₹4.06", "Carried forward as advance", "₹50.94", "10 Jun 2024, 12:14 IST"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext output lacks %q:\n%s", want, text)
		}
	}
}
