package api

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	"github.com/meterd/meterd/api/support"
	"github.com/meterd/meterd/api/usage"
)

// Request and response bodies. JSON names are snake_case; times are RFC
// 3339 in UTC; energy is integer Wh, power W; decimals (loads, areas,
// multipliers) are strings so they stay exact. Struct tags drive the
// OpenAPI document: `doc` describes a field, `enum` lists its values.

// Page is the envelope of every list: items and, when there may be more,
// the cursor to pass as ?cursor= for the next page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty" doc:"pass as ?cursor= to get the next page; absent on the last page"`
}

type addressDTO struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country,omitempty" doc:"ISO 3166 alpha-2; default IN"`
}

func (a *addressDTO) domain() *account.Address {
	if a == nil {
		return nil
	}
	return &account.Address{Line1: a.Line1, Line2: a.Line2, City: a.City, State: a.State, PostalCode: a.PostalCode, Country: a.Country}
}

func addressOf(a *account.Address) *addressDTO {
	if a == nil {
		return nil
	}
	return &addressDTO{Line1: a.Line1, Line2: a.Line2, City: a.City, State: a.State, PostalCode: a.PostalCode, Country: a.Country}
}

// --- accounts and sessions

type registerRequest struct {
	Tenant   string      `json:"tenant,omitempty" doc:"utility code; the server's default utility when absent"`
	Email    string      `json:"email"`
	Password string      `json:"password" doc:"10 to 128 characters, not a common password, not containing the email name"`
	Name     string      `json:"name"`
	Phone    string      `json:"phone,omitempty"`
	Address  *addressDTO `json:"address,omitempty"`
}

type userDTO struct {
	ID            int64      `json:"id"`
	TenantID      int64      `json:"tenant_id"`
	Email         string     `json:"email"`
	Role          string     `json:"role" enum:"consumer,official,support,admin"`
	Department    string     `json:"department,omitempty"`
	Status        string     `json:"status" enum:"active,suspended"`
	EmailVerified bool       `json:"email_verified"`
	TOTPEnabled   bool       `json:"totp_enabled"`
	LockedUntil   *time.Time `json:"locked_until,omitempty"`
	LastLoginAt   *time.Time `json:"last_login_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

func userOf(u account.User) userDTO {
	d := userDTO{ID: u.ID, TenantID: u.TenantID, Email: u.Email, Role: string(u.Role), Department: u.Department,
		Status: string(u.Status), EmailVerified: u.EmailVerifiedAt != nil, TOTPEnabled: u.TOTPEnabled,
		LastLoginAt: utcPtr(u.LastLoginAt), CreatedAt: u.CreatedAt.UTC()}
	if u.LockedUntil != nil && u.LockedUntil.After(time.Now()) {
		d.LockedUntil = utcPtr(u.LockedUntil)
	}
	return d
}

type registerResponse struct {
	User    userDTO `json:"user"`
	Message string  `json:"message"`
}

type loginRequest struct {
	Tenant   string `json:"tenant,omitempty"`
	Email    string `json:"email"`
	Password string `json:"password"`
	TOTPCode string `json:"totp_code,omitempty" doc:"six-digit code, required when the account has a second factor"`
}

type sessionDTO struct {
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type" enum:"Bearer"`
	ExpiresIn        int64     `json:"expires_in" doc:"seconds until the access token expires"`
	ExpiresAt        time.Time `json:"expires_at"`
	RefreshToken     string    `json:"refresh_token" doc:"single use: each refresh returns a new one; reusing an old one ends the session"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
	User             userDTO   `json:"user"`
}

func sessionOf(s account.Session, now time.Time) sessionDTO {
	return sessionDTO{AccessToken: s.AccessToken, TokenType: "Bearer", ExpiresIn: int64(s.AccessExpires.Sub(now).Round(time.Second).Seconds()),
		ExpiresAt: s.AccessExpires.UTC(), RefreshToken: s.RefreshToken, RefreshExpiresAt: s.RefreshExpires.UTC(), User: userOf(s.User)}
}

type authenticateRequest struct {
	Username string `json:"username" doc:"the account's email address"`
	Password string `json:"password"`
	Tenant   string `json:"tenant,omitempty"`
	TOTPCode string `json:"totp_code,omitempty"`
}

type authenticateResponse struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type" enum:"Bearer"`
	ExpiresIn int64  `json:"expires_in"`
}

