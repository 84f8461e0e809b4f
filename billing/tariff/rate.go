package tariff

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

const (
	// divPlaces is the precision of the only inexact operations in rating:
	// proration factors and day-average shares of energy.
	divPlaces = 20
	// snapPlaces is where prorated amounts are cut before a line is
	// rounded, so that shares which add up to a whole (1/3 + 2/3) round
	// like the whole; any real amount has far fewer places.
	snapPlaces = 12
)

// Rate rates usage against the single tariff version t.
func Rate(t *Tariff, u Usage) (*Result, error) {
	s := Schedule{versions: []*Tariff{t}}
	return s.Rate(u)
}

// Rate rates usage against the schedule. A period that spans versions is
// split by days: energy by average daily use, slab and group bounds and
// monthly charges prorated by the versions' bases; lines with the same
// rate in both parts are merged, so under unchanged rates the split bill
// equals the unsplit one. Each line is rounded once, the total is the sum
// of rounded lines, then the round-off line of the version in force at the
// end of the period is added.
//
// Invalid usage fails with billing.ErrInvalidInput; usage the schedule
// cannot rate (a period before the first version, time-of-use rates
// without energy per window, net metering switched on or off inside the
// period) fails with billing.ErrCalculation.
func (s *Schedule) Rate(u Usage) (*Result, error) {
	if err := u.validate(); err != nil {
		return nil, err
	}
	var buf [2]Piece
	pieces, err := s.split(u.Period, buf[:0])
	if err != nil {
		return nil, err
	}
	last := pieces[len(pieces)-1].Tariff

	energy, err := netEnergy(pieces, &u)
	if err != nil {
		return nil, err
	}
	r := &Result{
		Tenant: last.Tenant, Plan: last.Plan, Currency: last.Currency,
		Period: u.Period, Energy: energy, places: last.Rounding.Places,
		Versions: make([]VersionSpan, 0, len(pieces)),
	}

	cycle, months := u.cycle(), u.cycleMonths()
	periodDays := int64(u.Period.Days())
	billedKWh := decimal.New(energy.BilledWh, -3)
	one := decimal.NewFromInt(1)
	lines := make([]Line, 0, 8*len(pieces))
	inexact := false
	for _, p := range pieces {
		in := pieceInput{
			period: p.Period,
			kwh:    billedKWh,
			loadKW: u.SanctionedLoadKW,
			mdKVA:  u.MaxDemandKVA,
			one:    one,
		}
		in.fixedF, in.fixedWhole = factor(p.Tariff.FixedBasis, p.Period, cycle, months)
		in.slabF, in.slabWhole = factor(p.Tariff.SlabBasis, p.Period, cycle, months)
		days := int64(p.Period.Days())
		if len(pieces) > 1 {
			in.kwh = share(billedKWh, days, periodDays)
		} else {
			in.kwhText = formatWh(energy.BilledWh)
		}
		if u.WindowWh != nil {
			in.windows = make(map[string]decimal.Decimal, len(u.WindowWh))
			for name, wh := range u.WindowWh {
				in.windows[name] = share(decimal.New(wh, -3), days, periodDays)
			}
		}
		inexact = inexact || len(pieces) > 1 || !in.fixedWhole || !in.slabWhole
		r.Versions = append(r.Versions, VersionSpan{
			Version: p.Tariff.Version, EffectiveFrom: p.Tariff.EffectiveFrom, Period: p.Period,
			FixedFactor: in.fixedF, SlabFactor: in.slabF,
		})
		if lines, err = ratePiece(p.Tariff, &in, lines); err != nil {
			return nil, err
		}
	}
	if len(pieces) > 1 {
		lines = combine(lines)
	}
	r.Lines = lines
	if err := r.finish(last, &u, inexact); err != nil {
		return nil, err
	}
	return r, nil
}

