package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/support"
	"github.com/meterd/meterd/billing"
	billingpg "github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/billing/tariff"
)

// Staff pages under /staff: the support queue, bill runs, tariffs, meters,
// alerts, notification dead letters and users. Each action is the
// service call of the API row it mirrors; what a role may do is the
// permission table's business, the layout only hides links a role cannot
// follow.

type staffHomeData struct {
	Queued, Mine, Open int
	Me                 *support.Staff
}

func (p *Portal) staffHome(r *Request) error {
	ctx := r.C.UserContext()
	var d staffHomeData
	page := account.Page{Limit: 200}
	queued, err := p.svc.Support.List(ctx, r.Scope, support.Filter{Queued: true}, page)
	if err != nil {
		return err
	}
	d.Queued = len(queued)
	open, err := p.svc.Support.List(ctx, r.Scope, support.Filter{Status: support.StatusOpen}, page)
	if err != nil {
		return err
	}
	d.Open = len(open)
	if r.Actor.Role == account.RoleSupport {
		mine, err := p.svc.Support.List(ctx, r.Scope, support.Filter{AssigneeID: r.Actor.UserID}, page)
		if err != nil {
			return err
		}
		for _, t := range mine {
			if t.Status == support.StatusAssigned || t.Status == support.StatusInProgress {
				d.Mine++
			}
		}
	}
	return p.render(r, http.StatusOK, "staff_home", "Staff", d)
}

// --- support queue

type staffTicketsData struct {
	Tickets []support.Ticket
	View    string
	Status  string
	Now     time.Time
	Me      *support.Staff
}

func (p *Portal) staffTickets(r *Request) error {
	ctx := r.C.UserContext()
	d := staffTicketsData{View: r.C.Query("view"), Status: r.C.Query("status"), Now: p.now()}
	if d.View == "" {
		d.View = "all"
		if r.Actor.Role == account.RoleSupport {
			d.View = "mine"
		}
	}
	f := support.Filter{Status: support.Status(d.Status)}
	switch d.View {
	case "mine":
		f.AssigneeID = r.Actor.UserID
	case "queue":
		f.Queued = true
	}
	list, err := p.svc.Support.List(ctx, r.Scope, f, account.Page{Limit: 200})
	if err != nil {
		return err
	}
	d.Tickets = list
	if r.Actor.Role == account.RoleSupport {
		if st, err := p.svc.Support.GetStaff(ctx, r.Scope, r.Actor.UserID); err == nil {
			d.Me = &st
		}
	}
	return p.render(r, http.StatusOK, "staff_tickets", "Support queue", d)
}

func (p *Portal) staffAvailability(r *Request) error {
	avail := r.C.FormValue("available") == "true"
	if _, err := p.svc.Support.PutStaff(r.C.UserContext(), r.Actor, r.Scope, 0, support.StaffInput{Available: &avail}); err != nil {
		return err
	}
	msg := "You are away: no new tickets are assigned to you."
	if avail {
		msg = "You are available: queued tickets for your skills are assigned to you."
	}
	return p.redirect(r, "/staff/tickets", msg)
}

func (p *Portal) staffTicketData(r *Request) (ticketData, error) {
	d, err := p.ticketData(r)
	if err != nil {
		return d, err
	}
	d.Staff, err = p.svc.Support.ListStaff(r.C.UserContext(), r.Scope)
	d.Next = []support.Status{support.StatusInProgress, support.StatusResolved, support.StatusClosed, support.StatusOpen}
	return d, err
}

func (p *Portal) staffTicket(r *Request) error {
	d, err := p.staffTicketData(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "staff_ticket", fmt.Sprintf("Ticket #%d", d.Ticket.ID), d)
}

func (p *Portal) staffTicketForm(r *Request, f map[string]string, err error) error {
	if !formProblem(err) {
		return err
	}
	d, derr := p.staffTicketData(r)
	if derr != nil {
		return derr
	}
	return p.renderForm(r, "staff_ticket", fmt.Sprintf("Ticket #%d", d.Ticket.ID), d, f, err)
}