type helloResponse struct {
	Message string `json:"message"`
	UserID  int64  `json:"user_id"`
	Role    string `json:"role"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type tokenRequest struct {
	Token string `json:"token"`
}

type resendRequest struct {
	Tenant string `json:"tenant,omitempty"`
	Email  string `json:"email"`
}

type messageResponse struct {
	Message string `json:"message"`
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

type totpSetupResponse struct {
	Secret     string `json:"secret" doc:"base32 secret for authenticator apps"`
	OTPAuthURI string `json:"otpauth_uri"`
}

type totpCodeRequest struct {
	Code string `json:"code"`
}

type totpDisableRequest struct {
	Password string `json:"password"`
	Code     string `json:"code"`
}

// --- profiles

type profileDTO struct {
	UserID    int64       `json:"user_id"`
	Name      string      `json:"name"`
	Email     string      `json:"email,omitempty"`
	Phone     string      `json:"phone,omitempty"`
	Address   *addressDTO `json:"address,omitempty"`
	UpdatedAt time.Time   `json:"updated_at"`
}

func profileOf(p account.Profile) profileDTO {
	return profileDTO{UserID: p.UserID, Name: p.Name, Email: p.Email, Phone: p.Phone, Address: addressOf(p.Address), UpdatedAt: p.UpdatedAt.UTC()}
}

type profileRequest struct {
	Name    string      `json:"name"`
	Email   string      `json:"email,omitempty" doc:"contact email (the login email is separate)"`
	Phone   string      `json:"phone,omitempty"`
	Address *addressDTO `json:"address,omitempty"`
}

// --- properties, connections, meters

type roadCuttingDTO struct {
	RoadType string          `json:"road_type"`
	AreaM2   decimal.Decimal `json:"area_m2"`
}

type connectionRequest struct {
	Service          string           `json:"service,omitempty" enum:"electricity,water,sewerage" doc:"default electricity"`
	ConsumerCode     string           `json:"consumer_code,omitempty" doc:"staff only; generated when absent"`
	MeterNumber      string           `json:"meter_number,omitempty" doc:"the serial printed on the meter; required for metered electricity"`
	TariffPlan       string           `json:"tariff_plan,omitempty"`
	ConnectionType   string           `json:"connection_type,omitempty" enum:"Metered,Non Metered"`
	SanctionedLoadKW *decimal.Decimal `json:"sanctioned_load_kw,omitempty"`
	UsageCategory    string           `json:"usage_category,omitempty" doc:"e.g. RESIDENTIAL, NONRESIDENTIAL.COMMERCIAL"`
	WaterClosets     *int             `json:"water_closets,omitempty"`
	Toilets          *int             `json:"toilets,omitempty"`
	RoadCutting      []roadCuttingDTO `json:"road_cutting,omitempty"`
	PlotSizeM2       *decimal.Decimal `json:"plot_size_m2,omitempty"`
}

func (c connectionRequest) domain() account.ConnectionInput {
	in := account.ConnectionInput{Service: account.ServiceType(c.Service), ConsumerCode: c.ConsumerCode, MeterNumber: c.MeterNumber,
		TariffPlan: c.TariffPlan, ConnectionType: c.ConnectionType, SanctionedLoadKW: c.SanctionedLoadKW,
		UsageCategory: c.UsageCategory, WaterClosets: c.WaterClosets, Toilets: c.Toilets, PlotSizeM2: c.PlotSizeM2}
	for _, rc := range c.RoadCutting {
		in.RoadCutting = append(in.RoadCutting, account.RoadCutting{RoadType: rc.RoadType, AreaM2: rc.AreaM2})
	}
	return in
}

// propertyRequest adds a property. The requirement's flat form (address,
// meter_number, tariff_plan …) describes its electricity connection; or
// list the connections explicitly.
type propertyRequest struct {
	UserID      int64               `json:"user_id,omitempty" doc:"staff adding a property for a consumer"`
	Label       string              `json:"label,omitempty"`
	Address     addressDTO          `json:"address"`
	Connections []connectionRequest `json:"connections,omitempty"`
	connectionRequest
}

type installationDTO struct {
	ID              int64      `json:"id"`
	MeterID         int64      `json:"meter_id"`
	ExternalID      string     `json:"external_id"`
	Serial          string     `json:"serial"`
	InstalledAt     time.Time  `json:"installed_at"`
	RemovedAt       *time.Time `json:"removed_at,omitempty"`
	InitialImportWh *int64     `json:"initial_import_wh,omitempty"`
	FinalImportWh   *int64     `json:"final_import_wh,omitempty"`
	Reason          string     `json:"reason" enum:"new,replacement,reconnection"`
	RemovalReason   string     `json:"removal_reason,omitempty"`
}

func installationOf(i *account.Installation) *installationDTO {
	if i == nil {
		return nil
	}
	return &installationDTO{ID: i.ID, MeterID: i.MeterID, ExternalID: i.MeterExternalID, Serial: i.MeterSerial,
		InstalledAt: i.InstalledAt.UTC(), RemovedAt: utcPtr(i.RemovedAt), InitialImportWh: i.InitialImportWh,
		FinalImportWh: i.FinalImportWh, Reason: i.Reason, RemovalReason: i.RemovalReason}
}

type connectionDTO struct {
	ID               int64            `json:"id"`
	PropertyID       int64            `json:"property_id"`
	UserID           int64            `json:"user_id"`
	Service          string           `json:"service" enum:"electricity,water,sewerage"`
	ConsumerCode     string           `json:"consumer_code"`
	Status           string           `json:"status" enum:"pending,active,disconnected,closed"`
	TariffPlan       string           `json:"tariff_plan,omitempty"`
	ConnectionType   string           `json:"connection_type" enum:"Metered,Non Metered"`
	MeterNumber      string           `json:"meter_number,omitempty"`
	SanctionedLoadKW *decimal.Decimal `json:"sanctioned_load_kw,omitempty"`
	UsageCategory    string           `json:"usage_category,omitempty"`
	BuildingType     string           `json:"building_type,omitempty"`
	WaterClosets     *int             `json:"water_closets,omitempty"`
	Toilets          *int             `json:"toilets,omitempty"`
	RoadCutting      []roadCuttingDTO `json:"road_cutting"`
	PlotSizeM2       *decimal.Decimal `json:"plot_size_m2,omitempty"`
	ConnectedAt      time.Time        `json:"connected_at"`
	DisconnectedAt   *time.Time       `json:"disconnected_at,omitempty"`
	Meter            *installationDTO `json:"meter" doc:"the meter installed now; null when none"`
}

func connectionOf(c account.Connection) connectionDTO {
	d := connectionDTO{ID: c.ID, PropertyID: c.PropertyID, UserID: c.UserID, Service: string(c.Service), ConsumerCode: c.ConsumerCode,
		Status: string(c.Status), TariffPlan: c.TariffPlan, ConnectionType: c.ConnectionType, MeterNumber: c.MeterNumber,
		SanctionedLoadKW: c.SanctionedLoadKW, UsageCategory: c.UsageCategory, BuildingType: c.BuildingType,
		WaterClosets: c.WaterClosets, Toilets: c.Toilets, RoadCutting: []roadCuttingDTO{}, PlotSizeM2: c.PlotSizeM2,
		ConnectedAt: c.ConnectedAt.UTC(), DisconnectedAt: utcPtr(c.DisconnectedAt), Meter: installationOf(c.Meter)}
	for _, rc := range c.RoadCutting {
		d.RoadCutting = append(d.RoadCutting, roadCuttingDTO{RoadType: rc.RoadType, AreaM2: rc.AreaM2})
	}
	return d
}

type propertyDTO struct {
	ID          int64           `json:"id"`
	UserID      int64           `json:"user_id"`
	Label       string          `json:"label,omitempty"`
	Address     addressDTO      `json:"address"`
	Connections []connectionDTO `json:"connections"`
	CreatedAt   time.Time       `json:"created_at"`
}

func propertyOf(p account.Property) propertyDTO {
	d := propertyDTO{ID: p.ID, UserID: p.UserID, Label: p.Label, Address: *addressOf(&p.Address), Connections: []connectionDTO{}, CreatedAt: p.CreatedAt.UTC()}
	for _, c := range p.Connections {
		d.Connections = append(d.Connections, connectionOf(c))
	}
	return d
}

type connectionPatchRequest struct {
	Status           *string           `json:"status,omitempty" enum:"pending,active,disconnected,closed"`
	TariffPlan       *string           `json:"tariff_plan,omitempty"`
	ConnectionType   *string           `json:"connection_type,omitempty" enum:"Metered,Non Metered"`
	SanctionedLoadKW *decimal.Decimal  `json:"sanctioned_load_kw,omitempty"`
	UsageCategory    *string           `json:"usage_category,omitempty"`
	WaterClosets     *int              `json:"water_closets,omitempty"`
	Toilets          *int              `json:"toilets,omitempty"`
	RoadCutting      *[]roadCuttingDTO `json:"road_cutting,omitempty"`
	PlotSizeM2       *decimal.Decimal  `json:"plot_size_m2,omitempty"`
}

type installRequest struct {
	MeterID         int64      `json:"meter_id"`
	InstalledAt     *time.Time `json:"installed_at,omitempty" doc:"default now"`
	InitialImportWh *int64     `json:"initial_import_wh,omitempty"`
	InitialExportWh *int64     `json:"initial_export_wh,omitempty"`
	FinalImportWh   *int64     `json:"final_import_wh,omitempty" doc:"register of the meter being replaced"`
	FinalExportWh   *int64     `json:"final_export_wh,omitempty"`
	RemovalReason   string     `json:"removal_reason,omitempty" enum:"replaced,faulty"`
}

type meterRequest struct {
	ExternalID        string           `json:"external_id" doc:"reference in MQTT topics and payloads"`
	Serial            string           `json:"serial" doc:"printed on the meter; consumers register it as the meter number"`
	Model             string           `json:"model"`
	Protocol          string           `json:"protocol" enum:"mqtt,modbus,manual"`
	Settings          map[string]any   `json:"settings,omitempty" doc:"mqtt: {format}; modbus: {address, unit_id, map}"`
	Multiplier        *decimal.Decimal `json:"multiplier,omitempty" doc:"CT/PT ratio, default 1"`
	ExpectedIntervalS int              `json:"expected_interval_s,omitempty" doc:"seconds between readings, default 900"`
}

type meterDTO struct {
	ID                int64           `json:"id"`
	ExternalID        string          `json:"external_id"`
	Serial            string          `json:"serial"`
	Model             string          `json:"model"`
	Protocol          string          `json:"protocol" enum:"mqtt,modbus,manual"`
	Settings          json.RawMessage `json:"settings"`
	Multiplier        decimal.Decimal `json:"multiplier"`
	ExpectedIntervalS int64           `json:"expected_interval_s"`
	HasMQTTSecret     bool            `json:"has_mqtt_secret"`
	InstalledAt       time.Time       `json:"installed_at"`
	RemovedAt         *time.Time      `json:"removed_at,omitempty"`
	ConnectionID      *int64          `json:"connection_id" doc:"the connection it is installed on now; null when none"`
}

func meterOf(m account.Meter) meterDTO {
	d := meterDTO{ID: m.ID, ExternalID: m.ExternalID, Serial: m.Serial, Model: m.Model, Protocol: string(m.Protocol),
		Settings: m.Settings, Multiplier: m.Multiplier, ExpectedIntervalS: int64(m.ExpectedInterval.Seconds()),
		HasMQTTSecret: m.HasMQTTSecret, InstalledAt: m.InstalledAt.UTC(), RemovedAt: utcPtr(m.RemovedAt)}
	if len(d.Settings) == 0 {
		d.Settings = json.RawMessage("{}")
	}
	if m.Installation != nil {
		id := m.Installation.ConnectionID
		d.ConnectionID = &id
	}
	return d
}

type credentialsDTO struct {
	Username string `json:"username"`
	Password string `json:"password" doc:"shown once; only its SHA-256 is stored"`
	Topic    string `json:"topic"`
}

type provisionedDTO struct {
	Meter       meterDTO        `json:"meter"`
	Credentials *credentialsDTO `json:"mqtt_credentials,omitempty" doc:"MQTT meters only; shown once"`
}

// --- usage

type readingDTO struct {
	Time        time.Time `json:"ts"`
	ReceivedAt  time.Time `json:"received_at"`
	ImportWh    *int64    `json:"import_wh" doc:"import register in the meter's unit (see unit): Wh, or litres for a water meter"`
	ExportWh    *int64    `json:"export_wh" doc:"export register in the meter's unit"`
	PowerW      *float64  `json:"power_w"`
	VoltageV    *float64  `json:"voltage_v"`
	CurrentA    *float64  `json:"current_a"`
	FrequencyHz *float64  `json:"frequency_hz"`
	PowerFactor *float64  `json:"power_factor"`
	Source      string    `json:"source"`
}

type liveDTO struct {
	MeterID       int64       `json:"meter_id"`
	ExternalID    string      `json:"external_id"`
	Serial        string      `json:"serial"`
	MeterKind     string      `json:"meter_kind" enum:"electricity,water" doc:"what the meter measures"`
	Unit          string      `json:"unit" enum:"Wh,L" doc:"unit of the reading's registers: Wh, or litres for a water meter"`
	ConnectionID  *int64      `json:"connection_id"`
	PropertyID    *int64      `json:"property_id"`
	ConsumerCode  string      `json:"consumer_code,omitempty"`
	Status        string      `json:"status" enum:"online,offline,never_reported"`
	AgeSeconds    *int64      `json:"age_seconds" doc:"seconds since the latest reading's source time"`
	LastSeen      *time.Time  `json:"last_seen"`
	CurrentPowerW *float64    `json:"current_power_w"`
	Reading       *readingDTO `json:"reading"`
}

func liveOf(l usage.Live) liveDTO {
	d := liveDTO{MeterID: l.MeterID, ExternalID: l.ExternalID, Serial: l.Serial, MeterKind: l.Kind.String(), Unit: l.Kind.Unit(), ConsumerCode: l.ConsumerCode,
		Status: string(l.Liveness), LastSeen: utcPtr(l.LastSeen)}
	if l.ConnectionID != 0 {
		c, p := l.ConnectionID, l.PropertyID
		d.ConnectionID, d.PropertyID = &c, &p
	}
	if r := l.Latest; r != nil {
		age := int64(l.Age.Seconds())
		d.AgeSeconds = &age
		d.CurrentPowerW = r.PowerW
		d.Reading = &readingDTO{Time: r.Time, ReceivedAt: r.ReceivedAt, ImportWh: r.ImportWh, ExportWh: r.ExportWh, PowerW: r.PowerW,
			VoltageV: r.VoltageV, CurrentA: r.CurrentA, FrequencyHz: r.FrequencyHz, PowerFactor: r.PowerFactor, Source: r.Source}
	}
	return d
}

type manualReadingRequest struct {
	MeterID      int64      `json:"meter_id,omitempty"`
	ConnectionID int64      `json:"connection_id,omitempty" doc:"the connection's meter at ts; give this or meter_id"`
	Time         *time.Time `json:"ts,omitempty" doc:"when the register was read; default now"`
	ImportWh     *int64     `json:"import_wh"`
	ExportWh     *int64     `json:"export_wh,omitempty"`
	Reset        bool       `json:"reset,omitempty" doc:"staff only: the register was reset before this reading"`
}

type manualReadingDTO struct {
	MeterID       int64     `json:"meter_id"`
	ConnectionID  *int64    `json:"connection_id"`
	Time          time.Time `json:"ts"`
	ImportWh      int64     `json:"import_wh"`
	ExportWh      *int64    `json:"export_wh"`
	Reset         bool      `json:"reset"`
	Source        string    `json:"source" enum:"manual"`
	ConsumptionWh int64     `json:"consumption_wh" doc:"energy since the previous reading"`
}

type pointDTO struct {
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	ConsumptionWh int64     `json:"consumption_wh"`
	ExportWh      int64     `json:"export_wh"`
	AvgPowerW     *float64  `json:"avg_power_w"`
	MaxPowerW     *float64  `json:"max_power_w"`
	LastImportWh  *int64    `json:"last_import_wh"`
	Samples       int64     `json:"samples"`
}

type historyDTO struct {
	ConnectionID       *int64     `json:"connection_id"`
	MeterIDs           []int64    `json:"meter_ids"`
	Granularity        string     `json:"granularity" enum:"hour,day,month"`
	From               time.Time  `json:"from"`
	To                 time.Time  `json:"to"`
	TimeZone           string     `json:"time_zone"`
	MeterKind          string     `json:"meter_kind" enum:"electricity,water" doc:"what the meters measure"`
	Unit               string     `json:"unit" enum:"Wh,L" doc:"unit of the *_wh amounts: Wh, or litres for water meters"`
	TotalConsumptionWh int64      `json:"total_consumption_wh"`
	TotalExportWh      int64      `json:"total_export_wh"`
	Points             []pointDTO `json:"points"`
}

func historyOf(s usage.Series) historyDTO {
	d := historyDTO{MeterIDs: s.MeterIDs, Granularity: string(s.Granularity), From: s.From.UTC(), To: s.To.UTC(), TimeZone: s.TimeZone,
		MeterKind: s.Kind.String(), Unit: s.Kind.Unit(),
		TotalConsumptionWh: s.ConsumptionWh, TotalExportWh: s.ExportWh, Points: make([]pointDTO, len(s.Points))}
	if d.MeterIDs == nil {
		d.MeterIDs = []int64{}
	}
	if s.ConnectionID != 0 {
		c := s.ConnectionID
		d.ConnectionID = &c
	}
	for i, p := range s.Points {
		d.Points[i] = pointDTO{Start: p.Start.UTC(), End: p.End.UTC(), ConsumptionWh: p.ConsumptionWh, ExportWh: p.ExportWh,
			AvgPowerW: p.AvgPowerW, MaxPowerW: p.MaxPowerW, LastImportWh: p.LastImportWh, Samples: p.Samples}
	}
	return d
}

// --- support desk

type ticketRequest struct {
	UserID       int64  `json:"user_id,omitempty" doc:"staff raising a ticket for a consumer"`
	Category     string `json:"category" enum:"billing,payment,meter,connection,outage,usage,account,other"`
	Priority     string `json:"priority,omitempty" enum:"low,normal,high,urgent" doc:"default normal"`
	Subject      string `json:"subject,omitempty" doc:"default: the first line of the description"`
	Description  string `json:"description"`
	PropertyID   int64  `json:"property_id,omitempty"`
	ConnectionID int64  `json:"connection_id,omitempty"`
}

type ticketDTO struct {
	ID              int64      `json:"id"`
	UserID          int64      `json:"user_id"`
	Category        string     `json:"category"`
	Priority        string     `json:"priority" enum:"low,normal,high,urgent"`
	Subject         string     `json:"subject"`
	Description     string     `json:"description"`
	PropertyID      *int64     `json:"property_id"`
	ConnectionID    *int64     `json:"connection_id"`
	Status          string     `json:"status" enum:"open,assigned,in_progress,resolved,closed"`
	AssignedStaffID *int64     `json:"assigned_staff_id"`
	AssigneeName    string     `json:"assignee_name,omitempty"`
	AwaitingStaff   bool       `json:"awaiting_staff" doc:"no staff member was available; queued until one is"`
	QueuedSince     *time.Time `json:"queued_since,omitempty"`
	SLADueAt        time.Time  `json:"sla_due_at"`
	SLABreached     bool       `json:"sla_breached"`
	FirstResponseAt *time.Time `json:"first_response_at,omitempty"`
	ResolvedAt      *time.Time `json:"resolved_at,omitempty"`
	ClosedAt        *time.Time `json:"closed_at,omitempty"`
	ReopenCount     int        `json:"reopen_count"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

func idPtr(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func ticketOf(t support.Ticket, now time.Time) ticketDTO {
	return ticketDTO{ID: t.ID, UserID: t.UserID, Category: t.Category, Priority: string(t.Priority), Subject: t.Subject,
		Description: t.Description, PropertyID: idPtr(t.PropertyID), ConnectionID: idPtr(t.ConnectionID), Status: string(t.Status),
		AssignedStaffID: idPtr(t.AssignedStaffID), AssigneeName: t.AssigneeName, AwaitingStaff: t.AwaitingStaff,
		QueuedSince: utcPtr(t.QueuedSince), SLADueAt: t.SLADueAt.UTC(), SLABreached: t.SLABreached(now),
		FirstResponseAt: utcPtr(t.FirstResponseAt), ResolvedAt: utcPtr(t.ResolvedAt), ClosedAt: utcPtr(t.ClosedAt),
		ReopenCount: t.ReopenCount, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

type commentDTO struct {
	ID         int64     `json:"id"`
	AuthorID   int64     `json:"author_id"`
	AuthorName string    `json:"author_name,omitempty"`
	AuthorRole string    `json:"author_role" enum:"consumer,official,support,admin"`
	Body       string    `json:"body"`
	Internal   bool      `json:"internal"`
	CreatedAt  time.Time `json:"created_at"`
}

func commentOf(c support.Comment) commentDTO {
	return commentDTO{ID: c.ID, AuthorID: c.AuthorID, AuthorName: c.AuthorName, AuthorRole: string(c.AuthorRole), Body: c.Body,
		Internal: c.Internal, CreatedAt: c.CreatedAt.UTC()}
}

type eventDTO struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	ActorID *int64    `json:"actor_id" doc:"null: the system (automatic assignment)"`
	Kind    string    `json:"kind" enum:"created,queued,assigned,status_changed,reopened,commented,priority_changed"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Note    string    `json:"note,omitempty"`
}

type ticketDetailDTO struct {
	ticketDTO
	Comments []commentDTO `json:"comments"`
	Timeline []eventDTO   `json:"timeline"`
}

func ticketDetailOf(d support.Detail, now time.Time) ticketDetailDTO {
	out := ticketDetailDTO{ticketDTO: ticketOf(d.Ticket, now), Comments: []commentDTO{}, Timeline: []eventDTO{}}
	for _, c := range d.Comments {
		out.Comments = append(out.Comments, commentOf(c))
	}
	for _, e := range d.Timeline {
		out.Timeline = append(out.Timeline, eventDTO{ID: e.ID, At: e.At.UTC(), ActorID: idPtr(e.ActorID), Kind: e.Kind,
			From: string(e.From), To: string(e.To), Note: e.Note})
	}
	return out
}

type commentRequest struct {
	Body     string `json:"body"`
	Internal bool   `json:"internal,omitempty" doc:"staff only: a note the consumer never sees"`
}

type statusRequest struct {
	Status string `json:"status" enum:"in_progress,resolved,closed,open" doc:"open reopens a resolved or closed ticket"`
	Note   string `json:"note,omitempty" doc:"required when resolving and when a consumer reopens"`
}

type assignRequest struct {
	StaffID int64  `json:"staff_id"`
	Note    string `json:"note,omitempty"`
}

type staffDTO struct {
	UserID         int64      `json:"user_id"`
	Name           string     `json:"name,omitempty"`
	Email          string     `json:"email"`
	Skills         []string   `json:"skills"`
	Available      bool       `json:"available"`
	MaxOpen        int        `json:"max_open"`
	OpenTickets    int        `json:"open_tickets"`
	LastAssignedAt *time.Time `json:"last_assigned_at,omitempty"`
}

func staffOf(s support.Staff) staffDTO {
	d := staffDTO{UserID: s.UserID, Name: s.Name, Email: s.Email, Skills: s.Skills, Available: s.Available, MaxOpen: s.MaxOpen,
		OpenTickets: s.OpenTickets, LastAssignedAt: utcPtr(s.LastAssignedAt)}
	if d.Skills == nil {
		d.Skills = []string{}
	}
	return d
}

type staffRequest struct {
	Skills    *[]string `json:"skills,omitempty"`
	Available *bool     `json:"available,omitempty"`
	MaxOpen   *int      `json:"max_open,omitempty" doc:"administrators only"`
}

// --- reminders

type reminderRequest struct {
	BillID     int64  `json:"bill_id,omitempty" doc:"one bill; absent for all bills"`
	DaysBefore int    `json:"days_before" doc:"1 to 60 days before the due date"`
	Channel    string `json:"channel" enum:"email,sms,push"`
	Enabled    *bool  `json:"enabled,omitempty" doc:"default true"`
}

type reminderDTO struct {
	ID         int64     `json:"id"`
	BillID     *int64    `json:"bill_id" doc:"null: all bills"`
	DaysBefore int       `json:"days_before"`
	Channel    string    `json:"channel" enum:"email,sms,push"`
	Enabled    bool      `json:"enabled"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func reminderOf(r account.Reminder) reminderDTO {
	return reminderDTO{ID: r.ID, BillID: idPtr(r.BillID), DaysBefore: r.DaysBefore, Channel: r.Channel, Enabled: r.Enabled, UpdatedAt: r.UpdatedAt.UTC()}
}

// --- administration

type createUserRequest struct {
	Email      string `json:"email"`
	Password   string `json:"password"`
	Role       string `json:"role" enum:"consumer,official,support,admin"`
	Department string `json:"department,omitempty" doc:"required for officials"`
	Name       string `json:"name"`
}

type userPatchRequest struct {
	Status     *string `json:"status,omitempty" enum:"active,suspended"`
	Role       *string `json:"role,omitempty" enum:"consumer,official,support,admin"`
	Department *string `json:"department,omitempty"`
	Unlock     bool    `json:"unlock,omitempty" doc:"clear failed logins and any lockout"`
}

type auditDTO struct {
	ID          int64          `json:"id"`
	At          time.Time      `json:"at"`
	ActorUserID *int64         `json:"actor_user_id"`
	ActorRole   string         `json:"actor_role"`
	Action      string         `json:"action"`
	EntityType  string         `json:"entity_type"`
	EntityID    string         `json:"entity_id"`
	Before      map[string]any `json:"before"`
	After       map[string]any `json:"after"`
	Address     string         `json:"address,omitempty"`
	RequestID   string         `json:"request_id,omitempty"`
}

func auditOf(e audit.Entry) auditDTO {
	return auditDTO{ID: e.ID, At: e.At.UTC(), ActorUserID: idPtr(e.ActorUserID), ActorRole: e.ActorRole, Action: e.Action,
		EntityType: e.EntityType, EntityID: e.EntityID, Before: e.Before, After: e.After, Address: e.Address, RequestID: e.RequestID}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
