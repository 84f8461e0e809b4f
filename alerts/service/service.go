package service

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/notify"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/alerts/reminder"
	"github.com/meterd/meterd/alerts/template"
)

// Sealer seals values with AES-GCM under the field keyring.
type Sealer interface {
	Seal(plaintext []byte, aad string) ([]byte, error)
}

// Store is the storage the service needs (alerts/postgres.Store).
type Store interface {
	Alerts(ctx context.Context, f alerts.AlertFilter) ([]alerts.Alert, error)
	Alert(ctx context.Context, tenantID, userID, id int64) (alerts.Alert, error)
	Transition(ctx context.Context, tenantID, userID, id int64, to alerts.Status, note string, now time.Time, actor alerts.Actor) (alerts.Alert, error)
	Notifications(ctx context.Context, sc alertspg.Scope, f alerts.NotificationFilter) ([]alerts.Notification, error)
	Notification(ctx context.Context, sc alertspg.Scope, id int64) (alerts.Notification, error)
	RetryDead(ctx context.Context, sc alertspg.Scope, id int64, extra int, now time.Time, actor alerts.Actor) (int, error)
	Preferences(ctx context.Context, tenantID, userID int64) ([]alerts.Preference, error)
	SetPreference(ctx context.Context, tenantID, userID int64, p alerts.Preference, now time.Time, actor alerts.Actor) error
	RegisterDevice(ctx context.Context, tenantID, userID int64, platform, label string, tokenHash, sealed []byte, now time.Time) (alerts.Device, error)
	Devices(ctx context.Context, tenantID, userID int64) ([]alerts.Device, error)
	RemoveDevice(ctx context.Context, tenantID, userID, id int64, now time.Time) error
	Policy(ctx context.Context, tenantID int64) (reminder.Policy, error)
	SetPolicy(ctx context.Context, tenantID int64, p reminder.Policy, now time.Time, actor alerts.Actor) error
	ThresholdRows(ctx context.Context, tenantID int64) ([]alerts.Threshold, error)
	SetThreshold(ctx context.Context, tenantID int64, t alerts.Threshold, now time.Time, actor alerts.Actor) error
	Templates(ctx context.Context, tenantID int64) ([]alerts.TemplateOverride, error)
	SetTemplate(ctx context.Context, tenantID int64, t alerts.TemplateOverride, now time.Time, actor alerts.Actor) error
	Branding(ctx context.Context, tenantID int64) (notify.Branding, error)
	SetBranding(ctx context.Context, tenantID int64, b notify.Branding, now time.Time, actor alerts.Actor) error
}

var _ Store = (*alertspg.Store)(nil)

// RetryAttempts is how many more attempts a retried dead letter gets.
const RetryAttempts = 3

// Service implements the API's alert and notification operations.
type Service struct {
	st   Store
	seal Sealer
	tpl  *template.Set
	now  func() time.Time
}

// New returns a service; now nil is time.Now.
func New(st Store, seal Sealer, tpl *template.Set, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, seal: seal, tpl: tpl, now: now}
}

// Alerts lists alerts (a consumer's own when f.UserID is set).
func (s *Service) Alerts(ctx context.Context, f alerts.AlertFilter) ([]alerts.Alert, error) {
	return s.st.Alerts(ctx, f)
}

// Alert returns one alert in scope.
func (s *Service) Alert(ctx context.Context, tenantID, userID, id int64) (alerts.Alert, error) {
	return s.st.Alert(ctx, tenantID, userID, id)
}

// TransitionAlert acknowledges or resolves an alert.
func (s *Service) TransitionAlert(ctx context.Context, tenantID, userID, id int64, to alerts.Status, note string, a alerts.Actor) (alerts.Alert, error) {
	v := alerts.NewValidator(nil)
	v.Check(len(note) <= 2000, "note", "must be at most 2000 characters")
	if err := v.Err(); err != nil {
		return alerts.Alert{}, err
	}
	return s.st.Transition(ctx, tenantID, userID, id, to, strings.TrimSpace(note), s.now().UTC(), a)
}

