package tariff_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/tariff"
)

// The electricity vectors (billing/testdata/vectors/electricity.json, a
// byte-identical copy of the shared file) are golden tests: each vector's
// tariff fragment is turned into a tariff document, rated, and every
// amount the vector states is compared.

type vectorFile struct {
	Vectors []json.RawMessage `json:"vectors"`
}

type vector struct {
	ID             string            `json:"id"`
	Tariff         vectorTariff      `json:"tariff"`
	TariffVersions []json.RawMessage `json:"tariff_versions"`
	Input          json.RawMessage   `json:"input"`
	Expected       json.RawMessage   `json:"expected"`
	Cases          []json.RawMessage `json:"cases"`
	Rules          json.RawMessage   `json:"rules"`
	Also           string            `json:"also"`
	Never          string            `json:"never"`
}

type vectorTariff struct {
	Energy              json.RawMessage     `json:"energy"`
	Fixed               *vectorFixed        `json:"fixed"`
	Demand              *tariff.DemandDoc   `json:"demand"`
	PerUnitCharges      []tariff.PerUnitDoc `json:"per_unit_charges"`
	MinimumEnergyCharge tariff.Number       `json:"minimum_energy_charge"`
}

type vectorFixed struct {
	Kind  string           `json:"kind"`
	Per   string           `json:"per"`
	Bands []tariff.BandDoc `json:"bands"`
}

func loadVectors(t *testing.T) map[string]vector {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "vectors", "electricity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]vector{}
	for _, raw := range f.Vectors {
		var v vector
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		out[v.ID] = v
	}
	return out
}

func dec(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(s)
	if err != nil {
		t.Fatalf("bad decimal %q in vector: %v", s, err)
	}
	return d
}

func intp(v int) *int { return &v }

// document builds a tariff document from a vector's tariff fragment. The
// energy fragment is decoded as-is into the document's energy charge: the
// document format uses the vectors' vocabulary. Lines round half-up to
// 0.01, as the vector file says.
func document(t *testing.T, id string, vt vectorTariff) *tariff.Document {
	t.Helper()
	doc := &tariff.Document{
		Tenant: "vectors", Plan: id, Version: id, EffectiveFrom: "2019-04-01", Currency: "INR",
		Rounding:            &tariff.RoundingDoc{Mode: "half_up", Places: intp(2)},
		PerUnitCharges:      vt.PerUnitCharges,
		MinimumEnergyCharge: vt.MinimumEnergyCharge,
		Demand:              vt.Demand,
	}
	if len(vt.Energy) > 0 {
		doc.Energy = &tariff.EnergyDoc{}
		if err := json.Unmarshal(vt.Energy, doc.Energy); err != nil {
			t.Fatalf("%s: energy fragment: %v", id, err)
		}
	}
	if f := vt.Fixed; f != nil {
		if f.Per != "kW per month" {
			t.Fatalf("%s: fixed per %q; only per kW per month is modelled", id, f.Per)
		}
		doc.Fixed = &tariff.FixedDoc{Kind: f.Kind, Bands: f.Bands}
	}
	return doc
}

func compile(t *testing.T, doc *tariff.Document) *tariff.Tariff {
	t.Helper()
	tf, err := tariff.Compile(doc)
	if err != nil {
		t.Fatalf("compile %s: %v", doc.Plan, err)
	}
	return tf
}

// month is a whole calendar month, the vectors' "one full month".
var month = billing.Period{From: billing.NewDate(2019, 5, 1), To: billing.NewDate(2019, 5, 31)}

func rate(t *testing.T, tf *tariff.Tariff, u tariff.Usage) *tariff.Result {
	t.Helper()
	if u.Period == (billing.Period{}) {
		u.Period = month
	}
	r, err := tariff.Rate(tf, u)
	if err != nil {
		t.Fatalf("rate %s: %v", tf.Plan, err)
	}
	return r
}

func kwhToWh(t *testing.T, kwh decimal.Decimal) int64 {
	t.Helper()
	wh := kwh.Shift(3)
	if !wh.IsInteger() {
		t.Fatalf("%s kWh is not whole Wh", kwh)
	}
	return wh.IntPart()
}

