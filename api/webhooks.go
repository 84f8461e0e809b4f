package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/billing/payment"
)

// Provider webhooks and the sandbox checkout (issue 7). Webhooks are
// public: they authenticate by the provider's signature over the raw body,
// checked before anything is parsed or stored. A delivery answered 2xx is
// stored (once per event id) and applied; a signature problem is a 400
// InvalidSignature the provider will not get past by retrying; anything
// else (a database outage) is a 5xx, and the provider retries.

// SandboxCheckout is the built-in sandbox provider's checkout page
// (billing/payment/sandbox.Gateway). When Services.Sandbox is nil the
// /sandbox routes are not mounted.
type SandboxCheckout interface {
	// CheckoutPage renders an order's page; payment.ErrNotFound for an
	// unknown order.
	CheckoutPage(orderID string) ([]byte, error)
	// Submit plays the payer's choice of test instrument and renders the
	// result page; payment.ErrInvalidInput for an instrument the order
	// does not take, payment.ErrConflict for a paid order.
	Submit(orderID, instrument string) ([]byte, error)
}

// webhookProviders are the providers with a webhook route, in path order.
var webhookProviders = []string{"razorpay", "stripe", "sandbox"}

// webhookRoutes are one public webhook route per configured provider, and
// the sandbox checkout when the sandbox is served.
func (h *handlers) webhookRoutes() []Route {
	var out []Route
	configured := h.svc.Payments.Providers()
	for _, name := range webhookProviders {
		if !slices.Contains(configured, name) {
			continue
		}
		out = append(out, Route{Method: http.MethodPost, Path: "/api/webhooks/" + name, Summary: "Webhook deliveries from " + name + " (signed; stored once per event id)",
			Tag: "payments", Roles: anyone, Owner: account.OwnerNone, Body: json.RawMessage{}, Responses: []Response{{Status: 200, Body: webhookAckDTO{}}},
			Problems: []Kind{KindInvalidSignature, KindInvalidInput}, Handler: h.webhook(name)})
	}
	if h.svc.Sandbox != nil {
		out = append(out,
			Route{Method: http.MethodGet, Path: "/sandbox/checkout", Summary: "The sandbox provider's checkout page (test instruments; no money moves)", Tag: "sandbox",
				Roles: anyone, Query: sandboxQuery{}, Responses: []Response{{Status: 200, Type: "text/html"}}, Problems: []Kind{KindNotFound}, Handler: h.sandboxPage},
			Route{Method: http.MethodPost, Path: "/sandbox/checkout", Summary: "Pay a sandbox order with a test instrument; the sandbox then sends its signed webhooks", Tag: "sandbox",
				Roles: anyone, Body: sandboxForm{}, BodyType: fiber.MIMEApplicationForm, Responses: []Response{{Status: 200, Type: "text/html"}},
				Problems: []Kind{KindInvalidInput, KindNotFound, KindConflict}, Handler: h.sandboxSubmit})
	}
	return out
}

type webhookAckDTO struct {
	EventID   string `json:"event_id"`
	Result    string `json:"result" enum:"applied,ignored,unmatched,anomaly,duplicate" doc:"duplicate: this event id was stored before; nothing changed"`
	PaymentID int64  `json:"payment_id,omitempty"`
	Status    string `json:"status,omitempty" enum:"created,pending,authorized,failed,expired,captured,refunded"`
}

type sandboxQuery struct {
	Order string `query:"order" required:"true" doc:"the sandbox order id from the payment's next action"`
}

type sandboxForm struct {
	Order      string `json:"order"`
	Instrument string `json:"instrument" doc:"a test instrument code shown on the page (card_visa, card_declined, upi_success, upi_failure, abandon …)"`
}

// fiberHeader reads request headers for the providers.
type fiberHeader struct{ c *fiber.Ctx }

func (h fiberHeader) Get(k string) string { return h.c.Get(k) }

func (h *handlers) webhook(provider string) func(*Request) error {
	return func(r *Request) error {
		body := bytes.Clone(r.C.Body())
		o, err := h.svc.Payments.HandleWebhook(r.C.UserContext(), provider, fiberHeader{r.C}, body)
		if err != nil {
			if errors.Is(err, payment.ErrSignature) {
				return &Error{Kind: KindInvalidSignature, Detail: "the webhook signature does not verify (wrong secret, altered body, or a timestamp outside the tolerance)", Err: err}
			}
			return err
		}
		return r.ok(fiber.StatusOK, webhookAckDTO{EventID: o.EventID, Result: o.Result, PaymentID: o.PaymentID, Status: string(o.Status)})
	}
}

func sandboxError(err error) error {
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return Errorf(KindNotFound, "no such sandbox order (the sandbox forgets orders when meterd restarts)")
	case errors.Is(err, payment.ErrConflict):
		return Errorf(KindConflict, "this sandbox order is paid")
	case errors.Is(err, payment.ErrInvalidInput):
		return InvalidInput(FieldError{Field: "instrument", Message: "is not a test instrument for this order's method"})
	}
	return err
}

func (h *handlers) sandboxPage(r *Request) error {
	page, err := h.svc.Sandbox.CheckoutPage(r.C.Query("order"))
	if err != nil {
		return sandboxError(err)
	}
	r.C.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return r.C.Status(fiber.StatusOK).Send(page)
}

func (h *handlers) sandboxSubmit(r *Request) error {
	page, err := h.svc.Sandbox.Submit(r.C.FormValue("order"), r.C.FormValue("instrument"))
	if err != nil {
		return sandboxError(err)
	}
	r.C.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return r.C.Status(fiber.StatusOK).Send(page)
}