func (p *Portal) staffAssign(r *Request) error {
	id, err := portalID(r, "ticketId")
	if err != nil {
		return err
	}
	f := formValues(r.C, "staff_id", "assign_note")
	staffID, _ := strconv.ParseInt(f["staff_id"], 10, 64)
	t, err := p.svc.Support.Assign(r.C.UserContext(), r.Actor, r.Scope, id, staffID, f["assign_note"])
	if err != nil {
		return p.staffTicketForm(r, f, err)
	}
	return p.redirect(r, fmt.Sprintf("/staff/tickets/%d", id), fmt.Sprintf("Ticket #%d is assigned to %s.", id, t.AssigneeName))
}

func (p *Portal) staffTicketStatus(r *Request) error {
	id, err := portalID(r, "ticketId")
	if err != nil {
		return err
	}
	f := formValues(r.C, "status", "note")
	if _, err := p.svc.Support.Transition(r.C.UserContext(), r.Actor, r.Scope, id, support.Status(f["status"]), f["note"]); err != nil {
		return p.staffTicketForm(r, f, err)
	}
	return p.redirect(r, fmt.Sprintf("/staff/tickets/%d", id), fmt.Sprintf("Ticket #%d is %s; the consumer is told.", id, words(f["status"])))
}

func (p *Portal) staffComment(r *Request) error {
	id, err := portalID(r, "ticketId")
	if err != nil {
		return err
	}
	f := formValues(r.C, "body", "internal")
	if _, err := p.svc.Support.Comment(r.C.UserContext(), r.Actor, r.Scope, id, f["body"], f["internal"] != ""); err != nil {
		return p.staffTicketForm(r, f, err)
	}
	return p.redirect(r, fmt.Sprintf("/staff/tickets/%d", id), "Comment added.")
}

// --- bill runs

type runsData struct {
	Runs        []billingpg.Run
	DeadLetters []billingpg.DeadLetter
	Run         *billingpg.Run
	// Period is an example period for the form: the current month so
	// far (tenant zone).
	Period string
}

func (p *Portal) runsData(r *Request) (runsData, error) {
	ctx := r.C.UserContext()
	var d runsData
	var err error
	if d.Runs, err = p.svc.Billing.Runs(ctx, r.Scope.TenantID, 50); err != nil {
		return d, err
	}
	if d.DeadLetters, err = p.svc.Billing.DeadLetters(ctx, r.Scope.TenantID, "", 500); err != nil {
		return d, err
	}
	today := billing.DateOf(p.now(), p.loc(r))
	d.Period = fmt.Sprintf("%s..%s", billing.NewDate(today.Year(), today.Month(), 1), today)
	return d, nil
}

func (p *Portal) staffRuns(r *Request) error {
	d, err := p.runsData(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "staff_runs", "Bill runs", d)
}

func (p *Portal) staffTriggerRun(r *Request) error {
	f := formValues(r.C, "service", "period", "rerun")
	req := RunRequest{TenantID: r.Scope.TenantID, Service: f["service"], Rerun: f["rerun"] != "", Audit: billingAudit(r)}
	if req.Service == "" {
		req.Service = "electricity"
	}
	var err error
	if f["period"] != "" {
		pd, perr := parsePeriod(f["period"])
		if perr != nil {
			err = InvalidInput(FieldError{Field: "period", Message: perr.Error()})
		}
		req.Period = &pd
	}
	var run billingpg.Run
	if err == nil {
		run, err = p.svc.Billing.TriggerRun(r.C.UserContext(), req)
	}
	if err != nil {
		if formProblem(err) {
			d, derr := p.runsData(r)
			if derr != nil {
				return derr
			}
			return p.renderForm(r, "staff_runs", "Bill runs", d, f, err)
		}
		return err
	}
	return p.redirect(r, fmt.Sprintf("/staff/billing/runs/%d", run.ID), fmt.Sprintf("Bill run #%d started for %s.", run.ID, run.Period))
}

func (p *Portal) runOf(r *Request) (runsData, error) {
	id, err := portalID(r, "runId")
	if err != nil {
		return runsData{}, err
	}
	run, err := p.svc.Billing.Run(r.C.UserContext(), r.Scope.TenantID, id)
	if err != nil {
		return runsData{}, err
	}
	return runsData{Run: &run}, nil
}

