package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing/payment"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// Consumer pages for bills and payments: the bill list and detail, the PDF,
// paying (a method, then the provider's checkout, then back to the
// receipt), payments and receipts.

type billsData struct {
	Bills []billingpg.StoredBill
}

func (p *Portal) billsPage(r *Request) error {
	list, _, err := p.svc.Billing.Bills(r.C.UserContext(), billingpg.BillFilter{TenantID: r.Scope.TenantID, ConsumerUserID: r.Scope.UserID, Limit: 100})
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "bills", "Bills", billsData{Bills: list})
}

type billData struct {
	Bill        billingpg.StoredBill
	Outstanding decimal.Decimal
	Payable     bool
	Payments    []payment.Payment
	// Pay form: the methods offered and the attempt's Idempotency-Key.
	Methods []payment.Method
	Key     string
}

func (p *Portal) bill(r *Request) (billData, error) {
	id, err := portalID(r, "billId")
	if err != nil {
		return billData{}, err
	}
	b, err := p.svc.Billing.Bill(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, id)
	if err != nil {
		return billData{}, billNotFound(err, id)
	}
	d := billData{Bill: b, Outstanding: b.Totals.Total.Sub(b.PaidAmount), Methods: payment.Methods()}
	d.Payable = p.svc.Payments != nil && d.Outstanding.IsPositive() && b.Status != "cancelled" && b.Status != "paid"
	if p.svc.Payments != nil {
		if d.Payments, err = p.svc.Payments.Payments(r.C.UserContext(), caller(r), payment.Filter{BillID: id, Limit: 20}); err != nil {
			return d, err
		}
	}
	return d, nil
}

func (p *Portal) billPage(r *Request) error {
	d, err := p.bill(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "bill", "Bill "+d.Bill.Number, d)
}

// billPDF serves the PDF exactly as GET /api/bills/{billId}/pdf does.
func (p *Portal) billPDF(r *Request) error {
	return (&handlers{svc: p.svc, now: p.now}).billPDF(r)
}

// receiptPDF serves the PDF exactly as GET
// /api/payments/{paymentId}/receipt/pdf does.
func (p *Portal) receiptPDF(r *Request) error {
	return (&handlers{svc: p.svc, now: p.now}).receiptPDF(r)
}

func (p *Portal) payPage(r *Request) error {
	d, err := p.bill(r)
	if err != nil {
		return err
	}
	if !d.Payable {
		return p.redirect(r, fmt.Sprintf("/bills/%d", d.Bill.ID), "Nothing is outstanding on this bill.")
	}
	// One key per payment attempt: submitting this form twice (a double
	// click, a retry after a timeout) is one payment; opening the page again
	// is a new attempt.
	d.Key = newPortalToken()
	v := p.view(r, "Pay bill "+d.Bill.Number, d)
	v.Form = map[string]string{"amount": d.Outstanding.StringFixed(2), "method": string(payment.MethodUPI)}
	return p.write(r, http.StatusOK, "pay", "layout", v)
}

func (p *Portal) pay(r *Request) error {
	d, err := p.bill(r)
	if err != nil {
		return err
	}
	f := formValues(r.C, "amount", "method", "key")
	d.Key = f["key"]
	if !wellFormedToken(d.Key) {
		d.Key = newPortalToken()
	}
	amount, aerr := decimal.NewFromString(strings.ReplaceAll(f["amount"], ",", ""))
	if aerr != nil {
		err = &Error{Kind: KindInvalidInput, Detail: "invalid amount", Fields: []FieldError{{Field: "amount", Message: "must be an amount in rupees, such as 1049.50"}}}
	}
	var pm payment.Payment
	ret := fmt.Sprintf("%s/bills/%d/paid", p.baseURL(r.C), d.Bill.ID)
	if err == nil {
		pm, _, err = p.svc.Payments.Create(r.C.UserContext(), caller(r), d.Key, payment.CreateRequest{BillID: d.Bill.ID, Amount: amount,
			Method: payment.Method(f["method"]), ReturnURL: ret})
	}
	if err != nil {
		err = paymentError(r, err)
		if errors.Is(err, payment.ErrIdempotencyMismatch) {
			d.Key = newPortalToken() // the form changed: a new attempt
		}
		if formProblem(err) {
			return p.renderForm(r, "pay", "Pay bill "+d.Bill.Number, d, f, err)
		}
		return err
	}
	if a := pm.NextAction; a != nil && pm.Status.Open() {
		if a.Type == "redirect" && a.URL != "" {
			return r.C.Redirect(a.URL, http.StatusSeeOther)
		}
		if script := p.cfg.CheckoutScripts[a.Type]; script != "" {
			return p.checkout(r, d, pm, script, ret)
		}
	}
	msg := ""
	if pm.Status.Open() {
		msg = "This payment needs the provider's own checkout, which the portal cannot open; choose another method."
	}
	return p.redirect(r, fmt.Sprintf("/payments/%d", pm.ID), msg)
}

type checkoutData struct {
	Bill    billingpg.StoredBill
	Payment payment.Payment
	Kind    string // the next action: razorpay_checkout or stripe_confirm
	Script  string // the provider's SDK
	Params  string // JSON for portal.js: the action's params and return_url
}

