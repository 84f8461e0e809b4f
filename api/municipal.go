package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/municipal"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// Municipal is what the municipal (water and sewerage) routes call: fee
// estimates, periodic charge calculation, a connection's demands, adhoc
// penalty and rebate, the application's fee demand and the connection
// attributes water slabs count. billing/postgres's Store implements it.
// When Services.Municipal is nil the routes are not mounted.
type Municipal interface {
	EstimateFees(ctx context.Context, r billingpg.FeeEstimateRequest) (billingpg.FeeEstimate, error)
	CalculateCharge(ctx context.Context, r billingpg.ChargeRequest) (billingpg.ChargeResult, error)
	// ConnectionDemands: userID (when not 0) limits it to that owner's
	// connection; missing: billing.ErrNotFound.
	ConnectionDemands(ctx context.Context, tenantID, userID, connID int64, limit int) ([]billingpg.ConnectionDemand, error)
	ApplyAdhoc(ctx context.Context, a billingpg.Adhoc) (billingpg.AdhocResult, error)
	IssueFeeDemand(ctx context.Context, r billingpg.FeeRequest) (billingpg.FeeResult, error)
	PutMunicipalAttributes(ctx context.Context, a billingpg.Attributes) (billingpg.MunicipalConnection, error)
}

var municipalDepartments = []string{account.DepartmentBilling}

