package municipal

import (
	"sort"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/meter"
)

// Version is one published version of a plan's masters (a municipal
// tariff version): in force from EffectiveFrom until the next version.
type Version struct {
	Plan          string
	Version       string
	EffectiveFrom billing.Date
	Masters       *Masters
}

// Plans are a tenant's published masters of one service by plan name,
// each plan's versions ordered by effective date. The zero value is empty.
type Plans map[string][]Version

// Add records a version, keeping the plan's versions in effective order.
func (p Plans) Add(v Version) {
	list := append(p[v.Plan], v)
	sort.SliceStable(list, func(i, j int) bool { return list[i].EffectiveFrom.Before(list[j].EffectiveFrom) })
	p[v.Plan] = list
}

// At returns the version of plan in force on day d: the latest one
// effective on or before d; false when the plan has none yet (or is not
// published at all).
func (p Plans) At(plan string, d billing.Date) (Version, bool) {
	list := p[plan]
	for i := len(list) - 1; i >= 0; i-- {
		if !list[i].EffectiveFrom.After(d) {
			return list[i], true
		}
	}
	return Version{}, false
}

// Metered water volume. A water meter counts litres in its import
// register (the register an electricity meter counts Wh in; the same
// integer arithmetic), and its model says so by starting with
// WaterMeterModelPrefix ("water-litre"; meter.KindOf). Billing slabs of
// metered water count kilolitres (m³).
const (
	WaterMeterModelPrefix = meter.WaterModelPrefix
	LitresPerUnit         = 1000
)

// IsWaterMeter reports whether a meter of model counts litres.
func IsWaterMeter(model string) bool { return meter.KindOf(model) == meter.KindWater }

// Kilolitres converts a register movement in litres to the kilolitres
// metered water slabs count, exactly.
func Kilolitres(litres int64) decimal.Decimal { return decimal.New(litres, -3) }