// checkout renders the page that opens the provider's own checkout (Razorpay
// Checkout, or Stripe's Payment Element) in the browser. portal.js drives
// it; the provider sends the payer back to ret (paid) with the fields
// Confirm verifies. Only this page's content security policy admits the
// provider's origins.
func (p *Portal) checkout(r *Request, d billData, pm payment.Payment, script, ret string) error {
	params := maps.Clone(pm.NextAction.Params)
	if params == nil {
		params = map[string]string{}
	}
	params["return_url"] = ret
	js, err := json.Marshal(params)
	if err != nil {
		return err
	}
	r.C.Set(fiber.HeaderContentSecurityPolicy, checkoutPolicy(pm.NextAction.Type, scriptOrigin(script)))
	// The providers' SDKs are served without Cross-Origin-Resource-Policy,
	// which every other page's require-corp would demand, and Razorpay's
	// net banking and wallets talk to the popups they open.
	r.C.Set("Cross-Origin-Embedder-Policy", "unsafe-none")
	r.C.Set("Cross-Origin-Opener-Policy", "same-origin-allow-popups")
	return p.write(r, http.StatusOK, "checkout", "layout", p.view(r, "Pay bill "+d.Bill.Number,
		checkoutData{Bill: d.Bill, Payment: pm, Kind: pm.NextAction.Type, Script: script, Params: string(js)}))
}

// checkoutPolicy widens contentSecurityPolicy for one provider's checkout:
// its SDK's origin, plus the frames, API calls and images its documentation
// lists for a content security policy.
func checkoutPolicy(kind, sdkOrigin string) string {
	script, frame, connect, img := []string{sdkOrigin}, []string{sdkOrigin}, []string(nil), []string(nil)
	switch kind {
	case "razorpay_checkout":
		frame = append(frame, "https://api.razorpay.com")
		connect = append(connect, "https://api.razorpay.com", "https://lumberjack.razorpay.com")
		img = append(img, "https://cdn.razorpay.com")
	case "stripe_confirm":
		script = append(script, "https://*.js.stripe.com")
		frame = append(frame, "https://*.js.stripe.com", "https://hooks.stripe.com")
		connect = append(connect, "https://api.stripe.com")
	}
	return contentPolicy(script, frame, connect, img)
}

// scriptOrigin is the scheme://host[:port] of an absolute http(s) URL, or
// "" when it is not one.
func scriptOrigin(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// checkoutFields are the return parameters of the providers' checkouts
// that Confirm verifies, and the names of their order ids.
var (
	checkoutFields = []string{"sandbox_payment_id", "sandbox_signature", "razorpay_payment_id", "razorpay_order_id", "razorpay_signature", "payment_intent"}
	checkoutOrder  = []string{"sandbox_order_id", "razorpay_order_id", "payment_intent"}
)

// paid is where the provider's checkout sends the payer back: the
// callback's signature is checked and the provider asked (Confirm), then
// the payer sees the payment (its receipt once captured).
func (p *Portal) paid(r *Request) error {
	d, err := p.bill(r)
	if err != nil {
		return err
	}
	id := d.Bill.ID
	order := ""
	for _, k := range checkoutOrder {
		if v := r.C.Query(k); v != "" {
			order = v
			break
		}
	}
	back := fmt.Sprintf("/bills/%d", id)
	if order == "" {
		return p.redirect(r, back, "You came back from the payment page without paying; nothing was charged.")
	}
	list, err := p.svc.Payments.Payments(r.C.UserContext(), caller(r), payment.Filter{BillID: id, Limit: 50})
	if err != nil {
		return err
	}
	var pm *payment.Payment
	for i := range list {
		if list[i].ProviderOrderID == order {
			pm = &list[i]
			break
		}
	}
	if pm == nil {
		return p.redirect(r, back, "The payment page's answer does not match a payment of this bill; check your payments before paying again.")
	}
	fields := map[string]string{}
	for _, k := range checkoutFields {
		fields[k] = r.C.Query(k)
	}
	if _, err := p.svc.Payments.Confirm(r.C.UserContext(), caller(r), pm.ID, fields); err != nil {
		if errors.Is(err, payment.ErrSignature) {
			return Errorf(KindInvalidSignature, "the payment page's answer could not be verified; if money left your account it will be reconciled, check your payments before paying again")
		}
		return paymentError(r, err)
	}
	return r.C.Redirect(fmt.Sprintf("/payments/%d", pm.ID), http.StatusSeeOther)
}

type paymentsData struct {
	Payments []payment.Payment
}

func (p *Portal) paymentsPage(r *Request) error {
	list, err := p.svc.Payments.Payments(r.C.UserContext(), caller(r), payment.Filter{Limit: 100})
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "payments", "Payments", paymentsData{Payments: list})
}

type paymentData struct {
	Payment payment.Payment
	Receipt *payment.Receipt
	// Poll is set while the payment may still change on its own (a
	// provider's webhook is on its way).
	Poll bool
}

func (p *Portal) payment(r *Request) (paymentData, error) {
	id, err := portalID(r, "paymentId")
	if err != nil {
		return paymentData{}, err
	}
	pm, err := p.svc.Payments.Payment(r.C.UserContext(), caller(r), id)
	if err != nil {
		return paymentData{}, paymentNotFound(err, id)
	}
	d := paymentData{Payment: pm, Poll: pm.Status.Open()}
	if pm.Status.Settled() {
		rc, err := p.svc.Payments.Receipt(r.C.UserContext(), caller(r), id)
		if err == nil {
			d.Receipt = &rc
		} else if !errors.Is(err, payment.ErrNotFound) {
			return d, err
		} else {
			d.Poll = true // captured; the receipt is being issued
		}
	}
	return d, nil
}

func (p *Portal) paymentPage(r *Request) error {
	d, err := p.payment(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "payment", fmt.Sprintf("Payment #%d", d.Payment.ID), d)
}

func (p *Portal) paymentStatus(r *Request) error {
	d, err := p.payment(r)
	if err != nil {
		return err
	}
	return p.fragment(r, "payment", "status", d)
}
