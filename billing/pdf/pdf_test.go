package pdf

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func sampleBill() *Bill {
	d := decimal.RequireFromString
	prev, cur := int64(12_200_000), int64(12_525_000)
	b := &Bill{
		TenantName: "Demo Power Distribution Ltd", Currency: "INR", Service: "electricity",
		Number: "DEMO-DISCOM/2024-25/000042", Status: "issued",
		IssueDate: billing.NewDate(2024, 6, 5), DueDate: billing.NewDate(2024, 6, 20),
		Period:       billing.Period{From: billing.NewDate(2024, 5, 1), To: billing.NewDate(2024, 5, 31)},
		ConsumerName: "Asha Rao", ConsumerCode: "E000042", PropertyLabel: "Home",
		Address:     []string{"12 Lake Road", "Bengaluru 560001"},
		MeterSerial: "SDM120-000042", TariffPlan: "lt-domestic", TariffVersion: "FY2024-25",
		PreviousReadWh: &prev, CurrentReadWh: &cur, ConsumptionWh: 325_000, Estimated: true,
		Lines: []billing.BillLine{
			{Section: billing.SectionCurrent, Code: "energy", Description: "energy 0-200", HasQuantity: true, Quantity: d("200"), Unit: "kWh", Rate: d("3.00"), Amount: d("600.00")},
			{Section: billing.SectionCurrent, Code: "energy", Description: "energy 201-325", HasQuantity: true, Quantity: d("125"), Unit: "kWh", Rate: d("4.50"), Amount: d("562.50")},
			{Section: billing.SectionCurrent, Code: "fixed", Description: "fixed", HasQuantity: true, Quantity: d("2"), Unit: "kW", Rate: d("20.00"), Amount: d("40.00")},
			{Section: billing.SectionCurrent, Code: "ed", Description: "electricity duty", HasQuantity: true, Quantity: d("1202.50"), Unit: "%", Rate: d("5"), Amount: d("60.13")},
			{Section: billing.SectionCurrent, Code: "round_off", Description: "round off", Amount: d("-0.13")},
			{Section: billing.SectionArrears, Code: "arrears", Description: "arrears 2024-04-01 to 2024-04-30", Amount: d("1519.06")},
			{Section: billing.SectionAdvance, Code: "advance", Description: "advance and payments adjusted", Amount: d("-50.00")},
		},
		Totals: billing.BillTotals{Current: d("1262.50"), Arrears: d("1519.06"), Advance: d("-50.00"), RoundOff: d("-0.13"), Total: d("2731.56"), MinimumPayable: d("2731.56")},
	}
	months := []string{"Jun 23", "Jul 23", "Aug 23", "Sep 23", "Oct 23", "Nov 23", "Dec 23", "Jan 24", "Feb 24", "Mar 24", "Apr 24", "May 24"}
	for i, m := range months {
		b.History = append(b.History, UsageBar{Label: m, KWh: decimal.NewFromInt(int64(180 + (i*37)%160)), Estimated: i == len(months)-1})
	}
	return b
}

var payee = Payee{VPA: "billing@demodiscom", Name: "Demo Power"}

