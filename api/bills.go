package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/billing"
	billingpg "github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/billing/tariff"
)

// Billing is what the billing routes call: bills and their PDFs, tariff
// versions, bill runs and their dead letters. cmd implements it with
// billing/postgres, billing/billrun (runs are River jobs) and billing/pdf.
// When Services.Billing is nil the billing routes are not mounted.
type Billing interface {
	Bills(ctx context.Context, f billingpg.BillFilter) ([]billingpg.StoredBill, int64, error)
	// Bill returns a bill with its lines; consumerUserID (when not 0)
	// limits it to that consumer's bills. Missing: billing.ErrNotFound.
	Bill(ctx context.Context, tenantID, consumerUserID, id int64) (billingpg.StoredBill, error)
	BillPDF(ctx context.Context, tenantID, consumerUserID, id int64) ([]byte, billingpg.StoredBill, error)
	PublishTariff(ctx context.Context, p billingpg.Publish) (billingpg.TariffVersion, error)
	Tariffs(ctx context.Context, tenantID int64, service, plan string) ([]billingpg.TariffVersion, error)
	// TriggerRun creates a bill run and enqueues its job; the period
	// defaults to the tenant's cycle before today's.
	TriggerRun(ctx context.Context, r RunRequest) (billingpg.Run, error)
	Run(ctx context.Context, tenantID, id int64) (billingpg.Run, error)
	Runs(ctx context.Context, tenantID int64, limit int) ([]billingpg.Run, error)
	DeadLetters(ctx context.Context, tenantID int64, service string, limit int) ([]billingpg.DeadLetter, error)
}

// RunRequest is an official's request for a bill run.
type RunRequest struct {
	TenantID  int64
	Service   string
	Period    *billing.Period // nil: the cycle before today's in the tenant's zone
	IssueDate *billing.Date   // nil: today in the tenant's zone
	BatchSize int             // 0: the configured default
	Rerun     bool            // only the period's open dead letters
	Audit     *billingpg.AuditContext
}

var officialsBilling = []string{account.DepartmentBilling}

