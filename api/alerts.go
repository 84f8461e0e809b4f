package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/notify"
	"github.com/meterd/meterd/alerts/reminder"
	"github.com/meterd/meterd/alerts/template"
	"github.com/meterd/meterd/api/account"
)

// Notifications is what the alert and notification routes call: alerts
// and their lifecycle, notifications with their delivery status and dead
// letters, preferences, push devices, and the staff's thresholds,
// reminder policy, templates and branding. alerts/service implements it;
// when Services.Notifications is nil these routes are not mounted.
type Notifications interface {
	Alerts(ctx context.Context, f alerts.AlertFilter) ([]alerts.Alert, error)
	// Alert returns one alert; userID (when not 0) limits it to that
	// consumer's. Missing: alerts.ErrAlertNotFound.
	Alert(ctx context.Context, tenantID, userID, id int64) (alerts.Alert, error)
	TransitionAlert(ctx context.Context, tenantID, userID, id int64, to alerts.Status, note string, a alerts.Actor) (alerts.Alert, error)
	Notifications(ctx context.Context, tenantID, userID int64, f alerts.NotificationFilter) ([]alerts.Notification, error)
	Notification(ctx context.Context, tenantID, userID, id int64) (alerts.Notification, error)
	RetryNotification(ctx context.Context, tenantID, id int64, a alerts.Actor) (int, error)
	Preferences(ctx context.Context, tenantID, userID int64) ([]alerts.Preference, error)
	SetPreference(ctx context.Context, tenantID, userID int64, p alerts.Preference, a alerts.Actor) error
	RegisterDevice(ctx context.Context, tenantID, userID int64, platform, label, token string) (alerts.Device, error)
	Devices(ctx context.Context, tenantID, userID int64) ([]alerts.Device, error)
	RemoveDevice(ctx context.Context, tenantID, userID, id int64) error
	ReminderPolicy(ctx context.Context, tenantID int64) (reminder.Policy, error)
	SetReminderPolicy(ctx context.Context, tenantID int64, p reminder.Policy, a alerts.Actor) error
	Thresholds(ctx context.Context, tenantID int64) ([]alerts.Threshold, error)
	SetThreshold(ctx context.Context, tenantID int64, t alerts.Threshold, a alerts.Actor) error
	Templates(ctx context.Context, tenantID int64) ([]alerts.TemplateOverride, error)
	SetTemplate(ctx context.Context, tenantID int64, t alerts.TemplateOverride, a alerts.Actor) error
	Preview(event, locale, source string) (template.Rendered, error)
	Branding(ctx context.Context, tenantID int64) (notify.Branding, error)
	SetBranding(ctx context.Context, tenantID int64, b notify.Branding, a alerts.Actor) error
}

var (
	alertStaff         = []account.Role{account.RoleOfficial, account.RoleSupport, account.RoleAdmin}
	thresholdOfficials = []string{account.DepartmentMetering, account.DepartmentBilling}
)

