package account

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"
)

// Tenant is a utility or municipal body.
type Tenant struct {
	ID       int64
	Code     string
	Name     string
	TimeZone string
	Currency string
}

// UserStatus is whether a user may log in.
type UserStatus string

// User statuses.
const (
	StatusActive    UserStatus = "active"
	StatusSuspended UserStatus = "suspended"
)

// User is a login.
type User struct {
	ID              int64
	TenantID        int64
	Email           string
	Role            Role
	Department      string
	Status          UserStatus
	PasswordHash    string
	EmailVerifiedAt *time.Time
	FailedLogins    int
	LockedUntil     *time.Time
	LastLoginAt     *time.Time
	TOTPSecret      []byte // sealed
	TOTPEnabled     bool
	TOTPLastStep    int64
	CreatedAt       time.Time
}

// Principal returns the principal of u in session sid.
func (u User) Principal(sid int64) Principal {
	return Principal{TenantID: u.TenantID, UserID: u.ID, Role: u.Role, Department: u.Department, SessionID: sid}
}

// Address is a postal address.
type Address struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// Profile is a person's name and contact details.
type Profile struct {
	UserID    int64
	TenantID  int64
	Name      string
	Email     string
	Phone     string
	Address   *Address
	UpdatedAt time.Time
}

// ServiceType is what a connection supplies.
type ServiceType string

// Services.
const (
	ServiceElectricity ServiceType = "electricity"
	ServiceWater       ServiceType = "water"
	ServiceSewerage    ServiceType = "sewerage"
)

// ConnectionStatus is a connection's lifecycle state.
type ConnectionStatus string

// Connection statuses.
const (
	ConnectionPending      ConnectionStatus = "pending"
	ConnectionActive       ConnectionStatus = "active"
	ConnectionDisconnected ConnectionStatus = "disconnected"
	ConnectionClosed       ConnectionStatus = "closed"
)

// RoadCutting is one stretch of road cut for a connection.
type RoadCutting struct {
	RoadType string          `json:"road_type"`
	AreaM2   decimal.Decimal `json:"area_m2"`
}

// Attributes are a connection's billing attributes.
type Attributes struct {
	TariffPlan       string
	ConnectionType   string // "Metered" or "Non Metered"
	SanctionedLoadKW *decimal.Decimal
	UsageCategory    string
	WaterClosets     *int
	Toilets          *int
	RoadCutting      []RoadCutting
	PlotSizeM2       *decimal.Decimal
}

// Connection is a service at a property.
type Connection struct {
	ID           int64
	TenantID     int64
	PropertyID   int64
	UserID       int64 // the property's owner
	Service      ServiceType
	ConsumerCode string
	Status       ConnectionStatus
	MeterNumber  string
	BuildingType string
	Attributes
	ConnectedAt    time.Time
	DisconnectedAt *time.Time
	// Meter is the current installation, nil when no meter is installed.
	Meter *Installation
}

// Installation is a meter installed on a connection for a span.
type Installation struct {
	ID              int64
	ConnectionID    int64
	MeterID         int64
	MeterExternalID string
	MeterSerial     string
	InstalledAt     time.Time
	RemovedAt       *time.Time
	InitialImportWh *int64
	InitialExportWh *int64
	FinalImportWh   *int64
	FinalExportWh   *int64
	Reason          string
	RemovalReason   string
}

// Property is a consumer's premise with its connections.
type Property struct {
	ID          int64
	TenantID    int64
	UserID      int64
	Label       string
	Address     Address
	Connections []Connection
	CreatedAt   time.Time
}

// Protocol is how a meter reports.
type Protocol string

// Meter protocols.
const (
	ProtocolMQTT   Protocol = "mqtt"
	ProtocolModbus Protocol = "modbus"
	ProtocolManual Protocol = "manual"
)

// Meter is a metering device.
type Meter struct {
	ID               int64
	TenantID         int64
	ExternalID       string
	Serial           string
	Model            string
	Protocol         Protocol
	Settings         json.RawMessage
	Multiplier       decimal.Decimal
	ExpectedInterval time.Duration
	HasMQTTSecret    bool
	InstalledAt      time.Time
	RemovedAt        *time.Time
	// Installation is the current installation, if any.
	Installation *Installation
}

// MQTTCredentials are a meter's MQTT login, shown once when issued.
type MQTTCredentials struct {
	Username string
	Password string
	Topic    string
}

// Reminder is a consumer's bill reminder preference.
type Reminder struct {
	ID         int64
	TenantID   int64
	UserID     int64
	BillID     int64 // 0: all bills
	DaysBefore int
	Channel    string
	Enabled    bool
	UpdatedAt  time.Time
}

// Page is a keyset page request: at most Limit items after the cursor.
type Page struct {
	Limit int
	// After is the last id of the previous page; 0 starts at the beginning.
	After int64
}

// Normalize applies the default (50) and maximum (200) limits.
func (p Page) Normalize() Page {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	if p.Limit > 200 {
		p.Limit = 200
	}
	if p.After < 0 {
		p.After = 0
	}
	return p
}