// netEnergy applies net metering: exports offset imports, surplus export
// and unused credit are carried forward as kWh, credit is used before any
// import is billed. Without net metering exports are neither billed nor
// credited.
func netEnergy(pieces []Piece, u *Usage) (EnergySummary, error) {
	e := EnergySummary{ImportWh: u.ImportWh, ExportWh: u.ExportWh, CreditInWh: u.CreditInWh, BilledWh: u.ImportWh, Estimated: u.Estimated}
	nm := pieces[len(pieces)-1].Tariff.NetMetering != nil
	for _, p := range pieces {
		if (p.Tariff.NetMetering != nil) != nm {
			return e, fmt.Errorf("%w: net metering is switched on or off inside %s; bill the parts separately", billing.ErrCalculation, u.Period)
		}
	}
	if !nm {
		if u.CreditInWh > 0 || u.SettleCredit {
			return e, fmt.Errorf("%w: net-metering credit given but tariff %s has no net metering", billing.ErrCalculation, pieces[0].Tariff.Plan)
		}
		return e, nil
	}
	net := u.ImportWh - u.ExportWh
	switch {
	case net >= u.CreditInWh:
		e.BilledWh, e.CreditUsedWh = net-u.CreditInWh, u.CreditInWh
	case net >= 0:
		e.BilledWh, e.CreditUsedWh, e.CreditCarriedWh = 0, net, u.CreditInWh-net
	default:
		e.BilledWh, e.CreditCarriedWh = 0, u.CreditInWh-net
	}
	return e, nil
}

// pieceInput is the usage attributed to one version's part of the period.
type pieceInput struct {
	period     billing.Period
	kwh        decimal.Decimal            // billed energy in this part
	windows    map[string]decimal.Decimal // energy per time-of-use window
	loadKW     decimal.Decimal
	mdKVA      decimal.Decimal
	fixedF     decimal.Decimal // proration of monthly charges
	slabF      decimal.Decimal // proration of slab bounds and thresholds
	fixedWhole bool            // fixedF is exactly 1
	slabWhole  bool            // slabF is exactly 1
	one        decimal.Decimal // 1, shared by the lines of one rating
	kwhText    string          // kwh as text when it is the whole period's, for tier labels
}

// bound prorates a monthly kWh bound.
func (in *pieceInput) bound(kwh decimal.Decimal) decimal.Decimal {
	if in.slabWhole {
		return kwh
	}
	return kwh.Mul(in.slabF)
}

// monthly prorates a monthly amount.
func (in *pieceInput) monthly(amount decimal.Decimal) decimal.Decimal {
	if in.fixedWhole {
		return amount
	}
	return amount.Mul(in.fixedF)
}

// share is the day-average part of a period's quantity: q × days / total.
// It multiplies by the same rounded day ratio that prorates bounds under
// ProrateCycleDays, so that when a whole cycle is split a part's energy
// and its slab bounds scale by the identical decimal and a total that sits
// exactly on a bound stays on it in every part.
func share(q decimal.Decimal, days, total int64) decimal.Decimal {
	if days == total {
		return q
	}
	return q.Mul(dayRatio(days, total))
}

// dayRatio is days / total to divPlaces places.
func dayRatio(days, total int64) decimal.Decimal {
	return decimal.NewFromInt(days).DivRound(decimal.NewFromInt(total), divPlaces)
}

// factor returns how many tariff months part p of cycle counts for under
// basis b, and whether that is exactly one.
func factor(b ProrationBasis, p, cycle billing.Period, months int64) (decimal.Decimal, bool) {
	days := int64(p.Days())
	switch b {
	case ProrateCalendarMonth:
		sum := decimal.Zero
		for d := p.From; !d.After(p.To); {
			dim := d.DaysInMonth()
			end := d.AddDays(dim - d.Day())
			if end.After(p.To) {
				end = p.To
			}
			n := d.DaysUntil(end) + 1
			if n == dim {
				sum = sum.Add(decimal.NewFromInt(1))
			} else {
				sum = sum.Add(dayRatio(int64(n), int64(dim)))
			}
			d = end.AddDays(1)
		}
		return sum, sum.Equal(decimal.NewFromInt(1))
	case ProrateDaysOf30:
		if days == 30 {
			return decimal.NewFromInt(1), true
		}
		return dayRatio(days, 30), false
	default: // ProrateCycleDays
		cd := int64(cycle.Days())
		if days == cd {
			return decimal.NewFromInt(months), months == 1
		}
		return decimal.NewFromInt(months).Mul(dayRatio(days, cd)), false
	}
}

