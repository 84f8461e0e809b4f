package municipal_test

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/municipal"
)

func TestPlansAt(t *testing.T) {
	plans := municipal.Plans{}
	// Added out of order: versions are kept in effective order.
	plans.Add(municipal.Version{Plan: "pb", Version: "v2", EffectiveFrom: billing.NewDate(2024, 5, 1)})
	plans.Add(municipal.Version{Plan: "pb", Version: "v1", EffectiveFrom: billing.NewDate(2024, 4, 1)})
	plans.Add(municipal.Version{Plan: "other", Version: "o1", EffectiveFrom: billing.NewDate(2020, 1, 1)})
	tests := []struct {
		plan    string
		day     billing.Date
		want    string
		wantOK  bool
		comment string
	}{
		{"pb", billing.NewDate(2024, 3, 31), "", false, "before the first version"},
		{"pb", billing.NewDate(2024, 4, 1), "v1", true, "first day of v1"},
		{"pb", billing.NewDate(2024, 4, 30), "v1", true, "last day of v1"},
		{"pb", billing.NewDate(2024, 5, 1), "v2", true, "first day of v2"},
		{"pb", billing.NewDate(2030, 1, 1), "v2", true, "v2 stays in force"},
		{"missing", billing.NewDate(2024, 5, 1), "", false, "unknown plan"},
		{"other", billing.NewDate(2024, 5, 1), "o1", true, "plans are separate"},
	}
	for _, tt := range tests {
		got, ok := plans.At(tt.plan, tt.day)
		if ok != tt.wantOK || got.Version != tt.want {
			t.Errorf("%s: At(%s, %s) = %q, %v; want %q, %v", tt.comment, tt.plan, tt.day, got.Version, ok, tt.want, tt.wantOK)
		}
	}
}

func TestWaterMeterVolume(t *testing.T) {
	for model, want := range map[string]bool{"water-litre": true, "WATER": true, "Water-DN15": true, "sdm120": false, "wat": false, "": false, "electricwater": false} {
		if got := municipal.IsWaterMeter(model); got != want {
			t.Errorf("IsWaterMeter(%q) = %v, want %v", model, got, want)
		}
	}
	if got := municipal.Kilolitres(35_250); !got.Equal(decimal.RequireFromString("35.25")) {
		t.Errorf("Kilolitres(35250) = %s", got)
	}
}

// Bill lines are one per head with the head's total (deltas summed), in
// order of first appearance, zero totals and the advance left out.
func TestServiceLines(t *testing.T) {
	sw := municipal.Sewerage()
	d := func(h billing.TaxHead, amount string) billing.DemandDetail {
		return billing.DemandDetail{Head: h, TaxAmount: decimal.RequireFromString(amount)}
	}
	lines := sw.Lines([]billing.DemandDetail{
		d(sw.Charge, "120"), d(sw.RoundOff, "-0.40"), d(sw.Penalty, "12.04"), d(sw.Charge, "30.30"), d(sw.RoundOff, "0.70"),
		d(sw.AdhocRebate, "-5"), d(sw.AdhocRebate, "5"), d(sw.Advance, "-50"),
	}, sw.Advance)
	want := []struct{ code, desc, amount string }{
		{"SW_CHARGE", "Sewerage charge", "150.30"}, {"SW_Round_Off", "Round-off", "0.30"}, {"SW_TIME_PENALTY", "Late payment penalty", "12.04"},
	}
	if len(lines) != len(want) {
		t.Fatalf("lines %+v", lines)
	}
	for i, w := range want {
		l := lines[i]
		if l.Code != w.code || l.Description != w.desc || !l.Amount.Equal(decimal.RequireFromString(w.amount)) || l.Section != billing.SectionCurrent {
			t.Errorf("line %d = %+v, want %v", i, l, w)
		}
	}
	if got := municipal.Water().Describe("WS_WATER_CESS"); got != "Water cess" {
		t.Errorf("water cess described as %q", got)
	}
	if _, ok := municipal.ForService("electricity"); ok {
		t.Error("electricity has a municipal service")
	}
}
