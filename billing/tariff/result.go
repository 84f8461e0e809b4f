package tariff

import (
	"encoding/json"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// LineCategory groups lines for subtotals and tax bases.
type LineCategory string

// Line categories, in the order lines are produced.
const (
	CategoryEnergy      LineCategory = "energy"
	CategoryMinimum     LineCategory = "minimum"
	CategoryPassThrough LineCategory = "pass_through"
	CategoryFixed       LineCategory = "fixed"
	CategoryDemand      LineCategory = "demand"
	CategoryTax         LineCategory = "tax"
	CategorySubsidy     LineCategory = "subsidy"
	CategorySettlement  LineCategory = "settlement"
	CategoryRoundOff    LineCategory = "round_off"
)

// Line is one rated bill line. Charge lines satisfy
// Amount = round(Quantity × Rate × Factor); a tax or subsidy line's
// Quantity is its base amount and Rate its percentage; minimum top-up and
// round-off lines have neither.
type Line struct {
	Code        string
	Category    LineCategory
	Description string
	Quantity    decimal.Decimal
	Unit        string // "kWh", "kW", "kVA", "connection", "%" or "" when not meaningful
	Rate        decimal.Decimal
	Factor      decimal.Decimal // proration factor of monthly charges; 1 when whole
	Amount      decimal.Decimal // rounded once, by Rounding
	Precise     decimal.Decimal // unrounded amount, for audit
	Rounding    billing.Rounding
	Period      billing.Period // days this line covers
	Payer       string         // who pays a subsidy line; "" for the consumer

	tier  int             // slab or window index + 1; 0 for untiered lines
	group int             // group index + 1 in a group-selected charge
	lo    decimal.Decimal // lower bound of a telescopic tier, kWh
}

// Result is a rated usage: lines, subtotals and total.
type Result struct {
	Tenant   string
	Plan     string
	Currency string
	Period   billing.Period
	Versions []VersionSpan
	Energy   EnergySummary
	Lines    []Line
	// Subtotals per category, in category order, rounded lines summed.
	Subtotals []Subtotal
	// TotalBeforeRoundOff is the sum of the rounded lines other than the
	// round-off line.
	TotalBeforeRoundOff decimal.Decimal
	RoundOff            decimal.Decimal
	Total               decimal.Decimal
	places              int32
}

// VersionSpan is the part of the period billed under one tariff version.
type VersionSpan struct {
	Version       string
	EffectiveFrom billing.Date
	Period        billing.Period
	// FixedFactor and SlabFactor are the proration of monthly charges and
	// of slab bounds for this part.
	FixedFactor decimal.Decimal
	SlabFactor  decimal.Decimal
}

// EnergySummary is the energy accounting behind the lines, in Wh.
type EnergySummary struct {
	ImportWh        int64
	ExportWh        int64
	CreditInWh      int64 // net-metering credit brought forward
	CreditUsedWh    int64
	BilledWh        int64 // energy the energy charge applies to
	CreditCarriedWh int64 // credit carried to the next period
	CreditSettledWh int64 // credit paid out at settlement
	Estimated       bool
}

// Subtotal is the sum of one category's rounded lines.
type Subtotal struct {
	Category LineCategory
	Amount   decimal.Decimal
}

// Subtotal returns the subtotal of category c (zero when it has no lines).
func (r *Result) Subtotal(c LineCategory) decimal.Decimal {
	for _, s := range r.Subtotals {
		if s.Category == c {
			return s.Amount
		}
	}
	return decimal.Zero
}

// MarshalJSON renders amounts as fixed-point strings with the currency's
// places ("600.00"), quantities without trailing zeros and energy in kWh.
func (r *Result) MarshalJSON() ([]byte, error) { return json.Marshal(r.view()) }

type lineView struct {
	Code        string       `json:"code"`
	Category    LineCategory `json:"category"`
	Description string       `json:"description"`
	Quantity    string       `json:"quantity,omitempty"`
	Unit        string       `json:"unit,omitempty"`
	Rate        string       `json:"rate,omitempty"`
	Factor      string       `json:"factor,omitempty"`
	Amount      string       `json:"amount"`
	Rounding    string       `json:"rounding"`
	From        billing.Date `json:"from"`
	To          billing.Date `json:"to"`
	Payer       string       `json:"payer,omitempty"`
}

type versionView struct {
	Version       string       `json:"version"`
	EffectiveFrom billing.Date `json:"effective_from"`
	From          billing.Date `json:"from"`
	To            billing.Date `json:"to"`
	Days          int          `json:"days"`
	FixedFactor   string       `json:"fixed_factor"`
	SlabFactor    string       `json:"slab_factor"`
}

type energyView struct {
	ImportKWh        string `json:"import_kwh"`
	ExportKWh        string `json:"export_kwh"`
	CreditInKWh      string `json:"credit_in_kwh"`
	CreditUsedKWh    string `json:"credit_used_kwh"`
	BilledKWh        string `json:"billed_kwh"`
	CreditCarriedKWh string `json:"credit_carried_kwh"`
	CreditSettledKWh string `json:"credit_settled_kwh,omitempty"`
	Estimated        bool   `json:"estimated"`
}

type resultView struct {
	Tenant              string            `json:"tenant"`
	Plan                string            `json:"plan"`
	Currency            string            `json:"currency"`
	From                billing.Date      `json:"from"`
	To                  billing.Date      `json:"to"`
	Versions            []versionView     `json:"versions"`
	Energy              energyView        `json:"energy"`
	Lines               []lineView        `json:"lines"`
	Subtotals           map[string]string `json:"subtotals"`
	TotalBeforeRoundOff string            `json:"total_before_round_off"`
	RoundOff            string            `json:"round_off"`
	Total               string            `json:"total"`
}

func (r *Result) view() resultView {
	out := resultView{
		Tenant: r.Tenant, Plan: r.Plan, Currency: r.Currency,
		From: r.Period.From, To: r.Period.To,
		Energy: energyView{
			ImportKWh:        whText(r.Energy.ImportWh),
			ExportKWh:        whText(r.Energy.ExportWh),
			CreditInKWh:      whText(r.Energy.CreditInWh),
			CreditUsedKWh:    whText(r.Energy.CreditUsedWh),
			BilledKWh:        whText(r.Energy.BilledWh),
			CreditCarriedKWh: whText(r.Energy.CreditCarriedWh),
			Estimated:        r.Energy.Estimated,
		},
		Lines:               make([]lineView, 0, len(r.Lines)),
		Subtotals:           make(map[string]string, len(r.Subtotals)),
		TotalBeforeRoundOff: r.TotalBeforeRoundOff.StringFixed(r.places),
		RoundOff:            r.RoundOff.StringFixed(r.places),
		Total:               r.Total.StringFixed(r.places),
	}
	if r.Energy.CreditSettledWh != 0 {
		out.Energy.CreditSettledKWh = whText(r.Energy.CreditSettledWh)
	}
	for _, v := range r.Versions {
		out.Versions = append(out.Versions, versionView{
			Version: v.Version, EffectiveFrom: v.EffectiveFrom, From: v.Period.From, To: v.Period.To,
			Days: v.Period.Days(), FixedFactor: quantityText(v.FixedFactor), SlabFactor: quantityText(v.SlabFactor),
		})
	}
	for _, l := range r.Lines {
		ol := lineView{
			Code: l.Code, Category: l.Category, Description: l.Description, Unit: l.Unit,
			Amount: l.Amount.StringFixed(max(l.Rounding.Places, r.places)), Rounding: l.Rounding.String(),
			From: l.Period.From, To: l.Period.To, Payer: l.Payer,
		}
		if l.Unit != "" {
			ol.Quantity, ol.Rate = quantityText(l.Quantity), rateText(l.Rate)
		}
		if !l.Factor.IsZero() && !l.Factor.Equal(decimal.NewFromInt(1)) {
			ol.Factor = quantityText(l.Factor)
		}
		out.Lines = append(out.Lines, ol)
	}
	for _, s := range r.Subtotals {
		out.Subtotals[string(s.Category)] = s.Amount.StringFixed(r.places)
	}
	return out
}

// whText renders Wh as kWh ("350", "0.5").
func whText(wh int64) string { return decimal.New(wh, -3).String() }

// rateText renders a rate with at least two decimal places, as tariff
// orders print them ("3.00", "7.25", "0.105").
func rateText(d decimal.Decimal) string {
	if fractionDigits(d) < 2 {
		return d.StringFixed(2)
	}
	return d.String()
}

// quantityText renders a quantity to at most six decimal places without
// trailing zeros; prorated quantities are repeating decimals.
func quantityText(d decimal.Decimal) string { return d.Round(6).String() }

// Estimates returns the result as one estimate per line code, in line
// order, for a demand's details: the storage layer appends them with
// billing.DeltaDetails (a rebill appends only the differences). Charges
// (energy, minimum, pass-through, fixed, demand) are CHARGES, taxes and the
// round-off TAX, subsidies and net-metering settlement EXEMPTION (paid by
// someone other than the consumer, or credited to them).
func (r *Result) Estimates() []billing.Estimate {
	out := make([]billing.Estimate, 0, len(r.Lines))
	index := make(map[string]int, len(r.Lines))
	for _, l := range r.Lines {
		if i, ok := index[l.Code]; ok {
			out[i].Amount = out[i].Amount.Add(l.Amount)
			continue
		}
		index[l.Code] = len(out)
		out = append(out, billing.Estimate{Head: billing.TaxHead(l.Code), Category: lineTaxCategory(l.Category), Amount: l.Amount})
	}
	return out
}

func lineTaxCategory(c LineCategory) billing.Category {
	switch c {
	case CategoryTax, CategoryRoundOff:
		return billing.CategoryTax
	case CategorySubsidy, CategorySettlement:
		return billing.CategoryExemption
	}
	return billing.CategoryCharges
}
