package sandbox

import (
	"bytes"
	"fmt"
	"html/template"
)

// The checkout page: no scripts, no external resources (meterd's content
// security policy allows only its own), a plain form the payer submits.
var pages = template.Must(template.New("checkout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox checkout</title>
<style>
body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#1b2733}
.banner{background:#fff4d6;border:1px solid #e5c46b;padding:.5rem .75rem;border-radius:6px;font-size:.9rem}
.amount{font-size:1.8rem;font-weight:700;margin:.25rem 0}
fieldset{border:1px solid #c9d3de;border-radius:6px;margin:1rem 0}
label{display:block;padding:.35rem 0}
button{background:#1f4e79;color:#fff;border:0;border-radius:6px;padding:.6rem 1.2rem;font-size:1rem}
.ok{color:#1d6b2c}.fail{color:#a11}
</style></head><body>
<p class="banner">Sandbox: no money moves. Pick a test instrument and its outcome.</p>
{{define "order"}}<h1>Pay {{.Description}}</h1>
<p class="amount">{{.Currency}} {{.Amount}}</p>
<p>Method: <strong>{{.Method}}</strong> · order <code>{{.ID}}</code></p>{{end}}
{{if .Result}}{{with .Order}}{{template "order" .}}{{end}}
  {{if eq .Result.Outcome "captured"}}<h2 class="ok">Payment successful</h2><p>{{.Result.Instrument.Label}}. meterd is told by webhook; your receipt follows.</p>
  {{else if eq .Result.Outcome "failed"}}<h2 class="fail">Payment failed</h2><p>{{.Result.Instrument.FailureReason}}</p>
  {{else}}<h2>You left the checkout</h2><p>Nothing was paid. The payment expires unless you come back.</p>{{end}}
  {{if .Result.ReturnURL}}<p><a href="{{.Result.ReturnURL}}">Return to the merchant</a></p>{{end}}
{{else if .Order.Paid}}{{with .Order}}{{template "order" .}}{{end}}<h2 class="ok">This order is paid.</h2>
{{else}}{{with .Order}}{{template "order" .}}{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="order" value="{{.Order.ID}}">
<fieldset><legend>Test instrument</legend>
{{range $i, $in := .Order.Instruments}}<label><input type="radio" name="instrument" value="{{$in.Code}}"{{if eq $i 0}} checked{{end}}> {{$in.Label}}</label>
{{end}}</fieldset>
<button type="submit">Pay</button>
</form>{{end}}
</body></html>
`))

type pageData struct {
	Order  CheckoutOrder
	Action string
	Result *Result
}

// CheckoutPage renders the checkout page of an order (ErrNotFound when the
// sandbox does not know it).
func (g *Gateway) CheckoutPage(orderID string) ([]byte, error) {
	o, err := g.Order(orderID)
	if err != nil {
		return nil, err
	}
	return render(pageData{Order: o, Action: g.urls().checkout})
}

// ResultPage renders the page shown after an attempt.
func (g *Gateway) ResultPage(r Result) ([]byte, error) {
	o, err := g.Order(r.OrderID)
	if err != nil {
		return nil, err
	}
	return render(pageData{Order: o, Action: g.urls().checkout, Result: &r})
}

func render(d pageData) ([]byte, error) {
	var b bytes.Buffer
	if err := pages.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("sandbox: render checkout: %w", err)
	}
	return b.Bytes(), nil
}

// Submit plays the payer choosing instrument code for an order on the
// checkout page (see Pay) and renders the result page.
func (g *Gateway) Submit(orderID, code string) ([]byte, error) {
	res, err := g.Pay(orderID, code)
	if err != nil {
		return nil, err
	}
	return g.ResultPage(res)
}

// CheckoutURL is the checkout page's URL.
func (g *Gateway) CheckoutURL() string { return g.urls().checkout }
