package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/pdf"
)

// Payment routes (issue 7): consumers pay their bills (staff of the
// billing department may take a payment for a consumer), read payments,
// receipts (JSON and PDF) and refunds, save payment methods; staff refund
// with a reason and see and trigger reconciliation. Every POST that moves
// money takes an Idempotency-Key; bodies carrying card data are refused
// before anything else reads them.

// paymentDepartments are the officials who take payments, refund and
// reconcile.
var paymentDepartments = []string{account.DepartmentBilling}

// payers may start a payment: the consumer, or billing staff for one.
var payers = []account.Role{account.RoleConsumer, account.RoleOfficial, account.RoleAdmin}

// idempotencyHeader documents the Idempotency-Key header.
var idempotencyHeader = []HeaderParam{{Name: "Idempotency-Key", Required: true,
	Doc: "a unique key per payment attempt (a UUID), up to 255 characters: a retry with the key gets the first answer again (Idempotent-Replayed: true); the key with a different request is refused"}}

// paymentRoutes are the permission table's payment rows.
func (h *handlers) paymentRoutes() []Route {
	ok := func(status int, body any) []Response { return []Response{{Status: status, Body: body}} }
	moneyProblems := []Kind{KindInvalidInput, KindBillNotFound, KindConflict, KindIdempotencyKeyInUse, KindIdempotencyKeyMismatch, KindPaymentProcessing}
	return []Route{
		{Method: http.MethodPost, Path: "/api/payments", Summary: "Pay (part of) a bill: returns the payment and the payer's next action", Tag: "payments",
			Roles: payers, Departments: paymentDepartments, Owner: account.OwnerSelfOrTenant, Headers: idempotencyHeader,
			Body: paymentRequest{}, Responses: ok(201, paymentDTO{}), Problems: moneyProblems, Handler: h.cardGuard(h.createPayment)},
		{Method: http.MethodGet, Path: "/api/payments", Summary: "List payments, newest first (own; staff: the tenant's)", Tag: "payments",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: paymentsQuery{}, Responses: ok(200, Page[paymentDTO]{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.listPayments},
		{Method: http.MethodGet, Path: "/api/payments/reconciliation", Summary: "Reconciliation runs and the payments the next one will ask providers about", Tag: "payments",
			Roles: officials, Departments: paymentDepartments, Owner: account.OwnerTenant, Responses: ok(200, reconciliationViewDTO{}), Handler: h.reconciliationView},
		{Method: http.MethodPost, Path: "/api/payments/reconciliation", Summary: "Reconcile the tenant's open payments and refunds with their providers now", Tag: "payments",
			Roles: officials, Departments: paymentDepartments, Owner: account.OwnerTenant, Responses: ok(200, reconciliationDTO{}), Handler: h.reconcile},
		{Method: http.MethodGet, Path: "/api/payments/:paymentId", Summary: "Get a payment", Tag: "payments",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, paymentDTO{}), Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.getPayment},
		{Method: http.MethodPost, Path: "/api/payments/:paymentId/confirm", Summary: "Checkout callback: verify its signature against the stored order and ask the provider", Tag: "payments",
			Roles: payers, Departments: paymentDepartments, Owner: account.OwnerSelfOrTenant, Body: confirmRequest{}, Responses: ok(200, paymentDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindConflict, KindInvalidSignature, KindPaymentProcessing}, Handler: h.cardGuard(h.confirmPayment)},
		{Method: http.MethodGet, Path: "/api/payments/:paymentId/receipt", Summary: "The receipt of a captured payment", Tag: "payments",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, receiptDTO{}), Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.getReceipt},
		{Method: http.MethodGet, Path: "/api/payments/:paymentId/receipt/pdf", Summary: "The receipt as a PDF", Tag: "payments",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: []Response{{Status: 200, Type: "application/pdf"}},
			Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.receiptPDF},
		{Method: http.MethodGet, Path: "/api/payments/:paymentId/refunds", Summary: "Refunds of a payment", Tag: "payments",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, Page[refundDTO]{}), Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.listRefunds},
		{Method: http.MethodPost, Path: "/api/payments/:paymentId/refunds", Summary: "Refund (part of) a captured payment, with a reason", Tag: "payments",
			Roles: officials, Departments: paymentDepartments, Owner: account.OwnerTenant, Headers: idempotencyHeader, Body: refundRequest{},
			Responses: ok(201, refundDTO{}), Problems: []Kind{KindInvalidInput, KindNotFound, KindConflict, KindIdempotencyKeyInUse, KindIdempotencyKeyMismatch, KindPaymentProcessing},
			Handler: h.cardGuard(h.refund)},
		{Method: http.MethodGet, Path: "/api/payment-methods", Summary: "The caller's saved payment methods (brand and last four digits)", Tag: "payments",
			Roles: consumers, Owner: account.OwnerSelf, Responses: ok(200, Page[savedMethodDTO]{}), Handler: h.listMethods},
		{Method: http.MethodPost, Path: "/api/payment-methods", Summary: "Save a payment method: the provider's token (sealed at rest), brand and last four digits", Tag: "payments",
			Roles: consumers, Owner: account.OwnerSelf, Body: savedMethodRequest{}, Responses: ok(201, savedMethodDTO{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.cardGuard(h.addMethod)},
		{Method: http.MethodDelete, Path: "/api/payment-methods/:methodId", Summary: "Remove a saved payment method (its token is erased)", Tag: "payments",
			Roles: consumers, Owner: account.OwnerSelf, Responses: []Response{{Status: 204}}, Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.removeMethod},
	}
}

// Query parameter documentation.
type paymentsQuery struct {
	pageQuery
	Status string `query:"status" enum:"created,pending,authorized,failed,expired,captured,refunded"`
	BillID int64  `query:"bill_id"`
}

// --- DTOs

type paymentRequest struct {
	BillID        int64           `json:"bill_id"`
	Amount        decimal.Decimal `json:"amount" doc:"in the bill's currency, at most its minor-unit places: at least the minimum payable (or all that remains when part payments are not allowed), at most the amount due plus the allowed advance; an excess is carried forward as advance"`
	Method        string          `json:"method" enum:"card,netbanking,wallet,upi"`
	Provider      string          `json:"provider,omitempty" doc:"default: the provider configured for the method"`
	SavedMethodID int64           `json:"saved_method_id,omitempty" doc:"pay with a saved method"`
	SaveMethod    bool            `json:"save_method,omitempty" doc:"ask the provider for a reusable token of the method (kept sealed; brand and last four shown)"`
	ReturnURL     string          `json:"return_url,omitempty" doc:"where the payer's browser returns after a redirect checkout"`
}

type nextActionDTO struct {
	Type   string            `json:"type" enum:"redirect,razorpay_checkout,stripe_confirm,none" doc:"redirect: send the payer to url; razorpay_checkout: open Razorpay Checkout with params; stripe_confirm: confirm the PaymentIntent with params; none: settled already"`
	URL    string            `json:"url,omitempty"`
	Params map[string]string `json:"params,omitempty"`
}

type instrumentDTO struct {
	Brand string `json:"brand,omitempty"`
	Last4 string `json:"last4,omitempty"`
}

type paymentDTO struct {
	ID                int64            `json:"id"`
	BillID            int64            `json:"bill_id"`
	BillNumber        string           `json:"bill_number"`
	ConnectionID      int64            `json:"connection_id"`
	ConsumerCode      string           `json:"consumer_code"`
	Amount            decimal.Decimal  `json:"amount"`
	Currency          string           `json:"currency"`
	Method            string           `json:"method" enum:"card,netbanking,wallet,upi"`
	Provider          string           `json:"provider"`
	Status            string           `json:"status" enum:"created,pending,authorized,failed,expired,captured,refunded" doc:"captured: money received and receipted; a later failure event never undoes it"`
	ProviderOrderID   string           `json:"provider_order_id,omitempty"`
	ProviderPaymentID string           `json:"provider_payment_id,omitempty"`
	NextAction        *nextActionDTO   `json:"next_action,omitempty"`
	Instrument        *instrumentDTO   `json:"instrument,omitempty"`
	FailureCode       string           `json:"failure_code,omitempty"`
	FailureReason     string           `json:"failure_reason,omitempty"`
	CapturedAmount    *decimal.Decimal `json:"captured_amount,omitempty"`
	RefundedAmount    decimal.Decimal  `json:"refunded_amount"`
	ReceiptNumber     string           `json:"receipt_number,omitempty"`
	CapturedAt        *time.Time       `json:"captured_at,omitempty"`
	CreatedAt         time.Time        `json:"created_at"`
	UpdatedAt         time.Time        `json:"updated_at"`
}

func paymentOf(p payment.Payment) paymentDTO {
	d := paymentDTO{ID: p.ID, BillID: p.BillID, BillNumber: p.BillNumber, ConnectionID: p.ConnectionID, ConsumerCode: p.ConsumerCode,
		Amount: p.Amount, Currency: p.Currency, Method: string(p.Method), Provider: p.Provider, Status: string(p.Status),
		ProviderOrderID: p.ProviderOrderID, ProviderPaymentID: p.ProviderPaymentID, FailureCode: p.FailureCode, FailureReason: p.FailureReason,
		RefundedAmount: p.RefundedAmount, ReceiptNumber: p.ReceiptNumber, CapturedAt: p.CapturedAt, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}
	if a := p.NextAction; a != nil && p.Status.Open() {
		d.NextAction = &nextActionDTO{Type: a.Type, URL: a.URL, Params: a.Params}
	}
	if p.Instrument.Brand != "" || p.Instrument.Last4 != "" {
		d.Instrument = &instrumentDTO{Brand: p.Instrument.Brand, Last4: p.Instrument.Last4}
	}
	if p.Status.Settled() {
		c := p.CapturedAmount
		d.CapturedAmount = &c
	}
	return d
}

type confirmRequest struct {
	RazorpayPaymentID string `json:"razorpay_payment_id,omitempty" doc:"Razorpay Checkout's handler fields"`
	RazorpayOrderID   string `json:"razorpay_order_id,omitempty" doc:"ignored: the order meterd stored is what the signature is checked against"`
	RazorpaySignature string `json:"razorpay_signature,omitempty"`
	PaymentIntent     string `json:"payment_intent,omitempty" doc:"Stripe: the PaymentIntent confirmed client-side"`
	SandboxPaymentID  string `json:"sandbox_payment_id,omitempty" doc:"the sandbox checkout's return parameters"`
	SandboxSignature  string `json:"sandbox_signature,omitempty"`
}

type allocationDTO struct {
	DemandID   int64           `json:"demand_id"`
	PeriodFrom string          `json:"period_from"`
	PeriodTo   string          `json:"period_to"`
	TaxHead    string          `json:"tax_head"`
	Amount     decimal.Decimal `json:"amount" doc:"negative for a credit (an advance, a negative round-off) the payment absorbed"`
}

type billStateDTO struct {
	ID         int64           `json:"id"`
	Number     string          `json:"number"`
	Status     string          `json:"status" enum:"issued,partially_paid,paid,overdue,cancelled"`
	PaidAmount decimal.Decimal `json:"paid_amount"`
	Total      decimal.Decimal `json:"total"`
}

type receiptDTO struct {
	Number            string          `json:"number" doc:"gap-free per tenant and financial year"`
	FinancialYear     string          `json:"financial_year"`
	PaymentID         int64           `json:"payment_id"`
	BillID            int64           `json:"bill_id"`
	BillNumber        string          `json:"bill_number"`
	ConsumerCode      string          `json:"consumer_code"`
	ConsumerName      string          `json:"consumer_name"`
	Amount            decimal.Decimal `json:"amount"`
	Currency          string          `json:"currency"`
	Method            string          `json:"method" enum:"card,netbanking,wallet,upi"`
	Provider          string          `json:"provider"`
	ProviderPaymentID string          `json:"provider_payment_id"`
	Instrument        string          `json:"instrument" doc:"brand and last four digits at most"`
	PaidAt            time.Time       `json:"paid_at"`
	IssuedAt          time.Time       `json:"issued_at"`
	Allocation        []allocationDTO `json:"allocation" doc:"what the ledger recorded the money against, oldest period first"`
	Advance           decimal.Decimal `json:"advance" doc:"carried forward to the next bill"`
	Bills             []billStateDTO  `json:"bills" doc:"the connection's bills after the payment"`
}

func receiptOf(r payment.Receipt) receiptDTO {
	d := receiptDTO{Number: r.Number, FinancialYear: r.FinancialYear, PaymentID: r.PaymentID, BillID: r.BillID, BillNumber: r.BillNumber,
		ConsumerCode: r.ConsumerCode, ConsumerName: r.ConsumerName, Amount: r.Amount, Currency: r.Currency, Method: string(r.Method),
		Provider: r.Provider, ProviderPaymentID: r.ProviderPaymentID, Instrument: r.Instrument, PaidAt: r.PaidAt.UTC(), IssuedAt: r.IssuedAt.UTC(),
		Advance: r.Advance, Allocation: make([]allocationDTO, len(r.Allocation)), Bills: make([]billStateDTO, len(r.Bills))}
	for i, a := range r.Allocation {
		d.Allocation[i] = allocationDTO{DemandID: a.DemandID, PeriodFrom: a.PeriodFrom, PeriodTo: a.PeriodTo, TaxHead: a.TaxHead, Amount: a.Amount}
	}
	for i, b := range r.Bills {
		d.Bills[i] = billStateDTO{ID: b.ID, Number: b.Number, Status: b.Status, PaidAmount: b.PaidAmount, Total: b.Total}
	}
	return d
}

type refundRequest struct {
	Amount decimal.Decimal `json:"amount,omitempty" doc:"absent: all that was not refunded yet"`
	Reason string          `json:"reason" doc:"why (audited), at most 500 characters"`
}

type refundDTO struct {
	ID               int64           `json:"id"`
	PaymentID        int64           `json:"payment_id"`
	Amount           decimal.Decimal `json:"amount"`
	Currency         string          `json:"currency"`
	Reason           string          `json:"reason"`
	RequestedBy      int64           `json:"requested_by"`
	Status           string          `json:"status" enum:"created,pending,processed,failed" doc:"processed: money returned and the ledger reversed"`
	ProviderRefundID string          `json:"provider_refund_id,omitempty"`
	FailureReason    string          `json:"failure_reason,omitempty"`
	CreatedAt        time.Time       `json:"created_at"`
	ProcessedAt      *time.Time      `json:"processed_at,omitempty"`
}

func refundOf(r payment.Refund) refundDTO {
	return refundDTO{ID: r.ID, PaymentID: r.PaymentID, Amount: r.Amount, Currency: r.Currency, Reason: r.Reason, RequestedBy: r.RequestedBy,
		Status: string(r.Status), ProviderRefundID: r.ProviderRefundID, FailureReason: r.FailureReason, CreatedAt: r.CreatedAt.UTC(), ProcessedAt: r.ProcessedAt}
}

type reconciliationDTO struct {
	ID          int64      `json:"id"`
	AllTenants  bool       `json:"all_tenants" doc:"the periodic job, over every tenant"`
	Trigger     string     `json:"trigger" enum:"schedule,staff"`
	RequestedBy int64      `json:"requested_by,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Checked     int        `json:"checked" doc:"payments asked about"`
	Settled     int        `json:"settled" doc:"captured through reconciliation"`
	Failed      int        `json:"failed"`
	Expired     int        `json:"expired" doc:"abandoned checkouts"`
	Refunds     int        `json:"refunds" doc:"refunds brought to a final state"`
	Errors      int        `json:"errors" doc:"provider calls that failed"`
	Error       string     `json:"error,omitempty"`
}

func reconciliationOf(r payment.Reconciliation) reconciliationDTO {
	return reconciliationDTO{ID: r.ID, AllTenants: r.TenantID == 0, Trigger: r.Trigger, RequestedBy: r.RequestedBy, StartedAt: r.StartedAt.UTC(),
		FinishedAt: r.FinishedAt, Checked: r.Checked, Settled: r.Settled, Failed: r.Failed, Expired: r.Expired, Refunds: r.Refunds, Errors: r.Errors, Error: r.Error}
}

type reconciliationViewDTO struct {
	Runs []reconciliationDTO `json:"runs" doc:"newest first"`
	Open []paymentDTO        `json:"open" doc:"payments open past the threshold, oldest first: what the next run asks about"`
}

type savedMethodRequest struct {
	Provider string `json:"provider"`
	Method   string `json:"method" enum:"card,netbanking,wallet,upi"`
	Token    string `json:"token" doc:"the provider's token for the method (from its tokenization; never a card number)"`
	Brand    string `json:"brand,omitempty"`
	Last4    string `json:"last4,omitempty" doc:"required for cards"`
	Label    string `json:"label,omitempty"`
}

type savedMethodDTO struct {
	ID        int64     `json:"id"`
	Provider  string    `json:"provider"`
	Method    string    `json:"method" enum:"card,netbanking,wallet,upi"`
	Brand     string    `json:"brand"`
	Last4     string    `json:"last4,omitempty"`
	Label     string    `json:"label,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func savedMethodOf(m payment.SavedMethod) savedMethodDTO {
	return savedMethodDTO{ID: m.ID, Provider: m.Provider, Method: string(m.Method), Brand: m.Brand, Last4: m.Last4, Label: m.Label, CreatedAt: m.CreatedAt.UTC()}
}

// --- handlers

// caller is the payment service's view of the request.
func caller(r *Request) payment.Caller {
	return payment.Caller{TenantID: r.Scope.TenantID, UserID: r.Actor.UserID, Role: string(r.Actor.Role), OwnerOnly: r.Scope.Owned(),
		Address: r.Actor.Address, RequestID: r.Actor.RequestID}
}

// cardGuard refuses a request whose body carries card data before the
// handler (or a log line) reads it.
func (h *handlers) cardGuard(next func(*Request) error) func(*Request) error {
	return func(r *Request) error {
		if found, ok := payment.FindCardData(r.C.Body()); ok {
			field := found.Field
			if field == "" {
				field = "body"
			}
			return &Error{Kind: KindInvalidInput, Detail: "card data must never be sent to meterd: pay through the provider's checkout",
				Fields: []FieldError{{Field: field, Message: "carries a " + found.What + "; card details are entered only on the provider's page"}}, Err: payment.ErrCardData}
		}
		return next(r)
	}
}

// paymentError gives provider failures a detail that says what to do and
// nothing of the provider's answer (the cause is logged), and tells a
// client with a busy key when to retry.
func paymentError(r *Request, err error) error {
	switch {
	case errors.Is(err, payment.ErrProviderUnavailable):
		r.C.Set(fiber.HeaderRetryAfter, "5")
		return &Error{Kind: KindPaymentProcessing, Detail: "the payment provider is unavailable; retry with the same Idempotency-Key", Err: err}
	case errors.Is(err, payment.ErrProvider):
		return &Error{Kind: KindPaymentProcessing, Detail: "the payment provider could not process the request", Err: err}
	case errors.Is(err, payment.ErrIdempotencyInUse):
		r.C.Set(fiber.HeaderRetryAfter, "1")
	}
	return err
}

func (h *handlers) createPayment(r *Request) error {
	var in paymentRequest
	if err := r.bind(&in, payment.ErrInvalidInput); err != nil {
		return err
	}
	p, replayed, err := h.svc.Payments.Create(r.C.UserContext(), caller(r), r.C.Get("Idempotency-Key"), payment.CreateRequest{
		BillID: in.BillID, Amount: in.Amount, Method: payment.Method(in.Method), Provider: in.Provider, SavedMethodID: in.SavedMethodID,
		SaveMethod: in.SaveMethod, ReturnURL: in.ReturnURL})
	if err != nil {
		return paymentError(r, err)
	}
	if replayed {
		r.C.Set("Idempotent-Replayed", "true")
	}
	r.C.Set(fiber.HeaderLocation, "/api/payments/"+strconv.FormatInt(p.ID, 10))
	return r.ok(fiber.StatusCreated, paymentOf(p))
}

func (h *handlers) listPayments(r *Request) error {
	pg, err := r.page()
	if err != nil {
		return err
	}
	f := payment.Filter{Status: payment.Status(r.C.Query("status")), BeforeID: pg.After, Limit: pg.Limit}
	if f.BillID, err = r.queryID("bill_id"); err != nil {
		return err
	}
	list, err := h.svc.Payments.Payments(r.C.UserContext(), caller(r), f)
	if err != nil {
		return err
	}
	out := mapped(list, paymentOf)
	return r.ok(fiber.StatusOK, pageOf(out, pg, func(p paymentDTO) int64 { return p.ID }))
}

// paymentNotFound names the payment in a NotFound problem.
func paymentNotFound(err error, id int64) error {
	if errors.Is(err, payment.ErrNotFound) {
		return Errorf(KindNotFound, "payment %d not found", id)
	}
	return err
}

func (h *handlers) getPayment(r *Request) error {
	id, err := r.pathID("paymentId")
	if err != nil {
		return err
	}
	p, err := h.svc.Payments.Payment(r.C.UserContext(), caller(r), id)
	if err != nil {
		return paymentNotFound(err, id)
	}
	return r.ok(fiber.StatusOK, paymentOf(p))
}

func (h *handlers) confirmPayment(r *Request) error {
	id, err := r.pathID("paymentId")
	if err != nil {
		return err
	}
	var in confirmRequest
	if err := r.bind(&in, payment.ErrInvalidInput); err != nil {
		return err
	}
	fields := map[string]string{"razorpay_payment_id": in.RazorpayPaymentID, "razorpay_order_id": in.RazorpayOrderID,
		"razorpay_signature": in.RazorpaySignature, "payment_intent": in.PaymentIntent,
		"sandbox_payment_id": in.SandboxPaymentID, "sandbox_signature": in.SandboxSignature}
	p, err := h.svc.Payments.Confirm(r.C.UserContext(), caller(r), id, fields)
	if err != nil {
		return paymentError(r, paymentNotFound(err, id))
	}
	return r.ok(fiber.StatusOK, paymentOf(p))
}

func (h *handlers) receipt(r *Request) (payment.Receipt, error) {
	id, err := r.pathID("paymentId")
	if err != nil {
		return payment.Receipt{}, err
	}
	rc, err := h.svc.Payments.Receipt(r.C.UserContext(), caller(r), id)
	if errors.Is(err, payment.ErrNotFound) {
		return rc, Errorf(KindNotFound, "payment %d has no receipt (it is not captured, or not yours)", id)
	}
	return rc, err
}

func (h *handlers) getReceipt(r *Request) error {
	rc, err := h.receipt(r)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, receiptOf(rc))
}