func (p *Portal) staffRun(r *Request) error {
	d, err := p.runOf(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "staff_run", fmt.Sprintf("Bill run #%d", d.Run.ID), d)
}

func (p *Portal) staffRunProgress(r *Request) error {
	d, err := p.runOf(r)
	if err != nil {
		return err
	}
	return p.fragment(r, "staff_run", "progress", d)
}

// --- tariffs

type tariffsData struct {
	Versions []billingpg.TariffVersion
	// Published is the version just published; Quote a quote's result.
	Published *billingpg.TariffVersion
	Quote     string
}

func (p *Portal) tariffsData(r *Request) (tariffsData, error) {
	list, err := p.svc.Billing.Tariffs(r.C.UserContext(), r.Scope.TenantID, "", "")
	return tariffsData{Versions: list}, err
}

func (p *Portal) staffTariffs(r *Request) error {
	d, err := p.tariffsData(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "staff_tariffs", "Tariffs", d)
}

// tariffFields names a publish form's fields: a tariff document's
// validation errors name paths inside the document, shown on it.
func tariffFields(err error) error {
	pb := ProblemFor(err)
	if len(pb.Errors) == 0 {
		return err
	}
	e := &Error{Kind: Kind{Code: pb.Code, Status: pb.Status, Title: pb.Title}, Detail: pb.Detail, Err: err}
	for _, f := range pb.Errors {
		switch f.Field {
		case "plan", "version", "effective_from", "service":
			e.Fields = append(e.Fields, f)
		case "", "document":
			e.Fields = append(e.Fields, FieldError{Field: "document", Message: f.Message})
		default:
			e.Fields = append(e.Fields, FieldError{Field: "document", Message: f.Field + ": " + f.Message})
		}
	}
	return e
}

func (p *Portal) staffPublishTariff(r *Request) error {
	f := formValues(r.C, "service", "plan", "version", "effective_from", "document")
	pub := billingpg.Publish{TenantID: r.Scope.TenantID, Service: f["service"], Plan: f["plan"], Document: []byte(f["document"]), Version: f["version"],
		PublishedBy: r.Actor.UserID, Audit: billingAudit(r)}
	if pub.Service == "" {
		pub.Service = "electricity"
	}
	var err error
	switch {
	case strings.TrimSpace(f["document"]) == "":
		err = InvalidInput(FieldError{Field: "document", Message: "is required: paste the tariff document (JSON or YAML)"})
	}
	if err == nil && f["effective_from"] != "" {
		d, derr := billing.ParseDate(f["effective_from"])
		if derr != nil {
			err = InvalidInput(FieldError{Field: "effective_from", Message: "must be a date YYYY-MM-DD"})
		}
		pub.EffectiveFrom = d
	}
	var v billingpg.TariffVersion
	if err == nil {
		v, err = p.svc.Billing.PublishTariff(r.C.UserContext(), pub)
	}
	if err != nil {
		err = tariffFields(err)
		if formProblem(err) {
			d, derr := p.tariffsData(r)
			if derr != nil {
				return derr
			}
			return p.renderForm(r, "staff_tariffs", "Tariffs", d, f, err)
		}
		return err
	}
	return p.redirect(r, "/staff/tariffs", fmt.Sprintf("Published %s %s version %s, effective %s.", v.Service, v.Plan, v.Version, v.EffectiveFrom))
}

func (p *Portal) staffQuote(r *Request) error {
	f := formValues(r.C, "tariff", "usage")
	d, err := p.tariffsData(r)
	if err != nil {
		return err
	}
	var qerr error
	switch {
	case f["tariff"] == "":
		qerr = InvalidInput(FieldError{Field: "tariff", Message: "is required: paste a tariff document"})
	case f["usage"] == "":
		qerr = InvalidInput(FieldError{Field: "usage", Message: "is required: describe the usage as JSON"})
	}
	if qerr == nil {
		q, err := tariff.QuoteJSON([]byte(f["tariff"]), []byte(f["usage"]))
		if err == nil {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetIndent("", "  ")
			if err = enc.Encode(q); err == nil {
				d.Quote = b.String()
			}
		}
		qerr = err
	}
	if qerr != nil {
		if formProblem(qerr) {
			return p.renderForm(r, "staff_tariffs", "Tariffs", d, f, qerr)
		}
		return qerr
	}
	v := p.view(r, "Tariffs", d)
	v.Form = f
	return p.write(r, http.StatusOK, "staff_tariffs", "layout", v)
}