// municipalRoutes are the permission table's water and sewerage rows.
func (h *handlers) municipalRoutes() []Route {
	ok := func(status int, body any) []Response { return []Response{{Status: status, Body: body}} }
	return []Route{
		{Method: http.MethodPost, Path: "/api/municipal/estimate", Summary: "Estimate the one-time fees of a water or sewerage connection " +
			"(form, scrutiny, road cutting, one-time fee, meter, security, other, tax and cess): of a described connection under a plan, " +
			"or of an existing one (consumers: their own)", Tag: "municipal",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Body: feeEstimateRequest{}, Responses: ok(200, feeEstimateDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindBillingCalculation}, Handler: h.estimateFees},
		{Method: http.MethodPost, Path: "/api/municipal/calculate", Summary: "What a connection's periodic charge for a period is, " +
			"with the billing slab used, and what recalculating the period's demand would append (nothing is written)", Tag: "municipal",
			Roles: staff, Owner: account.OwnerTenant, Body: chargeRequest{}, Responses: ok(200, municipalChargeDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindBillingCalculation}, Handler: h.calculateCharge},
		{Method: http.MethodGet, Path: "/api/municipal/connections/:connectionId/demands", Summary: "A water or sewerage connection's demands, " +
			"newest first, with every appended detail (deltas, interest, penalty, adhoc, advance) and what was collected", Tag: "municipal",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: municipalDemandsQuery{}, Responses: ok(200, Page[municipalDemandDTO]{}),
			Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.connectionDemands},
		{Method: http.MethodPost, Path: "/api/municipal/connections/:connectionId/adhoc", Summary: "Set the adhoc penalty and rebate " +
			"of the connection's oldest unpaid demand (appended as differences; zero clears; audited)", Tag: "municipal",
			Roles: officials, Departments: municipalDepartments, Owner: account.OwnerTenant, Body: adhocRequest{}, Responses: ok(200, adhocResultDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindConflict}, Handler: h.applyAdhoc},
		{Method: http.MethodPost, Path: "/api/municipal/connections/:connectionId/fee-demand", Summary: "Approve the application's one-time " +
			"fees: create (201) or recalculate (200, differences appended, bill replaced) its fee demand and issue its bill (audited)", Tag: "municipal",
			Roles: officials, Departments: municipalDepartments, Owner: account.OwnerTenant, Body: feeDemandRequest{},
			Responses: []Response{{Status: 201, Body: feeDemandDTO{}}, {Status: 200, Body: feeDemandDTO{}}},
			Problems:  []Kind{KindInvalidInput, KindNotFound, KindBillingCalculation, KindConflict}, Handler: h.issueFeeDemand},
		{Method: http.MethodPut, Path: "/api/municipal/connections/:connectionId/attributes", Summary: "Set what water slabs count that " +
			"connections do not carry: number of taps and pipe size (audited)", Tag: "municipal",
			Roles: officials, Owner: account.OwnerTenant, Body: municipalAttributesDTO{}, Responses: ok(200, municipalAttributesDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.putMunicipalAttributes},
	}
}

type municipalDemandsQuery struct {
	Limit int `query:"limit" doc:"demands to return, 1–200 (default 24)"`
}

// --- DTOs

type feeEstimateRequest struct {
	ConnectionID   int64            `json:"connection_id,omitempty" doc:"estimate for this connection's attributes and plan (consumers: their own); the description fields are then ignored"`
	Service        string           `json:"service,omitempty" enum:"water,sewerage" doc:"required without connection_id"`
	Plan           string           `json:"plan,omitempty" doc:"tariff plan whose masters price the fees; required without connection_id"`
	Date           string           `json:"date,omitempty" doc:"YYYY-MM-DD: masters in force then; default today in the tenant's zone"`
	ConnectionType string           `json:"connection_type,omitempty" enum:"Metered,Non Metered" doc:"default Non Metered"`
	UsageCategory  string           `json:"usage_category,omitempty" doc:"e.g. RESIDENTIAL or NONRESIDENTIAL.COMMERCIAL"`
	PlotSizeM2     *decimal.Decimal `json:"plot_size_m2,omitempty" doc:"land area for the security charge"`
	RoadCutting    []roadCuttingDTO `json:"road_cutting,omitempty"`
	AdhocPenalty   *decimal.Decimal `json:"adhoc_penalty,omitempty"`
	AdhocRebate    *decimal.Decimal `json:"adhoc_rebate,omitempty" doc:"positive; billed negative"`
}

type taxHeadEstimateDTO struct {
	TaxHead  string          `json:"tax_head"`
	Category string          `json:"category" enum:"CHARGES,FEE,TAX,PENALTY,REBATE,EXEMPTION,ADVANCE_COLLECTION,FINES"`
	Amount   decimal.Decimal `json:"amount"`
}

type municipalCalculationDTO struct {
	TaxHeadEstimates []taxHeadEstimateDTO `json:"tax_head_estimates"`
	BillingSlabIDs   []string             `json:"billing_slab_ids"`
	Charge           decimal.Decimal      `json:"charge" doc:"CHARGES"`
	Fee              decimal.Decimal      `json:"fee" doc:"FEE"`
	TaxAmount        decimal.Decimal      `json:"tax_amount" doc:"TAX and a positive round-off"`
	Penalty          decimal.Decimal      `json:"penalty"`
	Rebate           decimal.Decimal      `json:"rebate" doc:"REBATE and a negative round-off"`
	Exemption        decimal.Decimal      `json:"exemption"`
	TotalAmount      decimal.Decimal      `json:"total_amount"`
}

func calculationOf(c municipal.Calculation) municipalCalculationDTO {
	out := municipalCalculationDTO{TaxHeadEstimates: make([]taxHeadEstimateDTO, len(c.Estimates)), BillingSlabIDs: c.BillingSlabIDs,
		Charge: c.Charge, Fee: c.Fee, TaxAmount: c.TaxAmount, Penalty: c.Penalty, Rebate: c.Rebate, Exemption: c.Exemption, TotalAmount: c.TotalAmount}
	if out.BillingSlabIDs == nil {
		out.BillingSlabIDs = []string{}
	}
	for i, e := range c.Estimates {
		out.TaxHeadEstimates[i] = taxHeadEstimateDTO{TaxHead: string(e.Head), Category: e.Category.String(), Amount: e.Amount.Round(2)}
	}
	return out
}

type feeEstimateDTO struct {
	Service       string `json:"service" enum:"water,sewerage"`
	Plan          string `json:"plan"`
	Version       string `json:"version" doc:"the masters version used"`
	EffectiveFrom string `json:"effective_from" doc:"YYYY-MM-DD"`
	municipalCalculationDTO
}

type chargeRequest struct {
	ConnectionID   int64            `json:"connection_id"`
	Period         string           `json:"period" doc:"YYYY-MM, or FROM..TO dates"`
	LastReading    *decimal.Decimal `json:"last_reading,omitempty" doc:"metered water: kilolitres; default the period demand's metered volume"`
	CurrentReading *decimal.Decimal `json:"current_reading,omitempty" doc:"metered water: kilolitres"`
}

type slabBandDTO struct {
	From   decimal.Decimal `json:"from"`
	To     decimal.Decimal `json:"to"`
	Charge decimal.Decimal `json:"charge" doc:"per unit"`
}

type municipalSlabDTO struct {
	ID                   string          `json:"id"`
	BuildingType         string          `json:"building_type"`
	ConnectionType       string          `json:"connection_type"`
	CalculationAttribute string          `json:"calculation_attribute"`
	MinimumCharge        decimal.Decimal `json:"minimum_charge"`
	Bands                []slabBandDTO   `json:"bands"`
}

type demandDetailDTO struct {
	ID               int64           `json:"id,omitempty"`
	TaxHead          string          `json:"tax_head"`
	Category         string          `json:"category,omitempty"`
	TaxAmount        decimal.Decimal `json:"tax_amount"`
	CollectionAmount decimal.Decimal `json:"collection_amount"`
	Source           string          `json:"source,omitempty" enum:"calculation,recalculation,late_surcharge,advance,adjustment"`
	BillRunID        int64           `json:"bill_run_id,omitempty"`
	CreatedAt        *time.Time      `json:"created_at,omitempty"`
}

type municipalDemandDTO struct {
	ID           int64             `json:"id"`
	Kind         string            `json:"kind" enum:"periodic,fee"`
	ConsumerCode string            `json:"consumer_code" doc:"connection number, or the application number of a fee demand"`
	Period       periodDTO         `json:"period"`
	DueDate      string            `json:"due_date" doc:"YYYY-MM-DD, tenant's zone"`
	Plan         string            `json:"plan"`
	VolumeLitres int64             `json:"volume_litres" doc:"metered water: litres the period's water meters counted"`
	Estimated    bool              `json:"estimated"`
	BillID       int64             `json:"bill_id,omitempty" doc:"the live bill presenting it"`
	Total        decimal.Decimal   `json:"total" doc:"sum of tax amounts"`
	Outstanding  decimal.Decimal   `json:"outstanding" doc:"sum of tax less collected"`
	Details      []demandDetailDTO `json:"details" doc:"in append order; history is never edited"`
}

func municipalDemandOf(d billingpg.ConnectionDemand) municipalDemandDTO {
	out := municipalDemandDTO{ID: d.ID, Kind: d.Kind, ConsumerCode: d.ConsumerCode, Period: periodOf(d.Period), DueDate: d.Due.String(),
		Plan: d.Plan, VolumeLitres: d.ImportWh, Estimated: d.Estimated, BillID: d.LiveBillID, Total: decimal.Zero, Outstanding: decimal.Zero,
		Details: make([]demandDetailDTO, len(d.Details))}
	for i, x := range d.Details {
		at := x.CreatedAt.UTC()
		out.Details[i] = demandDetailDTO{ID: x.ID, TaxHead: string(x.Head), Category: x.Category, TaxAmount: x.TaxAmount,
			CollectionAmount: x.CollectionAmount, Source: x.Source, BillRunID: x.BillRunID, CreatedAt: &at}
		out.Total = out.Total.Add(x.TaxAmount)
		out.Outstanding = out.Outstanding.Add(x.TaxAmount.Sub(x.CollectionAmount))
	}
	return out
}

func detailsOf(ds []billing.DemandDetail) []demandDetailDTO {
	out := make([]demandDetailDTO, len(ds))
	for i, d := range ds {
		out[i] = demandDetailDTO{TaxHead: string(d.Head), TaxAmount: d.TaxAmount, CollectionAmount: d.CollectionAmount}
	}
	return out
}

type municipalChargeDTO struct {
	ConnectionID  int64               `json:"connection_id"`
	ConsumerCode  string              `json:"consumer_code"`
	Service       string              `json:"service" enum:"water,sewerage"`
	Period        periodDTO           `json:"period"`
	Plan          string              `json:"plan"`
	Version       string              `json:"version" doc:"the masters version in force on the period's first day"`
	EffectiveFrom string              `json:"effective_from"`
	Attribute     string              `json:"calculation_attribute" doc:"what the slab counts for the connection type"`
	Units         decimal.Decimal     `json:"units" doc:"what the slab counted (kilolitres for metered water)"`
	Slabs         []municipalSlabDTO  `json:"slabs" doc:"the billing slab the charge came from"`
	Demand        *municipalDemandDTO `json:"demand" doc:"the period's demand, if one exists"`
	Deltas        []demandDetailDTO   `json:"deltas" doc:"what recalculating that demand would append (empty: nothing changed)"`
	municipalCalculationDTO
}

type adhocRequest struct {
	Penalty *decimal.Decimal `json:"penalty,omitempty" doc:"the adhoc penalty the demand should carry; 0 clears it"`
	Rebate  *decimal.Decimal `json:"rebate,omitempty" doc:"the adhoc rebate (positive) the demand should carry; 0 clears it"`
	Reason  string           `json:"reason" doc:"why, for the audit log"`
}

type adhocResultDTO struct {
	DemandID int64             `json:"demand_id" doc:"the oldest unpaid demand"`
	Period   periodDTO         `json:"period"`
	Appended []demandDetailDTO `json:"appended" doc:"the differences and the round-off correction (empty: nothing changed)"`
	Total    decimal.Decimal   `json:"total" doc:"the demand's total after"`
}

type feeDemandRequest struct {
	ApplicationNo string `json:"application_no,omitempty" doc:"consumer code of the fee demand; default the existing one's, or <connection consumer code>/APP"`
}

type feeDemandDTO struct {
	Created     bool                    `json:"created"`
	Changed     bool                    `json:"changed" doc:"details were appended and a bill issued"`
	Version     string                  `json:"version" doc:"the masters version used"`
	BillID      int64                   `json:"bill_id" doc:"the live bill presenting the fee demand"`
	BillNumber  string                  `json:"bill_number"`
	Appended    []demandDetailDTO       `json:"appended"`
	Demand      municipalDemandDTO      `json:"demand"`
	Calculation municipalCalculationDTO `json:"calculation"`
}

type municipalAttributesDTO struct {
	ConnectionID int64 `json:"connection_id,omitempty" doc:"response only"`
	Taps         *int  `json:"taps" doc:"number of taps; null clears"`
	PipeSize     *int  `json:"pipe_size" doc:"pipe size in the unit the tenant's slabs count; null clears"`
}

// --- handlers

func (h *handlers) estimateFees(r *Request) error {
	var in feeEstimateRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	req := billingpg.FeeEstimateRequest{TenantID: r.Scope.TenantID, UserID: r.Scope.UserID, ConnectionID: in.ConnectionID,
		Service: in.Service, Plan: in.Plan, Connection: municipal.Connection{ConnectionType: in.ConnectionType,
			AdhocPenalty: in.AdhocPenalty, AdhocRebate: in.AdhocRebate},
		Property: municipal.Property{UsageCategory: in.UsageCategory, LandArea: in.PlotSizeM2}}
	var fields []FieldError
	if in.ConnectionID < 0 {
		fields = append(fields, FieldError{Field: "connection_id", Message: "must be a positive integer"})
	}
	if in.ConnectionID == 0 {
		if in.Service != "water" && in.Service != "sewerage" {
			fields = append(fields, FieldError{Field: "service", Message: "must be water or sewerage"})
		}
		if in.Plan == "" {
			fields = append(fields, FieldError{Field: "plan", Message: "is required without connection_id"})
		}
		switch in.ConnectionType {
		case "":
			req.Connection.ConnectionType = "Non Metered"
		case "Metered", "Non Metered":
		default:
			fields = append(fields, FieldError{Field: "connection_type", Message: "must be Metered or Non Metered"})
		}
	}
	if in.Date != "" {
		d, err := billing.ParseDate(in.Date)
		if err != nil {
			fields = append(fields, FieldError{Field: "date", Message: "must be a date YYYY-MM-DD"})
		}
		req.Day = d
	}
	for i, rc := range in.RoadCutting {
		if !rc.AreaM2.IsPositive() {
			fields = append(fields, FieldError{Field: fmt.Sprintf("road_cutting[%d].area_m2", i), Message: "must be a positive area"})
		}
		area := rc.AreaM2
		req.Connection.RoadCutting = append(req.Connection.RoadCutting, municipal.RoadCutting{RoadType: rc.RoadType, Area: &area})
	}
	fields = append(fields, nonNegative([]string{"plot_size_m2", "adhoc_penalty", "adhoc_rebate"}, in.PlotSizeM2, in.AdhocPenalty, in.AdhocRebate)...)
	if len(fields) > 0 {
		return InvalidInput(fields...)
	}
	est, err := h.svc.Municipal.EstimateFees(r.C.UserContext(), req)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, feeEstimateDTO{Service: est.Service, Plan: est.Plan, Version: est.Version, EffectiveFrom: est.EffectiveFrom.String(),
		municipalCalculationDTO: calculationOf(est.Calculation)})
}