func TestRender(t *testing.T) {
	b := sampleBill()
	out, err := Render(b, payee)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Render(sampleBill(), payee)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, again) {
		t.Fatal("two renders of the same bill differ")
	}
	golden := filepath.Join("testdata", "bill.sha256")
	sum := fmt.Sprintf("%x\n", sha256.Sum256(out))
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(sum), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "bill.pdf"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != sum {
		t.Errorf("rendered bill hash %s, golden %s (inspect testdata/bill.pdf after -update)", strings.TrimSpace(sum), strings.TrimSpace(string(want)))
	}

	text, path := pdfToText(t, out)
	for _, want := range []string{"Total payable", "₹2,731.56", "20 June 2024", "DEMO-DISCOM/2024-25/000042", "ESTIMATED",
		"Asha Rao", "E000042", "SDM120-000042", "12200 kWh", "12525 kWh", "325 kWh", "₹1,519.06", "−₹50.00", "Scan to pay"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext output lacks %q:\n%s", want, text)
		}
	}
	if png, err := exec.LookPath("pdftoppm"); err == nil && *update {
		if err := exec.Command(png, "-png", "-r", "80", "-singlefile", path, filepath.Join("testdata", "bill-page1")).Run(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMoney(t *testing.T) {
	tests := []struct{ give, currency, want string }{
		{"1049.06", "INR", "₹1,049.06"},
		{"104906", "INR", "₹1,04,906.00"},
		{"12345678.5", "INR", "₹1,23,45,678.50"},
		{"-50", "INR", "−₹50.00"},
		{"1234567", "MUR", "MUR 1,234,567.00"},
		{"0", "INR", "₹0.00"},
	}
	for _, tt := range tests {
		if got := Money(tt.currency, decimal.RequireFromString(tt.give)); got != tt.want {
			t.Errorf("Money(%s, %s) = %q, want %q", tt.currency, tt.give, got, tt.want)
		}
	}
}

func TestUPIURI(t *testing.T) {
	got := UPIURI(payee, sampleBill())
	want := "upi://pay?am=2731.56&cu=INR&pa=billing%40demodiscom&pn=Demo%20Power&tn=Bill%20DEMO-DISCOM%2F2024-25%2F000042&tr=DEMO-DISCOM%2F2024-25%2F000042"
	if got != want {
		t.Errorf("UPIURI = %s\nwant     %s", got, want)
	}
}

// TestQRCodeScans renders page 1 and decodes the QR code with zbarimg
// (zbar-tools): it must carry the bill's UPI payment URI.
func TestQRCodeScans(t *testing.T) {
	for _, tool := range []string{"pdftoppm", "zbarimg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (poppler-utils, zbar-tools)", tool)
		}
	}
	out, err := Render(sampleBill(), payee)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "bill.pdf")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("pdftoppm", "-png", "-r", "200", "-singlefile", path, filepath.Join(dir, "page")).Run(); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("zbarimg", "-q", "--raw", filepath.Join(dir, "page.png")).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	if want := UPIURI(payee, sampleBill()); strings.TrimSpace(string(got)) != want {
		t.Errorf("QR code holds %q, want %q", got, want)
	}
}

// pdfToText writes a rendered PDF to a temporary file and returns
// pdftotext's layout text and the file; the test is skipped without
// poppler-utils.
func pdfToText(t *testing.T, pdf []byte) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext (poppler-utils) is not installed")
	}
	path := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(path, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command("pdftotext", "-layout", path, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(text), path
}

// A water bill's registers count litres: readings, consumption and the
// usage chart print kilolitres, and nothing says kWh. A sewerage bill,
// which counts no volume, prints no consumption unit at all.
func TestRenderUnitsFollowMeterKind(t *testing.T) {
	d := decimal.RequireFromString
	prev, cur := int64(120_000), int64(135_500)
	water := sampleBill()
	water.Service, water.MeterSerial, water.TariffPlan = "water", "WM-0007", "ws-metered"
	water.PreviousReadWh, water.CurrentReadWh, water.ConsumptionWh, water.Estimated = &prev, &cur, 15_500, false
	water.Lines = []billing.BillLine{{Section: billing.SectionCurrent, Code: "WS_CHARGE", Description: "Water charge: 15.5 kL graduated (slab 1)", Amount: d("186")}}
	water.History = []UsageBar{{Label: "Mar 24", KWh: d("14.2")}, {Label: "Apr 24", KWh: d("15.5")}}
	tests := []struct {
		name    string
		give    *Bill
		want    []string
		wantNot []string
	}{
		{"water", water, []string{"120 kL", "135.5 kL", "15.5 kL", "last 12 periods (kL)"}, []string{"kWh", " Wh"}},
		{"sewerage", func() *Bill {
			b := *water
			b.Service, b.PreviousReadWh, b.CurrentReadWh, b.ConsumptionWh, b.History = "sewerage", nil, nil, 0, nil
			return &b
		}(), []string{"not metered"}, []string{"kWh", "0 kL"}},
		{"electricity", sampleBill(), []string{"12200 kWh", "325 kWh", "last 12 periods (kWh)"}, []string{"kL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Render(tt.give, payee)
			if err != nil {
				t.Fatal(err)
			}
			text, _ := pdfToText(t, out)
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(text, w) {
					t.Errorf("has %q:\n%s", w, text)
				}
			}
		})
	}
}
