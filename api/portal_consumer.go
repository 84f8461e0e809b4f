package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/support"
	"github.com/meterd/meterd/api/usage"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// Consumer pages: dashboard, usage, readings, properties, support,
// reminders and alerts. Bills and payments are in portal_pay.go.

// connOption is a connection offered in a form or a chart selector.
type connOption struct {
	ID       int64
	Label    string
	Metered  bool
	Selected bool
}

// connections lists the caller's connections (electricity first).
func (p *Portal) connections(r *Request) ([]account.Property, []connOption, error) {
	props, err := p.svc.Accounts.ListProperties(r.C.UserContext(), r.Scope, 0, account.Page{Limit: 200})
	if err != nil {
		return nil, nil, err
	}
	var out []connOption
	for _, pr := range props {
		name := pr.Label
		if name == "" {
			name = pr.Address.Line1
		}
		for _, c := range pr.Connections {
			label := fmt.Sprintf("%s — %s %s", name, c.Service, c.ConsumerCode)
			if c.MeterNumber != "" {
				label += " (meter " + c.MeterNumber + ")"
			}
			out = append(out, connOption{ID: c.ID, Label: label, Metered: c.Meter != nil})
		}
	}
	return props, out, nil
}

type dashboardData struct {
	Live        []usage.Live
	Connections []connOption
	Chart       *chartData
	OpenBills   []billingpg.StoredBill
	Alerts      []alerts.Alert
	Properties  int
}

func (p *Portal) dashboard(r *Request) error {
	if r.Actor.Role.Staff() {
		return r.C.Redirect("/staff", http.StatusSeeOther)
	}
	ctx := r.C.UserContext()
	props, conns, err := p.connections(r)
	if err != nil {
		return err
	}
	d := dashboardData{Connections: conns, Properties: len(props)}
	if d.Live, err = p.svc.Usage.Live(ctx, r.Scope, usage.LiveFilter{}, account.Page{Limit: 50}); err != nil {
		return err
	}
	if id := firstMetered(conns); id != 0 {
		if d.Chart, err = p.chart(r, id, usage.Day, time.Time{}, time.Time{}); err != nil {
			return err
		}
	}
	if p.svc.Billing != nil {
		bills, _, err := p.svc.Billing.Bills(ctx, billingpg.BillFilter{TenantID: r.Scope.TenantID, ConsumerUserID: r.Scope.UserID, Limit: 20})
		if err != nil {
			return err
		}
		for _, b := range bills {
			if b.Status == "issued" || b.Status == "overdue" || b.Status == "partially_paid" {
				d.OpenBills = append(d.OpenBills, b)
			}
		}
	}
	if p.svc.Notifications != nil {
		if d.Alerts, err = p.svc.Notifications.Alerts(ctx, alerts.AlertFilter{TenantID: r.Scope.TenantID, UserID: r.Scope.UserID,
			Statuses: []alerts.Status{alerts.StatusOpen, alerts.StatusAcknowledged}, Limit: 5}); err != nil {
			return err
		}
	}
	return p.render(r, http.StatusOK, "dashboard", "Dashboard", d)
}

func firstMetered(conns []connOption) int64 {
	for _, c := range conns {
		if c.Metered {
			return c.ID
		}
	}
	return 0
}

func (p *Portal) liveFragment(r *Request) error {
	live, err := p.svc.Usage.Live(r.C.UserContext(), r.Scope, usage.LiveFilter{}, account.Page{Limit: 50})
	if err != nil {
		return err
	}
	return p.fragment(r, "dashboard", "live", dashboardData{Live: live})
}

// --- usage history and chart

// chartData is a consumption series as the page shows it: a table, and
// the JSON uPlot draws.
type chartData struct {
	ConnectionID int64
	Granularity  usage.Granularity
	Series       usage.Series
	// JSON is {"t": [unix seconds], "kwh": [...], "gran": "day", "tz": …,
	// "drill": URL prefix of a day's hourly view (daily series only)}.
	JSON    string
	From    string // YYYY-MM-DD, tenant zone (the form's values)
	To      string
	CSV     string // the CSV download URL
	BackURL string // from an hourly view back to the month
}

