package municipal

import (
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// Service names the tax heads of one municipal service: the periodic
// demand (consumer code = connection number) and the one-time fee demand
// (consumer code = application number).
type Service struct {
	BusinessService    string // "SW", "WS"
	FeeBusinessService string // "SW.ONE_TIME_FEE", "WS.ONE_TIME_FEE"

	Charge       billing.TaxHead
	Cess         billing.TaxHead
	Rebate       billing.TaxHead
	Interest     billing.TaxHead
	Penalty      billing.TaxHead
	RoundOff     billing.TaxHead
	AdhocRebate  billing.TaxHead
	AdhocPenalty billing.TaxHead
	Advance      billing.TaxHead

	FormFee         billing.TaxHead
	ScrutinyFee     billing.TaxHead
	MeterCharge     billing.TaxHead
	OtherCharge     billing.TaxHead
	RoadCutting     billing.TaxHead
	OneTimeFee      billing.TaxHead
	SecurityCharge  billing.TaxHead
	TaxAndCess      billing.TaxHead
	FeeAdhocPenalty billing.TaxHead
	FeeAdhocRebate  billing.TaxHead
	FeeRoundOff     billing.TaxHead
}

// Sewerage returns the sewerage service's tax heads (DIGIT "SW").
func Sewerage() Service { return service("SW", "SW_SEWERAGE_CESS") }

// Water returns the water service's tax heads (DIGIT "WS").
func Water() Service { return service("WS", "WS_WATER_CESS") }

func service(p string, cess billing.TaxHead) Service {
	h := func(s string) billing.TaxHead { return billing.TaxHead(p + "_" + s) }
	return Service{
		BusinessService:    p,
		FeeBusinessService: p + ".ONE_TIME_FEE",
		Charge:             h("CHARGE"),
		Cess:               cess,
		Rebate:             h("TIME_REBATE"),
		Interest:           h("TIME_INTEREST"),
		Penalty:            h("TIME_PENALTY"),
		RoundOff:           h("Round_Off"),
		AdhocRebate:        h("TIME_ADHOC_REBATE"),
		AdhocPenalty:       h("TIME_ADHOC_PENALTY"),
		Advance:            h("ADVANCE_CARRYFORWARD"),
		FormFee:            h("FORM_FEE"),
		ScrutinyFee:        h("SCRUTINY_FEE"),
		MeterCharge:        h("METER_CHARGE"),
		OtherCharge:        h("OTHER_CHARGE"),
		RoadCutting:        h("ROAD_CUTTING_CHARGE"),
		OneTimeFee:         h("ONE_TIME_FEE"),
		SecurityCharge:     h("SECURITY_CHARGE"),
		TaxAndCess:         h("TAX_AND_CESS"),
		FeeAdhocPenalty:    h("ADHOC_PENALTY"),
		FeeAdhocRebate:     h("ADHOC_REBATE"),
		FeeRoundOff:        h("FEE_ROUND_OFF"),
	}
}

// Category returns the tax-head master category of h (zero for a head
// that is not this service's).
func (s Service) Category(h billing.TaxHead) billing.Category {
	switch h {
	case s.Charge, s.RoadCutting, s.MeterCharge, s.SecurityCharge, s.OtherCharge:
		return billing.CategoryCharges
	case s.Penalty:
		return billing.CategoryPenalty
	case s.Advance:
		return billing.CategoryAdvanceCollection
	case s.FormFee, s.ScrutinyFee, s.OneTimeFee:
		return billing.CategoryFee
	case s.Cess, s.Rebate, s.Interest, s.RoundOff, s.AdhocRebate, s.AdhocPenalty,
		s.TaxAndCess, s.FeeRoundOff, s.FeeAdhocPenalty, s.FeeAdhocRebate:
		return billing.CategoryTax
	}
	return 0
}

// PeriodicHeads are the heads the periodic calculator produces; a
// recalculation resets any of them its new estimates leave out to zero.
func (s Service) PeriodicHeads() []billing.TaxHead {
	return []billing.TaxHead{s.Charge, s.Cess, s.RoundOff}
}

// FeeHeads are the heads the one-time fee estimator produces, in the
// order it emits them.
func (s Service) FeeHeads() []billing.TaxHead {
	return []billing.TaxHead{
		s.FormFee, s.ScrutinyFee, s.MeterCharge, s.OtherCharge, s.RoadCutting, s.OneTimeFee,
		s.SecurityCharge, s.TaxAndCess, s.FeeAdhocPenalty, s.FeeAdhocRebate, s.FeeRoundOff,
	}
}

// Name is the service's name on bills: "Sewerage" or "Water".
func (s Service) Name() string {
	if s.BusinessService == "WS" {
		return "Water"
	}
	return "Sewerage"
}

// Describe returns the printed description of one of the service's heads
// (the head's code for any other).
func (s Service) Describe(h billing.TaxHead) string {
	switch h {
	case s.Charge:
		return s.Name() + " charge"
	case s.Cess:
		return s.Name() + " cess"
	case s.Rebate:
		return "Early payment rebate"
	case s.Interest:
		return "Interest on overdue charges"
	case s.Penalty:
		return "Late payment penalty"
	case s.RoundOff, s.FeeRoundOff:
		return "Round-off"
	case s.AdhocRebate, s.FeeAdhocRebate:
		return "Rebate (adhoc)"
	case s.AdhocPenalty, s.FeeAdhocPenalty:
		return "Penalty (adhoc)"
	case s.Advance:
		return "Advance carried forward"
	case s.FormFee:
		return "Form fee"
	case s.ScrutinyFee:
		return "Scrutiny fee"
	case s.MeterCharge:
		return "Meter charge"
	case s.OtherCharge:
		return "Other charges"
	case s.RoadCutting:
		return "Road cutting charge"
	case s.OneTimeFee:
		return "One-time fee"
	case s.SecurityCharge:
		return "Security charge"
	case s.TaxAndCess:
		return "Tax and cess"
	}
	return string(h)
}

// ForService returns the municipal service of a connection service name
// ("sewerage", "water"); false for any other (electricity).
func ForService(service string) (Service, bool) {
	switch service {
	case "sewerage":
		return Sewerage(), true
	case "water":
		return Water(), true
	}
	return Service{}, false
}

// Lines returns a demand's bill lines: one per head in order of first
// appearance, its description and the head's total (the sum of its
// details, deltas included), heads that total zero left out, details of
// head without (the advance) ignored. They add up to the demand's total
// less without's.
func (s Service) Lines(details []billing.DemandDetail, without billing.TaxHead) []billing.BillLine {
	var order []billing.TaxHead
	totals := map[billing.TaxHead]decimal.Decimal{}
	for _, d := range details {
		if d.Head == without {
			continue
		}
		t, ok := totals[d.Head]
		if !ok {
			order = append(order, d.Head)
			t = decimal.Zero
		}
		totals[d.Head] = t.Add(d.TaxAmount)
	}
	out := make([]billing.BillLine, 0, len(order))
	for _, h := range order {
		if totals[h].IsZero() {
			continue
		}
		out = append(out, billing.BillLine{Section: billing.SectionCurrent, Code: string(h), Description: s.Describe(h), Amount: totals[h]})
	}
	return out
}