// Notifications lists notifications (a user's own when userID is set).
func (s *Service) Notifications(ctx context.Context, tenantID, userID int64, f alerts.NotificationFilter) ([]alerts.Notification, error) {
	return s.st.Notifications(ctx, alertspg.Scope{TenantID: tenantID, UserID: userID}, f)
}

// Notification returns a notification with its deliveries and attempts.
func (s *Service) Notification(ctx context.Context, tenantID, userID, id int64) (alerts.Notification, error) {
	return s.st.Notification(ctx, alertspg.Scope{TenantID: tenantID, UserID: userID}, id)
}

// RetryNotification gives a notification's dead deliveries RetryAttempts
// more attempts from now.
func (s *Service) RetryNotification(ctx context.Context, tenantID, id int64, a alerts.Actor) (int, error) {
	return s.st.RetryDead(ctx, alertspg.Scope{TenantID: tenantID}, id, RetryAttempts, s.now().UTC(), a)
}

// Preferences returns a user's preference rows.
func (s *Service) Preferences(ctx context.Context, tenantID, userID int64) ([]alerts.Preference, error) {
	return s.st.Preferences(ctx, tenantID, userID)
}

// SetPreference validates and stores a preference row.
func (s *Service) SetPreference(ctx context.Context, tenantID, userID int64, p alerts.Preference, a alerts.Actor) error {
	if p.Event == "" {
		p.Event = alerts.DefaultEvent
	}
	if err := alerts.ValidatePreference(p); err != nil {
		return err
	}
	return s.st.SetPreference(ctx, tenantID, userID, p, s.now().UTC(), a)
}

// RegisterDevice seals and stores a push registration token.
func (s *Service) RegisterDevice(ctx context.Context, tenantID, userID int64, platform, label, token string) (alerts.Device, error) {
	token = strings.TrimSpace(token)
	v := alerts.NewValidator(nil)
	v.Check(platform == "android" || platform == "ios" || platform == "web", "platform", "must be android, ios or web")
	v.Check(len(token) >= 16 && len(token) <= 4096, "token", "must be a push registration token (16–4096 characters)")
	v.Check(len(label) <= 100, "label", "must be at most 100 characters")
	if err := v.Err(); err != nil {
		return alerts.Device{}, err
	}
	h := sha256.Sum256([]byte(token))
	sealed, err := s.seal.Seal([]byte(token), notify.DeviceAAD(h[:]))
	if err != nil {
		return alerts.Device{}, err
	}
	return s.st.RegisterDevice(ctx, tenantID, userID, platform, label, h[:], sealed, s.now().UTC())
}

// Devices lists a user's push devices.
func (s *Service) Devices(ctx context.Context, tenantID, userID int64) ([]alerts.Device, error) {
	return s.st.Devices(ctx, tenantID, userID)
}

// RemoveDevice disables a user's push device.
func (s *Service) RemoveDevice(ctx context.Context, tenantID, userID, id int64) error {
	return s.st.RemoveDevice(ctx, tenantID, userID, id, s.now().UTC())
}

// ReminderPolicy returns a tenant's reminder policy.
func (s *Service) ReminderPolicy(ctx context.Context, tenantID int64) (reminder.Policy, error) {
	return s.st.Policy(ctx, tenantID)
}

// SetReminderPolicy validates (ReminderSetting) and stores a policy.
func (s *Service) SetReminderPolicy(ctx context.Context, tenantID int64, p reminder.Policy, a alerts.Actor) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return s.st.SetPolicy(ctx, tenantID, p, s.now().UTC(), a)
}

// Thresholds lists a tenant's consumption thresholds.
func (s *Service) Thresholds(ctx context.Context, tenantID int64) ([]alerts.Threshold, error) {
	return s.st.ThresholdRows(ctx, tenantID)
}