// chart reads a consumption series for a connection between from and to
// (zero: the service's default range ending now).
func (p *Portal) chart(r *Request, connID int64, gran usage.Granularity, from, to time.Time) (*chartData, error) {
	s, err := p.svc.Usage.History(r.C.UserContext(), r.Scope, usage.HistoryQuery{ConnectionID: connID, Granularity: gran, From: from, To: to})
	if err != nil {
		return nil, err
	}
	loc := p.loc(r)
	d := &chartData{ConnectionID: connID, Granularity: s.Granularity, Series: s,
		From: s.From.In(loc).Format(time.DateOnly), To: s.To.Add(-time.Nanosecond).In(loc).Format(time.DateOnly)}
	q := func(extra string) string {
		return fmt.Sprintf("connection_id=%d&granularity=%s&from=%s&to=%s%s", connID, s.Granularity, d.From, d.To, extra)
	}
	d.CSV = "/usage/csv?" + q("")
	if s.Granularity == usage.Hour {
		d.BackURL = fmt.Sprintf("/usage?connection_id=%d&granularity=day", connID)
	}
	type chartJSON struct {
		T     []int64   `json:"t"`
		KWh   []float64 `json:"kwh"`
		Gran  string    `json:"gran"`
		TZ    string    `json:"tz"`
		Drill string    `json:"drill,omitempty"`
	}
	cj := chartJSON{T: make([]int64, len(s.Points)), KWh: make([]float64, len(s.Points)), Gran: string(s.Granularity), TZ: loc.String()}
	for i, pt := range s.Points {
		cj.T[i] = pt.Start.Unix()
		cj.KWh[i] = float64(pt.ConsumptionWh) / 1000
	}
	if s.Granularity == usage.Day {
		cj.Drill = fmt.Sprintf("/usage?connection_id=%d&granularity=hour&day=", connID)
	}
	b, err := json.Marshal(cj)
	if err != nil {
		return nil, err
	}
	d.JSON = string(b)
	return d, nil
}

type usageData struct {
	Connections []connOption
	Chart       *chartData
}

// usageQuery reads the usage page's query: connection, granularity and
// range (dates in the tenant's zone; day= is one day's hours).
func (p *Portal) usageQuery(r *Request, conns []connOption) (int64, usage.Granularity, time.Time, time.Time, error) {
	loc := p.loc(r)
	id, _ := strconv.ParseInt(r.C.Query("connection_id"), 10, 64)
	if id == 0 {
		id = firstMetered(conns)
	}
	gran := usage.Granularity(r.C.Query("granularity", string(usage.Day)))
	var from, to time.Time
	date := func(name, s string) (time.Time, error) {
		t, err := time.ParseInLocation(time.DateOnly, s, loc)
		if err != nil {
			return t, InvalidInput(FieldError{Field: name, Message: "must be a date YYYY-MM-DD"})
		}
		return t, nil
	}
	var err error
	if day := r.C.Query("day"); day != "" {
		if from, err = date("day", day); err != nil {
			return 0, "", from, to, err
		}
		return id, usage.Hour, from, from.AddDate(0, 0, 1), nil
	}
	if s := r.C.Query("from"); s != "" {
		if from, err = date("from", s); err != nil {
			return 0, "", from, to, err
		}
	}
	if s := r.C.Query("to"); s != "" {
		if to, err = date("to", s); err != nil {
			return 0, "", from, to, err
		}
		to = to.AddDate(0, 0, 1) // inclusive
	}
	return id, gran, from, to, nil
}

func (p *Portal) usagePage(r *Request) error { return p.usage(r, false) }

func (p *Portal) usageChart(r *Request) error { return p.usage(r, true) }

