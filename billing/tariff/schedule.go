package tariff

import (
	"fmt"
	"sort"

	"github.com/meterd/meterd/billing"
)

// Schedule is the effective-dated versions of one tenant's tariff plan.
// Each version is in force from its effective date until the next one's.
type Schedule struct {
	versions []*Tariff // by EffectiveFrom, ascending
}

// NewSchedule orders versions by effective date. They must belong to one
// tenant, plan and currency and have distinct effective dates; otherwise
// the error is a *billing.ValidationError whose paths index the arguments.
func NewSchedule(versions ...*Tariff) (*Schedule, error) {
	ve := &billing.ValidationError{Subject: "tariff schedule"}
	if len(versions) == 0 {
		ve.Add("", "no tariff versions")
		return nil, ve
	}
	first := versions[0]
	for i, v := range versions[1:] {
		path := fmt.Sprintf("[%d]", i+1)
		if v.Tenant != first.Tenant {
			ve.Add(path+".tenant", fmt.Sprintf("%q differs from the first version's %q", v.Tenant, first.Tenant))
		}
		if v.Plan != first.Plan {
			ve.Add(path+".plan", fmt.Sprintf("%q differs from the first version's %q", v.Plan, first.Plan))
		}
		if v.Currency != first.Currency {
			ve.Add(path+".currency", fmt.Sprintf("%q differs from the first version's %q", v.Currency, first.Currency))
		}
	}
	sorted := append([]*Tariff(nil), versions...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].EffectiveFrom.Before(sorted[j].EffectiveFrom) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].EffectiveFrom.Equal(sorted[i-1].EffectiveFrom) {
			ve.Add("effective_from", fmt.Sprintf("versions %q and %q are both effective from %s", sorted[i-1].Version, sorted[i].Version, sorted[i].EffectiveFrom))
		}
	}
	if err := ve.Err(); err != nil {
		return nil, err
	}
	return &Schedule{versions: sorted}, nil
}

// Versions returns the versions, oldest first. The slice must not be changed.
func (s *Schedule) Versions() []*Tariff { return s.versions }

// Latest returns the version with the latest effective date.
func (s *Schedule) Latest() *Tariff { return s.versions[len(s.versions)-1] }

// At returns the version in force on d. It fails with billing.ErrCalculation
// when d is before the first version.
func (s *Schedule) At(d billing.Date) (*Tariff, error) {
	i := sort.Search(len(s.versions), func(i int) bool { return s.versions[i].EffectiveFrom.After(d) })
	if i == 0 {
		return nil, fmt.Errorf("%w: no version of tariff %s/%s is in force on %s (the first is effective from %s)",
			billing.ErrCalculation, s.versions[0].Tenant, s.versions[0].Plan, d, s.versions[0].EffectiveFrom)
	}
	return s.versions[i-1], nil
}

// Piece is the part of a period billed under one version.
type Piece struct {
	Tariff *Tariff
	Period billing.Period
}

// Split cuts p at the effective dates of the versions in force during it.
// It fails with billing.ErrCalculation when p starts before the first
// version.
func (s *Schedule) Split(p billing.Period) ([]Piece, error) {
	return s.split(p, nil)
}

// split appends to buf to spare an allocation on the rating path.
func (s *Schedule) split(p billing.Period, buf []Piece) ([]Piece, error) {
	t, err := s.At(p.From)
	if err != nil {
		return nil, err
	}
	from := p.From
	i := sort.Search(len(s.versions), func(i int) bool { return s.versions[i].EffectiveFrom.After(p.From) })
	for ; i < len(s.versions) && !s.versions[i].EffectiveFrom.After(p.To); i++ {
		next := s.versions[i]
		buf = append(buf, Piece{Tariff: t, Period: billing.Period{From: from, To: next.EffectiveFrom.AddDays(-1)}})
		t, from = next, next.EffectiveFrom
	}
	return append(buf, Piece{Tariff: t, Period: billing.Period{From: from, To: p.To}}), nil
}
