package consumption_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/consumption"
	"github.com/meterd/meterd/billing/tariff"
	"github.com/meterd/meterd/meter"
)

// E11 and E12 of billing/testdata/vectors/electricity.json; the other
// electricity vectors are golden tests in billing/tariff.

type vector struct {
	ID     string `json:"id"`
	Tariff struct {
		Energy json.RawMessage `json:"energy"`
		Fixed  struct {
			Kind  string           `json:"kind"`
			Bands []tariff.BandDoc `json:"bands"`
		} `json:"fixed"`
	} `json:"tariff"`
	Input    json.RawMessage `json:"input"`
	Expected json.RawMessage `json:"expected"`
	Rollover json.RawMessage `json:"rollover"`
}

func loadVector(t *testing.T, id string) vector {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "vectors", "electricity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []vector }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Vectors {
		if v.ID == id {
			return v
		}
	}
	t.Fatalf("vector %s not found", id)
	return vector{}
}

func schedule(t *testing.T, v vector) *tariff.Schedule {
	t.Helper()
	two := 2
	doc := &tariff.Document{
		Tenant: "vectors", Plan: v.ID, Version: "1", EffectiveFrom: "2019-04-01", Currency: "INR",
		Rounding: &tariff.RoundingDoc{Mode: "half_up", Places: &two},
		Energy:   &tariff.EnergyDoc{},
		Fixed:    &tariff.FixedDoc{Kind: v.Tariff.Fixed.Kind, Bands: v.Tariff.Fixed.Bands},
	}
	if err := json.Unmarshal(v.Tariff.Energy, doc.Energy); err != nil {
		t.Fatal(err)
	}
	tf, err := tariff.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tariff.NewSchedule(tf)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dec(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func wantAmount(t *testing.T, what string, got decimal.Decimal, want string) {
	t.Helper()
	if !got.Equal(dec(t, want)) {
		t.Errorf("%s = %s, want %s", what, got.StringFixed(2), want)
	}
}

func mustUnmarshal(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

const kWh = 1000

var (
	may  = billing.Period{From: billing.NewDate(2019, 5, 1), To: billing.NewDate(2019, 5, 30)}
	june = billing.Period{From: billing.NewDate(2019, 5, 31), To: billing.NewDate(2019, 6, 29)}
)

func TestElectricityVectorsConsumption(t *testing.T) {
	t.Run("E11", testE11)
	t.Run("E12", testE12)
}

func testE11(t *testing.T) {
	v := loadVector(t, "E11")
	var in struct {
		SanctionedLoadKW string                           `json:"sanctioned_load_kw"`
		OldMeter         struct{ Previous, Final int64 }  `json:"old_meter"`
		NewMeter         struct{ Initial, Current int64 } `json:"new_meter"`
	}
	var want struct {
		KWh                decimal.Decimal `json:"kwh"`
		Energy             string          `json:"energy"`
		Fixed              string          `json:"fixed"`
		Total              string          `json:"total"`
		WrongIfSlabsPerMtr string          `json:"wrong_if_slabs_per_meter"`
	}
	var roll struct {
		RegisterDigits int   `json:"register_digits"`
		Previous       int64 `json:"previous"`
		Current        int64 `json:"current"`
		KWh            int64 `json:"kwh"`
	}
	mustUnmarshal(t, v.Input, &in)
	mustUnmarshal(t, v.Expected, &want)
	mustUnmarshal(t, v.Rollover, &roll)

	// Old meter until the replacement on 15 May, new meter after it.
	replaced := time.Date(2019, 5, 15, 12, 0, 0, 0, time.UTC)
	sample := func(at time.Time, kwh int64) meter.CounterSample {
		return meter.CounterSample{Time: at, ValueWh: kwh * kWh}
	}
	start, end := may.From.Start(time.UTC), may.To.Start(time.UTC).Add(24*time.Hour)
	spans := []consumption.Span{
		{Start: sample(start, in.OldMeter.Previous), End: sample(replaced, in.OldMeter.Final), MaxPowerW: 10_000},
		{Start: sample(replaced, in.NewMeter.Initial), End: sample(end, in.NewMeter.Current), MaxPowerW: 10_000},
	}
	total, err := consumption.SpansEnergyWh(spans)
	if err != nil {
		t.Fatal(err)
	}
	if !decimal.New(total, -3).Equal(want.KWh) {
		t.Errorf("energy %d Wh, want %s kWh", total, want.KWh)
	}
	s := schedule(t, v)
	u := tariff.Usage{Period: may, SanctionedLoadKW: dec(t, in.SanctionedLoadKW), ImportWh: total}
	r, err := s.Rate(u)
	if err != nil {
		t.Fatal(err)
	}
	wantAmount(t, "energy", r.Subtotal(tariff.CategoryEnergy), want.Energy)
	wantAmount(t, "fixed", r.Subtotal(tariff.CategoryFixed), want.Fixed)
	wantAmount(t, "total", r.Total, want.Total)

	// Slabs per meter would be wrong: each span rated alone.
	perMeter := decimal.Zero
	for _, sp := range spans {
		wh, err := sp.EnergyWh()
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Rate(tariff.Usage{Period: may, ImportWh: wh})
		if err != nil {
			t.Fatal(err)
		}
		perMeter = perMeter.Add(r.Subtotal(tariff.CategoryEnergy))
	}
	wantAmount(t, "energy rated per meter", perMeter, want.WrongIfSlabsPerMtr)

	// Rollover of a register counting whole kWh on register_digits digits.
	modulus := int64(1)
	for range roll.RegisterDigits {
		modulus *= 10
	}
	rolled := consumption.Span{
		Start: sample(start, roll.Previous), End: sample(end, roll.Current),
		Spec: meter.CounterSpec{ModulusWh: modulus * kWh, StepWh: kWh}, MaxPowerW: 10_000,
	}
	wh, err := rolled.EnergyWh()
	if err != nil {
		t.Fatal(err)
	}
	if wh != roll.KWh*kWh {
		t.Errorf("rollover %d → %d: %d Wh, want %d kWh", roll.Previous, roll.Current, wh, roll.KWh)
	}
}

func testE12(t *testing.T) {
	v := loadVector(t, "E12")
	var in struct {
		Month1 struct {
			EstimatedKWh int64 `json:"estimated_kwh"`
		} `json:"month1"`
		Month2 struct {
			ActualKWh int64 `json:"actual_cumulative_kwh_over_both_months"`
		} `json:"month2"`
	}
	var want struct {
		CarryForward struct{ M1, M2, Total string } `json:"carry_forward_only"`
		Reaverage    struct{ M1, M2, Total string } `json:"reaverage_and_rebill"`
	}
	mustUnmarshal(t, v.Input, &in)
	mustUnmarshal(t, v.Expected, &want)
	s := schedule(t, v)
	// "Energy lines use energy charges only unless stated."
	energy := func(p billing.Period, wh int64) decimal.Decimal {
		t.Helper()
		r, err := s.Rate(tariff.Usage{Period: p, ImportWh: wh})
		if err != nil {
			t.Fatal(err)
		}
		return r.Subtotal(tariff.CategoryEnergy)
	}
	estimated := in.Month1.EstimatedKWh * kWh
	actual := in.Month2.ActualKWh * kWh

	// The estimated bill for month 1, then the carry-forward alternative.
	m1 := energy(may, estimated)
	wantAmount(t, "carry-forward m1", m1, want.CarryForward.M1)
	m2 := energy(june, actual-estimated)
	wantAmount(t, "carry-forward m2", m2, want.CarryForward.M2)
	wantAmount(t, "carry-forward total", m1.Add(m2), want.CarryForward.Total)

	// Re-average and rebill.
	plan, err := consumption.PlanRebill([]consumption.BilledPeriod{
		{Period: may, EnergyWh: estimated, Estimated: true, BillRef: "B-1"},
	}, june, actual)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Cancel) != 1 || plan.Cancel[0].BillRef != "B-1" || len(plan.Periods) != 2 {
		t.Fatalf("plan %+v, want to cancel B-1 and bill two periods", plan)
	}
	results, err := consumption.RateRebill(s, plan, tariff.Usage{})
	if err != nil {
		t.Fatal(err)
	}
	wantAmount(t, "rebill m1", results[0].Subtotal(tariff.CategoryEnergy), want.Reaverage.M1)
	wantAmount(t, "rebill m2", results[1].Subtotal(tariff.CategoryEnergy), want.Reaverage.M2)
	wantAmount(t, "rebill total", results[0].Subtotal(tariff.CategoryEnergy).Add(results[1].Subtotal(tariff.CategoryEnergy)), want.Reaverage.Total)

	// "if the actual is below the estimate, reverse rather than bill a
	// negative quantity": the estimated bill is cancelled and nothing is
	// billed below zero.
	low, err := consumption.PlanRebill([]consumption.BilledPeriod{{Period: may, EnergyWh: estimated, Estimated: true}}, june, estimated/2)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, p := range low.Periods {
		if p.ImportWh < 0 {
			t.Errorf("period %s billed %d Wh", p.Period, p.ImportWh)
		}
		sum += p.ImportWh
	}
	if len(low.Cancel) != 1 || sum != estimated/2 {
		t.Errorf("low actual: cancel %d bills, rebill %d Wh; want 1 and %d", len(low.Cancel), sum, estimated/2)
	}
}
