package api

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/support"
	"github.com/meterd/meterd/api/usage"
)

// handlers are the route handlers: they parse input, call a service and
// render its result. Business rules live in the services.
type handlers struct {
	svc Services
	now func() time.Time
}

// --- accounts and sessions

func (h *handlers) register(r *Request) error {
	var in registerRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	u, err := h.svc.Accounts.Register(r.C.UserContext(), r.Actor, account.RegisterInput{Tenant: in.Tenant, Email: in.Email,
		Password: in.Password, Name: in.Name, Phone: in.Phone, Address: in.Address.domain()})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusCreated, registerResponse{User: userOf(u), Message: "account created; follow the link sent to " + u.Email + " to verify the address, then log in"})
}

func (h *handlers) login(r *Request) error {
	var in loginRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	s, err := h.svc.Accounts.Login(r.C.UserContext(), r.Actor, account.LoginInput{Tenant: in.Tenant, Email: in.Email, Password: in.Password, TOTPCode: in.TOTPCode})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, sessionOf(s, h.now()))
}

func (h *handlers) authenticate(r *Request) error {
	var in authenticateRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	s, err := h.svc.Accounts.Login(r.C.UserContext(), r.Actor, account.LoginInput{Tenant: in.Tenant, Email: in.Username, Password: in.Password, TOTPCode: in.TOTPCode})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, authenticateResponse{Token: s.AccessToken, TokenType: "Bearer", ExpiresIn: int64(s.AccessExpires.Sub(h.now()).Round(time.Second).Seconds())})
}

func (h *handlers) hello(r *Request) error {
	return r.ok(fiber.StatusOK, helloResponse{Message: "Hello World", UserID: r.Actor.UserID, Role: string(r.Actor.Role)})
}

func (h *handlers) refresh(r *Request) error {
	var in refreshRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	s, err := h.svc.Accounts.Refresh(r.C.UserContext(), r.Actor, in.RefreshToken)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, sessionOf(s, h.now()))
}

func (h *handlers) logout(r *Request) error {
	if err := h.svc.Accounts.Logout(r.C.UserContext(), r.Actor); err != nil {
		return err
	}
	return r.C.SendStatus(fiber.StatusNoContent)
}

func (h *handlers) verifyEmail(r *Request) error {
	var in tokenRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	u, err := h.svc.Accounts.VerifyEmail(r.C.UserContext(), r.Actor, in.Token)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, userOf(u))
}

func (h *handlers) verifyEmailLink(r *Request) error {
	u, err := h.svc.Accounts.VerifyEmail(r.C.UserContext(), r.Actor, r.C.Query("token"))
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, userOf(u))
}

func (h *handlers) resendVerification(r *Request) error {
	var in resendRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	if err := h.svc.Accounts.ResendVerification(r.C.UserContext(), r.Actor, in.Tenant, in.Email); err != nil {
		return err
	}
	return r.ok(fiber.StatusAccepted, messageResponse{Message: "if the address belongs to an unverified account, a new verification email is on its way"})
}

func (h *handlers) me(r *Request) error {
	u, err := h.svc.Accounts.Me(r.C.UserContext(), r.Actor)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, userOf(u))
}

func (h *handlers) changePassword(r *Request) error {
	var in passwordRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	if err := h.svc.Accounts.ChangePassword(r.C.UserContext(), r.Actor, in.CurrentPassword, in.NewPassword); err != nil {
		return err
	}
	return r.C.SendStatus(fiber.StatusNoContent)
}

func (h *handlers) totpSetup(r *Request) error {
	s, err := h.svc.Accounts.SetupTOTP(r.C.UserContext(), r.Actor)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, totpSetupResponse{Secret: s.Secret, OTPAuthURI: s.URI})
}

func (h *handlers) totpEnable(r *Request) error {
	var in totpCodeRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	if err := h.svc.Accounts.EnableTOTP(r.C.UserContext(), r.Actor, in.Code); err != nil {
		return err
	}
	return r.C.SendStatus(fiber.StatusNoContent)
}

func (h *handlers) totpDisable(r *Request) error {
	var in totpDisableRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	if err := h.svc.Accounts.DisableTOTP(r.C.UserContext(), r.Actor, in.Password, in.Code); err != nil {
		return err
	}
	return r.C.SendStatus(fiber.StatusNoContent)
}

// --- profiles

func (h *handlers) getProfile(r *Request) error {
	uid, err := r.queryID("user_id")
	if err != nil {
		return err
	}
	p, err := h.svc.Accounts.GetProfile(r.C.UserContext(), r.Actor, r.Scope, uid)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, profileOf(p))
}