func (h *handlers) receiptPDF(r *Request) error {
	rc, err := h.receipt(r)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(rc.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	doc := &pdf.Receipt{TenantName: rc.TenantName, Currency: rc.Currency, Number: rc.Number, FinancialYear: rc.FinancialYear,
		IssuedAt: rc.IssuedAt.In(loc), PaidAt: rc.PaidAt.In(loc), ConsumerName: rc.ConsumerName, ConsumerCode: rc.ConsumerCode,
		BillNumber: rc.BillNumber, Amount: rc.Amount, Method: string(rc.Method), Instrument: rc.Instrument, Provider: rc.Provider,
		ProviderRef: rc.ProviderPaymentID, Advance: rc.Advance}
	for _, a := range rc.Allocation {
		doc.Allocation = append(doc.Allocation, pdf.ReceiptLine{Period: printPeriod(a.PeriodFrom, a.PeriodTo), Head: a.TaxHead, Amount: a.Amount})
	}
	for _, b := range rc.Bills {
		doc.Bills = append(doc.Bills, pdf.ReceiptBill{Number: b.Number, Status: b.Status, Paid: b.PaidAmount, Total: b.Total})
	}
	data, err := pdf.RenderReceipt(doc)
	if err != nil {
		return err
	}
	r.C.Set(fiber.HeaderContentType, "application/pdf")
	r.C.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`inline; filename="receipt-%s.pdf"`, strings.NewReplacer("/", "-", `"`, "").Replace(rc.Number)))
	return r.C.Status(fiber.StatusOK).Send(data)
}

