package alerts

import (
	"fmt"
	"slices"
	"time"
)

// TimeOfDay is a wall-clock time in minutes after midnight (0–1439).
type TimeOfDay int

// ParseTimeOfDay parses "HH:MM" (or "HH:MM:SS", seconds ignored).
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	for _, layout := range []string{"15:04", "15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return TimeOfDay(t.Hour()*60 + t.Minute()), nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not a time of day (HH:MM)", ErrInvalidInput, s)
}

// String formats the time as HH:MM.
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", int(t)/60, int(t)%60) }

// On returns the instant of t on the civil day of day in loc. On a day
// when t does not exist (a daylight-saving gap) it is the instant just
// after the gap, as time.Date normalises it.
func (t TimeOfDay) On(day time.Time, loc *time.Location) time.Time {
	y, m, d := day.In(loc).Date()
	return time.Date(y, m, d, int(t)/60, int(t)%60, 0, 0, loc)
}

// QuietHours is a daily window in the tenant's zone during which ringing
// channels (SMS, push) wait. From after To wraps midnight (22:00–07:00);
// From == To is no window.
type QuietHours struct {
	From, To TimeOfDay
}

// Empty reports whether the window is empty.
func (q QuietHours) Empty() bool { return q.From == q.To }

// Contains reports whether t falls inside the window in loc.
func (q QuietHours) Contains(t time.Time, loc *time.Location) bool {
	if q.Empty() {
		return false
	}
	lt := t.In(loc)
	m := TimeOfDay(lt.Hour()*60 + lt.Minute())
	if q.From < q.To {
		return m >= q.From && m < q.To
	}
	return m >= q.From || m < q.To
}

// Release returns t if it is outside the window, else the end of the
// window containing it (in loc), UTC.
func (q QuietHours) Release(t time.Time, loc *time.Location) time.Time {
	if !q.Contains(t, loc) {
		return t
	}
	end := q.To.On(t, loc)
	if !end.After(t) {
		end = q.To.On(t.In(loc).AddDate(0, 0, 1), loc)
	}
	return end.UTC()
}

// Preference is one row of a user's preferences: for one event, or the
// user's default (Event "*"). Nil fields inherit from the default row.
type Preference struct {
	Event    string
	Channels []Channel // nil inherits; empty mutes
	Quiet    *QuietHours
	Locale   string // default row only
	// Set distinguishes an empty Channels (muted) from nil (inherit) in
	// storage and JSON; ChannelsSet is true when Channels was given.
	ChannelsSet bool
}

// DefaultEvent is the event name of a user's default preference row.
const DefaultEvent = "*"

// Preferences are a user's preference rows.
type Preferences struct {
	Default Preference
	Events  map[string]Preference
}

// Resolved is what applies to one event for one user.
type Resolved struct {
	Channels []Channel
	Quiet    QuietHours
	Locale   string // "" when the user has none
	// Muted is true when the user chose no channel for the event.
	Muted bool
}

// Resolve returns the channels, quiet hours and locale for event: the
// event row, else the default row, else the event's default channels and
// no quiet hours.
func (p Preferences) Resolve(ev EventSpec) Resolved {
	r := Resolved{Channels: slices.Clone(ev.DefaultChannels), Locale: p.Default.Locale}
	if p.Default.ChannelsSet && ev.Preferable {
		r.Channels = slices.Clone(p.Default.Channels)
	}
	if p.Default.Quiet != nil {
		r.Quiet = *p.Default.Quiet
	}
	if e, ok := p.Events[ev.Name]; ok {
		if e.ChannelsSet {
			r.Channels = slices.Clone(e.Channels)
		}
		if e.Quiet != nil {
			r.Quiet = *e.Quiet
		}
	}
	if ev.Urgent {
		r.Quiet = QuietHours{}
	}
	r.Muted = len(r.Channels) == 0
	return r
}

// ValidatePreference checks a preference row a user sends.
func ValidatePreference(p Preference) error {
	v := NewValidator(nil)
	if p.Event != DefaultEvent {
		ev, ok := LookupEvent(p.Event)
		v.Check(ok && ev.Preferable, "event", "is not an event you can set preferences for")
	}
	seen := map[Channel]bool{}
	for _, c := range p.Channels {
		_, err := ParseChannel(string(c))
		v.Check(err == nil, "channels", "must be email, sms or push")
		v.Check(!seen[c], "channels", "lists %s twice", c)
		seen[c] = true
	}
	v.Check(p.Locale == "" || p.Event == DefaultEvent, "locale", "is set on the default (*) preference only")
	v.Check(p.Locale == "" || validLocale(p.Locale), "locale", "must look like en or hi-IN")
	if p.Quiet != nil {
		v.Check(p.Quiet.From >= 0 && p.Quiet.From < 1440 && p.Quiet.To >= 0 && p.Quiet.To < 1440, "quiet_hours", "must be times of day")
	}
	return v.Err()
}

func validLocale(s string) bool {
	if len(s) != 2 && len(s) != 5 {
		return false
	}
	for i, r := range s {
		switch {
		case i < 2 && r >= 'a' && r <= 'z':
		case i == 2 && r == '-':
		case i > 2 && r >= 'A' && r <= 'Z':
		default:
			return false
		}
	}
	return true
}