func (h *handlers) putProfile(r *Request) error {
	var in profileRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	p, err := h.svc.Accounts.UpdateProfile(r.C.UserContext(), r.Actor, r.Scope, 0, account.ProfileInput{Name: in.Name, Email: in.Email, Phone: in.Phone, Address: in.Address.domain()})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, profileOf(p))
}

// --- properties and connections

func (h *handlers) listProperties(r *Request) error {
	p, err := r.page()
	if err != nil {
		return err
	}
	owner, err := r.queryID("user_id")
	if err != nil {
		return err
	}
	list, err := h.svc.Accounts.ListProperties(r.C.UserContext(), r.Scope, owner, p)
	if err != nil {
		return err
	}
	items := mapped(list, propertyOf)
	return r.ok(fiber.StatusOK, pageOf(items, p, func(d propertyDTO) int64 { return d.ID }))
}

func (h *handlers) addProperty(r *Request) error {
	var in propertyRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	conns := make([]account.ConnectionInput, 0, len(in.Connections)+1)
	flat := in.connectionRequest
	if flat.MeterNumber != "" || flat.TariffPlan != "" || flat.Service != "" || flat.SanctionedLoadKW != nil || flat.UsageCategory != "" ||
		flat.ConnectionType != "" || flat.ConsumerCode != "" || flat.WaterClosets != nil || flat.Toilets != nil || flat.PlotSizeM2 != nil || len(flat.RoadCutting) > 0 {
		if len(in.Connections) > 0 {
			return InvalidInput(FieldError{Field: "connections", Message: "give the connection fields at the top level or in connections, not both"})
		}
		conns = append(conns, flat.domain())
	}
	for _, c := range in.Connections {
		conns = append(conns, c.domain())
	}
	p, err := h.svc.Accounts.AddProperty(r.C.UserContext(), r.Actor, r.Scope, account.PropertyInput{
		UserID: in.UserID, Label: in.Label, Address: *in.Address.domain(), Connections: conns})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusCreated, propertyOf(p))
}

func (h *handlers) getProperty(r *Request) error {
	id, err := r.pathID("propertyId")
	if err != nil {
		return err
	}
	p, err := h.svc.Accounts.GetProperty(r.C.UserContext(), r.Scope, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, propertyOf(p))
}

func (h *handlers) addConnection(r *Request) error {
	id, err := r.pathID("propertyId")
	if err != nil {
		return err
	}
	var in connectionRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	c, err := h.svc.Accounts.AddConnection(r.C.UserContext(), r.Actor, r.Scope, id, in.domain())
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusCreated, connectionOf(c))
}

func (h *handlers) getConnection(r *Request) error {
	id, err := r.pathID("connectionId")
	if err != nil {
		return err
	}
	c, err := h.svc.Accounts.GetConnection(r.C.UserContext(), r.Scope, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, connectionOf(c))
}

func (h *handlers) installations(r *Request) error {
	id, err := r.pathID("connectionId")
	if err != nil {
		return err
	}
	list, err := h.svc.Accounts.ConnectionHistory(r.C.UserContext(), r.Scope, id)
	if err != nil {
		return err
	}
	items := make([]installationDTO, len(list))
	for i := range list {
		items[i] = *installationOf(&list[i])
	}
	return r.ok(fiber.StatusOK, Page[installationDTO]{Items: items})
}

func (h *handlers) patchConnection(r *Request) error {
	id, err := r.pathID("connectionId")
	if err != nil {
		return err
	}
	var in connectionPatchRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	p := account.ConnectionPatch{TariffPlan: in.TariffPlan, ConnectionType: in.ConnectionType, SanctionedLoadKW: in.SanctionedLoadKW,
		UsageCategory: in.UsageCategory, WaterClosets: in.WaterClosets, Toilets: in.Toilets, PlotSizeM2: in.PlotSizeM2}
	if in.Status != nil {
		st := account.ConnectionStatus(*in.Status)
		p.Status = &st
	}
	if in.RoadCutting != nil {
		rc := make([]account.RoadCutting, len(*in.RoadCutting))
		for i, x := range *in.RoadCutting {
			rc[i] = account.RoadCutting{RoadType: x.RoadType, AreaM2: x.AreaM2}
		}
		p.RoadCutting = &rc
	}
	c, err := h.svc.Accounts.UpdateConnection(r.C.UserContext(), r.Actor, r.Scope, id, p)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, connectionOf(c))
}