// printPeriod prints "2024-04-01".."2024-04-30" as "1 Apr 2024 – 30 Apr 2024".
func printPeriod(from, to string) string {
	f, err1 := billing.ParseDate(from)
	t, err2 := billing.ParseDate(to)
	if err1 != nil || err2 != nil {
		return from + " – " + to
	}
	const layout = "2 Jan 2006"
	return f.Start(time.UTC).Format(layout) + " – " + t.Start(time.UTC).Format(layout)
}

func (h *handlers) listRefunds(r *Request) error {
	id, err := r.pathID("paymentId")
	if err != nil {
		return err
	}
	list, err := h.svc.Payments.Refunds(r.C.UserContext(), caller(r), id)
	if err != nil {
		return paymentNotFound(err, id)
	}
	out := Page[refundDTO]{Items: make([]refundDTO, len(list))}
	for i, rf := range list {
		out.Items[i] = refundOf(rf)
	}
	return r.ok(fiber.StatusOK, out)
}

func (h *handlers) refund(r *Request) error {
	id, err := r.pathID("paymentId")
	if err != nil {
		return err
	}
	var in refundRequest
	if err := r.bind(&in, payment.ErrInvalidInput); err != nil {
		return err
	}
	rf, replayed, err := h.svc.Payments.Refund(r.C.UserContext(), caller(r), r.C.Get("Idempotency-Key"), id, payment.RefundInput{Amount: in.Amount, Reason: in.Reason})
	if err != nil {
		return paymentError(r, paymentNotFound(err, id))
	}
	if replayed {
		r.C.Set("Idempotent-Replayed", "true")
	}
	return r.ok(fiber.StatusCreated, refundOf(rf))
}

