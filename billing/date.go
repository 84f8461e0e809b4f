package billing

import (
	"fmt"
	"time"
)

// Date is a civil date in the tenant's time zone: billing periods, due
// dates and tariff effective dates are days, not instants. The zero Date is
// 1970-01-01 and is also what an unset field holds; IsZero reports it.
type Date struct {
	days int32 // days since 1970-01-01
}

// NewDate returns the date y-m-d, normalising out-of-range values the way
// time.Date does (2024-02-30 is 2024-03-01).
func NewDate(y int, m time.Month, d int) Date {
	return Date{days: int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / secondsPerDay)}
}

const secondsPerDay = 24 * 60 * 60

// DateOf returns the civil date of instant t in loc.
func DateOf(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return NewDate(y, m, d)
}

// ParseDate parses an ISO date, "2019-08-01".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("parse date %q: want YYYY-MM-DD", s)
	}
	return NewDate(t.Date()), nil
}

// Year returns d's year.
func (d Date) Year() int { return d.time().Year() }

// Month returns d's month.
func (d Date) Month() time.Month { return d.time().Month() }

// Day returns d's day of the month.
func (d Date) Day() int { return d.time().Day() }

func (d Date) time() time.Time { return time.Unix(int64(d.days)*secondsPerDay, 0).UTC() }

// Start returns the instant d begins in loc.
func (d Date) Start(loc *time.Location) time.Time {
	y, m, day := d.time().Date()
	return time.Date(y, m, day, 0, 0, 0, 0, loc)
}

// AddDays returns d moved by n days.
func (d Date) AddDays(n int) Date { return Date{days: d.days + int32(n)} }

// DaysUntil returns the number of days from d to e (negative if e is earlier).
func (d Date) DaysUntil(e Date) int { return int(e.days - d.days) }

// Before reports whether d is earlier than e.
func (d Date) Before(e Date) bool { return d.days < e.days }

// After reports whether d is later than e.
func (d Date) After(e Date) bool { return d.days > e.days }

// Equal reports whether d and e are the same day.
func (d Date) Equal(e Date) bool { return d.days == e.days }

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d.days == 0 }

// DaysInMonth returns the number of days in d's calendar month.
func (d Date) DaysInMonth() int {
	y, m, _ := d.time().Date()
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func (d Date) String() string { return d.time().Format(time.DateOnly) }

// MarshalText writes the ISO date.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses an ISO date.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Period is a run of whole days, both ends inclusive, as utilities print
// them ("17 Jul – 15 Aug 2019" is 30 days).
type Period struct {
	From Date `json:"from"`
	To   Date `json:"to"`
}

// Days returns the number of days in p, counting both ends.
func (p Period) Days() int { return p.From.DaysUntil(p.To) + 1 }

// Valid reports whether p has at least one day.
func (p Period) Valid() bool { return !p.To.Before(p.From) }

// Contains reports whether d lies in p.
func (p Period) Contains(d Date) bool { return !d.Before(p.From) && !d.After(p.To) }

// Covers reports whether q lies entirely inside p.
func (p Period) Covers(q Period) bool { return p.Contains(q.From) && p.Contains(q.To) }

func (p Period) String() string { return p.From.String() + ".." + p.To.String() }
