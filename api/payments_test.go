package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/paymenttest"
)

// awaitDelivery waits until the sandbox has delivered a webhook of type
// typ for order and meterd accepted it.
func (ps *fullStack) awaitDelivery(order, typ string) {
	ps.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case d := <-ps.deliveries:
			if d.OrderID == order && d.Type == typ && d.Status == 200 {
				return
			}
			if d.Status != 200 {
				ps.t.Fatalf("sandbox delivery %s %s refused: %d %v", d.Type, d.EventID, d.Status, d.Err)
			}
		case <-deadline:
			ps.t.Fatalf("no %s delivery for %s", typ, order)
		}
	}
}

// post sends a JSON body with headers (and checks the answer against the
// document, as stack.do does).
func (ps *fullStack) post(path, token string, body any, key string) resp {
	ps.t.Helper()
	if key == "" {
		return ps.do("POST", path, token, body)
	}
	return ps.do("POST", path, token, body, "Idempotency-Key", key)
}

// raw sends a request with a raw body and headers, checked against the
// document.
func (ps *fullStack) raw(method, path, token, contentType string, body []byte, header http.Header) resp {
	ps.t.Helper()
	req, err := http.NewRequest(method, ps.base+path, bytes.NewReader(body))
	must(ps.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hr, err := ps.client.Do(req)
	must(ps.t, err)
	defer hr.Body.Close()
	b, err := io.ReadAll(hr.Body)
	must(ps.t, err)
	r := resp{Status: hr.StatusCode, Header: hr.Header, Body: b}
	ps.checkDocumented(method, path, r)
	return r
}

func (ps *fullStack) count(sql string, args ...any) int {
	ps.t.Helper()
	var n int
	must(ps.t, ps.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

var idem atomic.Int64

func newKey() string { return fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), idem.Add(1)) }

// billsFor gives consumer n metered properties on plan lt-domestic with
// readings, publishes the tariff, runs this month's bill run and returns
// the consumer's bills.
func (ps *fullStack) billsFor(consumer session, n int) []map[string]any {
	ps.t.Helper()
	t := ps.t
	tariffDoc := demoTariff(t)
	metering := ps.staffUser("demo", fmt.Sprintf("meter%d@demo.example.com", next()), account.RoleOfficial, account.DepartmentMetering)
	biller := ps.staffUser("demo", fmt.Sprintf("bill%d@demo.example.com", next()), account.RoleOfficial, account.DepartmentBilling)
	for i := 0; i < n; i++ {
		serial := fmt.Sprintf("PAY-%d", next())
		r := ps.do("POST", "/api/meters", metering.Token, map[string]any{"external_id": strings.ToLower(serial), "serial": serial, "model": "sdm120", "protocol": "mqtt"})
		want(t, r, 201, "")
		meter := num(r.JSON(t)["meter"].(map[string]any)["id"])
		r = ps.do("POST", "/api/users/properties", consumer.Token, map[string]any{"label": fmt.Sprintf("Flat %d", i+1),
			"address":      map[string]any{"line1": fmt.Sprintf("%d Test Road", i+1), "city": "Pune", "postal_code": "411001"},
			"meter_number": serial, "tariff_plan": "lt-domestic", "sanctioned_load_kw": "2"})
		want(t, r, 201, "")
		ps.readings(meter, time.Now().UTC().Add(-3*time.Hour), 8, 15*time.Minute, 1_000_000, int64(250+50*i))
	}
	r := ps.do("POST", "/api/billing/tariffs", biller.Token, map[string]any{"plan": "lt-domestic", "document": tariffDoc})
	if r.Status != 201 && r.Status != 409 {
		t.Fatalf("tariff: %d %s", r.Status, r.Body)
	}
	loc, _ := time.LoadLocation("Asia/Kolkata")
	today := billing.DateOf(time.Now(), loc)
	period := fmt.Sprintf("%s..%s", billing.NewDate(today.Year(), today.Month(), 1), today)
	r = ps.do("POST", "/api/billing/runs", biller.Token, map[string]any{"period": period, "issue_date": today.String()})
	want(t, r, 202, "")
	r = ps.do("GET", "/api/bills?status=issued", consumer.Token, nil)
	want(t, r, 200, "")
	var out []map[string]any
	for _, it := range r.JSON(t)["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	if len(out) != n {
		t.Fatalf("%d bills, want %d", len(out), n)
	}
	return out
}

// checkoutSandbox follows a payment's redirect to the sandbox page, picks
// instrument and waits for the webhooks it causes.
func (ps *fullStack) checkoutSandbox(pay map[string]any, instrument string) {
	ps.t.Helper()
	t := ps.t
	action := pay["next_action"].(map[string]any)
	if action["type"] != "redirect" {
		t.Fatalf("next action %v", action)
	}
	u, err := url.Parse(action["url"].(string))
	must(t, err)
	order := u.Query().Get("order")
	if order != pay["provider_order_id"] {
		t.Fatalf("redirect to order %s, payment has %v", order, pay["provider_order_id"])
	}
	page := ps.do("GET", u.RequestURI(), "", nil)
	want(t, page, 200, "")
	if !strings.Contains(string(page.Body), instrument) || !strings.Contains(string(page.Body), "Test instrument") {
		t.Fatalf("checkout page lacks %s:\n%s", instrument, page.Body)
	}
	form := url.Values{"order": {order}, "instrument": {instrument}}
	done := ps.raw("POST", "/sandbox/checkout", "", "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	want(t, done, 200, "")
	switch {
	case strings.HasSuffix(instrument, "abandon"):
		if !strings.Contains(string(done.Body), "You left the checkout") {
			t.Fatalf("abandon page:\n%s", done.Body)
		}
	case strings.Contains(instrument, "declined") || strings.Contains(instrument, "failure") || strings.Contains(instrument, "insufficient"):
		if !strings.Contains(string(done.Body), "Payment failed") {
			t.Fatalf("failure page:\n%s", done.Body)
		}
		ps.awaitDelivery(order, "payment.failed")
	default:
		if !strings.Contains(string(done.Body), "Payment successful") {
			t.Fatalf("success page:\n%s", done.Body)
		}
		ps.awaitDelivery(order, "payment.captured")
	}
}

func (ps *fullStack) payment(token string, id int64) map[string]any {
	ps.t.Helper()
	r := ps.do("GET", fmt.Sprintf("/api/payments/%d", id), token, nil)
	want(ps.t, r, 200, "")
	return r.JSON(ps.t)
}

// TestPaymentRequirementCases walks the requirement's test cases 13
// (integration with payment gateways, successful and secure processing)
// and 14 (every payment option: cards, net banking, wallets, UPI) through
// the HTTP API against a real database, bills made by a real bill run,
// with 17's payment confirmation enqueued for the notifications component.
func TestPaymentRequirementCases(t *testing.T) {
	ps := newFullStack(t)
	ctx := context.Background()
	asha := ps.register("demo", "asha.pay@example.com", "Asha Rao")
	peer := ps.register("demo", "peer.pay@example.com", "Peer")
	biller := ps.staffUser("demo", "refunds@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
	bills := ps.billsFor(asha, 4)
	billID := func(i int) int64 { return num(bills[i]["id"]) }
	total := func(i int) string { return bills[i]["total"].(string) }

	t.Run("TC13 successful and secure payment processing", func(t *testing.T) {
		ps.t = t
		body := map[string]any{"bill_id": billID(0), "amount": total(0), "method": "upi"}
		// Secure: a key is required; card data is refused before anything
		// is stored; the amount must follow the bill's rules.
		r := ps.post("/api/payments", asha.Token, body, "")
		want(t, r, 400, "InvalidInput")
		if !strings.Contains(string(r.Body), "Idempotency-Key") {
			t.Errorf("missing key problem: %s", r.Body)
		}
		withPAN := map[string]any{"bill_id": billID(0), "amount": total(0), "method": "card", "return_url": "https://portal.example/?card=4111 1111 1111 1111"}
		want(t, ps.post("/api/payments", asha.Token, withPAN, newKey()), 400, "InvalidInput")
		want(t, ps.post("/api/payments", asha.Token, map[string]any{"bill_id": billID(0), "amount": total(0), "method": "card", "card": 4111111111111111}, newKey()), 400, "InvalidInput")
		withCVV := map[string]any{"bill_id": billID(0), "amount": total(0), "method": "card", "cvv": "123"}
		r = ps.post("/api/payments", asha.Token, withCVV, newKey())
		want(t, r, 400, "InvalidInput")
		if !strings.Contains(string(r.Body), `"field":"cvv"`) || strings.Contains(string(r.Body), "123") {
			t.Errorf("cvv problem: %s", r.Body)
		}
		want(t, ps.post("/api/payments", asha.Token, map[string]any{"bill_id": billID(0), "amount": "1.00", "method": "upi"}, newKey()), 400, "InvalidInput")
		want(t, ps.post("/api/payments", asha.Token, map[string]any{"bill_id": billID(0), "amount": total(0), "method": "cheque"}, newKey()), 400, "InvalidInput")
		want(t, ps.post("/api/payments", peer.Token, body, newKey()), 404, "BillNotFound")
		if n := ps.count(`SELECT count(*) FROM payments`); n != 0 {
			t.Fatalf("%d payments stored by refused requests", n)
		}

		// The payment and its next action; a retry replays it; the key
		// with another body is refused.
		key := newKey()
		r = ps.post("/api/payments", asha.Token, body, key)
		want(t, r, 201, "")
		pay := r.JSON(t)
		if pay["status"] != "pending" || pay["provider"] != "sandbox" || pay["amount"] != total(0) || r.Header.Get("Location") != fmt.Sprintf("/api/payments/%d", num(pay["id"])) {
			t.Fatalf("payment %s", r.Body)
		}
		again := ps.post("/api/payments", asha.Token, body, key)
		want(t, again, 201, "")
		if !bytes.Equal(again.Body, r.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay differs:\n%s\n%s", r.Body, again.Body)
		}
		want(t, ps.post("/api/payments", asha.Token, map[string]any{"bill_id": billID(0), "amount": total(0), "method": "card"}, key), 422, "IdempotencyKeyMismatch")

		// The payer pays on the sandbox page; its signed webhooks capture
		// the payment.
		ps.checkoutSandbox(pay, "upi_success")
		got := ps.payment(asha.Token, num(pay["id"]))
		if got["status"] != "captured" || got["receipt_number"] == nil || got["next_action"] != nil {
			t.Fatalf("after checkout: %v", got)
		}
		want(t, ps.do("GET", fmt.Sprintf("/api/payments/%d", num(pay["id"])), peer.Token, nil), 404, "NotFound")
		r = ps.do("GET", fmt.Sprintf("/api/payments/%d/receipt", num(pay["id"])), asha.Token, nil)
		want(t, r, 200, "")
		rc := r.JSON(t)
		if rc["number"] != got["receipt_number"] || rc["amount"] != total(0) || rc["bill_id"] != bills[0]["id"] || len(rc["allocation"].([]any)) == 0 {
			t.Errorf("receipt %s", r.Body)
		}
		r = ps.do("GET", fmt.Sprintf("/api/payments/%d/receipt/pdf", num(pay["id"])), asha.Token, nil)
		want(t, r, 200, "")
		if r.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(r.Body, []byte("%PDF")) {
			t.Errorf("receipt pdf: %s", r.Header.Get("Content-Type"))
		}
		want(t, ps.do("GET", fmt.Sprintf("/api/payments/%d/receipt", num(pay["id"])), peer.Token, nil), 404, "NotFound")
		r = ps.do("GET", fmt.Sprintf("/api/bills/%d", billID(0)), asha.Token, nil)
		want(t, r, 200, "")
		if b := r.JSON(t); b["status"] != "paid" || b["paid_amount"] != total(0) {
			t.Errorf("bill after payment: %v %v", b["status"], b["paid_amount"])
		}
		// TC17: the confirmation with the receipt number is enqueued.
		var payload string
		must(t, ps.pool.QueryRow(ctx, `SELECT payload::text FROM notification_outbox WHERE event = 'payment.succeeded' AND user_id = $1`, asha.ID).Scan(&payload))
		if !strings.Contains(payload, got["receipt_number"].(string)) {
			t.Errorf("payment.succeeded payload %s", payload)
		}
		want(t, ps.post("/api/payments", asha.Token, body, newKey()), 409, "Conflict") // paid

		// The sandbox's webhook replayed ten times: one receipt.
		hooks := ps.sbx.Webhooks(pay["provider_order_id"].(string))
		captured := hooks[len(hooks)-1]
		for i := 0; i < 10; i++ {
			r := ps.raw("POST", "/api/webhooks/sandbox", "", "application/json", captured.Body, captured.Header)
			want(t, r, 200, "")
			if res := r.JSON(t)["result"]; res != "duplicate" {
				t.Errorf("replay %d: %v", i, res)
			}
		}
		// Tampered, wrongly signed and stale deliveries are refused.
		tampered := bytes.Replace(captured.Body, []byte(`"status":"captured"`), []byte(`"status":"refunded"`), 1)
		want(t, ps.raw("POST", "/api/webhooks/sandbox", "", "application/json", tampered, captured.Header), 400, "InvalidSignature")
		stale := http.Header{"X-Sandbox-Signature": {payment.SignTimestamped("sandbox-e2e-secret-0123", time.Now().Add(-10*time.Minute), captured.Body)}}
		want(t, ps.raw("POST", "/api/webhooks/sandbox", "", "application/json", captured.Body, stale), 400, "InvalidSignature")
		wrong := http.Header{"X-Sandbox-Signature": {payment.SignTimestamped("not-the-secret-012345", time.Now(), captured.Body)}}
		want(t, ps.raw("POST", "/api/webhooks/sandbox", "", "application/json", captured.Body, wrong), 400, "InvalidSignature")
		// The reference's vectors at the Razorpay and Stripe endpoints
		// (the peers use the vectors' secrets): Razorpay's verifies (and is
		// no event, so nothing is stored), altered it does not; Stripe's
		// verifies but was signed in 2023, far outside the tolerance.
		vector := []byte(`{"entity":"event","event":"payment.captured"}`)
		rzpSig := http.Header{"X-Razorpay-Signature": {"492a29b57e8c6d499886d331199df8dbdee8004883243763ecda78ee4693e4a5"}}
		want(t, ps.raw("POST", "/api/webhooks/razorpay", "", "application/json", vector, rzpSig), 400, "InvalidInput")
		want(t, ps.raw("POST", "/api/webhooks/razorpay", "", "application/json", bytes.Replace(vector, []byte("captured"), []byte("failed"), 1), rzpSig), 400, "InvalidSignature")
		want(t, ps.raw("POST", "/api/webhooks/stripe", "", "application/json", vector,
			http.Header{"Stripe-Signature": {"t=1700000000,v1=bd6eff77e23a745f58c9055f5e9d662f379f2fa35115a9da87a42b0f179cc74d"}}), 400, "InvalidSignature")
		if n := ps.count(`SELECT count(*) FROM payment_events WHERE provider <> 'sandbox'`); n != 0 {
			t.Errorf("%d events stored from refused deliveries", n)
		}
		if n := ps.count(`SELECT count(*) FROM receipts`); n != 1 {
			t.Errorf("%d receipts", n)
		}

		// Razorpay end to end: Checkout, the signed callback verified
		// against the stored order, then its webhook.
		key = newKey()
		r = ps.post("/api/payments", asha.Token, map[string]any{"bill_id": billID(1), "amount": total(1), "method": "netbanking", "provider": "razorpay"}, key)
		want(t, r, 201, "")
		rzp := r.JSON(t)
		params := rzp["next_action"].(map[string]any)["params"].(map[string]any)
		if rzp["next_action"].(map[string]any)["type"] != "razorpay_checkout" || params["key"] != ps.rzp.KeyID || params["order_id"] != rzp["provider_order_id"] {
			t.Fatalf("razorpay next action %v", rzp["next_action"])
		}
		order := rzp["provider_order_id"].(string)
		py := ps.rzp.Pay(order, payment.MethodNetbanking, paymenttest.RazorpayCaptured)
		want(t, ps.post(fmt.Sprintf("/api/payments/%d/confirm", num(rzp["id"])), asha.Token, map[string]any{
			"razorpay_payment_id": py["id"], "razorpay_order_id": order, "razorpay_signature": strings.Repeat("ab", 32)}, ""), 400, "InvalidSignature")
		r = ps.post(fmt.Sprintf("/api/payments/%d/confirm", num(rzp["id"])), asha.Token, map[string]any{
			"razorpay_payment_id": py["id"], "razorpay_order_id": order, "razorpay_signature": ps.rzp.CheckoutSignature(order, py["id"].(string))}, "")
		want(t, r, 200, "")
		if p := r.JSON(t); p["status"] != "captured" || p["provider_payment_id"] != py["id"] {
			t.Fatalf("confirmed razorpay payment %v", p)
		}
		b, h := ps.rzp.Webhook("payment.captured", py)
		r = ps.raw("POST", "/api/webhooks/razorpay", "", "application/json", b, h)
		want(t, r, 200, "")
		if res := r.JSON(t)["result"]; res != "ignored" {
			t.Errorf("razorpay webhook after confirm: %v", res)
		}

		// Stripe: a PaymentIntent confirmed client-side, then its webhook.
		r = ps.post("/api/payments", asha.Token, map[string]any{"bill_id": billID(2), "amount": total(2), "method": "card", "provider": "stripe"}, newKey())
		want(t, r, 201, "")
		sp := r.JSON(t)
		if sp["next_action"].(map[string]any)["type"] != "stripe_confirm" {
			t.Fatalf("stripe next action %v", sp["next_action"])
		}
		pi := ps.stp.Pay(sp["provider_order_id"].(string), "pm_card_visa")
		b, h = ps.stp.Webhook("payment_intent.succeeded", pi, time.Now())
		r = ps.raw("POST", "/api/webhooks/stripe", "", "application/json", b, h)
		want(t, r, 200, "")
		if ack := r.JSON(t); ack["result"] != "applied" || ack["status"] != "captured" {
			t.Errorf("stripe webhook %v", ack)
		}
		if n := ps.rzp.Orders() + ps.stp.Intents(); n != 2 {
			t.Errorf("%d provider orders, want 2", n)
		}

		// Staff refund with a reason; the consumer may not.
		want(t, ps.post(fmt.Sprintf("/api/payments/%d/refunds", num(sp["id"])), asha.Token, map[string]any{"reason": "mine"}, newKey()), 403, "UnauthorizedAccess")
		r = ps.post(fmt.Sprintf("/api/payments/%d/refunds", num(sp["id"])), biller.Token, map[string]any{"amount": "1.00", "reason": "duplicate fixed charge"}, newKey())
		want(t, r, 201, "")
		if rf := r.JSON(t); rf["status"] != "processed" || rf["amount"] != "1" {
			t.Errorf("refund %s", r.Body)
		}
		r = ps.do("GET", fmt.Sprintf("/api/bills/%d", billID(2)), asha.Token, nil)
		want(t, r, 200, "")
		if st := r.JSON(t)["status"]; st != "partially_paid" {
			t.Errorf("bill after a partial refund: %v", st)
		}
		r = ps.do("GET", fmt.Sprintf("/api/payments/%d/refunds", num(sp["id"])), asha.Token, nil)
		want(t, r, 200, "")
		if items := r.JSON(t)["items"].([]any); len(items) != 1 {
			t.Errorf("refunds %v", items)
		}
	})

	t.Run("TC14 every payment option works", func(t *testing.T) {
		ps.t = t
		// Bill 3 is left: card, net banking, wallet and UPI each pay a
		// fresh bill of a second consumer; failures and an abandoned
		// checkout first.
		ravi := ps.register("demo", "ravi.pay@example.com", "Ravi")
		more := ps.billsFor(ravi, 4)
		for i, tc := range []struct {
			method   string
			failures []string
			success  string
		}{
			{"card", []string{"card_declined", "card_insufficient_funds"}, "card_visa"},
			{"netbanking", []string{"abandon", "netbanking_failure"}, "netbanking_success"},
			{"wallet", []string{"wallet_failure"}, "wallet_success"},
			{"upi", []string{"upi_failure"}, "upi_success"},
		} {
			bill := more[i]
			for _, f := range tc.failures {
				r := ps.post("/api/payments", ravi.Token, map[string]any{"bill_id": num(bill["id"]), "amount": bill["total"], "method": tc.method}, newKey())
				want(t, r, 201, "")
				p := r.JSON(t)
				ps.checkoutSandbox(p, f)
				got := ps.payment(ravi.Token, num(p["id"]))
				wantStatus := "failed"
				if f == "abandon" {
					wantStatus = "pending"
				}
				if got["status"] != wantStatus || (wantStatus == "failed" && got["failure_reason"] == "") {
					t.Errorf("%s with %s: %v", tc.method, f, got)
				}
			}
			r := ps.post("/api/payments", ravi.Token, map[string]any{"bill_id": num(bill["id"]), "amount": bill["total"], "method": tc.method}, newKey())
			want(t, r, 201, "")
			p := r.JSON(t)
			ps.checkoutSandbox(p, tc.success)
			got := ps.payment(ravi.Token, num(p["id"]))
			if got["status"] != "captured" || got["method"] != tc.method || got["receipt_number"] == nil {
				t.Errorf("%s: %v", tc.method, got)
			}
			r = ps.do("GET", fmt.Sprintf("/api/payments/%d/receipt", num(p["id"])), ravi.Token, nil)
			want(t, r, 200, "")
			if rc := r.JSON(t); rc["method"] != tc.method || rc["instrument"] == "" {
				t.Errorf("%s receipt %v", tc.method, rc)
			}
			r = ps.do("GET", fmt.Sprintf("/api/bills/%d", num(bill["id"])), ravi.Token, nil)
			want(t, r, 200, "")
			if st := r.JSON(t)["status"]; st != "paid" {
				t.Errorf("%s: bill %v", tc.method, st)
			}
		}
		// Receipt numbers are gap-free: failures took none.
		rows, err := ps.pool.Query(ctx, `SELECT seq FROM receipts ORDER BY seq`)
		must(t, err)
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		must(t, err)
		for i, s := range seqs {
			if int(s) != i+1 {
				t.Fatalf("receipt numbers %v", seqs)
			}
		}
		// Saved methods: token sealed, brand and last four shown.
		r := ps.post("/api/payment-methods", ravi.Token, map[string]any{"provider": "sandbox", "method": "card", "token": "sbx_tok_card_visa",
			"brand": "Visa", "last4": "1111", "label": "Debit card"}, "")
		want(t, r, 201, "")
		m := r.JSON(t)
		want(t, ps.post("/api/payment-methods", ravi.Token, map[string]any{"provider": "sandbox", "method": "card", "token": "tok",
			"brand": "Visa", "last4": "1111", "number": "4111111111111111"}, ""), 400, "InvalidInput")
		r = ps.do("GET", "/api/payment-methods", ravi.Token, nil)
		want(t, r, 200, "")
		if strings.Contains(string(r.Body), "sbx_tok") || len(r.JSON(t)["items"].([]any)) != 1 {
			t.Errorf("methods %s", r.Body)
		}
		// The abandoned checkout expires at the next reconciliation after
		// the abandonment window; staff see it and trigger it.
		reviewer := ps.staffUser("demo", "recon@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
		want(t, ps.do("GET", "/api/payments/reconciliation", ravi.Token, nil), 403, "UnauthorizedAccess")
		later := time.Now().Add(25 * time.Hour)
		ps.clock.Store(&later)
		r = ps.do("GET", "/api/payments/reconciliation", reviewer.Token, nil)
		want(t, r, 200, "")
		if open := r.JSON(t)["open"].([]any); len(open) != 1 {
			t.Errorf("open payments %v", open)
		}
		r = ps.post("/api/payments/reconciliation", reviewer.Token, nil, "")
		want(t, r, 200, "")
		if run := r.JSON(t); num(run["checked"]) != 1 || num(run["expired"]) != 1 || run["trigger"] != "staff" {
			t.Errorf("reconciliation %v", run)
		}
		ps.clock.Store(nil)
		r = ps.do("GET", "/api/payments?status=expired", ravi.Token, nil)
		want(t, r, 200, "")
		if items := r.JSON(t)["items"].([]any); len(items) != 1 || items[0].(map[string]any)["method"] != "netbanking" {
			t.Errorf("expired payments %v", items)
		}
		want(t, ps.do("DELETE", fmt.Sprintf("/api/payment-methods/%d", num(m["id"])), ravi.Token, nil), 204, "")
		want(t, ps.do("DELETE", fmt.Sprintf("/api/payment-methods/%d", num(m["id"])), ravi.Token, nil), 404, "NotFound")
	})
	ps.t = t

	// No card number or CVV reached any table.
	for _, table := range []string{"payments", "payment_events", "receipts", "saved_payment_methods", "payment_idempotency_keys", "audit_log", "notification_outbox"} {
		var dump *string
		must(t, ps.pool.QueryRow(ctx, fmt.Sprintf(`SELECT string_agg(t::text, E'\n') FROM %s t`, table)).Scan(&dump))
		if dump == nil {
			continue
		}
		for _, secret := range []string{"4111 1111 1111 1111", "4111111111111111", `"cvv"`, "sbx_tok_card_visa"} {
			if strings.Contains(*dump, secret) {
				t.Errorf("%s stored in %s", secret, table)
			}
		}
	}
}

// TestPaymentIdempotencyUnderConcurrency sends 100 POST /api/payments at
// once with one Idempotency-Key: one payment is created; every 201 is the
// same payment, byte for byte; the rest are told the key is in use.
func TestPaymentIdempotencyUnderConcurrency(t *testing.T) {
	ps := newFullStack(t)
	u := ps.register("demo", "many@example.com", "Many")
	var tenant int64
	must(t, ps.pool.QueryRow(context.Background(), `SELECT id FROM tenants WHERE code = 'demo'`).Scan(&tenant))
	l := paymenttest.NewLedger(t, ps.bpool, "demo")
	el := l.ElectricityWithArrears(u.ID)
	body, err := json.Marshal(map[string]any{"bill_id": el.MayBill, "amount": "1049.06", "method": "upi"})
	must(t, err)
	key := newKey()
	type answer struct {
		status int
		code   string
		body   []byte
	}
	answers := make([]answer, 100)
	var start sync.WaitGroup
	var wg sync.WaitGroup
	start.Add(1)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", ps.base+"/api/payments", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+u.Token)
			req.Header.Set("Idempotency-Key", key)
			start.Wait()
			hr, err := ps.client.Do(req)
			if err != nil {
				answers[i] = answer{status: -1, code: err.Error()}
				return
			}
			defer hr.Body.Close()
			b, _ := io.ReadAll(hr.Body)
			a := answer{status: hr.StatusCode, body: b}
			a.code = resp{Status: hr.StatusCode, Header: hr.Header, Body: b}.Code()
			answers[i] = a
		}()
	}
	start.Done()
	wg.Wait()
	var created []byte
	counts := map[string]int{}
	for _, a := range answers {
		counts[fmt.Sprintf("%d %s", a.status, a.code)]++
		switch {
		case a.status == 201 && created == nil:
			created = a.body
		case a.status == 201 && !bytes.Equal(a.body, created):
			t.Errorf("two different 201 bodies:\n%s\n%s", created, a.body)
		case a.status == 201:
		case a.status == 409 && a.code == "IdempotencyKeyInUse":
		default:
			t.Errorf("answer %d %s %s", a.status, a.code, a.body)
		}
	}
	t.Logf("answers: %v", counts)
	if n := ps.count(`SELECT count(*) FROM payments`); n != 1 || created == nil {
		t.Fatalf("%d payments, 201 body %s", n, created)
	}
	if n := ps.count(`SELECT count(*) FROM payment_idempotency_keys`); n != 1 {
		t.Errorf("%d keys", n)
	}
	// Afterwards every retry gets the same answer.
	r := ps.post("/api/payments", u.Token, map[string]any{"bill_id": el.MayBill, "amount": "1049.06", "method": "upi"}, key)
	want(t, r, 201, "")
	if !bytes.Equal(r.Body, created) {
		t.Errorf("retry differs:\n%s\n%s", created, r.Body)
	}
}

// TestPaymentProviderFailure: a provider that fails answers
// PaymentProcessing (502) with a detail that says what to do and nothing
// of the provider's answer; a retry with the same key resumes the same
// payment; after five failures the breaker answers at once without
// calling the provider.
func TestPaymentProviderFailure(t *testing.T) {
	ps := newFullStack(t)
	u := ps.register("demo", "fail@example.com", "Fail")
	l := paymenttest.NewLedger(t, ps.bpool, "demo")
	sw := l.SewerageTV18(u.ID, "")
	body := map[string]any{"bill_id": sw.Bill, "amount": "60", "method": "card", "provider": "razorpay"}
	key := newKey()
	ps.rzp.FailNext(503)
	r := ps.post("/api/payments", u.Token, body, key)
	want(t, r, 502, "PaymentProcessing")
	if strings.Contains(string(r.Body), "SERVER_ERROR") || strings.Contains(string(r.Body), "trouble") || r.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(r.Body), "retry with the same Idempotency-Key") {
		t.Errorf("problem reveals the provider or gives no advice: %v %s", r.Header, r.Body)
	}
	r = ps.post("/api/payments", u.Token, body, key)
	want(t, r, 201, "")
	if p := r.JSON(t); p["status"] != "pending" || ps.count(`SELECT count(*) FROM payments`) != 1 || ps.rzp.Orders() != 1 {
		t.Fatalf("resumed %v; %d payments, %d orders", p, ps.count(`SELECT count(*) FROM payments`), ps.rzp.Orders())
	}
	// Five failures in a row open the breaker.
	ps.rzp.FailNext(503, 503, 503, 503, 503)
	for i := 0; i < 5; i++ {
		want(t, ps.post("/api/payments", u.Token, body, newKey()), 502, "PaymentProcessing")
	}
	before := len(ps.rzp.Requests())
	want(t, ps.post("/api/payments", u.Token, body, newKey()), 502, "PaymentProcessing")
	if after := len(ps.rzp.Requests()); after != before {
		t.Errorf("an open breaker called the provider (%d requests)", after-before)
	}
	// The sandbox is a different provider: unaffected.
	delete(body, "provider")
	body["method"] = "upi"
	want(t, ps.post("/api/payments", u.Token, body, newKey()), 201, "")
}
