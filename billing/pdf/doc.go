// Package pdf renders bills as one-page A4 PDFs: tenant header, consumer,
// property, meter and period, previous and current readings, consumption
// (estimated flagged), line items, arrears and advance, total payable and
// due date, a 12-period usage bar chart drawn as vector rectangles, and a
// UPI payment QR code (a upi://pay URI; rsc.io/qr encodes it). It also
// renders payment receipts (RenderReceipt, receipt.go, added by the
// payments component) in the same fonts and style.
//
// DejaVu Sans is embedded (fonts/, licence in fonts/LICENSE-DejaVu.txt) so
// the rupee sign renders without system fonts. Output is deterministic:
// the document date is the bill's issue date and gopdf writes no random
// identifiers, so the same bill gives the same bytes (tests pin a hash).
//
// Readings and consumption print in the unit of the bill's meters: kWh on
// electricity bills, kL (m³) on water bills, whose meters count litres
// (Bill.Kind).
//
// pdf imports billing, meter, gopdf, rsc.io/qr and the standard library; it
// must not import pgx, api or any other adapter.
package pdf