func (h *handlers) reconciliationView(r *Request) error {
	ctx := r.C.UserContext()
	runs, err := h.svc.Payments.Reconciliations(ctx, caller(r), 20)
	if err != nil {
		return err
	}
	open, err := h.svc.Payments.OpenPayments(ctx, caller(r), 100)
	if err != nil {
		return err
	}
	out := reconciliationViewDTO{Runs: make([]reconciliationDTO, len(runs)), Open: make([]paymentDTO, len(open))}
	for i, x := range runs {
		out.Runs[i] = reconciliationOf(x)
	}
	for i, p := range open {
		out.Open[i] = paymentOf(p)
	}
	return r.ok(fiber.StatusOK, out)
}

func (h *handlers) reconcile(r *Request) error {
	c := caller(r)
	run, err := h.svc.Payments.Reconcile(r.C.UserContext(), c.TenantID, "staff", &c)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, reconciliationOf(run))
}

func (h *handlers) listMethods(r *Request) error {
	list, err := h.svc.Payments.Methods(r.C.UserContext(), caller(r))
	if err != nil {
		return err
	}
	out := Page[savedMethodDTO]{Items: make([]savedMethodDTO, len(list))}
	for i, m := range list {
		out.Items[i] = savedMethodOf(m)
	}
	return r.ok(fiber.StatusOK, out)
}

func (h *handlers) addMethod(r *Request) error {
	var in savedMethodRequest
	if err := r.bind(&in, payment.ErrInvalidInput); err != nil {
		return err
	}
	m, err := h.svc.Payments.AddMethod(r.C.UserContext(), caller(r), payment.NewMethod{Provider: in.Provider, Method: payment.Method(in.Method),
		Token: in.Token, Brand: in.Brand, Last4: in.Last4, Label: in.Label})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusCreated, savedMethodOf(m))
}

func (h *handlers) removeMethod(r *Request) error {
	id, err := r.pathID("methodId")
	if err != nil {
		return err
	}
	if err := h.svc.Payments.RemoveMethod(r.C.UserContext(), caller(r), id); err != nil {
		if errors.Is(err, payment.ErrNotFound) {
			return Errorf(KindNotFound, "payment method %d not found", id)
		}
		return err
	}
	return r.C.SendStatus(fiber.StatusNoContent)
}
