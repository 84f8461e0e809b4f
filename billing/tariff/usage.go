package tariff

import (
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// Usage is what is rated for one connection and period. The consumption
// layer fills it from rollups; quotes fill it from a usage document.
type Usage struct {
	// Period is the days billed, both ends inclusive.
	Period billing.Period
	// Cycle is the whole billing cycle Period belongs to; zero means
	// Period is a whole cycle. A first or last period shorter than its
	// cycle is prorated against it.
	Cycle billing.Period
	// CycleMonths is how many tariff months the cycle counts for (2 for
	// bi-monthly, 3 for quarterly billing); 0 means 1.
	CycleMonths int

	SanctionedLoadKW decimal.Decimal
	// MaxDemandKVA is the maximum demand recorded in the period.
	MaxDemandKVA decimal.Decimal

	ImportWh int64 // energy imported from the grid
	ExportWh int64 // energy exported (net metering)
	// WindowWh is imported energy per time-of-use window name, needed when
	// the tariff has time-of-use rates; it must sum to ImportWh.
	WindowWh map[string]int64
	// CreditInWh is net-metering credit brought forward from earlier periods.
	CreditInWh int64
	// SettleCredit pays out the credit left at the end of the period at
	// the tariff's settlement rate (financial-year end).
	SettleCredit bool
	// Estimated marks consumption estimated rather than read; it is carried
	// to the result for the bill to flag.
	Estimated bool
}

func (u *Usage) cycle() billing.Period {
	if u.Cycle == (billing.Period{}) {
		return u.Period
	}
	return u.Cycle
}

func (u *Usage) cycleMonths() int64 {
	if u.CycleMonths <= 0 {
		return 1
	}
	return int64(u.CycleMonths)
}

// validate reports usage that cannot be rated; the error wraps
// billing.ErrInvalidInput.
func (u *Usage) validate() error {
	ve := &billing.ValidationError{Subject: "usage"}
	if !u.Period.Valid() {
		ve.Add("period", "to is before from")
	}
	if cy := u.cycle(); !cy.Valid() || !cy.Covers(u.Period) {
		ve.Add("cycle", "must contain the period")
	}
	if u.CycleMonths < 0 || u.CycleMonths > 12 {
		ve.Add("cycle_months", "want 0..12")
	}
	if u.SanctionedLoadKW.IsNegative() {
		ve.Add("sanctioned_load_kw", "must not be negative")
	}
	if u.MaxDemandKVA.IsNegative() {
		ve.Add("max_demand_kva", "must not be negative")
	}
	if u.ImportWh < 0 {
		ve.Add("import", "must not be negative")
	}
	if u.ExportWh < 0 {
		ve.Add("export", "must not be negative")
	}
	if u.CreditInWh < 0 {
		ve.Add("credit_in", "must not be negative")
	}
	if u.WindowWh != nil {
		var sum int64
		for name, wh := range u.WindowWh {
			if wh < 0 {
				ve.Add("tou."+name, "must not be negative")
			}
			sum += wh
		}
		if sum != u.ImportWh {
			ve.Add("tou", "energy per window must sum to the import")
		}
	}
	return ve.Err()
}