func (p *Portal) usage(r *Request, fragment bool) error {
	_, conns, err := p.connections(r)
	if err != nil {
		return err
	}
	d := usageData{Connections: conns}
	id, gran, from, to, err := p.usageQuery(r, conns)
	if err == nil && id != 0 {
		for i := range d.Connections {
			d.Connections[i].Selected = d.Connections[i].ID == id
		}
		d.Chart, err = p.chart(r, id, gran, from, to)
	}
	if err != nil {
		if formProblem(err) {
			return p.renderForm(r, "usage", "Usage", d, formValues(r.C, "from", "to", "granularity"), err)
		}
		return err
	}
	if fragment {
		return p.fragment(r, "usage", "chart", d)
	}
	return p.render(r, http.StatusOK, "usage", "Usage", d)
}

func (p *Portal) usageCSV(r *Request) error {
	id, gran, from, to, err := p.usageQuery(r, nil)
	if err != nil {
		return err
	}
	s, err := p.svc.Usage.History(r.C.UserContext(), r.Scope, usage.HistoryQuery{ConnectionID: id, Granularity: gran, From: from, To: to})
	if err != nil {
		return err
	}
	r.C.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	r.C.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="usage-%d-%s.csv"`, id, s.Granularity))
	return usage.WriteCSV(r.C.Response().BodyWriter(), s)
}

// --- manual readings

type readingData struct {
	Connections []connOption
	// Recorded is the reading just stored.
	Recorded *usage.Entry
}

func (p *Portal) readingPage(r *Request) error {
	_, conns, err := p.connections(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "reading", "Enter a meter reading", readingData{Connections: metered(conns)})
}

func metered(conns []connOption) []connOption {
	return slices.DeleteFunc(conns, func(c connOption) bool { return !c.Metered })
}

// kwhToWh reads a register value in kWh (up to three decimals) as Wh.
func kwhToWh(v *account.Validator, field, s string) *int64 {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if s == "" {
		return nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil || d.Exponent() < -3 {
		v.Add(field, "must be a number of kWh with at most 3 decimals, as the meter shows it")
		return nil
	}
	wh := d.Shift(3).IntPart()
	return &wh
}

func (p *Portal) submitReading(r *Request) error {
	f := formValues(r.C, "connection_id", "import_wh", "export_wh", "ts")
	_, conns, err := p.connections(r)
	if err != nil {
		return err
	}
	d := readingData{Connections: metered(conns)}
	v := account.NewValidator(usage.ErrInvalidReading)
	in := usage.EntryInput{}
	if id, ok := optionalInt64(f["connection_id"]); !ok || id == nil {
		v.Add("meter_id", "choose the connection whose meter you read")
	} else {
		in.ConnectionID = *id
	}
	in.ImportWh = kwhToWh(v, "import_wh", f["import_wh"])
	in.ExportWh = kwhToWh(v, "export_wh", f["export_wh"])
	if f["ts"] != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", f["ts"], p.loc(r))
		if err != nil {
			v.Add("ts", "must be a date and time")
		}
		in.Time = t
	}
	err = v.Err()
	var e usage.Entry
	if err == nil {
		e, err = p.svc.Usage.Record(r.C.UserContext(), r.Actor, r.Scope, in)
	}
	if err != nil {
		if formProblem(err) {
			return p.renderForm(r, "reading", "Enter a meter reading", d, f, err)
		}
		return err
	}
	d.Recorded = &e
	return p.render(r, http.StatusCreated, "reading", "Reading recorded", d)
}

// --- properties

type propertiesData struct {
	Properties []account.Property
}

func (p *Portal) propertiesPage(r *Request) error {
	props, _, err := p.connections(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "properties", "Properties", propertiesData{Properties: props})
}

func (p *Portal) addProperty(r *Request) error {
	f := formValues(r.C, "label", "address.line1", "address.line2", "address.city", "address.state", "address.postal_code",
		"connections[0].meter_number", "connections[0].tariff_plan", "connections[0].sanctioned_load_kw")
	v := account.NewValidator(account.ErrInvalidInput)
	conn := account.ConnectionInput{Service: account.ServiceElectricity, MeterNumber: f["connections[0].meter_number"], TariffPlan: f["connections[0].tariff_plan"]}
	if s := f["connections[0].sanctioned_load_kw"]; s != "" {
		if d, err := decimal.NewFromString(s); err != nil {
			v.Add("connections[0].sanctioned_load_kw", "must be a number of kW")
		} else {
			conn.SanctionedLoadKW = &d
		}
	}
	err := v.Err()
	if err == nil {
		_, err = p.svc.Accounts.AddProperty(r.C.UserContext(), r.Actor, r.Scope, account.PropertyInput{Label: f["label"],
			Address: account.Address{Line1: f["address.line1"], Line2: f["address.line2"], City: f["address.city"], State: f["address.state"],
				PostalCode: f["address.postal_code"]},
			Connections: []account.ConnectionInput{conn}})
	}
	if err != nil {
		if errors.Is(err, account.ErrDuplicateProperty) {
			err = &Error{Kind: KindDuplicateProperty, Detail: "meter " + conn.MeterNumber + " is already registered to a property",
				Fields: []FieldError{{Field: "connections[0].meter_number", Message: "is already registered to a property; check the number on the meter, or contact support if it is yours"}}, Err: err}
		}
		if formProblem(err) {
			props, _, lerr := p.connections(r)
			if lerr != nil {
				return lerr
			}
			return p.renderForm(r, "properties", "Properties", propertiesData{Properties: props}, f, err)
		}
		return err
	}
	return p.redirect(r, "/properties", "Property added.")
}

// --- support

type supportData struct {
	Tickets     []support.Ticket
	Categories  []string
	Connections []connOption
	Now         time.Time
}

func (p *Portal) supportData(r *Request) (supportData, error) {
	d := supportData{Categories: support.Categories(), Now: p.now()}
	var err error
	if d.Tickets, err = p.svc.Support.List(r.C.UserContext(), r.Scope, support.Filter{}, account.Page{Limit: 100}); err != nil {
		return d, err
	}
	if r.Scope.Owned() {
		_, d.Connections, err = p.connections(r)
	}
	return d, err
}

func (p *Portal) supportPage(r *Request) error {
	d, err := p.supportData(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "support", "Support", d)
}

func (p *Portal) raiseTicket(r *Request) error {
	f := formValues(r.C, "category", "priority", "subject", "description", "connection_id")
	in := support.TicketInput{Category: f["category"], Priority: support.Priority(f["priority"]), Subject: f["subject"], Description: f["description"]}
	if id, ok := optionalInt64(f["connection_id"]); ok && id != nil {
		in.ConnectionID = *id
	}
	t, err := p.svc.Support.Raise(r.C.UserContext(), r.Actor, r.Scope, in)
	if err != nil {
		if formProblem(err) {
			d, derr := p.supportData(r)
			if derr != nil {
				return derr
			}
			return p.renderForm(r, "support", "Support", d, f, err)
		}
		return err
	}
	msg := fmt.Sprintf("Your query #%d is raised and assigned to %s.", t.ID, t.AssigneeName)
	if t.AwaitingStaff {
		msg = fmt.Sprintf("Your query #%d is raised. No support staff for %q is available right now, so it is queued: it will be assigned as soon as someone is.", t.ID, t.Category)
	}
	return p.redirect(r, fmt.Sprintf("/support/%d", t.ID), msg)
}

type ticketData struct {
	Ticket support.Detail
	Now    time.Time
	Staff  []support.Staff // staff pages: whom to assign to
	// Next are the statuses the caller may move the ticket to.
	Next []support.Status
}

func (p *Portal) ticketData(r *Request) (ticketData, error) {
	id, err := portalID(r, "ticketId")
	if err != nil {
		return ticketData{}, err
	}
	t, err := p.svc.Support.Get(r.C.UserContext(), r.Actor, r.Scope, id)
	if err != nil {
		return ticketData{}, err
	}
	return ticketData{Ticket: t, Now: p.now()}, nil
}

func (p *Portal) ticketPage(r *Request) error {
	d, err := p.ticketData(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "ticket", fmt.Sprintf("Query #%d", d.Ticket.ID), d)
}

// ticketForm re-renders a ticket page whose form was refused.
func (p *Portal) ticketForm(r *Request, page string, f map[string]string, err error, staff bool) error {
	if !formProblem(err) {
		return err
	}
	d, derr := p.ticketData(r)
	if derr != nil {
		return derr
	}
	if staff {
		if d.Staff, derr = p.svc.Support.ListStaff(r.C.UserContext(), r.Scope); derr != nil {
			return derr
		}
	}
	return p.renderForm(r, page, fmt.Sprintf("Query #%d", d.Ticket.ID), d, f, err)
}

func (p *Portal) commentTicket(r *Request) error {
	id, err := portalID(r, "ticketId")
	if err != nil {
		return err
	}
	f := formValues(r.C, "body")
	if _, err := p.svc.Support.Comment(r.C.UserContext(), r.Actor, r.Scope, id, f["body"], false); err != nil {
		return p.ticketForm(r, "ticket", f, err, false)
	}
	return p.redirect(r, fmt.Sprintf("/support/%d", id), "Your comment is added.")
}

func (p *Portal) ticketStatus(r *Request) error {
	id, err := portalID(r, "ticketId")
	if err != nil {
		return err
	}
	f := formValues(r.C, "status", "note")
	if _, err := p.svc.Support.Transition(r.C.UserContext(), r.Actor, r.Scope, id, support.Status(f["status"]), f["note"]); err != nil {
		return p.ticketForm(r, "ticket", f, err, false)
	}
	return p.redirect(r, fmt.Sprintf("/support/%d", id), "The query is "+words(f["status"])+".")
}

// words is a status code in words ("in_progress" → "in progress").
func words(s string) string { return strings.ReplaceAll(s, "_", " ") }

// --- reminders and preferences

type settingsData struct {
	Reminders   []account.Reminder
	Preferences []alerts.Preference
	Events      []alerts.EventSpec
	Default     alerts.Preference
	HasPrefs    bool
}

func (p *Portal) settingsData(r *Request) (settingsData, error) {
	ctx := r.C.UserContext()
	var d settingsData
	var err error
	if d.Reminders, err = p.svc.Accounts.ListReminders(ctx, r.Scope); err != nil {
		return d, err
	}
	if p.svc.Notifications != nil {
		d.HasPrefs = true
		if d.Preferences, err = p.svc.Notifications.Preferences(ctx, r.Scope.TenantID, r.Actor.UserID); err != nil {
			return d, err
		}
		for _, e := range alerts.Events() {
			if e.Preferable {
				d.Events = append(d.Events, e)
			}
		}
		for _, pr := range d.Preferences {
			if pr.Event == alerts.DefaultEvent {
				d.Default = pr
			}
		}
	}
	return d, nil
}

func (p *Portal) settingsPage(r *Request) error {
	d, err := p.settingsData(r)
	if err != nil {
		return err
	}
	v := p.view(r, "Reminders and notifications", d)
	v.Form = settingsForm(d)
	return p.write(r, http.StatusOK, "settings", "layout", v)
}

// settingsForm fills the forms with the current settings.
func settingsForm(d settingsData) map[string]string {
	f := map[string]string{"days_before": "3", "channel": "email", "enabled": "on"}
	for _, rem := range d.Reminders {
		if rem.BillID == 0 {
			f["days_before"], f["channel"] = strconv.Itoa(rem.DaysBefore), rem.Channel
			if !rem.Enabled {
				f["enabled"] = "off"
			}
		}
	}
	if q := d.Default.Quiet; q != nil {
		f["quiet_from"], f["quiet_to"] = q.From.String(), q.To.String()
	}
	for _, c := range d.Default.Channels {
		f["ch_"+string(c)] = "on"
	}
	return f
}

func (p *Portal) settingsForm(r *Request, f map[string]string, err error) error {
	if !formProblem(err) {
		return err
	}
	d, derr := p.settingsData(r)
	if derr != nil {
		return derr
	}
	return p.renderForm(r, "settings", "Reminders and notifications", d, f, err)
}

func (p *Portal) setReminder(r *Request) error {
	f := formValues(r.C, "days_before", "channel", "enabled")
	days, err := strconv.Atoi(f["days_before"])
	if err != nil {
		return p.settingsForm(r, f, &account.ValidationError{Kind: account.ErrReminderSetting,
			Fields: []account.FieldError{{Field: "days_before", Message: "must be a whole number of days"}}})
	}
	enabled := f["enabled"] != "off"
	if _, err := p.svc.Accounts.SetReminder(r.C.UserContext(), r.Actor, r.Scope, account.ReminderInput{DaysBefore: days, Channel: f["channel"], Enabled: &enabled}); err != nil {
		return p.settingsForm(r, f, err)
	}
	return p.redirect(r, "/settings", fmt.Sprintf("We will remind you %d days before each bill is due, by %s.", days, f["channel"]))
}

func (p *Portal) setPreferences(r *Request) error {
	f := formValues(r.C, "ch_email", "ch_sms", "ch_push", "quiet_from", "quiet_to")
	pref := alerts.Preference{Event: alerts.DefaultEvent, ChannelsSet: true, Channels: []alerts.Channel{}}
	for _, c := range []alerts.Channel{alerts.ChannelEmail, alerts.ChannelSMS, alerts.ChannelPush} {
		if f["ch_"+string(c)] != "" {
			pref.Channels = append(pref.Channels, c)
		}
	}
	if f["quiet_from"] != "" || f["quiet_to"] != "" {
		from, err1 := alerts.ParseTimeOfDay(f["quiet_from"])
		to, err2 := alerts.ParseTimeOfDay(f["quiet_to"])
		if err1 != nil || err2 != nil {
			return p.settingsForm(r, f, InvalidInput(FieldError{Field: "quiet_hours", Message: "from and to must be times of day HH:MM"}))
		}
		pref.Quiet = &alerts.QuietHours{From: from, To: to}
	}
	if err := p.svc.Notifications.SetPreference(r.C.UserContext(), r.Scope.TenantID, r.Actor.UserID, pref, alertActor(r)); err != nil {
		return p.settingsForm(r, f, err)
	}
	return p.redirect(r, "/settings", "Your notification preferences are saved.")
}

// --- alerts

type alertsData struct {
	Alerts []alerts.Alert
}

func (p *Portal) alertsPage(r *Request) error {
	list, err := p.svc.Notifications.Alerts(r.C.UserContext(), alerts.AlertFilter{TenantID: r.Scope.TenantID, UserID: r.Scope.UserID, Limit: 100})
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "alerts", "Usage alerts", alertsData{Alerts: list})
}

func (p *Portal) transition(r *Request, to alerts.Status, back string) error {
	id, err := portalID(r, "alertId")
	if err != nil {
		return err
	}
	note := strings.TrimSpace(r.C.FormValue("note"))
	if _, err := p.svc.Notifications.TransitionAlert(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, id, to, note, alertActor(r)); err != nil {
		if formProblem(err) {
			return p.redirect(r, back, "That alert could not be changed: "+ProblemFor(err).Detail)
		}
		return err
	}
	return p.redirect(r, back, fmt.Sprintf("Alert #%d is %s.", id, to))
}

func (p *Portal) acknowledgeAlert(r *Request) error {
	return p.transition(r, alerts.StatusAcknowledged, "/alerts")
}

// --- messages

type messageRow struct {
	alerts.Notification
	About string // the event in words
}

type messagesData struct {
	Messages []messageRow
}

// messagesPage lists what was sent to the consumer (bills, reminders,
// receipts, ticket updates, alerts) and how each delivery went.
func (p *Portal) messagesPage(r *Request) error {
	list, err := p.svc.Notifications.Notifications(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, alerts.NotificationFilter{Limit: 100})
	if err != nil {
		return err
	}
	d := messagesData{Messages: make([]messageRow, len(list))}
	for i, n := range list {
		spec, _ := alerts.LookupEvent(n.Event)
		about := spec.Description
		if about == "" {
			about = words(n.Event)
		}
		d.Messages[i] = messageRow{Notification: n, About: about}
	}
	return p.render(r, http.StatusOK, "messages", "Messages", d)
}