func (h *handlers) installMeter(r *Request) error {
	id, err := r.pathID("connectionId")
	if err != nil {
		return err
	}
	var in installRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	ii := account.InstallInput{MeterID: in.MeterID, InitialImportWh: in.InitialImportWh, InitialExportWh: in.InitialExportWh,
		FinalImportWh: in.FinalImportWh, FinalExportWh: in.FinalExportWh, RemovalReason: in.RemovalReason}
	if in.InstalledAt != nil {
		ii.At = *in.InstalledAt
	}
	inst, err := h.svc.Accounts.InstallMeter(r.C.UserContext(), r.Actor, r.Scope, id, ii)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, installationOf(&inst))
}

// --- meters

func (h *handlers) provisionMeter(r *Request) error {
	var in meterRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	p, err := h.svc.Accounts.ProvisionMeter(r.C.UserContext(), r.Actor, r.Scope, account.MeterInput{ExternalID: in.ExternalID,
		Serial: in.Serial, Model: in.Model, Protocol: account.Protocol(in.Protocol), Settings: in.Settings,
		Multiplier: in.Multiplier, ExpectedInterval: time.Duration(in.ExpectedIntervalS) * time.Second})
	if err != nil {
		return err
	}
	out := provisionedDTO{Meter: meterOf(p.Meter)}
	if c := p.Credentials; c != nil {
		out.Credentials = &credentialsDTO{Username: c.Username, Password: c.Password, Topic: c.Topic}
	}
	return r.ok(fiber.StatusCreated, out)
}

func (h *handlers) listMeters(r *Request) error {
	p, err := r.page()
	if err != nil {
		return err
	}
	list, err := h.svc.Accounts.ListMeters(r.C.UserContext(), r.Scope, p)
	if err != nil {
		return err
	}
	items := mapped(list, meterOf)
	return r.ok(fiber.StatusOK, pageOf(items, p, func(d meterDTO) int64 { return d.ID }))
}

func (h *handlers) getMeter(r *Request) error {
	id, err := r.pathID("meterId")
	if err != nil {
		return err
	}
	m, err := h.svc.Accounts.GetMeter(r.C.UserContext(), r.Scope, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, meterOf(m))
}

func (h *handlers) rotateMeterSecret(r *Request) error {
	id, err := r.pathID("meterId")
	if err != nil {
		return err
	}
	c, err := h.svc.Accounts.RotateMeterSecret(r.C.UserContext(), r.Actor, r.Scope, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, credentialsDTO{Username: c.Username, Password: c.Password, Topic: c.Topic})
}

// --- usage

func (h *handlers) liveUsage(r *Request) error {
	p, err := r.page()
	if err != nil {
		return err
	}
	var f usage.LiveFilter
	if f.MeterID, err = r.queryID("meter_id"); err != nil {
		return err
	}
	if f.ConnectionID, err = r.queryID("connection_id"); err != nil {
		return err
	}
	list, err := h.svc.Usage.Live(r.C.UserContext(), r.Scope, f, p)
	if err != nil {
		return err
	}
	items := mapped(list, liveOf)
	return r.ok(fiber.StatusOK, pageOf(items, p, func(d liveDTO) int64 { return d.MeterID }))
}

func (h *handlers) manualReading(r *Request) error {
	var in manualReadingRequest
	if err := r.bind(&in, usage.ErrInvalidReading); err != nil {
		return err
	}
	ei := usage.EntryInput{MeterID: in.MeterID, ConnectionID: in.ConnectionID, ImportWh: in.ImportWh, ExportWh: in.ExportWh, Reset: in.Reset}
	if in.Time != nil {
		ei.Time = *in.Time
	}
	e, err := h.svc.Usage.Record(r.C.UserContext(), r.Actor, r.Scope, ei)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusCreated, manualReadingDTO{MeterID: e.MeterID, ConnectionID: idPtr(e.ConnectionID), Time: e.Time.UTC(),
		ImportWh: e.ImportWh, ExportWh: e.ExportWh, Reset: e.Reset, Source: "manual", ConsumptionWh: e.ConsumptionWh})
}