// --- meters

type metersData struct {
	Meters []account.Meter
	// Credentials are a meter's new MQTT credentials, shown this once.
	Credentials *account.MQTTCredentials
	Meter       *account.Meter
}

func (p *Portal) metersData(r *Request) (metersData, error) {
	list, err := p.svc.Accounts.ListMeters(r.C.UserContext(), r.Scope, account.Page{Limit: 200})
	return metersData{Meters: list}, err
}

func (p *Portal) staffMeters(r *Request) error {
	d, err := p.metersData(r)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "staff_meters", "Meters", d)
}

func (p *Portal) staffProvision(r *Request) error {
	f := formValues(r.C, "external_id", "serial", "model", "protocol", "format", "multiplier", "expected_interval_s")
	in := account.MeterInput{ExternalID: f["external_id"], Serial: f["serial"], Model: f["model"], Protocol: account.Protocol(f["protocol"])}
	var err error
	if in.Protocol == account.ProtocolMQTT && f["format"] != "" {
		in.Settings = map[string]any{"format": f["format"]}
	}
	if f["multiplier"] != "" {
		m, merr := decimal.NewFromString(f["multiplier"])
		if merr != nil {
			err = InvalidInput(FieldError{Field: "multiplier", Message: "must be a number"})
		}
		in.Multiplier = &m
	}
	if f["expected_interval_s"] != "" {
		s, serr := strconv.Atoi(f["expected_interval_s"])
		if serr != nil || s <= 0 {
			err = InvalidInput(FieldError{Field: "expected_interval_s", Message: "must be a positive number of seconds"})
		}
		in.ExpectedInterval = time.Duration(s) * time.Second
	}
	var prov account.Provisioned
	if err == nil {
		prov, err = p.svc.Accounts.ProvisionMeter(r.C.UserContext(), r.Actor, r.Scope, in)
	}
	if err != nil {
		if formProblem(err) {
			d, derr := p.metersData(r)
			if derr != nil {
				return derr
			}
			return p.renderForm(r, "staff_meters", "Meters", d, f, err)
		}
		return err
	}
	return p.render(r, http.StatusCreated, "staff_meter_secret", "Meter provisioned", metersData{Meter: &prov.Meter, Credentials: prov.Credentials})
}

func (p *Portal) staffRotate(r *Request) error {
	id, err := portalID(r, "meterId")
	if err != nil {
		return err
	}
	creds, err := p.svc.Accounts.RotateMeterSecret(r.C.UserContext(), r.Actor, r.Scope, id)
	if err != nil {
		if formProblem(err) {
			return p.redirect(r, "/staff/meters", "New credentials could not be issued: "+ProblemFor(err).Detail)
		}
		return err
	}
	m, err := p.svc.Accounts.GetMeter(r.C.UserContext(), r.Scope, id)
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "staff_meter_secret", "New meter credentials", metersData{Meter: &m, Credentials: &creds})
}

// --- alerts and notifications

type staffAlertsData struct {
	Alerts []alerts.Alert
	Status string
}

func (p *Portal) staffAlerts(r *Request) error {
	d := staffAlertsData{Status: r.C.Query("status", "unresolved")}
	f := alerts.AlertFilter{TenantID: r.Scope.TenantID, UserID: r.Scope.UserID, Limit: 200}
	switch d.Status {
	case "unresolved":
		f.Statuses = []alerts.Status{alerts.StatusOpen, alerts.StatusAcknowledged}
	case "open", "acknowledged", "resolved":
		f.Statuses = []alerts.Status{alerts.Status(d.Status)}
	default:
		d.Status = "all"
	}
	list, err := p.svc.Notifications.Alerts(r.C.UserContext(), f)
	if err != nil {
		return err
	}
	d.Alerts = list
	return p.render(r, http.StatusOK, "staff_alerts", "Alerts", d)
}

