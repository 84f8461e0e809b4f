package tariff

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// UsageDoc is a usage description as written for a quote. Energy is in kWh
// (at most three decimal places: meterd counts whole Wh).
type UsageDoc struct {
	// Period is the days billed. Without it the quote is for one whole
	// calendar month: the first that starts on or after as_of (default: the
	// latest version's effective date).
	Period      *PeriodDoc `json:"period,omitempty"`
	Cycle       *PeriodDoc `json:"cycle,omitempty"` // the whole cycle a partial period belongs to
	CycleMonths int        `json:"cycle_months,omitempty"`
	AsOf        string     `json:"as_of,omitempty"`

	SanctionedLoadKW Number            `json:"sanctioned_load_kw"`
	MaxDemandKVA     Number            `json:"max_demand_kva"`
	ImportKWh        Number            `json:"import_kwh"` // defaults to the sum of tou_kwh
	ExportKWh        Number            `json:"export_kwh"`
	TOUKWh           map[string]Number `json:"tou_kwh,omitempty"`
	CreditInKWh      Number            `json:"credit_in_kwh"`
	SettleCredit     bool              `json:"settle_credit,omitempty"`
	Estimated        bool              `json:"estimated,omitempty"`

	Payment *PaymentDoc `json:"payment,omitempty"`
}

// PeriodDoc is an inclusive run of days, YYYY-MM-DD.
type PeriodDoc struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// PaymentDoc is an optional payment scenario: the day after the bill date
// the bill is paid (for the prompt-payment rebate), whether the payment is
// partial, and days late after the due date (for the surcharge).
type PaymentDoc struct {
	PaidOnDay *int `json:"paid_on_day,omitempty"`
	Partial   bool `json:"partial,omitempty"`
	DaysLate  *int `json:"days_late,omitempty"`
}

// Quote is a rated usage with an optional payment scenario.
type Quote struct {
	Result  *Result
	Payment *PaymentOutcome
}

// PaymentOutcome is what the bill comes to under the payment scenario.
type PaymentOutcome struct {
	Bill           decimal.Decimal // the quoted total
	Rebate         decimal.Decimal
	LateSurcharge  decimal.Decimal
	Payable        decimal.Decimal // bill − rebate + surcharge
	RoundOff       decimal.Decimal // the tariff's round-off of Payable
	PayableRounded decimal.Decimal
}

// QuoteJSON rates a usage description against a tariff file (one document
// or an array of versions), both JSON, as `meterd billing quote` and the
// staff API do. Invalid documents fail with a *billing.ValidationError
// naming the document and field; rating failures wrap
// billing.ErrCalculation.
func QuoteJSON(tariffJSON, usageJSON []byte) (*Quote, error) {
	s, err := ParseSchedule(tariffJSON)
	if err != nil {
		return nil, fmt.Errorf("load tariff: %w", err)
	}
	doc, err := DecodeUsage(usageJSON)
	if err != nil {
		return nil, fmt.Errorf("load usage: %w", err)
	}
	return s.Quote(doc)
}

// DecodeUsage decodes a usage document, rejecting unknown fields.
func DecodeUsage(data []byte) (*UsageDoc, error) {
	var doc UsageDoc
	if err := decodeStrict(data, &doc); err != nil {
		var ve *billing.ValidationError
		if errors.As(err, &ve) {
			ve.Subject = "usage document"
		}
		return nil, err
	}
	return &doc, nil
}

// Quote rates a decoded usage document.
func (s *Schedule) Quote(doc *UsageDoc) (*Quote, error) {
	u, err := s.Usage(doc)
	if err != nil {
		return nil, err
	}
	res, err := s.Rate(u)
	if err != nil {
		return nil, err
	}
	q := &Quote{Result: res}
	if p := doc.Payment; p != nil {
		t, err := s.At(u.Period.To)
		if err != nil {
			return nil, err
		}
		out := &PaymentOutcome{Bill: res.Total, Rebate: decimal.Zero, LateSurcharge: decimal.Zero}
		if p.PaidOnDay != nil {
			out.Rebate = t.PromptPaymentRebate(res.Total.Sub(res.RoundOff), *p.PaidOnDay, p.Partial)
		}
		if p.DaysLate != nil {
			out.LateSurcharge = t.LatePaymentSurcharge(res.Total, *p.DaysLate)
		}
		out.Payable = out.Bill.Sub(out.Rebate).Add(out.LateSurcharge)
		out.RoundOff, out.PayableRounded = decimal.Zero, out.Payable
		if ro := t.RoundOff; ro != nil {
			out.RoundOff = billing.RoundOff(out.Payable, ro.Places, ro.Mode)
			out.PayableRounded = out.Payable.Add(out.RoundOff)
		}
		q.Payment = out
	}
	return q, nil
}