// SetThreshold validates and stores a plan's thresholds (both 0 removes
// them).
func (s *Service) SetThreshold(ctx context.Context, tenantID int64, t alerts.Threshold, a alerts.Actor) error {
	v := alerts.NewValidator(nil)
	v.Check(t.Service == "electricity" || t.Service == "water" || t.Service == "sewerage", "service", "must be electricity, water or sewerage")
	v.Check(t.Plan == "*" || validPlan(t.Plan), "plan", "must be a tariff plan name or *")
	v.Check(t.DailyWh >= 0 && t.MonthlyWh >= 0, "thresholds", "must not be negative")
	if err := v.Err(); err != nil {
		return err
	}
	return s.st.SetThreshold(ctx, tenantID, t, s.now().UTC(), a)
}

func validPlan(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for i, r := range p {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '_' || r == '.' || r == '-')
		if !ok {
			return false
		}
	}
	return true
}

// Templates lists a tenant's template overrides.
func (s *Service) Templates(ctx context.Context, tenantID int64) ([]alerts.TemplateOverride, error) {
	return s.st.Templates(ctx, tenantID)
}

// SetTemplate checks a tenant's template (it must render with a sample of
// the event's data) and stores it; an empty source removes the override.
func (s *Service) SetTemplate(ctx context.Context, tenantID int64, t alerts.TemplateOverride, a alerts.Actor) error {
	v := alerts.NewValidator(nil)
	_, known := alerts.LookupEvent(t.Event)
	v.Check(known, "event", "is not an event meterd sends")
	v.Check(len(t.Locale) == 2 || len(t.Locale) == 5, "locale", "must look like en or hi-IN")
	v.Check(len(t.Source) <= 65536, "source", "must be at most 64 KiB")
	if err := v.Err(); err != nil {
		return err
	}
	if t.Source != "" {
		if err := s.tpl.Validate(t.Event, t.Locale, t.Source, template.Sample(t.Event)); err != nil {
			return &alerts.ValidationError{Fields: []alerts.FieldError{{Field: "source", Message: err.Error()}}}
		}
	}
	return s.st.SetTemplate(ctx, tenantID, t, s.now().UTC(), a)
}

// Preview renders an event with a tenant's template source (or the
// default) and sample data.
func (s *Service) Preview(event, locale, source string) (template.Rendered, error) {
	if locale == "" {
		locale = template.FallbackLocale
	}
	return s.tpl.Render(event, locale, source, template.Sample(event))
}

// Branding returns a tenant's branding.
func (s *Service) Branding(ctx context.Context, tenantID int64) (notify.Branding, error) {
	return s.st.Branding(ctx, tenantID)
}

// SetBranding validates and stores a tenant's branding.
func (s *Service) SetBranding(ctx context.Context, tenantID int64, b notify.Branding, a alerts.Actor) error {
	v := alerts.NewValidator(nil)
	v.Check(b.Color == "" || (len(b.Color) == 7 && b.Color[0] == '#'), "brand_color", "must be #rrggbb")
	v.Check(b.LogoURL == "" || strings.HasPrefix(b.LogoURL, "https://"), "logo_url", "must be an https URL")
	v.Check(b.WebsiteURL == "" || strings.HasPrefix(b.WebsiteURL, "http"), "website_url", "must be an http(s) URL")
	v.Check(b.FromAddress == "" || strings.Count(b.FromAddress, "@") == 1, "from_address", "must be an email address")
	v.Check(b.ReplyTo == "" || strings.Count(b.ReplyTo, "@") == 1, "reply_to", "must be an email address")
	v.Check(len(b.DisplayName) <= 200 && len(b.Footer) <= 1000, "display_name", "is too long")
	if err := v.Err(); err != nil {
		return err
	}
	if b.Color == "" {
		b.Color = "#1f6feb"
	}
	if b.DefaultLocale == "" {
		b.DefaultLocale = template.FallbackLocale
	}
	return s.st.SetBranding(ctx, tenantID, b, s.now().UTC(), a)
}
