package payment_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing/payment"
)

func TestFindCardData(t *testing.T) {
	for _, tt := range []struct {
		name string
		give string
		want string // "" for none, else CardData.What
	}{
		{"visa number in JSON", `{"bill_id":1,"card":"4111111111111111"}`, "card number"},
		{"number as a JSON number", `{"bill_id":1,"pan":4242424242424242}`, "card number"},
		{"grouped by spaces", `{"note":"my card 4000 0000 0000 0002 thanks"}`, "card number"},
		{"grouped by hyphens", `{"x":"5555-5555-5555-4444"}`, "card number"},
		{"amex 15 digits", `{"x":"378282246310005"}`, "card number"},
		{"inside a form body", `method=card&number=4111111111111111`, "card number"},
		{"after other digit groups", `{"x":"ref 12 4111 1111 1111 1111"}`, "card number"},
		{"cvv field", `{"bill_id":1,"cvv":"123"}`, "card verification value"},
		{"CVC nested", `{"card":{"CVC":"123"}}`, "card verification value"},
		{"security_code in an array", `{"items":[{"security_code":"1234"}]}`, "card verification value"},
		{"cvv form field", `method=card&cvv2=123`, "card verification value"},
		{"Luhn-invalid 16 digits", `{"x":"4111111111111112"}`, ""},
		{"12 digits", `{"x":"411111111111"}`, ""},
		{"20 digits", `{"x":"41111111111111111111"}`, ""},
		{"a plain payment", `{"bill_id":12,"amount":"1049.06","method":"upi","return_url":"https://portal.example.com/bills/12"}`, ""},
		{"phone number", `{"phone":"+91 98765 43210"}`, ""},
		{"decimal amounts", `{"amount":"4111111.111111111"}`, ""},
		{"key named like cvv but not", `{"cvv_policy_version":"2"}`, ""},
		{"uuid", `{"id":"550e8400-e29b-41d4-a716-446655440000"}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, found := payment.FindCardData([]byte(tt.give))
			if (tt.want != "") != found || got.What != tt.want {
				t.Errorf("FindCardData(%s) = %+v, %v; want %q", tt.give, got, found, tt.want)
			}
		})
	}
}

func TestMaskCardNumbers(t *testing.T) {
	in := []byte(`{"a":"4111 1111 1111 1111","b":"order_1234","c":4242424242424242,"amount":22225}`)
	out := string(payment.MaskCardNumbers(in))
	if strings.Contains(out, "4111") || strings.Contains(out, "4242") || !strings.Contains(out, "XXXX XXXX XXXX XXXX") ||
		!strings.Contains(out, "order_1234") || !strings.Contains(out, "22225") {
		t.Errorf("masked: %s", out)
	}
	plain := []byte(`{"amount":22225}`)
	if got := payment.MaskCardNumbers(plain); string(got) != string(plain) {
		t.Errorf("changed a body without card numbers: %s", got)
	}
}

// The reference's signature vectors (billing-anchors §2.1–2.2), verbatim.
func TestSignatureVectors(t *testing.T) {
	if got := payment.HMACHex("test_key_secret", []byte("order_IluGWxBm9U8zJ8|pay_29QQoUBi66xm2f")); got != "d57d070c8a441a8b72a3de9e6d338cd544913cbb44162a814d741042ba9d9643" {
		t.Errorf("razorpay payment signature %s", got)
	}
	body := []byte(`{"entity":"event","event":"payment.captured"}`)
	if err := payment.VerifyHMAC(body, "492a29b57e8c6d499886d331199df8dbdee8004883243763ecda78ee4693e4a5", []string{"whsec_razor_test"}); err != nil {
		t.Errorf("razorpay webhook vector: %v", err)
	}
	at := time.Unix(1700000000, 0)
	hdr := "t=1700000000,v1=bd6eff77e23a745f58c9055f5e9d662f379f2fa35115a9da87a42b0f179cc74d"
	if got := payment.SignTimestamped("whsec_test", at, body); got != hdr {
		t.Errorf("stripe signature %s", got)
	}
	for _, tt := range []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"vector", hdr, body, at.Add(10 * time.Second), nil},
		{"several v1, one right (secret rolling)", "t=1700000000,v1=00ff,v1=bd6eff77e23a745f58c9055f5e9d662f379f2fa35115a9da87a42b0f179cc74d", body, at, nil},
		{"tampered body", hdr, []byte(`{"entity":"event","event":"payment.failed"}`), at, payment.ErrSignature},
		{"other timestamp", strings.Replace(hdr, "1700000000", "1700000001", 1), body, at, payment.ErrSignature},
		{"stale", hdr, body, at.Add(301 * time.Second), payment.ErrStale},
		{"from the future", hdr, body, at.Add(-301 * time.Second), payment.ErrStale},
		{"no v1", "t=1700000000", body, at, payment.ErrSignature},
		{"empty", "", body, at, payment.ErrSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := payment.VerifyTimestamped(tt.header, tt.body, []string{"whsec_test"}, 0, tt.now)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if err := payment.VerifyTimestamped(hdr, body, []string{"whsec_other"}, 0, at); !errors.Is(err, payment.ErrSignature) || errors.Is(err, payment.ErrStale) {
		t.Errorf("wrong secret: %v", err)
	}
	if err := payment.VerifyHMAC(body, "492a29b57e8c6d499886d331199df8dbdee8004883243763ecda78ee4693e4a5", []string{"whsec_new", "whsec_razor_test"}); err != nil {
		t.Errorf("older secret during rotation: %v", err)
	}
	if err := payment.VerifyHMAC(body, "not hex", []string{"whsec_razor_test"}); !errors.Is(err, payment.ErrSignature) {
		t.Errorf("non-hex signature: %v", err)
	}
}

func TestTransition(t *testing.T) {
	S := func(s payment.Status) payment.Status { return s }
	for _, tt := range []struct {
		from payment.Status
		ev   payment.EventKind
		to   payment.Status
		move bool
	}{
		{payment.StatusPending, payment.EventCaptured, payment.StatusCaptured, true},
		{payment.StatusFailed, payment.EventCaptured, payment.StatusCaptured, true}, // late authorisation
		{payment.StatusExpired, payment.EventCaptured, payment.StatusCaptured, true},
		{payment.StatusCaptured, payment.EventFailed, payment.StatusCaptured, false}, // never undone
		{payment.StatusCaptured, payment.EventCaptured, payment.StatusCaptured, false},
		{payment.StatusCaptured, payment.EventAuthorized, payment.StatusCaptured, false},
		{payment.StatusCaptured, payment.EventExpired, payment.StatusCaptured, false},
		{payment.StatusRefunded, payment.EventCaptured, payment.StatusRefunded, false},
		{payment.StatusAuthorized, payment.EventFailed, payment.StatusFailed, true},
		{payment.StatusPending, payment.EventAuthorized, payment.StatusAuthorized, true},
		{payment.StatusAuthorized, payment.EventPending, payment.StatusAuthorized, false},
		{payment.StatusPending, payment.EventExpired, payment.StatusExpired, true},
		{payment.StatusFailed, payment.EventExpired, payment.StatusFailed, false},
		{payment.StatusCreated, payment.EventPending, payment.StatusPending, true},
	} {
		got, moved := payment.Transition(S(tt.from), tt.ev)
		if got != tt.to || moved != tt.move {
			t.Errorf("%s on %s = %s %v, want %s %v", tt.from, tt.ev, got, moved, tt.to, tt.move)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	for _, tt := range []struct {
		give     string
		currency string
		want     int64
		err      bool
	}{
		{"222.25", "INR", 22225, false},
		{"1049.06", "INR", 104906, false},
		{"100", "INR", 10000, false},
		{"0.001", "INR", 0, true},
		{"500", "JPY", 500, false},
		{"1.5", "JPY", 0, true},
		{"1.234", "KWD", 1234, false},
	} {
		got, err := payment.ToMinor(decimal.RequireFromString(tt.give), tt.currency)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ToMinor(%s %s) = %d, %v", tt.give, tt.currency, got, err)
		}
		if err == nil && !payment.FromMinor(got, tt.currency).Equal(decimal.RequireFromString(tt.give)) {
			t.Errorf("FromMinor(%d) = %s", got, payment.FromMinor(got, tt.currency))
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"", strings.Repeat("k", 256), "key with\nnewline", "ключ"} {
		if err := payment.ValidateKey(k); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if err := payment.ValidateKey("0b6f9f34-5c1e-4c8e-9a1e-2f4f5d0c1a7b"); err != nil {
		t.Error(err)
	}
}
