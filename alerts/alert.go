package alerts

import (
	"fmt"
	"time"
)

// Kind is what an alert is about. The values are stored (alerts.kind).
type Kind string

// Alert kinds.
const (
	// KindConsumptionThreshold: import above the daily or monthly
	// threshold of the connection's tariff plan (AbnormalUsage).
	KindConsumptionThreshold Kind = "consumption_threshold"
	// KindUsageDeviation: an hour far off the meter's own baseline for the
	// same weekday and hour (median and MAD of earlier weeks).
	KindUsageDeviation Kind = "usage_deviation"
	// KindStuck: both registers frozen while the meter keeps reporting.
	KindStuck Kind = "stuck"
	// KindTamper: a register went backwards without a recorded reset,
	// rollover or replacement.
	KindTamper Kind = "tamper"
	// KindSilent: no reading for longer than allowed by the meter's
	// expected interval.
	KindSilent Kind = "silent"
	// KindLoadAboveSanctioned: power above the connection's sanctioned
	// load.
	KindLoadAboveSanctioned Kind = "load_above_sanctioned"
)

// Kinds lists every alert kind.
func Kinds() []Kind {
	return []Kind{KindConsumptionThreshold, KindUsageDeviation, KindStuck, KindTamper, KindSilent, KindLoadAboveSanctioned}
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, x := range Kinds() {
		if x == k {
			return true
		}
	}
	return false
}

// ConsumerFacing reports whether the consumer is told about alerts of this
// kind (their usage); the others are about the device and go to the
// metering staff.
func (k Kind) ConsumerFacing() bool {
	switch k {
	case KindConsumptionThreshold, KindUsageDeviation, KindLoadAboveSanctioned:
		return true
	}
	return false
}

// AbnormalUsage reports whether findings of this kind are the
// requirement's AbnormalUsage (usage, not the device's health).
func (k Kind) AbnormalUsage() bool { return k.ConsumerFacing() }

// AutoResolves reports whether the detector resolves an alert of this kind
// by itself once the condition clears. Tamper never does: someone must
// look.
func (k Kind) AutoResolves() bool { return k != KindTamper }

// Severity grades an alert.
type Severity string

// Severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Status is an alert's place in its lifecycle.
type Status string

// Alert statuses: open → acknowledged → resolved, or open → resolved.
const (
	StatusOpen         Status = "open"
	StatusAcknowledged Status = "acknowledged"
	StatusResolved     Status = "resolved"
)

// CanBecome reports whether an alert in status s may move to to by a
// person's action, or returns an error wrapping ErrInvalidTransition.
func (s Status) CanBecome(to Status) error {
	switch {
	case s == StatusOpen && (to == StatusAcknowledged || to == StatusResolved):
		return nil
	case s == StatusAcknowledged && to == StatusResolved:
		return nil
	}
	return fmt.Errorf("%w: %s → %s", ErrInvalidTransition, s, to)
}

// Finding is one detection: a rule found kind on a meter at a data time.
// The lifecycle layer turns findings into alerts: a finding for a meter and
// kind with an unresolved alert updates that alert; otherwise it opens one.
type Finding struct {
	TenantID int64
	MeterID  int64
	Kind     Kind
	Severity Severity
	// At is the data time the evidence is from (the hour or day bucket,
	// the reading, the last time the meter was seen), UTC.
	At       time.Time
	Summary  string
	Observed float64
	Expected float64
	Unit     string
	Evidence map[string]any
}

// Err returns the finding as an *AbnormalUsageError for the usage kinds,
// nil for the others.
func (f Finding) Err() error {
	if !f.Kind.AbnormalUsage() {
		return nil
	}
	return &AbnormalUsageError{Kind: f.Kind, MeterID: f.MeterID, Summary: f.Summary, Observed: f.Observed, Expected: f.Expected, Unit: f.Unit}
}

// Clear says a condition no longer holds for a meter: the lifecycle layer
// resolves its unresolved alert of that kind automatically (kinds that
// auto-resolve only).
type Clear struct {
	TenantID int64
	MeterID  int64
	Kind     Kind
	At       time.Time
	Reason   string
}

// Alert is an anomaly on a meter with its lifecycle.
type Alert struct {
	ID             int64
	TenantID       int64
	MeterID        int64
	MeterRef       string // meters.external_id
	ConnectionID   int64  // 0: the meter is on no connection
	ConsumerCode   string
	UserID         int64 // the consumer who may see it; 0: staff only
	Kind           Kind
	Severity       Severity
	Status         Status
	Summary        string
	Observed       float64
	Expected       float64
	Unit           string
	Evidence       map[string]any
	FirstSeenAt    time.Time
	LastSeenAt     time.Time
	Occurrences    int
	OpenedAt       time.Time
	UpdatedAt      time.Time
	AcknowledgedAt *time.Time
	AcknowledgedBy int64
	ResolvedAt     *time.Time
	ResolvedBy     int64
	Resolution     string // auto | manual
	Note           string
}

// AlertFilter selects alerts to list.
type AlertFilter struct {
	TenantID int64
	UserID   int64 // >0: only this consumer's alerts
	MeterID  int64
	Kinds    []Kind
	Statuses []Status
	BeforeID int64 // keyset pagination: ids below this
	Limit    int
}