func (h *handlers) usageHistory(r *Request) error {
	var q usage.HistoryQuery
	var err error
	if q.ConnectionID, err = r.queryID("connection_id"); err != nil {
		return err
	}
	if q.MeterID, err = r.queryID("meter_id"); err != nil {
		return err
	}
	if q.From, err = r.queryTime("from"); err != nil {
		return err
	}
	if q.To, err = r.queryTime("to"); err != nil {
		return err
	}
	q.Granularity = usage.Granularity(r.C.Query("granularity"))
	format := r.C.Query("format")
	if format == "" {
		switch {
		case strings.Contains(r.C.Get(fiber.HeaderAccept), "text/csv"):
			format = "csv"
		case strings.Contains(r.C.Get(fiber.HeaderAccept), "image/svg+xml"):
			format = "svg"
		default:
			format = "json"
		}
	}
	if format != "json" && format != "csv" && format != "svg" {
		return InvalidInput(FieldError{Field: "format", Message: "must be json, csv or svg"})
	}
	s, err := h.svc.Usage.History(r.C.UserContext(), r.Scope, q)
	if err != nil {
		return err
	}
	switch format {
	case "csv":
		r.C.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		r.C.Set(fiber.HeaderContentDisposition, `attachment; filename="usage-`+string(s.Granularity)+`.csv"`)
		return usage.WriteCSV(r.C.Response().BodyWriter(), s)
	case "svg":
		title := fmt.Sprintf("Consumption per %s (%s), %s", s.Granularity, s.Kind.KiloUnit(), s.TimeZone)
		svg, err := usage.SVG(s, title)
		if err != nil {
			return err
		}
		r.C.Set(fiber.HeaderContentType, "image/svg+xml")
		return r.C.Send(svg)
	}
	return r.ok(fiber.StatusOK, historyOf(s))
}

// --- support desk

func (h *handlers) raiseTicket(r *Request) error {
	var in ticketRequest
	if err := r.bind(&in, support.ErrInvalidQuery); err != nil {
		return err
	}
	t, err := h.svc.Support.Raise(r.C.UserContext(), r.Actor, r.Scope, support.TicketInput{UserID: in.UserID, Category: in.Category,
		Priority: support.Priority(in.Priority), Subject: in.Subject, Description: in.Description, PropertyID: in.PropertyID, ConnectionID: in.ConnectionID})
	if err != nil {
		return err
	}
	dto := ticketOf(t, h.now())
	if t.AwaitingStaff {
		// Accepted, but nobody can take it yet: say so, with the ticket.
		return &Error{Kind: KindSupportStaffUnavailable,
			Detail:     fmt.Sprintf("ticket %d is queued: no support staff for %q is available now; it will be assigned as soon as someone is", t.ID, t.Category),
			Extensions: map[string]any{"ticket": dto}}
	}
	r.C.Location("/api/tickets/" + strconv.FormatInt(t.ID, 10))
	return r.ok(fiber.StatusCreated, dto)
}

func (h *handlers) listTickets(r *Request) error {
	p, err := r.page()
	if err != nil {
		return err
	}
	f := support.Filter{Status: support.Status(r.C.Query("status")), Queued: r.C.QueryBool("queued")}
	switch a := r.C.Query("assignee"); a {
	case "":
	case "me":
		f.AssigneeID = r.Actor.UserID
	default:
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return InvalidInput(FieldError{Field: "assignee", Message: "must be 'me' or a user id"})
		}
		f.AssigneeID = id
	}
	list, err := h.svc.Support.List(r.C.UserContext(), r.Scope, f, p)
	if err != nil {
		return err
	}
	now := h.now()
	items := make([]ticketDTO, len(list))
	for i, t := range list {
		items[i] = ticketOf(t, now)
	}
	return r.ok(fiber.StatusOK, pageOf(items, p, func(d ticketDTO) int64 { return d.ID }))
}

func (h *handlers) getTicket(r *Request) error {
	id, err := r.pathID("ticketId")
	if err != nil {
		return err
	}
	d, err := h.svc.Support.Get(r.C.UserContext(), r.Actor, r.Scope, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, ticketDetailOf(d, h.now()))
}

func (h *handlers) commentTicket(r *Request) error {
	id, err := r.pathID("ticketId")
	if err != nil {
		return err
	}
	var in commentRequest
	if err := r.bind(&in, support.ErrInvalidQuery); err != nil {
		return err
	}
	c, err := h.svc.Support.Comment(r.C.UserContext(), r.Actor, r.Scope, id, in.Body, in.Internal)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusCreated, commentOf(c))
}

func (h *handlers) ticketStatus(r *Request) error {
	id, err := r.pathID("ticketId")
	if err != nil {
		return err
	}
	var in statusRequest
	if err := r.bind(&in, support.ErrInvalidQuery); err != nil {
		return err
	}
	t, err := h.svc.Support.Transition(r.C.UserContext(), r.Actor, r.Scope, id, support.Status(in.Status), in.Note)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, ticketOf(t, h.now()))
}