// nonNegative reports the named amounts that are negative.
func nonNegative(names []string, amounts ...*decimal.Decimal) []FieldError {
	var out []FieldError
	for i, d := range amounts {
		if d != nil && d.IsNegative() {
			out = append(out, FieldError{Field: names[i], Message: "must not be negative"})
		}
	}
	return out
}

func (h *handlers) calculateCharge(r *Request) error {
	var in chargeRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	var fields []FieldError
	if in.ConnectionID <= 0 {
		fields = append(fields, FieldError{Field: "connection_id", Message: "must be a positive integer"})
	}
	p, err := parsePeriod(in.Period)
	if err != nil {
		fields = append(fields, FieldError{Field: "period", Message: err.Error()})
	}
	if (in.LastReading == nil) != (in.CurrentReading == nil) {
		fields = append(fields, FieldError{Field: "current_reading", Message: "give both readings or neither"})
	}
	if len(fields) > 0 {
		return InvalidInput(fields...)
	}
	res, err := h.svc.Municipal.CalculateCharge(r.C.UserContext(), billingpg.ChargeRequest{TenantID: r.Scope.TenantID, ConnectionID: in.ConnectionID,
		Period: p, LastReading: in.LastReading, CurrentReading: in.CurrentReading})
	if err != nil {
		return err
	}
	out := municipalChargeDTO{ConnectionID: res.Connection.ID, ConsumerCode: res.Connection.ConsumerCode, Service: res.Connection.Service, Period: periodOf(res.Period),
		Plan: res.Plan, Version: res.Version, EffectiveFrom: res.EffectiveFrom.String(), Attribute: res.Calculation.Attribute, Units: res.Calculation.Units,
		Slabs: make([]municipalSlabDTO, len(res.Calculation.Slabs)), Deltas: detailsOf(res.Deltas), municipalCalculationDTO: calculationOf(res.Calculation)}
	for i, s := range res.Calculation.Slabs {
		sd := municipalSlabDTO{ID: string(s.ID), BuildingType: s.BuildingType, ConnectionType: s.ConnectionType, CalculationAttribute: s.CalculationAttribute,
			MinimumCharge: s.MinimumCharge, Bands: make([]slabBandDTO, len(s.Bands))}
		for j, b := range s.Bands {
			sd.Bands[j] = slabBandDTO{From: b.From, To: b.To, Charge: b.Charge}
		}
		out.Slabs[i] = sd
	}
	if res.Demand != nil {
		d := municipalDemandOf(*res.Demand)
		out.Demand = &d
	}
	return r.ok(fiber.StatusOK, out)
}