func wantAmount(t *testing.T, what string, got decimal.Decimal, want string) {
	t.Helper()
	if !got.Equal(dec(t, want)) {
		t.Errorf("%s = %s, want %s", what, got.StringFixed(2), want)
	}
}

// checkLines compares a vector's [description, "qty x rate", amount] lines
// with the result's lines, in any order, and that nothing else was billed.
func checkLines(t *testing.T, r *tariff.Result, want [][3]string) {
	t.Helper()
	qtyRate := regexp.MustCompile(`^([\d.]+)(?: (kW|kVA))? x ([\d.]+)$`)
	if len(r.Lines) != len(want) {
		t.Errorf("got %d lines %v, want %d", len(r.Lines), describe(r), len(want))
	}
	for _, w := range want {
		var got *tariff.Line
		for i := range r.Lines {
			if r.Lines[i].Description == w[0] {
				got = &r.Lines[i]
			}
		}
		if got == nil {
			t.Errorf("no line %q in %v", w[0], describe(r))
			continue
		}
		m := qtyRate.FindStringSubmatch(w[1])
		if m == nil {
			t.Fatalf("cannot read %q", w[1])
		}
		if !got.Quantity.Equal(dec(t, m[1])) || !got.Rate.Equal(dec(t, m[3])) {
			t.Errorf("line %q: %s x %s, want %s", w[0], got.Quantity, got.Rate, w[1])
		}
		if m[2] != "" && got.Unit != m[2] {
			t.Errorf("line %q: unit %q, want %q", w[0], got.Unit, m[2])
		}
		wantAmount(t, "line "+w[0], got.Amount, w[2])
	}
}

func describe(r *tariff.Result) []string {
	var out []string
	for _, l := range r.Lines {
		out = append(out, l.Description+"="+l.Amount.StringFixed(2))
	}
	return out
}

func TestElectricityVectors(t *testing.T) {
	vectors := loadVectors(t)
	tests := map[string]func(*testing.T, vector){
		"E01": testLinesVector, "E02": testLinesVector, "E03": testLinesVector,
		"E03b": testEnergyCases, "E04": testEnergyCases, "E09": testEnergyCases,
		"E05": testE05, "E06": testE06, "E07": testE07, "E08": testE08, "E10": testE10,
		// E11 (meter replacement, rollover) and E12 (estimate and rebill)
		// need the consumption layer: billing/consumption's
		// TestElectricityVectorsConsumption runs them.
		"E11": nil, "E12": nil,
	}
	for id, v := range vectors {
		test, known := tests[id]
		if !known {
			t.Errorf("vector %s has no golden test", id)
			continue
		}
		if test != nil {
			t.Run(id, func(t *testing.T) { test(t, v) })
		}
	}
	for id := range tests {
		if _, ok := vectors[id]; !ok {
			t.Errorf("vector %s is gone from the file", id)
		}
	}
}

// testLinesVector rates {sanctioned_load_kw, kwh} and compares lines and total.
func testLinesVector(t *testing.T, v vector) {
	var in struct {
		SanctionedLoadKW string          `json:"sanctioned_load_kw"`
		KWh              decimal.Decimal `json:"kwh"`
	}
	var want struct {
		Lines [][3]string `json:"lines"`
		Total string      `json:"total"`
	}
	mustUnmarshal(t, v.Input, &in)
	mustUnmarshal(t, v.Expected, &want)
	u := tariff.Usage{ImportWh: kwhToWh(t, in.KWh)}
	if in.SanctionedLoadKW != "" {
		u.SanctionedLoadKW = dec(t, in.SanctionedLoadKW)
	}
	r := rate(t, compile(t, document(t, v.ID, v.Tariff)), u)
	checkLines(t, r, want.Lines)
	wantAmount(t, "total", r.Total, want.Total)
}