// alertRoutes are the permission table's rows for alerts and
// notifications. Static paths come before the ones with an id.
func (h *handlers) alertRoutes() []Route {
	ok := func(status int, body any) []Response { return []Response{{Status: status, Body: body}} }
	return []Route{
		{Method: http.MethodGet, Path: "/api/alerts/thresholds", Summary: "Consumption thresholds per tariff plan (AbnormalUsage)", Tag: "alerts",
			Roles: staff, Owner: account.OwnerTenant, Responses: ok(200, Page[thresholdDTO]{}), Handler: h.listThresholds},
		{Method: http.MethodPut, Path: "/api/alerts/thresholds", Summary: "Set a tariff plan's consumption thresholds (0 and 0 removes them)", Tag: "alerts",
			Roles: officials, Departments: thresholdOfficials, Owner: account.OwnerTenant, Body: thresholdDTO{}, Responses: ok(200, thresholdDTO{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.setThreshold},
		{Method: http.MethodGet, Path: "/api/alerts", Summary: "Abnormal-usage alerts, newest first (own; staff: the tenant's)", Tag: "alerts",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: alertsQuery{}, Responses: ok(200, Page[alertDTO]{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.listAlerts},
		{Method: http.MethodGet, Path: "/api/alerts/:alertId", Summary: "An alert with its evidence", Tag: "alerts",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, alertDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.getAlert},
		{Method: http.MethodPost, Path: "/api/alerts/:alertId/acknowledge", Summary: "Acknowledge an alert", Tag: "alerts",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Body: noteRequest{}, Responses: ok(200, alertDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindConflict}, Handler: h.transitionAlert(alerts.StatusAcknowledged)},
		{Method: http.MethodPost, Path: "/api/alerts/:alertId/resolve", Summary: "Resolve an alert (staff)", Tag: "alerts",
			Roles: alertStaff, Owner: account.OwnerTenant, Body: noteRequest{}, Responses: ok(200, alertDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindConflict}, Handler: h.transitionAlert(alerts.StatusResolved)},

		{Method: http.MethodGet, Path: "/api/notifications", Summary: "Notifications with their delivery status, newest first (own; staff: the tenant's; status=dead: dead letters)", Tag: "notifications",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: notificationsQuery{}, Responses: ok(200, Page[notificationDTO]{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.listNotifications},
		{Method: http.MethodGet, Path: "/api/notifications/preferences", Summary: "The caller's notification preferences", Tag: "notifications",
			Roles: everyone, Owner: account.OwnerSelf, Responses: ok(200, Page[preferenceDTO]{}), Handler: h.getPreferences},
		{Method: http.MethodPut, Path: "/api/notifications/preferences", Summary: "Set channels, quiet hours or locale, for one event or all (event *)", Tag: "notifications",
			Roles: everyone, Owner: account.OwnerSelf, Body: preferenceDTO{}, Responses: ok(200, Page[preferenceDTO]{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.setPreference},
		{Method: http.MethodGet, Path: "/api/notifications/devices", Summary: "The caller's push devices", Tag: "notifications",
			Roles: everyone, Owner: account.OwnerSelf, Responses: ok(200, Page[deviceDTO]{}), Handler: h.listDevices},
		{Method: http.MethodPost, Path: "/api/notifications/devices", Summary: "Register a push device (FCM registration token, stored encrypted)", Tag: "notifications",
			Roles: everyone, Owner: account.OwnerSelf, Body: deviceRequest{}, Responses: ok(201, deviceDTO{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.registerDevice},
		{Method: http.MethodDelete, Path: "/api/notifications/devices/:deviceId", Summary: "Remove a push device", Tag: "notifications",
			Roles: everyone, Owner: account.OwnerSelf, Responses: []Response{{Status: 204}},
			Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.removeDevice},
		{Method: http.MethodGet, Path: "/api/notifications/policy", Summary: "The reminder and escalation policy", Tag: "notifications",
			Roles: staff, Owner: account.OwnerTenant, Responses: ok(200, policyDTO{}), Handler: h.getPolicy},
		{Method: http.MethodPut, Path: "/api/notifications/policy", Summary: "Set the reminder and escalation policy", Tag: "notifications",
			Roles: officials, Departments: officialsBilling, Owner: account.OwnerTenant, Body: policyDTO{}, Responses: ok(200, policyDTO{}),
			Problems: []Kind{KindInvalidInput, KindReminderSetting}, Handler: h.setPolicy},
		{Method: http.MethodGet, Path: "/api/notifications/templates", Summary: "The tenant's template overrides", Tag: "notifications",
			Roles: admins, Owner: account.OwnerTenant, Responses: ok(200, Page[templateDTO]{}), Handler: h.listTemplates},
		{Method: http.MethodPut, Path: "/api/notifications/templates", Summary: "Override an event's templates in a locale (empty source removes it)", Tag: "notifications",
			Roles: admins, Owner: account.OwnerTenant, Body: templateDTO{}, Responses: ok(200, renderedDTO{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.setTemplate},
		{Method: http.MethodGet, Path: "/api/notifications/branding", Summary: "The tenant's branding in messages", Tag: "notifications",
			Roles: admins, Owner: account.OwnerTenant, Responses: ok(200, brandingDTO{}), Handler: h.getBranding},
		{Method: http.MethodPut, Path: "/api/notifications/branding", Summary: "Set the tenant's branding in messages", Tag: "notifications",
			Roles: admins, Owner: account.OwnerTenant, Body: brandingDTO{}, Responses: ok(200, brandingDTO{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.setBranding},
		{Method: http.MethodGet, Path: "/api/notifications/:notificationId", Summary: "A notification's delivery status per channel, with every attempt", Tag: "notifications",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, notificationDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.getNotification},
		{Method: http.MethodPost, Path: "/api/notifications/:notificationId/retry", Summary: "Retry a notification's dead letters (after a provider outage)", Tag: "notifications",
			Roles: officials, Owner: account.OwnerTenant, Responses: ok(202, notificationDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindConflict}, Handler: h.retryNotification},
	}
}

// Query parameter documentation.
type (
	alertsQuery struct {
		pageQuery
		Status  string `query:"status" enum:"open,acknowledged,resolved,unresolved"`
		Kind    string `query:"kind" enum:"consumption_threshold,usage_deviation,stuck,tamper,silent,load_above_sanctioned"`
		MeterID int64  `query:"meter_id"`
	}
	notificationsQuery struct {
		pageQuery
		Status string `query:"status" enum:"pending,sending,sent,dead,cancelled" doc:"dead lists notifications with a dead delivery (dead letters)"`
		Event  string `query:"event"`
	}
)

// --- DTOs

type alertDTO struct {
	ID             int64          `json:"id"`
	MeterID        int64          `json:"meter_id"`
	MeterRef       string         `json:"meter_ref"`
	ConnectionID   int64          `json:"connection_id,omitempty"`
	ConsumerCode   string         `json:"consumer_code,omitempty"`
	UserID         int64          `json:"user_id,omitempty" doc:"the consumer who sees it"`
	Kind           string         `json:"kind" enum:"consumption_threshold,usage_deviation,stuck,tamper,silent,load_above_sanctioned"`
	Problem        string         `json:"problem,omitempty" doc:"/problems/AbnormalUsage for usage alerts (the requirement's AbnormalUsageException)"`
	Severity       string         `json:"severity" enum:"info,warning,critical"`
	Status         string         `json:"status" enum:"open,acknowledged,resolved"`
	Summary        string         `json:"summary"`
	Observed       float64        `json:"observed"`
	Expected       float64        `json:"expected"`
	Unit           string         `json:"unit"`
	Evidence       map[string]any `json:"evidence"`
	FirstSeenAt    time.Time      `json:"first_seen_at" doc:"data time of the first detection"`
	LastSeenAt     time.Time      `json:"last_seen_at" doc:"data time of the latest detection"`
	Occurrences    int            `json:"occurrences"`
	OpenedAt       time.Time      `json:"opened_at"`
	AcknowledgedAt *time.Time     `json:"acknowledged_at,omitempty"`
	AcknowledgedBy int64          `json:"acknowledged_by,omitempty"`
	ResolvedAt     *time.Time     `json:"resolved_at,omitempty"`
	ResolvedBy     int64          `json:"resolved_by,omitempty"`
	Resolution     string         `json:"resolution,omitempty" enum:"auto,manual"`
	Note           string         `json:"note,omitempty"`
}

func alertOf(a alerts.Alert) alertDTO {
	d := alertDTO{ID: a.ID, MeterID: a.MeterID, MeterRef: a.MeterRef, ConnectionID: a.ConnectionID, ConsumerCode: a.ConsumerCode, UserID: a.UserID,
		Kind: string(a.Kind), Severity: string(a.Severity), Status: string(a.Status), Summary: a.Summary, Observed: a.Observed, Expected: a.Expected,
		Unit: a.Unit, Evidence: a.Evidence, FirstSeenAt: a.FirstSeenAt.UTC(), LastSeenAt: a.LastSeenAt.UTC(), Occurrences: a.Occurrences,
		OpenedAt: a.OpenedAt.UTC(), AcknowledgedAt: a.AcknowledgedAt, AcknowledgedBy: a.AcknowledgedBy, ResolvedAt: a.ResolvedAt,
		ResolvedBy: a.ResolvedBy, Resolution: a.Resolution, Note: a.Note}
	if a.Kind.AbnormalUsage() {
		d.Problem = "/problems/" + KindAbnormalUsage.Code
	}
	if d.Evidence == nil {
		d.Evidence = map[string]any{}
	}
	return d
}

type noteRequest struct {
	Note string `json:"note,omitempty" doc:"at most 2000 characters"`
}

type thresholdDTO struct {
	Service    string     `json:"service" enum:"electricity,water,sewerage"`
	Plan       string     `json:"plan" doc:"a tariff plan, or * for the service's default"`
	DailyKWh   float64    `json:"daily_kwh" doc:"import per day above which usage is abnormal; 0: none"`
	MonthlyKWh float64    `json:"monthly_kwh" doc:"import per calendar month; 0: none"`
	UpdatedAt  *time.Time `json:"updated_at,omitempty"`
}

type attemptDTO struct {
	N          int       `json:"n"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Outcome    string    `json:"outcome" enum:"sent,retry,failed,reconciled"`
	Provider   string    `json:"provider"`
	Error      string    `json:"error,omitempty"`
}

type deliveryDTO struct {
	ID                int64        `json:"id"`
	UserID            int64        `json:"user_id,omitempty"`
	Channel           string       `json:"channel" enum:"email,sms,push"`
	Reason            string       `json:"reason" enum:"preference,forced,fallback,escalation"`
	Status            string       `json:"status" enum:"pending,queued,sending,sent,dead,cancelled"`
	Attempts          int          `json:"attempts"`
	MaxAttempts       int          `json:"max_attempts"`
	NextAttemptAt     *time.Time   `json:"next_attempt_at,omitempty"`
	InDoubt           bool         `json:"in_doubt" doc:"a worker died mid-attempt; the next one reconciles with the provider"`
	Provider          string       `json:"provider,omitempty"`
	ProviderMessageID string       `json:"provider_message_id,omitempty"`
	AddressHint       string       `json:"address_hint,omitempty" doc:"the address, masked"`
	DeferredReason    string       `json:"deferred_reason,omitempty" enum:"quiet_hours"`
	LastError         string       `json:"last_error,omitempty"`
	SentAt            *time.Time   `json:"sent_at,omitempty"`
	FinishedAt        *time.Time   `json:"finished_at,omitempty"`
	History           []attemptDTO `json:"history"`
}

type notificationDTO struct {
	ID         int64         `json:"id"`
	UserID     int64         `json:"user_id,omitempty"`
	Event      string        `json:"event"`
	Channel    string        `json:"channel,omitempty" doc:"forced by the producer; absent when preferences decided"`
	Status     string        `json:"status" enum:"pending,sending,sent,dead,cancelled"`
	Problem    string        `json:"problem,omitempty" doc:"/problems/NotificationSending when a delivery is a dead letter"`
	CreatedAt  time.Time     `json:"created_at"`
	SentAt     *time.Time    `json:"sent_at,omitempty"`
	LastError  string        `json:"last_error,omitempty"`
	Deliveries []deliveryDTO `json:"deliveries"`
}

func notificationOf(n alerts.Notification) notificationDTO {
	d := notificationDTO{ID: n.ID, UserID: n.UserID, Event: n.Event, Channel: string(n.Channel), Status: n.Status, CreatedAt: n.CreatedAt.UTC(),
		SentAt: n.SentAt, LastError: n.LastError, Deliveries: make([]deliveryDTO, 0, len(n.Deliveries))}
	for _, x := range n.Deliveries {
		dd := deliveryDTO{ID: x.ID, UserID: x.UserID, Channel: string(x.Channel), Reason: x.Reason, Status: string(x.Status), Attempts: x.Attempts,
			MaxAttempts: x.MaxAttempts, InDoubt: x.InDoubt, Provider: x.Provider, ProviderMessageID: x.ProviderMessageID, AddressHint: x.AddressHint,
			DeferredReason: x.DeferredReason, LastError: x.LastError, SentAt: x.SentAt, FinishedAt: x.FinishedAt, History: make([]attemptDTO, 0, len(x.History))}
		if !x.Status.Final() {
			next := x.NextAttemptAt.UTC()
			dd.NextAttemptAt = &next
		}
		if x.Status == alerts.DeliveryDead {
			d.Problem = "/problems/" + KindNotificationSending.Code
		}
		for _, a := range x.History {
			dd.History = append(dd.History, attemptDTO{N: a.N, StartedAt: a.StartedAt.UTC(), FinishedAt: a.FinishedAt.UTC(), Outcome: a.Outcome, Provider: a.Provider, Error: a.Error})
		}
		d.Deliveries = append(d.Deliveries, dd)
	}
	return d
}

type quietDTO struct {
	From string `json:"from" doc:"HH:MM, tenant's time zone"`
	To   string `json:"to" doc:"HH:MM; before from wraps midnight; equal to from: no quiet hours"`
}

type preferenceDTO struct {
	Event      string    `json:"event" doc:"an event name, or * for the default of every event"`
	Channels   *[]string `json:"channels,omitempty" doc:"email, sms, push; [] mutes the event; absent inherits"`
	QuietHours *quietDTO `json:"quiet_hours,omitempty" doc:"SMS and push wait until they end; absent inherits"`
	Locale     string    `json:"locale,omitempty" doc:"message language (en, hi …), on the * row only"`
}

func preferenceOf(p alerts.Preference) preferenceDTO {
	d := preferenceDTO{Event: p.Event, Locale: p.Locale}
	if p.ChannelsSet {
		cs := make([]string, len(p.Channels))
		for i, c := range p.Channels {
			cs[i] = string(c)
		}
		d.Channels = &cs
	}
	if p.Quiet != nil {
		d.QuietHours = &quietDTO{From: p.Quiet.From.String(), To: p.Quiet.To.String()}
	}
	return d
}

type deviceRequest struct {
	Platform string `json:"platform" enum:"android,ios,web"`
	Token    string `json:"token" doc:"the FCM registration token; stored encrypted, never shown again"`
	Label    string `json:"label,omitempty"`
}

type deviceDTO struct {
	ID         int64     `json:"id"`
	Platform   string    `json:"platform" enum:"android,ios,web"`
	Label      string    `json:"label,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	Disabled   bool      `json:"disabled" doc:"removed, or unregistered by the provider"`
}

func deviceOf(d alerts.Device) deviceDTO {
	return deviceDTO{ID: d.ID, Platform: d.Platform, Label: d.Label, CreatedAt: d.CreatedAt.UTC(), LastSeenAt: d.LastSeenAt.UTC(), Disabled: d.Disabled}
}

type policyDTO struct {
	DueDays           []int  `json:"due_days" doc:"days before the due date to remind (1–60)"`
	OverdueDays       []int  `json:"overdue_days" doc:"days after the due date to remind; each is an escalation step"`
	SecondChannelStep int    `json:"second_channel_step" doc:"from this overdue step on, a second channel (0: never)"`
	StaffStep         int    `json:"staff_step" doc:"from this overdue step on, staff are told (0: never)"`
	StaffRole         string `json:"staff_role" enum:"official,support,admin"`
	StaffDepartment   string `json:"staff_department,omitempty"`
	SendAt            string `json:"send_at" doc:"HH:MM, tenant's time zone"`
}

func policyOf(p reminder.Policy) policyDTO {
	return policyDTO{DueDays: p.DueDays, OverdueDays: p.OverdueDays, SecondChannelStep: p.SecondChannelStep, StaffStep: p.StaffStep,
		StaffRole: p.StaffRole, StaffDepartment: p.StaffDepartment, SendAt: p.SendAt.String()}
}

type templateDTO struct {
	Event     string     `json:"event"`
	Locale    string     `json:"locale"`
	Source    string     `json:"source" doc:"Go template defining subject, text, html, sms, push_title, push_body (any subset); empty removes the override"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

type renderedDTO struct {
	Subject   string `json:"subject"`
	Text      string `json:"text"`
	HTML      string `json:"html"`
	SMS       string `json:"sms"`
	PushTitle string `json:"push_title"`
	PushBody  string `json:"push_body"`
}

type brandingDTO struct {
	DisplayName   string `json:"display_name,omitempty"`
	FromAddress   string `json:"from_address,omitempty"`
	ReplyTo       string `json:"reply_to,omitempty"`
	SupportEmail  string `json:"support_email,omitempty"`
	SupportPhone  string `json:"support_phone,omitempty"`
	WebsiteURL    string `json:"website_url,omitempty"`
	LogoURL       string `json:"logo_url,omitempty"`
	BrandColor    string `json:"brand_color,omitempty" doc:"#rrggbb"`
	Footer        string `json:"footer,omitempty"`
	DefaultLocale string `json:"default_locale,omitempty"`
}

// --- handlers

func alertActor(r *Request) alerts.Actor {
	return alerts.Actor{UserID: r.Actor.UserID, Role: string(r.Actor.Role), Address: r.Actor.Address, RequestID: r.Actor.RequestID}
}

func (h *handlers) listAlerts(r *Request) error {
	p, err := r.page()
	if err != nil {
		return err
	}
	f := alerts.AlertFilter{TenantID: r.Scope.TenantID, UserID: r.Scope.UserID, BeforeID: p.After, Limit: p.Limit}
	switch st := r.C.Query("status"); st {
	case "":
	case "unresolved":
		f.Statuses = []alerts.Status{alerts.StatusOpen, alerts.StatusAcknowledged}
	case "open", "acknowledged", "resolved":
		f.Statuses = []alerts.Status{alerts.Status(st)}
	default:
		return InvalidInput(FieldError{Field: "status", Message: "must be open, acknowledged, resolved or unresolved"})
	}
	if k := r.C.Query("kind"); k != "" {
		if !alerts.Kind(k).Valid() {
			return InvalidInput(FieldError{Field: "kind", Message: "is not an alert kind"})
		}
		f.Kinds = []alerts.Kind{alerts.Kind(k)}
	}
	if f.MeterID, err = r.queryID("meter_id"); err != nil {
		return err
	}
	list, err := h.svc.Notifications.Alerts(r.C.UserContext(), f)
	if err != nil {
		return err
	}
	out := mapped(list, alertOf)
	return r.ok(fiber.StatusOK, pageOf(out, p, func(a alertDTO) int64 { return a.ID }))
}

func (h *handlers) getAlert(r *Request) error {
	id, err := r.pathID("alertId")
	if err != nil {
		return err
	}
	a, err := h.svc.Notifications.Alert(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, alertOf(a))
}

func (h *handlers) transitionAlert(to alerts.Status) func(*Request) error {
	return func(r *Request) error {
		id, err := r.pathID("alertId")
		if err != nil {
			return err
		}
		var in noteRequest
		if len(strings.TrimSpace(string(r.C.Body()))) > 0 {
			if err := r.bind(&in, alerts.ErrInvalidInput); err != nil {
				return err
			}
		}
		a, err := h.svc.Notifications.TransitionAlert(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, id, to, in.Note, alertActor(r))
		if err != nil {
			return err
		}
		return r.ok(fiber.StatusOK, alertOf(a))
	}
}

func (h *handlers) listThresholds(r *Request) error {
	list, err := h.svc.Notifications.Thresholds(r.C.UserContext(), r.Scope.TenantID)
	if err != nil {
		return err
	}
	out := Page[thresholdDTO]{Items: make([]thresholdDTO, len(list))}
	for i, t := range list {
		at := t.UpdatedAt.UTC()
		out.Items[i] = thresholdDTO{Service: t.Service, Plan: t.Plan, DailyKWh: float64(t.DailyWh) / 1000, MonthlyKWh: float64(t.MonthlyWh) / 1000, UpdatedAt: &at}
	}
	return r.ok(fiber.StatusOK, out)
}

func (h *handlers) setThreshold(r *Request) error {
	var in thresholdDTO
	if err := r.bind(&in, alerts.ErrInvalidInput); err != nil {
		return err
	}
	if in.Service == "" {
		in.Service = "electricity"
	}
	if in.DailyKWh < 0 || in.MonthlyKWh < 0 || in.DailyKWh > 1e9 || in.MonthlyKWh > 1e9 {
		return InvalidInput(FieldError{Field: "daily_kwh", Message: "thresholds must be between 0 and 10^9 kWh"})
	}
	t := alerts.Threshold{Service: in.Service, Plan: in.Plan, DailyWh: int64(in.DailyKWh * 1000), MonthlyWh: int64(in.MonthlyKWh * 1000)}
	if err := h.svc.Notifications.SetThreshold(r.C.UserContext(), r.Scope.TenantID, t, alertActor(r)); err != nil {
		return err
	}
	in.UpdatedAt = nil
	return r.ok(fiber.StatusOK, in)
}

func (h *handlers) listNotifications(r *Request) error {
	p, err := r.page()
	if err != nil {
		return err
	}
	f := alerts.NotificationFilter{Event: r.C.Query("event"), Status: r.C.Query("status"), BeforeID: p.After, Limit: p.Limit}
	switch f.Status {
	case "", "pending", "sending", "sent", "dead", "cancelled":
	default:
		return InvalidInput(FieldError{Field: "status", Message: "must be pending, sending, sent, dead or cancelled"})
	}
	list, err := h.svc.Notifications.Notifications(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, f)
	if err != nil {
		return err
	}
	out := mapped(list, notificationOf)
	return r.ok(fiber.StatusOK, pageOf(out, p, func(n notificationDTO) int64 { return n.ID }))
}

func (h *handlers) getNotification(r *Request) error {
	id, err := r.pathID("notificationId")
	if err != nil {
		return err
	}
	n, err := h.svc.Notifications.Notification(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, notificationOf(n))
}

func (h *handlers) retryNotification(r *Request) error {
	id, err := r.pathID("notificationId")
	if err != nil {
		return err
	}
	if _, err := h.svc.Notifications.RetryNotification(r.C.UserContext(), r.Scope.TenantID, id, alertActor(r)); err != nil {
		return err
	}
	n, err := h.svc.Notifications.Notification(r.C.UserContext(), r.Scope.TenantID, 0, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusAccepted, notificationOf(n))
}

func (h *handlers) getPreferences(r *Request) error {
	list, err := h.svc.Notifications.Preferences(r.C.UserContext(), r.Scope.TenantID, r.Actor.UserID)
	if err != nil {
		return err
	}
	out := Page[preferenceDTO]{Items: make([]preferenceDTO, len(list))}
	for i, p := range list {
		out.Items[i] = preferenceOf(p)
	}
	return r.ok(fiber.StatusOK, out)
}

func (h *handlers) setPreference(r *Request) error {
	var in preferenceDTO
	if err := r.bind(&in, alerts.ErrInvalidInput); err != nil {
		return err
	}
	p := alerts.Preference{Event: in.Event, Locale: in.Locale}
	if in.Channels != nil {
		p.ChannelsSet = true
		p.Channels = make([]alerts.Channel, len(*in.Channels))
		for i, c := range *in.Channels {
			p.Channels[i] = alerts.Channel(c)
		}
	}
	if in.QuietHours != nil {
		from, err1 := alerts.ParseTimeOfDay(in.QuietHours.From)
		to, err2 := alerts.ParseTimeOfDay(in.QuietHours.To)
		if err1 != nil || err2 != nil {
			return InvalidInput(FieldError{Field: "quiet_hours", Message: "from and to must be times of day HH:MM"})
		}
		p.Quiet = &alerts.QuietHours{From: from, To: to}
	}
	if err := h.svc.Notifications.SetPreference(r.C.UserContext(), r.Scope.TenantID, r.Actor.UserID, p, alertActor(r)); err != nil {
		return err
	}
	return h.getPreferences(r)
}

func (h *handlers) listDevices(r *Request) error {
	list, err := h.svc.Notifications.Devices(r.C.UserContext(), r.Scope.TenantID, r.Actor.UserID)
	if err != nil {
		return err
	}
	out := Page[deviceDTO]{Items: make([]deviceDTO, len(list))}
	for i, d := range list {
		out.Items[i] = deviceOf(d)
	}
	return r.ok(fiber.StatusOK, out)
}

func (h *handlers) registerDevice(r *Request) error {
	var in deviceRequest
	if err := r.bind(&in, alerts.ErrInvalidInput); err != nil {
		return err
	}
	d, err := h.svc.Notifications.RegisterDevice(r.C.UserContext(), r.Scope.TenantID, r.Actor.UserID, in.Platform, in.Label, in.Token)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusCreated, deviceOf(d))
}

func (h *handlers) removeDevice(r *Request) error {
	id, err := r.pathID("deviceId")
	if err != nil {
		return err
	}
	if err := h.svc.Notifications.RemoveDevice(r.C.UserContext(), r.Scope.TenantID, r.Actor.UserID, id); err != nil {
		return err
	}
	return r.C.SendStatus(fiber.StatusNoContent)
}

func (h *handlers) getPolicy(r *Request) error {
	p, err := h.svc.Notifications.ReminderPolicy(r.C.UserContext(), r.Scope.TenantID)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, policyOf(p))
}

func (h *handlers) setPolicy(r *Request) error {
	var in policyDTO
	if err := r.bind(&in, alerts.ErrReminderSetting); err != nil {
		return err
	}
	at, err := alerts.ParseTimeOfDay(in.SendAt)
	if err != nil {
		return &alerts.ValidationError{Kind: alerts.ErrReminderSetting, Fields: []alerts.FieldError{{Field: "send_at", Message: "must be a time of day HH:MM"}}}
	}
	p := reminder.Policy{DueDays: in.DueDays, OverdueDays: in.OverdueDays, SecondChannelStep: in.SecondChannelStep, StaffStep: in.StaffStep,
		StaffRole: in.StaffRole, StaffDepartment: in.StaffDepartment, SendAt: at}
	if err := h.svc.Notifications.SetReminderPolicy(r.C.UserContext(), r.Scope.TenantID, p, alertActor(r)); err != nil {
		return err
	}
	return h.getPolicy(r)
}

func (h *handlers) listTemplates(r *Request) error {
	list, err := h.svc.Notifications.Templates(r.C.UserContext(), r.Scope.TenantID)
	if err != nil {
		return err
	}
	out := Page[templateDTO]{Items: make([]templateDTO, len(list))}
	for i, t := range list {
		at := t.UpdatedAt.UTC()
		out.Items[i] = templateDTO{Event: t.Event, Locale: t.Locale, Source: t.Source, UpdatedAt: &at}
	}
	return r.ok(fiber.StatusOK, out)
}

// setTemplate stores the override and answers with the event rendered
// through it (sample data), so the sender sees what consumers will get.
func (h *handlers) setTemplate(r *Request) error {
	var in templateDTO
	if err := r.bind(&in, alerts.ErrInvalidInput); err != nil {
		return err
	}
	t := alerts.TemplateOverride{Event: in.Event, Locale: in.Locale, Source: in.Source}
	if err := h.svc.Notifications.SetTemplate(r.C.UserContext(), r.Scope.TenantID, t, alertActor(r)); err != nil {
		return err
	}
	out, err := h.svc.Notifications.Preview(in.Event, in.Locale, in.Source)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, renderedDTO{Subject: out.Subject, Text: out.Text, HTML: out.HTML, SMS: out.SMS, PushTitle: out.PushTitle, PushBody: out.PushBody})
}

func (h *handlers) getBranding(r *Request) error {
	b, err := h.svc.Notifications.Branding(r.C.UserContext(), r.Scope.TenantID)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, brandingDTO{DisplayName: b.DisplayName, FromAddress: b.FromAddress, ReplyTo: b.ReplyTo, SupportEmail: b.SupportEmail,
		SupportPhone: b.SupportPhone, WebsiteURL: b.WebsiteURL, LogoURL: b.LogoURL, BrandColor: b.Color, Footer: b.Footer, DefaultLocale: b.DefaultLocale})
}

func (h *handlers) setBranding(r *Request) error {
	var in brandingDTO
	if err := r.bind(&in, alerts.ErrInvalidInput); err != nil {
		return err
	}
	b := notify.Branding{DisplayName: in.DisplayName, FromAddress: in.FromAddress, ReplyTo: in.ReplyTo, SupportEmail: in.SupportEmail,
		SupportPhone: in.SupportPhone, WebsiteURL: in.WebsiteURL, LogoURL: in.LogoURL, Color: in.BrandColor, Footer: in.Footer, DefaultLocale: in.DefaultLocale}
	if err := h.svc.Notifications.SetBranding(r.C.UserContext(), r.Scope.TenantID, b, alertActor(r)); err != nil {
		return err
	}
	return h.getBranding(r)
}