func (h *handlers) connectionDemands(r *Request) error {
	id, err := r.pathID("connectionId")
	if err != nil {
		return err
	}
	limit := 0
	if s := r.C.Query("limit"); s != "" {
		n, err := decimal.NewFromString(s)
		if err != nil || !n.IsInteger() || n.IntPart() < 1 || n.IntPart() > 200 {
			return InvalidInput(FieldError{Field: "limit", Message: "must be an integer from 1 to 200"})
		}
		limit = int(n.IntPart())
	}
	list, err := h.svc.Municipal.ConnectionDemands(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, id, limit)
	if err != nil {
		return err
	}
	out := Page[municipalDemandDTO]{Items: make([]municipalDemandDTO, len(list))}
	for i, d := range list {
		out.Items[i] = municipalDemandOf(d)
	}
	return r.ok(fiber.StatusOK, out)
}

func (h *handlers) applyAdhoc(r *Request) error {
	id, err := r.pathID("connectionId")
	if err != nil {
		return err
	}
	var in adhocRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	var fields []FieldError
	if in.Penalty == nil && in.Rebate == nil {
		fields = append(fields, FieldError{Field: "penalty", Message: "give a penalty, a rebate or both"})
	}
	fields = append(fields, nonNegative([]string{"penalty", "rebate"}, in.Penalty, in.Rebate)...)
	if len(in.Reason) < 3 || len(in.Reason) > 500 {
		fields = append(fields, FieldError{Field: "reason", Message: "say why in 3 to 500 characters"})
	}
	if len(fields) > 0 {
		return InvalidInput(fields...)
	}
	res, err := h.svc.Municipal.ApplyAdhoc(r.C.UserContext(), billingpg.Adhoc{TenantID: r.Scope.TenantID, ConnectionID: id,
		Penalty: in.Penalty, Rebate: in.Rebate, Reason: in.Reason, Audit: billingAudit(r)})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, adhocResultDTO{DemandID: res.DemandID, Period: periodOf(res.Period), Appended: detailsOf(res.Appended), Total: res.Total})
}

