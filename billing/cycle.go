package billing

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cycle is how often a connection is billed.
type Cycle uint8

// Billing cycles.
const (
	// CycleMonthly bills calendar months; demands are generated on the
	// configured day of every month.
	CycleMonthly Cycle = iota + 1
	// CycleQuarterly bills calendar quarters; demands are generated on the
	// configured day of January, April, July and October.
	CycleQuarterly
	// CycleYearly bills a trailing window of configured length ending at
	// the start of the generation day (the reference system's rule for any
	// cycle other than monthly and quarterly); demands are generated on the
	// configured day of April, the first month of the financial year.
	CycleYearly
)

// ParseCycle parses a cycle name. "quaterly", the reference master data's
// spelling, is accepted as quarterly; any other unknown name is an error
// rather than a silent default (reference bug B15).
func ParseCycle(s string) (Cycle, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "monthly":
		return CycleMonthly, nil
	case "quarterly", "quaterly":
		return CycleQuarterly, nil
	case "yearly":
		return CycleYearly, nil
	}
	return 0, fmt.Errorf("unknown billing cycle %q (want monthly, quarterly or yearly)", s)
}

func (c Cycle) String() string {
	switch c {
	case CycleMonthly:
		return "monthly"
	case CycleQuarterly:
		return "quarterly"
	case CycleYearly:
		return "yearly"
	}
	return fmt.Sprintf("cycle(%d)", uint8(c))
}

// CyclePeriod returns the demand period of cycle c that contains now, in
// the tenant's zone loc: from is the first instant, to the last millisecond
// (demands carry inclusive millisecond bounds, as DIGIT's taxPeriodTo
// does). trailing is the window length of CycleYearly and is ignored
// otherwise. For 2024-05-10T10:00Z in UTC: monthly is 2024-05-01T00:00 to
// 2024-05-31T23:59:59.999, quarterly 2024-04-01T00:00 to
// 2024-06-30T23:59:59.999.
func CyclePeriod(c Cycle, now time.Time, loc *time.Location, trailing time.Duration) (from, to time.Time, err error) {
	local := now.In(loc)
	y, m, d := local.Date()
	switch c {
	case CycleMonthly:
		from = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		return from, from.AddDate(0, 1, 0).Add(-time.Millisecond), nil
	case CycleQuarterly:
		first := time.Month((int(m)-1)/3*3 + 1)
		from = time.Date(y, first, 1, 0, 0, 0, 0, loc)
		return from, from.AddDate(0, 3, 0).Add(-time.Millisecond), nil
	case CycleYearly:
		if trailing <= 0 {
			return time.Time{}, time.Time{}, fmt.Errorf("%w: yearly cycle needs a positive window length", ErrCalculation)
		}
		to = time.Date(y, m, d, 0, 0, 0, 0, loc)
		return to.Add(-trailing), to, nil
	}
	return time.Time{}, time.Time{}, fmt.Errorf("%w: unknown billing cycle %d", ErrCalculation, uint8(c))
}

// IsGenerationDay reports whether a bill run for cycle c is due on the day
// of now in loc: monthly on generationDay of each month, quarterly on that
// day of January, April, July and October, yearly on that day of April.
// (The reference system generated monthly demands on every trigger and
// quarterly ones never, bug B15.)
func IsGenerationDay(c Cycle, generationDay int, now time.Time, loc *time.Location) bool {
	_, m, d := now.In(loc).Date()
	if d != generationDay {
		return false
	}
	switch c {
	case CycleMonthly:
		return true
	case CycleQuarterly:
		return (m-1)%3 == 0
	case CycleYearly:
		return m == time.April
	}
	return false
}

// GenerationDay converts the reference master's demandGenerationDateMillis
// (an offset such as 345600000 ms) to a day of the month (4).
func GenerationDay(offset time.Duration) int { return int(offset / (24 * time.Hour)) }

// FinancialYear is an Indian financial year (April to March) named by the
// year it starts in: FinancialYear(2024) is "2024-25".
type FinancialYear int

// FinancialYearOf returns the financial year that contains d.
func FinancialYearOf(d Date) FinancialYear {
	if d.Month() >= time.April {
		return FinancialYear(d.Year())
	}
	return FinancialYear(d.Year() - 1)
}

// ParseFinancialYear parses "2024-25".
func ParseFinancialYear(s string) (FinancialYear, error) {
	start, end, ok := strings.Cut(s, "-")
	y, err1 := strconv.Atoi(start)
	e, err2 := strconv.Atoi(end)
	if !ok || err1 != nil || err2 != nil || len(start) != 4 || len(end) != 2 || (y+1)%100 != e {
		return 0, fmt.Errorf("parse financial year %q: want YYYY-YY with consecutive years", s)
	}
	return FinancialYear(y), nil
}

// Start returns the first day of the year, 1 April.
func (fy FinancialYear) Start() Date { return NewDate(int(fy), time.April, 1) }

func (fy FinancialYear) String() string {
	return fmt.Sprintf("%04d-%02d", int(fy), (int(fy)+1)%100)
}