func (p *Portal) staffAcknowledge(r *Request) error {
	return p.transition(r, alerts.StatusAcknowledged, "/staff/alerts")
}

func (p *Portal) staffResolve(r *Request) error {
	return p.transition(r, alerts.StatusResolved, "/staff/alerts")
}

type deadLettersData struct {
	Notifications []alerts.Notification
}

func (p *Portal) staffNotifications(r *Request) error {
	list, err := p.svc.Notifications.Notifications(r.C.UserContext(), r.Scope.TenantID, r.Scope.UserID, alerts.NotificationFilter{Status: "dead", Limit: 200})
	if err != nil {
		return err
	}
	return p.render(r, http.StatusOK, "staff_notifications", "Notification dead letters", deadLettersData{Notifications: list})
}

func (p *Portal) staffRetry(r *Request) error {
	id, err := portalID(r, "notificationId")
	if err != nil {
		return err
	}
	n, err := p.svc.Notifications.RetryNotification(r.C.UserContext(), r.Scope.TenantID, id, alertActor(r))
	if err != nil {
		if formProblem(err) {
			return p.redirect(r, "/staff/notifications", "That notification could not be retried: "+ProblemFor(err).Detail)
		}
		return err
	}
	return p.redirect(r, "/staff/notifications", fmt.Sprintf("Notification #%d: %d deliveries queued again.", id, n))
}

// --- users

type usersData struct {
	Users []account.User
	Role  string
}

func (p *Portal) usersData(r *Request) (usersData, error) {
	d := usersData{Role: r.C.Query("role")}
	list, err := p.svc.Accounts.ListUsers(r.C.UserContext(), r.Scope, account.Role(d.Role), account.Page{Limit: 200})
	d.Users = list
	return d, err
}

func (p *Portal) staffUsers(r *Request) error {
	d, err := p.usersData(r)
	if err != nil {
		if formProblem(err) {
			return p.renderForm(r, "staff_users", "Users", usersData{}, map[string]string{}, err)
		}
		return err
	}
	return p.render(r, http.StatusOK, "staff_users", "Users", d)
}

func (p *Portal) staffCreateUser(r *Request) error {
	f := formValues(r.C, "email", "name", "role", "department")
	u, err := p.svc.Accounts.CreateUser(r.C.UserContext(), r.Actor, r.Scope, account.NewUserInput{Email: f["email"], Password: r.C.FormValue("password"),
		Role: account.Role(f["role"]), Department: f["department"], Name: f["name"]})
	if err != nil {
		if formProblem(err) {
			d, derr := p.usersData(r)
			if derr != nil {
				return derr
			}
			return p.renderForm(r, "staff_users", "Users", d, f, err)
		}
		return err
	}
	return p.redirect(r, "/staff/users", fmt.Sprintf("Created %s (%s).", u.Email, u.Role))
}

func (p *Portal) staffPatchUser(r *Request) error {
	id, err := portalID(r, "userId")
	if err != nil {
		return err
	}
	var patch account.UserPatch
	switch action := r.C.FormValue("action"); action {
	case "suspend", "reactivate":
		st := account.StatusSuspended
		if action == "reactivate" {
			st = account.StatusActive
		}
		patch.Status = &st
	case "unlock":
		patch.Unlock = true
	default:
		return InvalidInput(FieldError{Field: "action", Message: "must be suspend, reactivate or unlock"})
	}
	u, err := p.svc.Accounts.UpdateUser(r.C.UserContext(), r.Actor, r.Scope, id, patch)
	if err != nil {
		if formProblem(err) {
			return p.redirect(r, "/staff/users", "That change was refused: "+ProblemFor(err).Detail)
		}
		return err
	}
	return p.redirect(r, "/staff/users", fmt.Sprintf("%s is %s.", u.Email, strings.ToLower(string(u.Status))))
}