// billingRoutes are the permission table's billing rows.
func (h *handlers) billingRoutes() []Route {
	ok := func(status int, body any) []Response { return []Response{{Status: status, Body: body}} }
	return []Route{
		{Method: http.MethodGet, Path: "/api/bills", Summary: "List bills, newest first (own; staff: the tenant's, filterable)", Tag: "bills",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: billsQuery{}, Responses: ok(200, Page[billDTO]{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.listBills},
		{Method: http.MethodGet, Path: "/api/bills/:billId", Summary: "Get a bill with its lines", Tag: "bills",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, billDetailDTO{}),
			Problems: []Kind{KindInvalidInput, KindBillNotFound}, Handler: h.getBill},
		{Method: http.MethodGet, Path: "/api/bills/:billId/pdf", Summary: "The bill as a PDF (one A4 page with a UPI payment QR code)", Tag: "bills",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: []Response{{Status: 200, Type: "application/pdf"}},
			Problems: []Kind{KindInvalidInput, KindBillNotFound}, Handler: h.billPDF},
		{Method: http.MethodGet, Path: "/api/billing/tariffs", Summary: "Published tariff versions", Tag: "billing",
			Roles: staff, Owner: account.OwnerTenant, Query: tariffsQuery{}, Responses: ok(200, Page[tariffVersionDTO]{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.listTariffs},
		{Method: http.MethodPost, Path: "/api/billing/tariffs", Summary: "Validate and publish a tariff version (immutable once published)", Tag: "billing",
			Roles: officials, Departments: officialsBilling, Owner: account.OwnerTenant, Body: publishTariffRequest{}, Responses: ok(201, tariffVersionDTO{}),
			Problems: []Kind{KindInvalidInput, KindConflict}, Handler: h.publishTariff},
		{Method: http.MethodPost, Path: "/api/billing/quote", Summary: "Rate a usage description against a tariff document", Tag: "billing",
			Roles: staff, Owner: account.OwnerTenant, Body: quoteRequest{}, Responses: ok(200, json.RawMessage{}),
			Problems: []Kind{KindInvalidInput, KindBillingCalculation}, Handler: h.quote},
		{Method: http.MethodPost, Path: "/api/billing/runs", Summary: "Start a bill run (or re-run a period's dead letters)", Tag: "billing",
			Roles: officials, Departments: officialsBilling, Owner: account.OwnerTenant, Body: runRequest{}, Responses: ok(202, billRunDTO{}),
			Problems: []Kind{KindInvalidInput, KindConflict}, Handler: h.triggerRun},
		{Method: http.MethodGet, Path: "/api/billing/runs", Summary: "Bill runs with their progress, newest first", Tag: "billing",
			Roles: officials, Owner: account.OwnerTenant, Responses: ok(200, Page[billRunDTO]{}), Handler: h.listRuns},
		{Method: http.MethodGet, Path: "/api/billing/runs/:runId", Summary: "A bill run's progress and counts", Tag: "billing",
			Roles: officials, Owner: account.OwnerTenant, Responses: ok(200, billRunDTO{}), Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.getRun},
		{Method: http.MethodGet, Path: "/api/billing/dead-letters", Summary: "Connections bill runs could not bill, with the reason", Tag: "billing",
			Roles: officials, Owner: account.OwnerTenant, Query: deadLettersQuery{}, Responses: ok(200, Page[deadLetterDTO]{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.listDeadLetters},
	}
}

// Query parameter documentation.
type (
	billsQuery struct {
		pageQuery
		Status       string `query:"status" enum:"issued,partially_paid,paid,overdue,cancelled"`
		ConnectionID int64  `query:"connection_id"`
		From         string `query:"from" doc:"YYYY-MM-DD: bills whose period starts on or after"`
		To           string `query:"to" doc:"YYYY-MM-DD: bills whose period starts on or before"`
	}
	tariffsQuery struct {
		Service string `query:"service" enum:"electricity,water,sewerage"`
		Plan    string `query:"plan"`
	}
	deadLettersQuery struct {
		Service string `query:"service" enum:"electricity,water,sewerage"`
	}
)

// --- DTOs

type periodDTO struct {
	From string `json:"from" doc:"YYYY-MM-DD"`
	To   string `json:"to" doc:"YYYY-MM-DD, inclusive"`
}

func periodOf(p billing.Period) periodDTO { return periodDTO{From: p.From.String(), To: p.To.String()} }

type billDTO struct {
	ID             int64           `json:"id"`
	Number         string          `json:"number"`
	Service        string          `json:"service" enum:"electricity,water,sewerage"`
	ConnectionID   int64           `json:"connection_id"`
	ConsumerCode   string          `json:"consumer_code"`
	ConsumerUserID int64           `json:"consumer_user_id,omitempty"`
	ConsumerName   string          `json:"consumer_name"`
	Period         periodDTO       `json:"period"`
	IssueDate      string          `json:"issue_date" doc:"YYYY-MM-DD, tenant's zone"`
	DueDate        string          `json:"due_date" doc:"YYYY-MM-DD, tenant's zone"`
	Currency       string          `json:"currency"`
	ConsumptionWh  int64           `json:"consumption_wh"`
	Estimated      bool            `json:"estimated" doc:"consumption includes estimated days"`
	CurrentCharges decimal.Decimal `json:"current_charges"`
	Arrears        decimal.Decimal `json:"arrears"`
	Advance        decimal.Decimal `json:"advance" doc:"advance and payments adjusted (≤ 0)"`
	RoundOff       decimal.Decimal `json:"round_off" doc:"included in current_charges"`
	Total          decimal.Decimal `json:"total" doc:"payable"`
	MinimumPayable decimal.Decimal `json:"minimum_payable"`
	PaidAmount     decimal.Decimal `json:"paid_amount"`
	Status         string          `json:"status" enum:"issued,partially_paid,paid,overdue,cancelled"`
	ReplacesBillID int64           `json:"replaces_bill_id,omitempty" doc:"the cancelled bill this one replaces"`
	IssuedAt       time.Time       `json:"issued_at"`
}

type billLineDTO struct {
	Section     string           `json:"section" enum:"current,arrears,advance"`
	Code        string           `json:"code"`
	Description string           `json:"description"`
	Quantity    *decimal.Decimal `json:"quantity,omitempty"`
	Unit        string           `json:"unit,omitempty"`
	Rate        *decimal.Decimal `json:"rate,omitempty"`
	Amount      decimal.Decimal  `json:"amount"`
}

type usagePointDTO struct {
	From      string `json:"from"`
	To        string `json:"to"`
	KWh       string `json:"kwh"`
	Estimated bool   `json:"estimated"`
}

type billDetailDTO struct {
	billDTO
	PropertyLabel  string          `json:"property_label"`
	MeterSerial    string          `json:"meter_serial"`
	TariffPlan     string          `json:"tariff_plan"`
	TariffVersion  string          `json:"tariff_version"`
	PreviousReadWh *int64          `json:"previous_read_wh,omitempty"`
	CurrentReadWh  *int64          `json:"current_read_wh,omitempty"`
	CancelReason   string          `json:"cancel_reason,omitempty"`
	Lines          []billLineDTO   `json:"lines"`
	UsageHistory   []usagePointDTO `json:"usage_history"`
}

func billOf(b billingpg.StoredBill) billDTO {
	return billDTO{ID: b.ID, Number: b.Number, Service: b.Service, ConnectionID: b.ConnectionID, ConsumerCode: b.ConsumerCode,
		ConsumerUserID: b.ConsumerUserID, ConsumerName: b.ConsumerName, Period: periodOf(b.Period), IssueDate: b.IssueDate.String(),
		DueDate: b.DueDate.String(), Currency: b.Currency, ConsumptionWh: b.ConsumptionWh, Estimated: b.Estimated,
		CurrentCharges: b.Totals.Current, Arrears: b.Totals.Arrears, Advance: b.Totals.Advance, RoundOff: b.Totals.RoundOff,
		Total: b.Totals.Total, MinimumPayable: b.Totals.MinimumPayable, PaidAmount: b.PaidAmount, Status: b.Status,
		ReplacesBillID: b.ReplacesBillID, IssuedAt: b.IssuedAt.UTC()}
}

func billDetailOf(b billingpg.StoredBill) billDetailDTO {
	d := billDetailDTO{billDTO: billOf(b), PropertyLabel: b.PropertyLabel, MeterSerial: b.MeterSerial, TariffPlan: b.TariffPlan,
		TariffVersion: b.TariffVersion, PreviousReadWh: b.PreviousReadWh, CurrentReadWh: b.CurrentReadWh, CancelReason: b.CancelReason,
		Lines: make([]billLineDTO, 0, len(b.Lines)), UsageHistory: make([]usagePointDTO, 0, len(b.UsageHistory))}
	for _, l := range b.Lines {
		dl := billLineDTO{Section: string(l.Section), Code: l.Code, Description: l.Description, Unit: l.Unit, Amount: l.Amount}
		if l.HasQuantity {
			q, r := l.Quantity, l.Rate
			dl.Quantity, dl.Rate = &q, &r
		}
		d.Lines = append(d.Lines, dl)
	}
	for _, u := range b.UsageHistory {
		d.UsageHistory = append(d.UsageHistory, usagePointDTO{From: u.From.String(), To: u.To.String(), KWh: u.KWh, Estimated: u.Estimated})
	}
	return d
}

type tariffVersionDTO struct {
	ID            int64     `json:"id"`
	Service       string    `json:"service" enum:"electricity,water,sewerage"`
	Plan          string    `json:"plan"`
	Version       string    `json:"version"`
	EffectiveFrom string    `json:"effective_from" doc:"YYYY-MM-DD"`
	Format        string    `json:"format" enum:"tariff,municipal"`
	SHA256        string    `json:"sha256" doc:"of the document as published"`
	PublishedAt   time.Time `json:"published_at"`
	PublishedBy   int64     `json:"published_by,omitempty"`
}

func tariffVersionOf(v billingpg.TariffVersion) tariffVersionDTO {
	return tariffVersionDTO{ID: v.ID, Service: v.Service, Plan: v.Plan, Version: v.Version, EffectiveFrom: v.EffectiveFrom.String(),
		Format: v.Format, SHA256: v.SHA256, PublishedAt: v.PublishedAt.UTC(), PublishedBy: v.PublishedBy}
}

type publishTariffRequest struct {
	Service       string          `json:"service,omitempty" enum:"electricity,water,sewerage" doc:"default electricity"`
	Plan          string          `json:"plan" doc:"the name connections' tariff_plan refers to"`
	Document      json.RawMessage `json:"document" doc:"a tariff document (electricity) or municipal masters (water, sewerage): a JSON object, stored exactly as sent, or a JSON string holding the document as YAML, stored as the equivalent JSON"`
	Version       string          `json:"version,omitempty" doc:"municipal masters only"`
	EffectiveFrom string          `json:"effective_from,omitempty" doc:"YYYY-MM-DD, municipal masters only"`
}

type quoteRequest struct {
	Tariff json.RawMessage `json:"tariff" doc:"one tariff document or an array of versions"`
	Usage  json.RawMessage `json:"usage" doc:"period, import_kwh, tou_kwh, sanctioned_load_kw, max_demand_kva, payment …"`
}

type runRequest struct {
	Service   string `json:"service,omitempty" enum:"electricity,water,sewerage" doc:"default electricity"`
	Period    string `json:"period,omitempty" doc:"YYYY-MM, or FROM..TO dates; default the cycle before today's"`
	IssueDate string `json:"issue_date,omitempty" doc:"YYYY-MM-DD; default today in the tenant's zone"`
	BatchSize int    `json:"batch_size,omitempty" doc:"connections per transaction, 1–10000"`
	Rerun     bool   `json:"rerun,omitempty" doc:"bill only the period's open dead letters"`
}

type billRunDTO struct {
	ID          int64      `json:"id"`
	Service     string     `json:"service"`
	Cycle       string     `json:"cycle" enum:"monthly,quarterly"`
	Period      periodDTO  `json:"period"`
	IssueDate   string     `json:"issue_date"`
	Trigger     string     `json:"trigger" enum:"schedule,official,cli,rerun"`
	Status      string     `json:"status" enum:"queued,running,completed,failed"`
	BatchSize   int        `json:"batch_size"`
	Total       int        `json:"total" doc:"connections in scope"`
	Processed   int        `json:"processed"`
	Billed      int        `json:"billed"`
	Unchanged   int        `json:"unchanged" doc:"already billed for the period"`
	Skipped     int        `json:"skipped" doc:"not billable (no tariff plan …)"`
	Failed      int        `json:"failed" doc:"dead letters"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	RequestedBy int64      `json:"requested_by,omitempty"`
}

func billRunOf(r billingpg.Run) billRunDTO {
	return billRunDTO{ID: r.ID, Service: r.Service, Cycle: r.Cycle, Period: periodOf(r.Period), IssueDate: r.IssueDate.String(),
		Trigger: r.Trigger, Status: r.Status, BatchSize: r.BatchSize, Total: r.Total, Processed: r.Processed, Billed: r.Billed,
		Unchanged: r.Unchanged, Skipped: r.Skipped, Failed: r.Failed, Error: r.Error, CreatedAt: r.CreatedAt.UTC(),
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, RequestedBy: r.RequestedBy}
}

type deadLetterDTO struct {
	ID           int64     `json:"id"`
	ConnectionID int64     `json:"connection_id"`
	ConsumerCode string    `json:"consumer_code"`
	Service      string    `json:"service"`
	Period       periodDTO `json:"period"`
	Reason       string    `json:"reason"`
	Attempts     int       `json:"attempts"`
	LastRunID    int64     `json:"last_run_id"`
	LastFailedAt time.Time `json:"last_failed_at"`
}

// --- handlers

func (h *handlers) listBills(r *Request) error {
	p, err := r.page()
	if err != nil {
		return err
	}
	f := billingpg.BillFilter{TenantID: r.Scope.TenantID, ConsumerUserID: r.Scope.UserID, Status: r.C.Query("status"), BeforeID: p.After, Limit: p.Limit}
	switch f.Status {
	case "", "issued", "partially_paid", "paid", "overdue", "cancelled":
	default:
		return InvalidInput(FieldError{Field: "status", Message: "must be issued, partially_paid, paid, overdue or cancelled"})
	}
	if f.ConnectionID, err = r.queryID("connection_id"); err != nil {
		return err
	}
	for name, dst := range map[string]*billing.Date{"from": &f.From, "to": &f.To} {
		if s := r.C.Query(name); s != "" {
			d, err := billing.ParseDate(s)
			if err != nil {
				return InvalidInput(FieldError{Field: name, Message: "must be a date YYYY-MM-DD"})
			}
			*dst = d
		}
	}
	list, _, err := h.svc.Billing.Bills(r.C.UserContext(), f)
	if err != nil {
		return err
	}
	out := mapped(list, billOf)
	return r.ok(fiber.StatusOK, pageOf(out, p, func(b billDTO) int64 { return b.ID }))
}

// billNotFound turns a missing bill into the BillNotFound problem.
func billNotFound(err error, id int64) error {
	if errors.Is(err, billing.ErrNotFound) {
		return Errorf(KindBillNotFound, "bill %d not found", id)
	}
	return err
}

func (h *handlers) getBill(r *Request) error {
	id, err := r.pathID("billId")
	if err != nil {
		return err
	}
	b, err := h.svc.Billing.Bill(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, id)
	if err != nil {
		return billNotFound(err, id)
	}
	return r.ok(fiber.StatusOK, billDetailOf(b))
}

func (h *handlers) billPDF(r *Request) error {
	id, err := r.pathID("billId")
	if err != nil {
		return err
	}
	data, b, err := h.svc.Billing.BillPDF(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, id)
	if err != nil {
		return billNotFound(err, id)
	}
	r.C.Set(fiber.HeaderContentType, "application/pdf")
	r.C.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`inline; filename="bill-%s.pdf"`, strings.NewReplacer("/", "-", `"`, "").Replace(b.Number)))
	return r.C.Status(fiber.StatusOK).Send(data)
}

func (h *handlers) listTariffs(r *Request) error {
	list, err := h.svc.Billing.Tariffs(r.C.UserContext(), r.Scope.TenantID, r.C.Query("service"), r.C.Query("plan"))
	if err != nil {
		return err
	}
	out := Page[tariffVersionDTO]{Items: make([]tariffVersionDTO, len(list))}
	for i, v := range list {
		out.Items[i] = tariffVersionOf(v)
	}
	return r.ok(fiber.StatusOK, out)
}

func billingAudit(r *Request) *billingpg.AuditContext {
	a := &billingpg.AuditContext{ActorUserID: r.Actor.UserID, ActorRole: string(r.Actor.Role), RequestID: r.Actor.RequestID}
	a.Address, _ = netip.ParseAddr(r.Actor.Address)
	return a
}

func (h *handlers) publishTariff(r *Request) error {
	var in publishTariffRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	if in.Service == "" {
		in.Service = "electricity"
	}
	doc := []byte(in.Document)
	if t := bytes.TrimLeft(doc, " \t\r\n"); len(t) > 0 && t[0] == '"' { // YAML text in a JSON string
		var text string
		if err := json.Unmarshal(t, &text); err != nil {
			return InvalidInput(FieldError{Field: "document", Message: "is not a JSON string"})
		}
		doc = []byte(text)
	}
	p := billingpg.Publish{TenantID: r.Scope.TenantID, Service: in.Service, Plan: in.Plan, Document: doc, Version: in.Version,
		PublishedBy: r.Actor.UserID, Audit: billingAudit(r)}
	if in.EffectiveFrom != "" {
		d, err := billing.ParseDate(in.EffectiveFrom)
		if err != nil {
			return InvalidInput(FieldError{Field: "effective_from", Message: "must be a date YYYY-MM-DD"})
		}
		p.EffectiveFrom = d
	}
	if len(in.Document) == 0 {
		return InvalidInput(FieldError{Field: "document", Message: "is required"})
	}
	v, err := h.svc.Billing.PublishTariff(r.C.UserContext(), p)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusCreated, tariffVersionOf(v))
}

func (h *handlers) quote(r *Request) error {
	var in quoteRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	if len(in.Tariff) == 0 || len(in.Usage) == 0 {
		return InvalidInput(FieldError{Field: "tariff", Message: "tariff and usage are required"})
	}
	q, err := tariff.QuoteJSON(in.Tariff, in.Usage)
	if err != nil {
		return err
	}
	body, err := json.Marshal(q)
	if err != nil {
		return err
	}
	r.C.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return r.C.Status(fiber.StatusOK).Send(body)
}

func (h *handlers) triggerRun(r *Request) error {
	var in runRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	req := RunRequest{TenantID: r.Scope.TenantID, Service: in.Service, BatchSize: in.BatchSize, Rerun: in.Rerun, Audit: billingAudit(r)}
	if req.Service == "" {
		req.Service = "electricity"
	}
	if in.Period != "" {
		p, err := parsePeriod(in.Period)
		if err != nil {
			return InvalidInput(FieldError{Field: "period", Message: err.Error()})
		}
		req.Period = &p
	}
	if in.IssueDate != "" {
		d, err := billing.ParseDate(in.IssueDate)
		if err != nil {
			return InvalidInput(FieldError{Field: "issue_date", Message: "must be a date YYYY-MM-DD"})
		}
		req.IssueDate = &d
	}
	if in.BatchSize < 0 || in.BatchSize > 10000 {
		return InvalidInput(FieldError{Field: "batch_size", Message: "must be between 1 and 10000"})
	}
	run, err := h.svc.Billing.TriggerRun(r.C.UserContext(), req)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusAccepted, billRunOf(run))
}

// parsePeriod reads "YYYY-MM" or "FROM..TO".
func parsePeriod(s string) (billing.Period, error) {
	if a, b, ok := strings.Cut(s, ".."); ok {
		from, err1 := billing.ParseDate(a)
		to, err2 := billing.ParseDate(b)
		p := billing.Period{From: from, To: to}
		if err1 != nil || err2 != nil || !p.Valid() {
			return billing.Period{}, errors.New("want YYYY-MM or FROM..TO dates")
		}
		return p, nil
	}
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return billing.Period{}, errors.New("want YYYY-MM or FROM..TO dates")
	}
	return billing.Period{From: billing.NewDate(t.Year(), t.Month(), 1), To: billing.NewDate(t.Year(), t.Month()+1, 0)}, nil
}

func (h *handlers) listRuns(r *Request) error {
	list, err := h.svc.Billing.Runs(r.C.UserContext(), r.Scope.TenantID, 100)
	if err != nil {
		return err
	}
	out := Page[billRunDTO]{Items: make([]billRunDTO, len(list))}
	for i, run := range list {
		out.Items[i] = billRunOf(run)
	}
	return r.ok(fiber.StatusOK, out)
}

func (h *handlers) getRun(r *Request) error {
	id, err := r.pathID("runId")
	if err != nil {
		return err
	}
	run, err := h.svc.Billing.Run(r.C.UserContext(), r.Scope.TenantID, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, billRunOf(run))
}

func (h *handlers) listDeadLetters(r *Request) error {
	list, err := h.svc.Billing.DeadLetters(r.C.UserContext(), r.Scope.TenantID, r.C.Query("service"), 1000)
	if err != nil {
		return err
	}
	out := Page[deadLetterDTO]{Items: make([]deadLetterDTO, len(list))}
	for i, d := range list {
		out.Items[i] = deadLetterDTO{ID: d.ID, ConnectionID: d.ConnectionID, ConsumerCode: d.ConsumerCode, Service: d.Service,
			Period: periodOf(d.Period), Reason: d.Reason, Attempts: d.Attempts, LastRunID: d.LastRunID, LastFailedAt: d.LastFailedAt.UTC()}
	}
	return r.ok(fiber.StatusOK, out)
}