// ratePiece appends the lines of one version's part, unrounded.
func ratePiece(t *Tariff, in *pieceInput, lines []Line) ([]Line, error) {
	start := len(lines)
	lines, err := energyLines(t, &t.Energy, in, lines, 0)
	if err != nil {
		return nil, err
	}
	if m := t.Minimum; m != nil {
		energy := decimal.Zero
		for _, l := range lines[start:] {
			energy = energy.Add(l.Precise)
		}
		if floor := in.monthly(m.AmountPerMonth); energy.LessThan(floor) {
			lines = append(lines, Line{
				Code: CodeMinimum, Category: CategoryMinimum, Description: "minimum charge top-up",
				Rate: m.AmountPerMonth, Precise: floor.Sub(energy), Rounding: m.Rounding, Period: in.period,
			})
		}
	}
	for i := range t.PerUnit {
		pu := &t.PerUnit[i]
		if !in.kwh.IsPositive() ||
			pu.above.set && !in.kwh.GreaterThan(in.bound(pu.above.kwh)) ||
			pu.upto.set && in.kwh.GreaterThan(in.bound(pu.upto.kwh)) {
			continue
		}
		lines = append(lines, in.chargeLine(pu.Code, CategoryPassThrough, pu.Name, in.kwh, "kWh", pu.RatePerKWh, pu.Rounding))
	}
	if f := t.Fixed; f != nil {
		if l, ok := fixedLine(f, in); ok {
			lines = append(lines, l)
		}
	}
	if d := t.Demand; d != nil {
		kva := decimal.Max(in.mdKVA, d.MinimumKVA)
		if kva.IsPositive() {
			l := in.chargeLine(CodeDemand, CategoryDemand, d.Name, kva, "kVA", d.RatePerKVAPerMonth, d.Rounding)
			l.Factor, l.Precise = in.fixedF, in.monthly(l.Precise)
			lines = append(lines, l)
		}
	}
	for i := range t.Taxes {
		x := &t.Taxes[i]
		base := baseOf(lines[start:], x.Base)
		if base.IsZero() {
			continue
		}
		lines = append(lines, Line{
			Code: x.Code, Category: CategoryTax, Description: x.Name, Quantity: base, Unit: "%", Rate: x.RatePct,
			Factor: in.one, Precise: base.Mul(x.RatePct).Shift(-2), Rounding: x.Rounding, Period: in.period,
		})
	}
	for i := range t.Subsidies {
		x := &t.Subsidies[i]
		if x.above.set && !in.kwh.GreaterThan(in.bound(x.above.kwh)) ||
			x.upto.set && in.kwh.GreaterThan(in.bound(x.upto.kwh)) {
			continue
		}
		base := baseOf(lines[start:], x.Base)
		amount := base.Mul(x.RatePct).Shift(-2)
		if x.HasCap {
			amount = decimal.Min(amount, in.monthly(x.Cap))
		}
		if !amount.IsPositive() {
			continue
		}
		lines = append(lines, Line{
			Code: x.Code, Category: CategorySubsidy, Description: x.Name, Quantity: base, Unit: "%", Rate: x.RatePct,
			Factor: in.one, Precise: amount.Neg(), Rounding: x.Rounding, Period: in.period, Payer: x.Payer,
		})
	}
	return lines, nil
}

