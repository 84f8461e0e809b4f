package pdf

import (
	"testing"

	"github.com/signintech/gopdf"
)

// BenchmarkRender renders the sample bill (lines, chart, QR code) and
// reports PDFs per second next to a same-run baseline: a page with the
// same embedded fonts and one line of text, the floor any bill PDF costs.
func BenchmarkRender(b *testing.B) {
	b.Run("baseline-font-page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p gopdf.GoPdf
			p.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4})
			if err := p.AddTTFFontData("dejavu", regularTTF); err != nil {
				b.Fatal(err)
			}
			p.AddPage()
			if err := p.SetFont("dejavu", "", 12); err != nil {
				b.Fatal(err)
			}
			if err := p.Cell(nil, "Total payable ₹2,731.56"); err != nil {
				b.Fatal(err)
			}
			if _, err := p.GetBytesPdfReturnErr(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bill", func(b *testing.B) {
		b.ReportAllocs()
		bill := sampleBill()
		for b.Loop() {
			if _, err := Render(bill, payee); err != nil {
				b.Fatal(err)
			}
		}
	})
}
