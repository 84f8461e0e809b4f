package alerts

import (
	"errors"
	"testing"
	"time"
)

func TestQuietHours(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	q := QuietHours{From: 22 * 60, To: 7 * 60}
	tests := []struct {
		give        time.Time
		wantIn      bool
		wantRelease time.Time
	}{
		{give: time.Date(2026, 3, 7, 23, 0, 0, 0, ny), wantIn: true, wantRelease: time.Date(2026, 3, 8, 7, 0, 0, 0, ny)}, // across the spring-forward night
		{give: time.Date(2026, 3, 8, 6, 59, 0, 0, ny), wantIn: true, wantRelease: time.Date(2026, 3, 8, 7, 0, 0, 0, ny)},
		{give: time.Date(2026, 3, 8, 7, 0, 0, 0, ny), wantIn: false, wantRelease: time.Date(2026, 3, 8, 7, 0, 0, 0, ny)},
		{give: time.Date(2026, 3, 8, 21, 59, 0, 0, ny), wantIn: false, wantRelease: time.Date(2026, 3, 8, 21, 59, 0, 0, ny)},
		{give: time.Date(2026, 11, 1, 1, 30, 0, 0, ny), wantIn: true, wantRelease: time.Date(2026, 11, 1, 7, 0, 0, 0, ny)}, // the repeated hour
	}
	for _, tt := range tests {
		if got := q.Contains(tt.give, ny); got != tt.wantIn {
			t.Errorf("Contains(%v) = %v", tt.give, got)
		}
		if got := q.Release(tt.give, ny); !got.Equal(tt.wantRelease) {
			t.Errorf("Release(%v) = %v, want %v", tt.give, got.In(ny), tt.wantRelease)
		}
	}
	day := QuietHours{From: 13 * 60, To: 14 * 60}
	if !day.Contains(time.Date(2026, 1, 1, 13, 30, 0, 0, ny), ny) || day.Contains(time.Date(2026, 1, 1, 14, 0, 0, 0, ny), ny) {
		t.Error("same-day window")
	}
	if (QuietHours{From: 60, To: 60}).Contains(time.Date(2026, 1, 1, 1, 0, 0, 0, ny), ny) {
		t.Error("an empty window contains nothing")
	}
}

func TestStatusTransitions(t *testing.T) {
	tests := []struct {
		from, to Status
		ok       bool
	}{
		{StatusOpen, StatusAcknowledged, true},
		{StatusOpen, StatusResolved, true},
		{StatusAcknowledged, StatusResolved, true},
		{StatusAcknowledged, StatusOpen, false},
		{StatusResolved, StatusAcknowledged, false},
		{StatusResolved, StatusOpen, false},
		{StatusOpen, StatusOpen, false},
	}
	for _, tt := range tests {
		err := tt.from.CanBecome(tt.to)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidTransition)) {
			t.Errorf("%s → %s: %v", tt.from, tt.to, err)
		}
	}
}

func TestValidatePreference(t *testing.T) {
	tests := []struct {
		give Preference
		ok   bool
	}{
		{Preference{Event: DefaultEvent, Channels: []Channel{ChannelEmail}, Locale: "hi-IN"}, true},
		{Preference{Event: EventBillIssued, Channels: []Channel{ChannelSMS, ChannelPush}}, true},
		{Preference{Event: EventVerifyEmail}, false},              // not preferable
		{Preference{Event: "no.such_event"}, false},               // unknown
		{Preference{Event: EventBillIssued, Locale: "en"}, false}, // locale on an event row
		{Preference{Event: DefaultEvent, Channels: []Channel{"fax"}}, false},
		{Preference{Event: DefaultEvent, Channels: []Channel{ChannelSMS, ChannelSMS}}, false},
		{Preference{Event: DefaultEvent, Locale: "english"}, false},
		{Preference{Event: DefaultEvent, Quiet: &QuietHours{From: 1500, To: 1}}, false},
	}
	for _, tt := range tests {
		err := ValidatePreference(tt.give)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidInput)) {
			t.Errorf("%+v: %v", tt.give, err)
		}
	}
}