// testEnergyCases rates each case's kwh (or units) and compares the
// energy subtotal, plus the slab quantities where a case spells them out.
func testEnergyCases(t *testing.T, v vector) {
	tf := compile(t, document(t, v.ID, v.Tariff))
	for _, raw := range v.Cases {
		var c struct {
			KWh    *decimal.Decimal `json:"kwh"`
			Units  *decimal.Decimal `json:"units"`
			Energy string           `json:"energy"`
			Charge string           `json:"charge"`
			Lines  string           `json:"lines"`
		}
		mustUnmarshal(t, raw, &c)
		qty, want := c.KWh, c.Energy
		if qty == nil {
			qty, want = c.Units, c.Charge
		}
		r := rate(t, tf, tariff.Usage{ImportWh: kwhToWh(t, *qty)})
		wantAmount(t, "energy for "+qty.String(), r.Subtotal(tariff.CategoryEnergy), want)
		if c.Lines != "" {
			parts := strings.Split(c.Lines, " + ")
			if len(parts) != len(r.Lines) {
				t.Errorf("%s kWh: lines %v, want %s", qty, describe(r), c.Lines)
				continue
			}
			for i, p := range parts {
				q, rt, _ := strings.Cut(p, " x ")
				if !r.Lines[i].Quantity.Equal(dec(t, q)) || !r.Lines[i].Rate.Equal(dec(t, rt)) {
					t.Errorf("%s kWh line %d: %s x %s, want %s", qty, i, r.Lines[i].Quantity, r.Lines[i].Rate, p)
				}
			}
		}
	}
}

