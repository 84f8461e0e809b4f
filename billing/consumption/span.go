package consumption

import (
	"fmt"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/meter"
)

// Span is the part of a billing period one meter served a connection: its
// register at the start and at the end of that part. A replaced meter ends
// one span and its successor starts the next.
type Span struct {
	Start, End meter.CounterSample
	// Spec is the register's arithmetic (where it wraps).
	Spec meter.CounterSpec
	// MaxPowerW bounds plausible consumption, as meter.StepCounter needs.
	MaxPowerW float64
	// Multiplier is the CT/PT ratio applied to the register's reading; 0
	// means 1.
	Multiplier int64
}

// EnergyWh returns the energy the span's meter registered, after its
// multiplier, through meter.StepCounter (a 5-digit kWh register going from
// 99,950 to 70 has counted 120 kWh). A reset or an implausible jump fails
// with billing.ErrCalculation: the energy of that span cannot be known from
// its two reads and has to be estimated or read again.
func (s Span) EnergyWh() (int64, error) {
	start, end := s.Start, s.End
	start.Identity, end.Identity = "", "" // one meter: identity changes end spans, not steps
	step, err := meter.StepCounter(start, end, s.Spec, s.MaxPowerW)
	if err != nil {
		return 0, fmt.Errorf("%w: meter span: %w", billing.ErrCalculation, err)
	}
	switch step.Kind {
	case meter.CounterNormal, meter.CounterRollover:
	default:
		return 0, fmt.Errorf("%w: meter span %s..%s: register %s (%d → %d Wh)", billing.ErrCalculation,
			s.Start.Time.Format("2006-01-02"), s.End.Time.Format("2006-01-02"), step.Kind, s.Start.ValueWh, s.End.ValueWh)
	}
	m := s.Multiplier
	if m == 0 {
		m = 1
	}
	if m < 0 {
		return 0, fmt.Errorf("%w: negative multiplier %d", billing.ErrInvalidInput, m)
	}
	return step.ConsumptionWh * m, nil
}

// SpansEnergyWh sums the energy of all spans of one connection in one
// period. The tariff is then applied once to the sum: rating each meter's
// part on its own would give each the cheap first slabs again (E11: 145 +
// 180 kWh is 1162.50 on one bill, 975.00 rated per meter).
func SpansEnergyWh(spans []Span) (int64, error) {
	var total int64
	for i, s := range spans {
		wh, err := s.EnergyWh()
		if err != nil {
			return 0, fmt.Errorf("span %d: %w", i, err)
		}
		total += wh
	}
	return total, nil
}