// Usage converts a usage document into Usage for this schedule, reporting
// every problem with its field path (a *billing.ValidationError).
func (s *Schedule) Usage(doc *UsageDoc) (Usage, error) {
	c := &checker{ve: billing.ValidationError{Subject: "usage document"}}
	u := Usage{
		CycleMonths:  doc.CycleMonths,
		SettleCredit: doc.SettleCredit,
		Estimated:    doc.Estimated,
	}
	if doc.Period != nil {
		u.Period = c.period("period", doc.Period)
	} else {
		start := s.Latest().EffectiveFrom
		if doc.AsOf != "" {
			if d, err := billing.ParseDate(doc.AsOf); err != nil {
				c.fail("as_of", "want a date YYYY-MM-DD, got %q", doc.AsOf)
			} else {
				start = d
			}
		}
		if start.Day() != 1 {
			start = start.AddDays(start.DaysInMonth() - start.Day() + 1)
		}
		u.Period = billing.Period{From: start, To: start.AddDays(start.DaysInMonth() - 1)}
	}
	if doc.Cycle != nil {
		u.Cycle = c.period("cycle", doc.Cycle)
	}
	u.SanctionedLoadKW = c.optAmount("sanctioned_load_kw", doc.SanctionedLoadKW)
	u.MaxDemandKVA = c.optAmount("max_demand_kva", doc.MaxDemandKVA)
	u.ExportWh = c.wh("export_kwh", doc.ExportKWh)
	u.CreditInWh = c.wh("credit_in_kwh", doc.CreditInKWh)
	if doc.TOUKWh != nil {
		u.WindowWh = make(map[string]int64, len(doc.TOUKWh))
		names := make([]string, 0, len(doc.TOUKWh))
		for name := range doc.TOUKWh {
			names = append(names, name)
		}
		sort.Strings(names)
		var sum int64
		for _, name := range names {
			wh := c.wh("tou_kwh."+name, doc.TOUKWh[name])
			u.WindowWh[name] = wh
			sum += wh
		}
		u.ImportWh = sum
		if doc.ImportKWh.IsSet() {
			if imp := c.wh("import_kwh", doc.ImportKWh); imp != sum {
				c.fail("import_kwh", "%s differs from the sum of tou_kwh %s", doc.ImportKWh, decimal.New(sum, -3))
			}
		}
	} else {
		u.ImportWh = c.wh("import_kwh", doc.ImportKWh)
	}
	if err := c.ve.Err(); err != nil {
		return Usage{}, err
	}
	if err := u.validate(); err != nil {
		return Usage{}, err
	}
	return u, nil
}

func (c *checker) period(path string, p *PeriodDoc) billing.Period {
	from, err1 := billing.ParseDate(p.From)
	if err1 != nil {
		c.fail(path+".from", "want a date YYYY-MM-DD, got %q", p.From)
	}
	to, err2 := billing.ParseDate(p.To)
	if err2 != nil {
		c.fail(path+".to", "want a date YYYY-MM-DD, got %q", p.To)
	}
	out := billing.Period{From: from, To: to}
	if err1 == nil && err2 == nil && !out.Valid() {
		c.fail(path+".to", "is before from")
	}
	if err1 == nil && err2 == nil && out.Days() > 400 {
		c.fail(path, "longer than 400 days")
	}
	return out
}

// wh converts an optional non-negative kWh number into whole Wh.
func (c *checker) wh(path string, n Number) int64 {
	kwh := c.optAmount(path, n)
	wh := kwh.Shift(3)
	if !wh.IsInteger() {
		c.fail(path, "%s kWh is finer than 1 Wh", n)
		return 0
	}
	return wh.IntPart()
}

// MarshalJSON renders the result and, when given, the payment outcome.
func (q *Quote) MarshalJSON() ([]byte, error) {
	type payment struct {
		Bill           string `json:"bill"`
		Rebate         string `json:"rebate"`
		LateSurcharge  string `json:"late_surcharge"`
		Payable        string `json:"payable"`
		RoundOff       string `json:"round_off"`
		PayableRounded string `json:"payable_rounded"`
	}
	out := struct {
		resultView
		Payment *payment `json:"payment,omitempty"`
	}{resultView: q.Result.view()}
	if p := q.Payment; p != nil {
		places := q.Result.places
		out.Payment = &payment{
			Bill: p.Bill.StringFixed(places), Rebate: p.Rebate.StringFixed(places),
			LateSurcharge: p.LateSurcharge.StringFixed(places), Payable: p.Payable.StringFixed(places),
			RoundOff: p.RoundOff.StringFixed(places), PayableRounded: p.PayableRounded.StringFixed(places),
		}
	}
	return json.Marshal(out)
}