func testE05(t *testing.T, v vector) {
	var in struct {
		SanctionedLoadKW string `json:"sanctioned_load_kw"`
		Cycle            struct {
			From, To  string
			Inclusive bool
			Days      int
		} `json:"cycle"`
		KWh decimal.Decimal `json:"kwh"`
	}
	var want struct {
		FixedCycle    string `json:"fixed_cycle_day_basis"`
		FixedCalendar string `json:"fixed_calendar_month_basis"`
		Energy        string `json:"energy"`
		TotalCycle    string `json:"total_cycle_day_basis"`
	}
	mustUnmarshal(t, v.Input, &in)
	mustUnmarshal(t, v.Expected, &want)
	from, err1 := billing.ParseDate(in.Cycle.From)
	to, err2 := billing.ParseDate(in.Cycle.To)
	if err1 != nil || err2 != nil || !in.Cycle.Inclusive {
		t.Fatalf("cycle %+v", in.Cycle)
	}
	period := billing.Period{From: from, To: to}
	if period.Days() != in.Cycle.Days {
		t.Fatalf("period %s has %d days, vector says %d", period, period.Days(), in.Cycle.Days)
	}
	schedule := func(fixedBasis string) *tariff.Schedule {
		var versions []*tariff.Tariff
		for i, raw := range v.TariffVersions {
			var tv struct {
				EffectiveFrom  string          `json:"effective_from"`
				FixedRatePerKW tariff.Number   `json:"fixed_rate_per_kw"`
				Energy         json.RawMessage `json:"energy"`
			}
			mustUnmarshal(t, raw, &tv)
			doc := document(t, v.ID, vectorTariff{Energy: tv.Energy})
			doc.Version = "v" + string(rune('1'+i))
			doc.EffectiveFrom = tv.EffectiveFrom
			doc.Fixed = &tariff.FixedDoc{Kind: "per_kw", Rate: tv.FixedRatePerKW}
			// Slab bounds are prorated by cycle days in both cases ("slab
			// bounds × 15/30"); only the fixed-charge basis varies.
			doc.Proration = &tariff.ProrationDoc{FixedCharges: fixedBasis, SlabBounds: "cycle_days"}
			versions = append(versions, compile(t, doc))
		}
		s, err := tariff.NewSchedule(versions...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	u := tariff.Usage{Period: period, SanctionedLoadKW: dec(t, in.SanctionedLoadKW), ImportWh: kwhToWh(t, in.KWh)}
	for _, c := range []struct {
		basis, fixed, total string
	}{
		{basis: "cycle_days", fixed: want.FixedCycle, total: want.TotalCycle},
		{basis: "calendar_month", fixed: want.FixedCalendar},
	} {
		r, err := schedule(c.basis).Rate(u)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Versions) != 2 || r.Versions[0].Period.Days() != 15 || r.Versions[1].Period.Days() != 15 {
			t.Errorf("%s: versions %+v, want two parts of 15 days", c.basis, r.Versions)
		}
		wantAmount(t, c.basis+" fixed", r.Subtotal(tariff.CategoryFixed), c.fixed)
		wantAmount(t, c.basis+" energy", r.Subtotal(tariff.CategoryEnergy), want.Energy)
		if c.total != "" {
			wantAmount(t, c.basis+" total", r.Total, c.total)
		}
	}
	// "with equal rates split == unsplit": the same usage under the first
	// version alone bills the same energy.
	unsplit := rate(t, schedule("cycle_days").Versions()[0], u)
	if !unsplit.Subtotal(tariff.CategoryEnergy).Equal(dec(t, want.Energy)) {
		t.Errorf("unsplit energy %s, want %s", unsplit.Subtotal(tariff.CategoryEnergy), want.Energy)
	}
}

func testE06(t *testing.T, v vector) {
	var in struct {
		SanctionedLoadKW string `json:"sanctioned_load_kw"`
		Months           []struct {
			ImportKWh decimal.Decimal `json:"import_kwh"`
			ExportKWh decimal.Decimal `json:"export_kwh"`
		} `json:"months"`
	}
	var want struct {
		Months []struct {
			CreditUsedKWh    *int64 `json:"credit_used_kwh"`
			NetBilledKWh     int64  `json:"net_billed_kwh"`
			Energy           string `json:"energy"`
			Fixed            string `json:"fixed"`
			Total            string `json:"total"`
			CreditCarriedKWh int64  `json:"credit_carried_kwh"`
		} `json:"months"`
	}
	mustUnmarshal(t, v.Input, &in)
	mustUnmarshal(t, v.Expected, &want)
	doc := document(t, v.ID, v.Tariff)
	doc.NetMetering = &tariff.NetMeteringDoc{}
	tf := compile(t, doc)
	var credit int64
	for i, m := range in.Months {
		w := want.Months[i]
		r := rate(t, tf, tariff.Usage{
			SanctionedLoadKW: dec(t, in.SanctionedLoadKW),
			ImportWh:         kwhToWh(t, m.ImportKWh), ExportWh: kwhToWh(t, m.ExportKWh), CreditInWh: credit,
		})
		if r.Energy.BilledWh != w.NetBilledKWh*1000 || r.Energy.CreditCarriedWh != w.CreditCarriedKWh*1000 {
			t.Errorf("month %d: billed %d Wh, carried %d Wh; want %d kWh, %d kWh", i+1, r.Energy.BilledWh, r.Energy.CreditCarriedWh, w.NetBilledKWh, w.CreditCarriedKWh)
		}
		if w.CreditUsedKWh != nil && r.Energy.CreditUsedWh != *w.CreditUsedKWh*1000 {
			t.Errorf("month %d: used %d Wh credit, want %d kWh", i+1, r.Energy.CreditUsedWh, *w.CreditUsedKWh)
		}
		wantAmount(t, "energy", r.Subtotal(tariff.CategoryEnergy), w.Energy)
		wantAmount(t, "fixed", r.Subtotal(tariff.CategoryFixed), w.Fixed)
		wantAmount(t, "total", r.Total, w.Total)
		credit = r.Energy.CreditCarriedWh
	}
}

func testE07(t *testing.T, v vector) {
	tf := compile(t, document(t, v.ID, v.Tariff))
	for _, raw := range v.Cases {
		var c struct {
			KWh          decimal.Decimal `json:"kwh"`
			Energy       string          `json:"energy"`
			MinimumTopUp string          `json:"minimum_top_up"`
			EnergyBilled string          `json:"energy_billed"`
		}
		mustUnmarshal(t, raw, &c)
		r := rate(t, tf, tariff.Usage{ImportWh: kwhToWh(t, c.KWh)})
		wantAmount(t, "energy", r.Subtotal(tariff.CategoryEnergy), c.Energy)
		wantAmount(t, "minimum top-up", r.Subtotal(tariff.CategoryMinimum), c.MinimumTopUp)
		wantAmount(t, "energy billed", r.Subtotal(tariff.CategoryEnergy).Add(r.Subtotal(tariff.CategoryMinimum)), c.EnergyBilled)
	}
	// "authorised load derived from use, ceil(kWh/75) x 0.5 kW: 60->0.5, …"
	rule := regexp.MustCompile(`ceil\(kWh/([\d.]+)\) x ([\d.]+) kW`).FindStringSubmatch(v.Also)
	pairs := regexp.MustCompile(`(\d+)->([\d.]+)`).FindAllStringSubmatch(v.Also, -1)
	if rule == nil || len(pairs) == 0 {
		t.Fatalf("cannot read %q", v.Also)
	}
	for _, p := range pairs {
		got := tariff.AuthorisedLoadKW(dec(t, p[1]), dec(t, rule[1]), dec(t, rule[2]))
		if !got.Equal(dec(t, p[2])) {
			t.Errorf("authorised load for %s kWh = %s kW, want %s", p[1], got, p[2])
		}
	}
	// The same rule as a document: a per-kW fixed charge on the derived load.
	doc := document(t, v.ID, v.Tariff)
	doc.Fixed = &tariff.FixedDoc{Kind: "per_kw", Rate: tariff.Num("10"),
		Load: &tariff.LoadDoc{Basis: "derived_from_energy", KWhPerStep: tariff.Num(rule[1]), KWPerStep: tariff.Num(rule[2])}}
	r := rate(t, compile(t, doc), tariff.Usage{ImportWh: kwhToWh(t, dec(t, pairs[len(pairs)-1][1]))})
	wantAmount(t, "fixed on derived load", r.Subtotal(tariff.CategoryFixed), dec(t, pairs[len(pairs)-1][2]).Mul(decimal.NewFromInt(10)).StringFixed(2))
}

func testE08(t *testing.T, v vector) {
	var rules struct {
		Rebate []struct {
			PaidWithinDays int           `json:"paid_within_days"`
			RatePct        tariff.Number `json:"rate_pct"`
			Cap            tariff.Number `json:"cap"`
		} `json:"rebate"`
		LateSurcharge string `json:"late_surcharge"`
	}
	mustUnmarshal(t, v.Rules, &rules)
	base := func() *tariff.Document {
		doc := document(t, v.ID, vectorTariff{Energy: json.RawMessage(`{"kind":"flat","rate":"1"}`)})
		doc.PromptPaymentRebate = &tariff.RebateDoc{}
		for _, r := range rules.Rebate {
			doc.PromptPaymentRebate.Tiers = append(doc.PromptPaymentRebate.Tiers,
				tariff.RebateTierDoc{WithinDays: r.PaidWithinDays, RatePct: r.RatePct, Cap: r.Cap})
		}
		if rules.LateSurcharge != "18% per annum, by days late" {
			t.Fatalf("late surcharge rule %q", rules.LateSurcharge)
		}
		doc.LatePaymentSurcharge = &tariff.LateDoc{RatePct: tariff.Num("18"), Per: "annum_by_days"}
		doc.RoundOff = &tariff.RoundOffDoc{Places: 0, Mode: "half_up"}
		return doc
	}
	tf := compile(t, base())
	for i, raw := range v.Cases {
		var c struct {
			Bill         string `json:"bill"`
			PaidOnDay    *int   `json:"paid_on_day"`
			Partial      bool   `json:"partial_payment"`
			Rebate       string `json:"rebate"`
			Payable      string `json:"payable"`
			RatePct      string `json:"rate_pct"`
			HalfUp       string `json:"half_up"`
			HalfEven     string `json:"half_even"`
			DaysLate     int    `json:"days_late"`
			Late18       string `json:"late_surcharge_18pct_pa"`
			Late12       string `json:"late_surcharge_12pct_pa"`
			LateMonthly  string `json:"late_surcharge_1_5pct_per_month_or_part"`
			Total        string `json:"total"`
			RoundOffLine string `json:"whole_currency_round_off_line"`
			Rounded      string `json:"rounded"`
		}
		mustUnmarshal(t, raw, &c)
		switch {
		case c.Rebate != "":
			day := 1
			if c.PaidOnDay != nil {
				day = *c.PaidOnDay
			}
			got := tf.PromptPaymentRebate(dec(t, c.Bill), day, c.Partial)
			wantAmount(t, "rebate", got, c.Rebate)
			if c.Payable != "" {
				wantAmount(t, "payable", dec(t, c.Bill).Sub(got), c.Payable)
			}
		case c.HalfUp != "":
			for mode, want := range map[string]string{"half_up": c.HalfUp, "half_even": c.HalfEven} {
				doc := base()
				doc.PromptPaymentRebate = &tariff.RebateDoc{
					Tiers:    []tariff.RebateTierDoc{{WithinDays: 7, RatePct: tariff.Num(c.RatePct)}},
					Rounding: &tariff.RoundingDoc{Mode: mode},
				}
				wantAmount(t, "rebate "+mode, compile(t, doc).PromptPaymentRebate(dec(t, c.Bill), 1, false), want)
			}
		case c.DaysLate != 0:
			wantAmount(t, "LPS 18% p.a.", tf.LatePaymentSurcharge(dec(t, c.Bill), c.DaysLate), c.Late18)
			doc := base()
			doc.LatePaymentSurcharge.RatePct = tariff.Num("12")
			wantAmount(t, "LPS 12% p.a.", compile(t, doc).LatePaymentSurcharge(dec(t, c.Bill), c.DaysLate), c.Late12)
			doc.LatePaymentSurcharge = &tariff.LateDoc{RatePct: tariff.Num("1.5"), Per: "month_or_part"}
			wantAmount(t, "LPS 1.5%/month", compile(t, doc).LatePaymentSurcharge(dec(t, c.Bill), c.DaysLate), c.LateMonthly)
		case c.RoundOffLine != "":
			// A bill whose lines total c.Total: a flat rate of 1 per kWh.
			r := rate(t, tf, tariff.Usage{ImportWh: kwhToWh(t, dec(t, c.Total))})
			wantAmount(t, "round-off line", r.RoundOff, c.RoundOffLine)
			wantAmount(t, "rounded total", r.Total, c.Rounded)
		default:
			t.Errorf("case %d: nothing to check in %s", i, raw)
		}
	}
	// "never float64: 1.005 rounded half-up to 2 places must be 1.01"
	if !strings.Contains(v.Never, "1.005") {
		t.Fatalf("never: %q", v.Never)
	}
	wantAmount(t, "1.005 half-up", billing.RoundHalfUp.Round(dec(t, "1.005"), 2), "1.01")
	r := rate(t, tf, tariff.Usage{ImportWh: 1005}) // 1.005 kWh at 1 per kWh
	wantAmount(t, "1.005 kWh at 1.00", r.Lines[0].Amount, "1.01")
}

func testE10(t *testing.T, v vector) {
	doc := document(t, v.ID, v.Tariff)
	// The vector gives energy per block but not the blocks' hours; these
	// windows (CEB tariff 320: peak 17:00–21:00, night 21:00–06:00) only
	// have to cover the day for the document to be valid.
	doc.Energy.Windows = []tariff.WindowDoc{
		{Name: "day", From: "06:00", To: "17:00"},
		{Name: "peak", From: "17:00", To: "21:00"},
		{Name: "night", From: "21:00", To: "06:00"},
	}
	tf := compile(t, doc)
	for _, raw := range v.Cases {
		var c struct {
			MaxDemandKVA decimal.Decimal            `json:"max_demand_kva"`
			KWh          map[string]decimal.Decimal `json:"kwh"`
			Lines        [][3]string                `json:"lines"`
			Total        string                     `json:"total"`
			Demand       string                     `json:"demand"`
		}
		mustUnmarshal(t, raw, &c)
		u := tariff.Usage{MaxDemandKVA: c.MaxDemandKVA, WindowWh: map[string]int64{}}
		for name, kwh := range c.KWh {
			u.WindowWh[name] = kwhToWh(t, kwh)
			u.ImportWh += u.WindowWh[name]
		}
		r := rate(t, tf, u)
		if c.Lines != nil {
			checkLines(t, r, c.Lines)
			wantAmount(t, "total", r.Total, c.Total)
		}
		if c.Demand != "" {
			wantAmount(t, "demand", r.Subtotal(tariff.CategoryDemand), c.Demand)
		}
	}
}

func mustUnmarshal(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}