// chargeLine is qty × rate for this part of the period.
func (in *pieceInput) chargeLine(code string, cat LineCategory, desc string, qty decimal.Decimal, unit string, rate decimal.Decimal, r billing.Rounding) Line {
	return chargeLine(code, cat, desc, qty, unit, rate, r, in.period, in.one)
}

func chargeLine(code string, cat LineCategory, desc string, qty decimal.Decimal, unit string, rate decimal.Decimal, r billing.Rounding, p billing.Period, one decimal.Decimal) Line {
	return Line{
		Code: code, Category: cat, Description: desc, Quantity: qty, Unit: unit, Rate: rate,
		Factor: one, Precise: qty.Mul(rate), Rounding: r, Period: p,
	}
}

// baseOf sums the unrounded amounts of the lines whose codes are in codes.
func baseOf(lines []Line, codes []string) decimal.Decimal {
	sum := decimal.Zero
	for _, l := range lines {
		for _, c := range codes {
			if l.Code == c {
				sum = sum.Add(l.Precise)
				break
			}
		}
	}
	return sum
}

// energyLines appends the energy charge of in.kwh under e; group is the
// 1-based group index inside a group-selected charge.
func energyLines(t *Tariff, e *Energy, in *pieceInput, lines []Line, group int) ([]Line, error) {
	switch e.Kind {
	case EnergyFlat:
		if in.kwh.IsPositive() {
			l := in.chargeLine(CodeEnergy, CategoryEnergy, "energy", in.kwh, "kWh", e.Slabs[0].RatePerKWh, e.Rounding)
			l.group = group
			lines = append(lines, l)
		}
	case EnergyTelescopic:
		lo := decimal.New(0, -3)
		for i := range e.Slabs {
			if !in.kwh.GreaterThan(lo) {
				break
			}
			s := &e.Slabs[i]
			q, hi, full := in.kwh.Sub(lo), decimal.Zero, false
			if !s.Open {
				if hi = in.bound(s.UptoKWh); hi.LessThan(in.kwh) {
					q, full = hi.Sub(lo), true
				}
			}
			// A whole single-version period labels its tiers from text
			// prepared at compile time; prorated tiers are labelled from
			// their bounds once merged (finish).
			desc := ""
			if in.kwhText != "" && in.slabWhole && s.fromText != "" {
				to := in.kwhText
				if full {
					to = s.uptoText
				}
				desc = "energy " + s.fromText + "-" + to
			}
			l := in.chargeLine(CodeEnergy, CategoryEnergy, desc, q, "kWh", s.RatePerKWh, e.Rounding)
			l.tier, l.group, l.lo = i+1, group, lo
			lines = append(lines, l)
			lo = hi
			if s.Open {
				break
			}
		}
	case EnergyNonTelescopic:
		if !in.kwh.IsPositive() {
			break
		}
		for i := range e.Slabs {
			s := &e.Slabs[i]
			if s.Open || !in.kwh.GreaterThan(in.bound(s.UptoKWh)) {
				l := in.chargeLine(CodeEnergy, CategoryEnergy, "energy", in.kwh, "kWh", s.RatePerKWh, e.Rounding)
				l.tier, l.group = i+1, group
				lines = append(lines, l)
				break
			}
		}
	case EnergyGroupSelected:
		for i := range e.Groups {
			g := &e.Groups[i]
			if g.Open || !in.kwh.GreaterThan(in.bound(g.UptoKWh)) {
				return energyLines(t, &g.Energy, in, lines, i+1)
			}
		}
	case EnergyTimeOfUse:
		if in.windows == nil {
			return nil, fmt.Errorf("%w: tariff %s version %s has time-of-use rates; usage needs energy per window", billing.ErrCalculation, t.Plan, t.Version)
		}
		for name := range in.windows {
			if firstWindow(e, name) < 0 {
				return nil, fmt.Errorf("%w: usage has energy in window %q, which tariff %s version %s does not define", billing.ErrCalculation, name, t.Plan, t.Version)
			}
		}
		for i, w := range e.Windows {
			if firstWindow(e, w.Name) != i {
				continue // a later window sharing an earlier one's name
			}
			kwh := in.windows[w.Name]
			if !kwh.IsPositive() {
				continue
			}
			l := in.chargeLine(CodeEnergy, CategoryEnergy, "energy "+w.Name, kwh, "kWh", w.RatePerKWh, e.Rounding)
			l.tier, l.group = i+1, group
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// firstWindow returns the index of the first window named name, -1 if none.
func firstWindow(e *Energy, name string) int {
	for i := range e.Windows {
		if e.Windows[i].Name == name {
			return i
		}
	}
	return -1
}

// fixedLine returns the fixed charge of one part, false when it is zero.
func fixedLine(f *FixedCharge, in *pieceInput) (Line, bool) {
	load := in.loadKW
	if f.DerivedLoad != nil {
		load = AuthorisedLoadKW(in.kwh, in.bound(f.DerivedLoad.KWhPerStep), f.DerivedLoad.KWPerStep)
	}
	var l Line
	switch f.Kind {
	case FixedPerConnection:
		l = in.chargeLine(CodeFixed, CategoryFixed, f.Name, in.one, "connection", f.AmountPerMonth, f.Rounding)
	case FixedPerKW:
		l = in.chargeLine(CodeFixed, CategoryFixed, f.Name, load, "kW", f.RatePerKWPerMonth, f.Rounding)
	case FixedLoadBand:
		for i := range f.Bands {
			b := &f.Bands[i]
			if b.Open || !load.GreaterThan(b.UptoKW) {
				// The whole load at its band's rate, not telescopically (E02).
				l = in.chargeLine(CodeFixed, CategoryFixed, f.Name, load, "kW", b.RatePerKWPerMonth, f.Rounding)
				l.tier = i + 1
				break
			}
		}
	}
	if l.Precise.IsZero() {
		return Line{}, false
	}
	l.Factor, l.Precise = in.fixedF, in.monthly(l.Precise)
	return l, true
}

// AuthorisedLoadKW derives a load from energy use: kwPerStep for every
// kwhPerStep of energy or part thereof (MPERC: 0.5 kW per 75 kWh, so 76 kWh
// is 1 kW). kwhPerStep must be positive.
func AuthorisedLoadKW(energyKWh, kwhPerStep, kwPerStep decimal.Decimal) decimal.Decimal {
	steps := energyKWh.DivRound(kwhPerStep, divPlaces).RoundBank(snapPlaces).Ceil()
	return steps.Mul(kwPerStep)
}

// lineKey identifies lines that merge across the parts of a split period:
// same component, tier and rate; for monthly charges also the same
// quantity (the load), whose proration factors then add up.
func lineKey(l *Line) string {
	k := fmt.Sprintf("%s|%s|%d|%d|%s|%s", l.Code, l.Description, l.group, l.tier, l.Unit, l.Rate)
	if l.Category == CategoryFixed || l.Category == CategoryDemand {
		k += "|" + l.Quantity.String()
	}
	return k
}

// combine merges the lines of a split period that share a key.
func combine(lines []Line) []Line {
	out := make([]Line, 0, len(lines))
	index := make(map[string]int, len(lines))
	for _, l := range lines {
		k := lineKey(&l)
		i, ok := index[k]
		if !ok {
			index[k] = len(out)
			out = append(out, l)
			continue
		}
		m := &out[i]
		m.Precise = m.Precise.Add(l.Precise)
		if m.Category == CategoryFixed || m.Category == CategoryDemand {
			m.Factor = m.Factor.Add(l.Factor)
		} else {
			m.Quantity = m.Quantity.Add(l.Quantity)
			m.lo = m.lo.Add(l.lo)
		}
		if l.Period.From.Before(m.Period.From) {
			m.Period.From = l.Period.From
		}
		if l.Period.To.After(m.Period.To) {
			m.Period.To = l.Period.To
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return categoryRank(out[i].Category) < categoryRank(out[j].Category) })
	return out
}

func categoryRank(c LineCategory) int {
	switch c {
	case CategoryEnergy:
		return 0
	case CategoryMinimum:
		return 1
	case CategoryPassThrough:
		return 2
	case CategoryFixed:
		return 3
	case CategoryDemand:
		return 4
	case CategoryTax:
		return 5
	case CategorySubsidy:
		return 6
	case CategorySettlement:
		return 7
	}
	return 8
}

// finish rounds every line, adds the settlement and round-off lines and
// totals the result.
func (r *Result) finish(last *Tariff, u *Usage, inexact bool) error {
	for i := range r.Lines {
		l := &r.Lines[i]
		p := l.Precise
		if inexact {
			p = p.RoundBank(snapPlaces)
		}
		l.Amount = l.Rounding.Apply(p)
		if l.Description == "" {
			l.Description = tierLabel(l.lo, l.Quantity)
		}
	}
	if u.SettleCredit && r.Energy.CreditCarriedWh > 0 {
		nm := last.NetMetering
		if !nm.HasSettlement {
			return fmt.Errorf("%w: tariff %s version %s has no settlement rate for net-metering credit", billing.ErrCalculation, last.Plan, last.Version)
		}
		kwh := decimal.New(r.Energy.CreditCarriedWh, -3)
		l := chargeLine(CodeSettlement, CategorySettlement, "net-metering credit settlement", kwh, "kWh", nm.SettlementRatePerKWh, nm.Rounding, r.Period, decimal.NewFromInt(1))
		l.Precise = l.Precise.Neg()
		l.Amount = l.Rounding.Apply(l.Precise)
		r.Lines = append(r.Lines, l)
		r.Energy.CreditSettledWh, r.Energy.CreditCarriedWh = r.Energy.CreditCarriedWh, 0
	}
	total := decimal.Zero
	for _, l := range r.Lines {
		total = total.Add(l.Amount)
	}
	r.TotalBeforeRoundOff, r.RoundOff, r.Total = total, decimal.Zero, total
	if ro := last.RoundOff; ro != nil {
		r.RoundOff = billing.RoundOff(total, ro.Places, ro.Mode)
		r.Total = total.Add(r.RoundOff)
		if !r.RoundOff.IsZero() {
			r.Lines = append(r.Lines, Line{
				Code: CodeRoundOff, Category: CategoryRoundOff, Description: "round off",
				Precise: r.RoundOff, Amount: r.RoundOff, Rounding: billing.Rounding{Mode: ro.Mode, Places: ro.Places},
				Period: r.Period,
			})
		}
	}
	for _, l := range r.Lines {
		if n := len(r.Subtotals); n > 0 && r.Subtotals[n-1].Category == l.Category {
			r.Subtotals[n-1].Amount = r.Subtotals[n-1].Amount.Add(l.Amount)
			continue
		}
		r.Subtotals = append(r.Subtotals, Subtotal{Category: l.Category, Amount: l.Amount})
	}
	return nil
}

// formatWh renders Wh as kWh text without decimal arithmetic: 612345 →
// "612.345", 350000 → "350".
func formatWh(wh int64) string {
	neg := wh < 0
	if neg {
		wh = -wh
	}
	s := strconv.FormatInt(wh/1000, 10)
	if frac := wh % 1000; frac != 0 {
		f := strconv.FormatInt(1000+frac, 10)[1:]
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// tierLabel names a telescopic tier the way bills print it: "energy 0-200"
// for the first slab, "energy 201-350" when 150 kWh fall in the slab above
// 200.
func tierLabel(lo, q decimal.Decimal) string {
	from := "0"
	if l := lo.Round(3); !l.IsZero() {
		if l.IsInteger() {
			from = l.Add(decimal.NewFromInt(1)).String()
		} else {
			from = l.String()
		}
	}
	return "energy " + from + "-" + lo.Add(q).Round(3).String()
}