func (h *handlers) assignTicket(r *Request) error {
	id, err := r.pathID("ticketId")
	if err != nil {
		return err
	}
	var in assignRequest
	if err := r.bind(&in, support.ErrInvalidQuery); err != nil {
		return err
	}
	t, err := h.svc.Support.Assign(r.C.UserContext(), r.Actor, r.Scope, id, in.StaffID, in.Note)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, ticketOf(t, h.now()))
}

func (h *handlers) listStaff(r *Request) error {
	list, err := h.svc.Support.ListStaff(r.C.UserContext(), r.Scope)
	if err != nil {
		return err
	}
	items := mapped(list, staffOf)
	return r.ok(fiber.StatusOK, Page[staffDTO]{Items: items})
}

func (h *handlers) putOwnStaff(r *Request) error { return h.putStaffFor(r, r.Actor.UserID) }

func (h *handlers) putStaff(r *Request) error {
	id, err := r.pathID("userId")
	if err != nil {
		return err
	}
	return h.putStaffFor(r, id)
}

func (h *handlers) putStaffFor(r *Request, userID int64) error {
	var in staffRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	st, err := h.svc.Support.PutStaff(r.C.UserContext(), r.Actor, r.Scope, userID, support.StaffInput{Skills: in.Skills, Available: in.Available, MaxOpen: in.MaxOpen})
	if errors.Is(err, support.ErrStaffNotFound) {
		return Errorf(KindNotFound, "user %d is not support staff of this utility", userID)
	}
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, staffOf(st))
}

// --- reminders

func (h *handlers) setReminder(r *Request) error {
	var in reminderRequest
	if err := r.bind(&in, account.ErrReminderSetting); err != nil {
		return err
	}
	rem, err := h.svc.Accounts.SetReminder(r.C.UserContext(), r.Actor, r.Scope, account.ReminderInput{BillID: in.BillID, DaysBefore: in.DaysBefore, Channel: in.Channel, Enabled: in.Enabled})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, reminderOf(rem))
}

func (h *handlers) listReminders(r *Request) error {
	list, err := h.svc.Accounts.ListReminders(r.C.UserContext(), r.Scope)
	if err != nil {
		return err
	}
	items := mapped(list, reminderOf)
	return r.ok(fiber.StatusOK, Page[reminderDTO]{Items: items})
}

// --- administration

func (h *handlers) createUser(r *Request) error {
	var in createUserRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	u, err := h.svc.Accounts.CreateUser(r.C.UserContext(), r.Actor, r.Scope, account.NewUserInput{Email: in.Email, Password: in.Password,
		Role: account.Role(in.Role), Department: in.Department, Name: in.Name})
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusCreated, userOf(u))
}

func (h *handlers) listUsers(r *Request) error {
	p, err := r.page()
	if err != nil {
		return err
	}
	list, err := h.svc.Accounts.ListUsers(r.C.UserContext(), r.Scope, account.Role(r.C.Query("role")), p)
	if err != nil {
		return err
	}
	items := mapped(list, userOf)
	return r.ok(fiber.StatusOK, pageOf(items, p, func(d userDTO) int64 { return d.ID }))
}

func (h *handlers) getUser(r *Request) error {
	id, err := r.pathID("userId")
	if err != nil {
		return err
	}
	u, err := h.svc.Accounts.GetUser(r.C.UserContext(), r.Scope, id)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, userOf(u))
}

func (h *handlers) patchUser(r *Request) error {
	id, err := r.pathID("userId")
	if err != nil {
		return err
	}
	var in userPatchRequest
	if err := r.bind(&in, nil); err != nil {
		return err
	}
	p := account.UserPatch{Department: in.Department, Unlock: in.Unlock}
	if in.Status != nil {
		st := account.UserStatus(*in.Status)
		p.Status = &st
	}
	if in.Role != nil {
		role := account.Role(*in.Role)
		p.Role = &role
	}
	u, err := h.svc.Accounts.UpdateUser(r.C.UserContext(), r.Actor, r.Scope, id, p)
	if err != nil {
		return err
	}
	return r.ok(fiber.StatusOK, userOf(u))
}

func (h *handlers) listAudit(r *Request) error {
	p, err := r.page()
	if err != nil {
		return err
	}
	list, err := h.svc.Accounts.ListAudit(r.C.UserContext(), r.Scope, r.C.Query("entity_type"), r.C.Query("entity_id"), p)
	if err != nil {
		return err
	}
	items := mapped(list, auditOf)
	return r.ok(fiber.StatusOK, pageOf(items, p, func(d auditDTO) int64 { return d.ID }))
}