func (h *handlers) issueFeeDemand(r *Request) error {
	id, err := r.pathID("connectionId")
	if err != nil {
		return err
	}
	var in feeDemandRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	if in.ApplicationNo != "" && !consumerCodeLike(in.ApplicationNo) {
		return InvalidInput(FieldError{Field: "application_no", Message: "must be 1 to 64 letters, digits, '/', '_', '.' or '-'"})
	}
	res, err := h.svc.Municipal.IssueFeeDemand(r.C.UserContext(), billingpg.FeeRequest{TenantID: r.Scope.TenantID, ConnectionID: id,
		ApplicationNo: in.ApplicationNo, Audit: billingAudit(r)})
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if res.Created {
		status = fiber.StatusCreated
	}
	return r.ok(status, feeDemandDTO{Created: res.Created, Changed: res.Changed, Version: res.Version, BillID: res.BillID, BillNumber: res.BillNumber,
		Appended: detailsOf(res.Appended), Demand: municipalDemandOf(res.Demand), Calculation: calculationOf(res.Calculation)})
}

// consumerCodeLike checks the shape of consumer codes and application
// numbers.
func consumerCodeLike(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '/' || c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func (h *handlers) putMunicipalAttributes(r *Request) error {
	id, err := r.pathID("connectionId")
	if err != nil {
		return err
	}
	var in municipalAttributesDTO
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	var fields []FieldError
	for i, n := range []*int{in.Taps, in.PipeSize} {
		if n != nil && (*n < 0 || *n > 10000) {
			fields = append(fields, FieldError{Field: []string{"taps", "pipe_size"}[i], Message: "must be between 0 and 10000"})
		}
	}
	if in.ConnectionID != 0 && in.ConnectionID != id {
		fields = append(fields, FieldError{Field: "connection_id", Message: "is the path's connection; leave it out"})
	}
	if len(fields) > 0 {
		return InvalidInput(fields...)
	}
	c, err := h.svc.Municipal.PutMunicipalAttributes(r.C.UserContext(), billingpg.Attributes{TenantID: r.Scope.TenantID, ConnectionID: id,
		Taps: in.Taps, PipeSize: in.PipeSize, Audit: billingAudit(r)})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, municipalAttributesDTO{ConnectionID: c.ID, Taps: c.Connection.Taps, PipeSize: c.Connection.PipeSize})
}
