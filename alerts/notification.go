package alerts

import "time"

// DeliveryStatus is where a delivery stands (notification_deliveries).
type DeliveryStatus string

// Delivery statuses; sent, dead and cancelled are final (dead until staff
// retry it).
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryQueued    DeliveryStatus = "queued"
	DeliverySending   DeliveryStatus = "sending"
	DeliverySent      DeliveryStatus = "sent"
	DeliveryDead      DeliveryStatus = "dead"
	DeliveryCancelled DeliveryStatus = "cancelled"
)

// Final reports whether no further attempt will be made by itself.
func (s DeliveryStatus) Final() bool {
	return s == DeliverySent || s == DeliveryDead || s == DeliveryCancelled
}

// Notification is an outbox row with its deliveries: the delivery status
// the API shows per notification.
type Notification struct {
	ID         int64
	TenantID   int64
	UserID     int64 // 0: addressed to an address or an audience
	Event      string
	Channel    Channel // forced channel, "" when preferences decided
	Status     string  // pending | sending | sent | dead | cancelled
	CreatedAt  time.Time
	SentAt     *time.Time
	LastError  string
	Deliveries []Delivery
}

// Delivery is one message to one recipient on one channel.
type Delivery struct {
	ID                int64
	NotificationID    int64
	UserID            int64
	Channel           Channel
	DeviceID          int64
	Reason            string // preference | forced | fallback | escalation
	Status            DeliveryStatus
	Attempts          int
	MaxAttempts       int
	NextAttemptAt     time.Time
	InDoubt           bool
	Provider          string
	ProviderMessageID string
	AddressHint       string
	DeferredReason    string
	LastError         string
	CreatedAt         time.Time
	SentAt            *time.Time
	FinishedAt        *time.Time
	History           []Attempt
}

// Attempt is one try of a delivery.
type Attempt struct {
	N          int
	StartedAt  time.Time
	FinishedAt time.Time
	Outcome    string // sent | retry | failed | reconciled
	Provider   string
	Error      string
}

// NotificationFilter selects notifications to list.
type NotificationFilter struct {
	TenantID int64
	UserID   int64 // >0: only this user's
	Event    string
	Status   string // outbox status, or "dead" for dead letters
	BeforeID int64
	Limit    int
}

// Device is a registered push device (its token stays sealed).
type Device struct {
	ID         int64
	TenantID   int64
	UserID     int64
	Platform   string
	Label      string
	CreatedAt  time.Time
	LastSeenAt time.Time
	Disabled   bool
}

// Actor is who makes a change, for the audit log (every state change a
// person makes is audited). UserID 0 is the system.
type Actor struct {
	UserID    int64
	Role      string
	Address   string // client IP
	RequestID string
}

// Threshold is a tariff plan's consumption thresholds (alert_thresholds).
type Threshold struct {
	Service   string // electricity | water | sewerage
	Plan      string // a tariff plan, or "*" for the service's default
	DailyWh   int64  // 0: none
	MonthlyWh int64  // 0: none
	UpdatedAt time.Time
}

// TemplateOverride is a tenant's template for an event and locale.
type TemplateOverride struct {
	Event, Locale, Source string
	UpdatedAt             time.Time
}
