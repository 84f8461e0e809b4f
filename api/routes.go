package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/support"
	"github.com/meterd/meterd/api/usage"
	"github.com/meterd/meterd/billing/payment"
)

// Services are the domain services the API serves.
type Services struct {
	Accounts *account.Service
	Support  *support.Service
	Usage    *usage.Service
	// Billing serves bills, tariffs and bill runs; nil leaves the billing
	// routes out of the table.
	Billing Billing
	// Payments takes payments for bills (billing/payment); nil leaves the
	// payment and webhook routes out of the table.
	Payments *payment.Service
	// Sandbox is the built-in sandbox provider's checkout page; nil leaves
	// /sandbox out.
	Sandbox SandboxCheckout
	// Notifications serves alerts, notification status, preferences and
	// push devices (alerts/service); nil leaves those routes out.
	Notifications Notifications
	// Municipal serves the water and sewerage calculators (fee estimates,
	// charge calculation, demands, adhoc amounts, fee demands); nil leaves
	// those routes out.
	Municipal Municipal
}

// Route is one row of the permission table: an endpoint, who may call it,
// which records they reach, and its documentation. The table drives the
// routing, the authorization middleware, the OpenAPI document and the
// authorization matrix test; nothing is routed any other way.
type Route struct {
	Method string
	// Path in Fiber syntax (":ticketId"); OpenAPI shows it as {ticketId}.
	Path    string
	Summary string
	Tag     string
	// Roles may call the route; nil means public (no token needed).
	Roles []account.Role
	// Departments, when set, limit officials to these departments (admins
	// are never limited).
	Departments []string
	// Owner is the ownership rule: which records the caller reaches.
	Owner account.Ownership
	// Query documents the query parameters (a struct with `query` tags).
	Query any
	// Body is the request body type (nil: none).
	Body any
	// BodyType is the request body's content type; default
	// application/json.
	BodyType string
	// Headers documents request headers the route reads.
	Headers []HeaderParam
	// Responses are the success responses.
	Responses []Response
	// Problems are the problem types the route may answer with, besides
	// the authentication and authorization ones every guarded route has.
	Problems []Kind
	Handler  func(r *Request) error
}

// HeaderParam is a documented request header.
type HeaderParam struct {
	Name     string
	Doc      string
	Required bool
}

// Response is a documented success response.
type Response struct {
	Status int
	Body   any    // nil for no body
	Type   string // content type; default application/json
}

// Public reports whether the route needs no token.
func (rt Route) Public() bool { return rt.Roles == nil }

// Allows reports whether principal p may call the route.
func (rt Route) Allows(p account.Principal) bool {
	if rt.Public() {
		return true
	}
	if !slices.Contains(rt.Roles, p.Role) {
		return false
	}
	if p.Role == account.RoleOfficial && len(rt.Departments) > 0 {
		return slices.Contains(rt.Departments, p.Department)
	}
	return true
}

// Mount registers the routes of the permission table. Call it once, before
// Start.
func (s *Server) Mount(svc Services) error {
	h := &handlers{svc: svc, now: s.deps.now()}
	s.routes = h.table()
	s.app.Use("/api", func(c *fiber.Ctx) error {
		// Responses carry tokens and personal data: never cache them.
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Next()
	})
	for _, rt := range s.routes {
		rt := rt
		s.app.Add(rt.Method, rt.Path, s.guard(rt, svc.Accounts))
	}
	doc := s.OpenAPI()
	s.app.Get(openAPIPath, func(c *fiber.Ctx) error { return c.JSON(doc) })
	return nil
}

// Routes returns the permission table, as mounted.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

const openAPIPath = "/api/openapi.json"

// guard authenticates and authorizes a request for rt, then calls its
// handler with the caller and scope.
func (s *Server) guard(rt Route, accounts *account.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		r := &Request{C: c, Actor: account.Actor{Address: c.IP(), RequestID: requestID(c), UserAgent: c.Get(fiber.HeaderUserAgent)}}
		if !rt.Public() {
			token, ok := bearer(c.Get(fiber.HeaderAuthorization))
			if !ok {
				c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="meterd"`)
				return Errorf(KindUnauthenticated, "send an access token: Authorization: Bearer <token>")
			}
			p, err := accounts.Authenticate(c.UserContext(), token)
			if err != nil {
				c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="meterd", error="invalid_token"`)
				return err
			}
			if !rt.Allows(p) {
				return Errorf(KindUnauthorizedAccess, "the %s role may not %s %s", describeRole(p), strings.ToLower(rt.Method), rt.Path)
			}
			r.Actor.Principal = p
			r.Scope = rt.Owner.ScopeFor(p)
		}
		return rt.Handler(r)
	}
}

func describeRole(p account.Principal) string {
	if p.Role == account.RoleOfficial && p.Department != "" {
		return "official (" + p.Department + ")"
	}
	return string(p.Role)
}

// bearer extracts the token of an Authorization: Bearer header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != "" && len(token) <= 4096
}

// Role sets used by the table.
var (
	anyone       []account.Role // public
	everyone     = []account.Role{account.RoleConsumer, account.RoleOfficial, account.RoleSupport, account.RoleAdmin}
	consumers    = []account.Role{account.RoleConsumer}
	staff        = []account.Role{account.RoleOfficial, account.RoleSupport, account.RoleAdmin}
	officials    = []account.Role{account.RoleOfficial, account.RoleAdmin}
	desk         = []account.Role{account.RoleSupport}
	admins       = []account.Role{account.RoleAdmin}
	ownersStaff  = []account.Role{account.RoleConsumer, account.RoleOfficial, account.RoleAdmin}
	meteringOnly = []string{account.DepartmentMetering}
)

// table is the permission table: every route meterd serves besides the
// operational ones (/healthz, /readyz, /metrics, /api/openapi.json).
func (h *handlers) table() []Route {
	rts := h.coreTable()
	if h.svc.Billing != nil {
		rts = append(rts, h.billingRoutes()...)
	}
	if h.svc.Payments != nil {
		rts = append(rts, h.paymentRoutes()...)
		rts = append(rts, h.webhookRoutes()...)
	}
	if h.svc.Notifications != nil {
		rts = append(rts, h.alertRoutes()...)
	}
	if h.svc.Municipal != nil {
		rts = append(rts, h.municipalRoutes()...)
	}
	return rts
}

func (h *handlers) coreTable() []Route {
	ok := func(status int, body any) []Response { return []Response{{Status: status, Body: body}} }
	return []Route{
		// Accounts and sessions.
		{Method: http.MethodPost, Path: "/api/register", Summary: "Register a consumer account", Tag: "accounts",
			Roles: anyone, Body: registerRequest{}, Responses: ok(201, registerResponse{}),
			Problems: []Kind{KindInvalidInput, KindConflict, KindRateLimited}, Handler: h.register},
		{Method: http.MethodPost, Path: "/api/login", Summary: "Log in: access and refresh tokens", Tag: "accounts",
			Roles: anyone, Body: loginRequest{}, Responses: ok(200, sessionDTO{}),
			Problems: []Kind{KindInvalidInput, KindInvalidCredentials, KindAccountLocked, KindEmailNotVerified, KindSecondFactorRequired, KindRateLimited}, Handler: h.login},
		{Method: http.MethodPost, Path: "/authenticate", Summary: "Generate a JWT for a username and password", Tag: "accounts",
			Roles: anyone, Body: authenticateRequest{}, Responses: ok(200, authenticateResponse{}),
			Problems: []Kind{KindInvalidInput, KindInvalidCredentials, KindAccountLocked, KindEmailNotVerified, KindSecondFactorRequired, KindRateLimited}, Handler: h.authenticate},
		{Method: http.MethodGet, Path: "/hello", Summary: "Greet the holder of a valid JWT", Tag: "accounts",
			Roles: everyone, Owner: account.OwnerSelf, Responses: ok(200, helloResponse{}), Handler: h.hello},
		{Method: http.MethodPost, Path: "/api/token/refresh", Summary: "Exchange a refresh token (single use) for new tokens", Tag: "accounts",
			Roles: anyone, Body: refreshRequest{}, Responses: ok(200, sessionDTO{}),
			Problems: []Kind{KindInvalidInput, KindUnauthenticated, KindAccountLocked, KindRateLimited}, Handler: h.refresh},
		{Method: http.MethodPost, Path: "/api/logout", Summary: "End the session of this access token", Tag: "accounts",
			Roles: everyone, Owner: account.OwnerSelf, Responses: []Response{{Status: 204}}, Handler: h.logout},
		{Method: http.MethodPost, Path: "/api/verify-email", Summary: "Verify an email address with its token", Tag: "accounts",
			Roles: anyone, Body: tokenRequest{}, Responses: ok(200, userDTO{}), Problems: []Kind{KindInvalidInput, KindInvalidToken, KindRateLimited}, Handler: h.verifyEmail},
		{Method: http.MethodGet, Path: "/api/verify-email", Summary: "Verify an email address (the link in the email)", Tag: "accounts",
			Roles: anyone, Query: verifyQuery{}, Responses: ok(200, userDTO{}), Problems: []Kind{KindInvalidToken, KindRateLimited}, Handler: h.verifyEmailLink},
		{Method: http.MethodPost, Path: "/api/verify-email/resend", Summary: "Send a new verification email", Tag: "accounts",
			Roles: anyone, Body: resendRequest{}, Responses: ok(202, messageResponse{}), Problems: []Kind{KindInvalidInput, KindRateLimited}, Handler: h.resendVerification},
		{Method: http.MethodGet, Path: "/api/me", Summary: "The caller's account", Tag: "accounts",
			Roles: everyone, Owner: account.OwnerSelf, Responses: ok(200, userDTO{}), Handler: h.me},
		{Method: http.MethodPost, Path: "/api/account/password", Summary: "Change the password (ends other sessions)", Tag: "accounts",
			Roles: everyone, Owner: account.OwnerSelf, Body: passwordRequest{}, Responses: []Response{{Status: 204}},
			Problems: []Kind{KindInvalidInput, KindInvalidCredentials}, Handler: h.changePassword},
		{Method: http.MethodPost, Path: "/api/account/totp/setup", Summary: "Create a TOTP secret (second factor)", Tag: "accounts",
			Roles: everyone, Owner: account.OwnerSelf, Responses: ok(200, totpSetupResponse{}), Problems: []Kind{KindConflict}, Handler: h.totpSetup},
		{Method: http.MethodPost, Path: "/api/account/totp/enable", Summary: "Turn the second factor on with a code", Tag: "accounts",
			Roles: everyone, Owner: account.OwnerSelf, Body: totpCodeRequest{}, Responses: []Response{{Status: 204}},
			Problems: []Kind{KindInvalidInput, KindConflict}, Handler: h.totpEnable},
		{Method: http.MethodPost, Path: "/api/account/totp/disable", Summary: "Turn the second factor off", Tag: "accounts",
			Roles: everyone, Owner: account.OwnerSelf, Body: totpDisableRequest{}, Responses: []Response{{Status: 204}},
			Problems: []Kind{KindInvalidInput, KindInvalidCredentials}, Handler: h.totpDisable},

		// Profiles.
		{Method: http.MethodGet, Path: "/api/user-profiles", Summary: "Get a profile (own; staff may name a user)", Tag: "profiles",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: userQuery{}, Responses: ok(200, profileDTO{}),
			Problems: []Kind{KindInvalidInput, KindProfileNotFound}, Handler: h.getProfile},
		{Method: http.MethodPut, Path: "/api/user-profiles", Summary: "Replace the caller's profile", Tag: "profiles",
			Roles: everyone, Owner: account.OwnerSelf, Body: profileRequest{}, Responses: ok(200, profileDTO{}),
			Problems: []Kind{KindInvalidInput, KindProfileNotFound}, Handler: h.putProfile},

		// Properties and connections.
		{Method: http.MethodGet, Path: "/api/users/properties", Summary: "List properties with their connections and meters", Tag: "properties",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: listPropertiesQuery{}, Responses: ok(200, Page[propertyDTO]{}),
			Problems: []Kind{KindInvalidInput}, Handler: h.listProperties},
		{Method: http.MethodPost, Path: "/api/users/properties", Summary: "Add a property with its connections", Tag: "properties",
			Roles: ownersStaff, Owner: account.OwnerSelfOrTenant, Body: propertyRequest{}, Responses: ok(201, propertyDTO{}),
			Problems: []Kind{KindInvalidInput, KindDuplicateProperty, KindNotFound}, Handler: h.addProperty},
		{Method: http.MethodGet, Path: "/api/users/properties/:propertyId", Summary: "Get a property", Tag: "properties",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, propertyDTO{}), Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.getProperty},
		{Method: http.MethodPost, Path: "/api/users/properties/:propertyId/connections", Summary: "Add a connection (water, sewerage …) to a property", Tag: "properties",
			Roles: ownersStaff, Owner: account.OwnerSelfOrTenant, Body: connectionRequest{}, Responses: ok(201, connectionDTO{}),
			Problems: []Kind{KindInvalidInput, KindDuplicateProperty, KindNotFound, KindConflict}, Handler: h.addConnection},
		{Method: http.MethodGet, Path: "/api/connections/:connectionId", Summary: "Get a connection with its meter", Tag: "properties",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, connectionDTO{}), Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.getConnection},
		{Method: http.MethodGet, Path: "/api/connections/:connectionId/installations", Summary: "Meter installations of a connection, newest first", Tag: "properties",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, Page[installationDTO]{}), Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.installations},
		{Method: http.MethodPatch, Path: "/api/connections/:connectionId", Summary: "Change a connection's status, tariff plan or billing attributes", Tag: "properties",
			Roles: officials, Owner: account.OwnerTenant, Body: connectionPatchRequest{}, Responses: ok(200, connectionDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.patchConnection},
		{Method: http.MethodPut, Path: "/api/connections/:connectionId/meter", Summary: "Install or replace the meter of a connection", Tag: "meters",
			Roles: officials, Departments: meteringOnly, Owner: account.OwnerTenant, Body: installRequest{}, Responses: ok(200, installationDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindConflict, KindDuplicateProperty}, Handler: h.installMeter},

		// Meters.
		{Method: http.MethodPost, Path: "/api/meters", Summary: "Provision a meter (MQTT credentials shown once)", Tag: "meters",
			Roles: officials, Departments: meteringOnly, Owner: account.OwnerTenant, Body: meterRequest{}, Responses: ok(201, provisionedDTO{}),
			Problems: []Kind{KindInvalidInput, KindConflict}, Handler: h.provisionMeter},
		{Method: http.MethodGet, Path: "/api/meters", Summary: "List meters", Tag: "meters",
			Roles: staff, Owner: account.OwnerTenant, Query: pageQuery{}, Responses: ok(200, Page[meterDTO]{}), Problems: []Kind{KindInvalidInput}, Handler: h.listMeters},
		{Method: http.MethodGet, Path: "/api/meters/:meterId", Summary: "Get a meter", Tag: "meters",
			Roles: staff, Owner: account.OwnerTenant, Responses: ok(200, meterDTO{}), Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.getMeter},
		{Method: http.MethodPost, Path: "/api/meters/:meterId/credentials", Summary: "Issue new MQTT credentials (shown once)", Tag: "meters",
			Roles: officials, Departments: meteringOnly, Owner: account.OwnerTenant, Responses: ok(200, credentialsDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindConflict}, Handler: h.rotateMeterSecret},

		// Usage.
		{Method: http.MethodGet, Path: "/api/usage-data", Summary: "Latest reading, current power, age and liveness per meter", Tag: "usage",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: liveQuery{}, Responses: ok(200, Page[liveDTO]{}),
			Problems: []Kind{KindInvalidInput, KindNotFound, KindMeterConnection, KindDataAccess}, Handler: h.liveUsage},
		{Method: http.MethodPost, Path: "/api/usage-data", Summary: "Submit a manual meter reading", Tag: "usage",
			Roles: ownersStaff, Owner: account.OwnerSelfOrTenant, Body: manualReadingRequest{}, Responses: ok(201, manualReadingDTO{}),
			Problems: []Kind{KindInvalidReading, KindNotFound, KindDataAccess}, Handler: h.manualReading},
		{Method: http.MethodGet, Path: "/api/usage-data/history", Summary: "Hourly, daily or monthly consumption as JSON, CSV or an SVG chart", Tag: "usage",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: historyQuery{},
			Responses: []Response{{Status: 200, Body: historyDTO{}}, {Status: 200, Type: "text/csv"}, {Status: 200, Type: "image/svg+xml"}},
			Problems:  []Kind{KindInvalidInput, KindNotFound, KindDataAccess}, Handler: h.usageHistory},

		// Support desk.
		{Method: http.MethodPost, Path: "/api/notifications/query", Summary: "Raise a support query or report an issue", Tag: "support",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Body: ticketRequest{},
			Responses: []Response{{Status: 201, Body: ticketDTO{}}, {Status: 202, Body: Problem{}, Type: "application/problem+json"}},
			Problems:  []Kind{KindInvalidQuery}, Handler: h.raiseTicket},
		{Method: http.MethodPost, Path: "/api/tickets", Summary: "Raise a support ticket", Tag: "support",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Body: ticketRequest{},
			Responses: []Response{{Status: 201, Body: ticketDTO{}}, {Status: 202, Body: Problem{}, Type: "application/problem+json"}},
			Problems:  []Kind{KindInvalidQuery}, Handler: h.raiseTicket},
		{Method: http.MethodGet, Path: "/api/tickets", Summary: "List tickets (own; staff: the tenant's, filterable)", Tag: "support",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Query: ticketsQuery{}, Responses: ok(200, Page[ticketDTO]{}),
			Problems: []Kind{KindInvalidInput, KindInvalidQuery}, Handler: h.listTickets},
		{Method: http.MethodGet, Path: "/api/tickets/:ticketId", Summary: "Get a ticket with its comments and timeline", Tag: "support",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Responses: ok(200, ticketDetailDTO{}),
			Problems: []Kind{KindInvalidInput, KindSupportTicketNotFound}, Handler: h.getTicket},
		{Method: http.MethodPost, Path: "/api/tickets/:ticketId/comments", Summary: "Comment on a ticket", Tag: "support",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Body: commentRequest{}, Responses: ok(201, commentDTO{}),
			Problems: []Kind{KindInvalidInput, KindInvalidQuery, KindSupportTicketNotFound}, Handler: h.commentTicket},
		{Method: http.MethodPost, Path: "/api/tickets/:ticketId/status", Summary: "Move a ticket through its workflow (or reopen it)", Tag: "support",
			Roles: everyone, Owner: account.OwnerSelfOrTenant, Body: statusRequest{}, Responses: ok(200, ticketDTO{}),
			Problems: []Kind{KindInvalidInput, KindInvalidQuery, KindSupportTicketNotFound, KindConflict}, Handler: h.ticketStatus},
		{Method: http.MethodPost, Path: "/api/tickets/:ticketId/assign", Summary: "Assign a ticket to a support staff member", Tag: "support",
			Roles: officials, Owner: account.OwnerTenant, Body: assignRequest{}, Responses: ok(200, ticketDTO{}),
			Problems: []Kind{KindInvalidInput, KindInvalidQuery, KindSupportTicketNotFound, KindConflict}, Handler: h.assignTicket},
		{Method: http.MethodGet, Path: "/api/support/staff", Summary: "Support staff with skills, availability and load", Tag: "support",
			Roles: staff, Owner: account.OwnerTenant, Responses: ok(200, Page[staffDTO]{}), Handler: h.listStaff},
		{Method: http.MethodPut, Path: "/api/support/staff/me", Summary: "Set one's own availability and skills (queued tickets are assigned at once)", Tag: "support",
			Roles: desk, Owner: account.OwnerSelf, Body: staffRequest{}, Responses: ok(200, staffDTO{}), Problems: []Kind{KindInvalidInput}, Handler: h.putOwnStaff},
		{Method: http.MethodPut, Path: "/api/support/staff/:userId", Summary: "Set a staff member's skills, capacity and availability", Tag: "support",
			Roles: admins, Owner: account.OwnerTenant, Body: staffRequest{}, Responses: ok(200, staffDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.putStaff},

		// Reminders.
		{Method: http.MethodPost, Path: "/api/notifications/reminder", Summary: "Set a reminder for upcoming bill due dates", Tag: "notifications",
			Roles: consumers, Owner: account.OwnerSelf, Body: reminderRequest{}, Responses: ok(200, reminderDTO{}),
			Problems: []Kind{KindReminderSetting}, Handler: h.setReminder},
		{Method: http.MethodGet, Path: "/api/notifications/reminder", Summary: "The caller's bill reminders", Tag: "notifications",
			Roles: consumers, Owner: account.OwnerSelf, Responses: ok(200, Page[reminderDTO]{}), Handler: h.listReminders},

		// Administration.
		{Method: http.MethodPost, Path: "/api/admin/users", Summary: "Create a user of any role", Tag: "admin",
			Roles: admins, Owner: account.OwnerTenant, Body: createUserRequest{}, Responses: ok(201, userDTO{}),
			Problems: []Kind{KindInvalidInput, KindConflict}, Handler: h.createUser},
		{Method: http.MethodGet, Path: "/api/admin/users", Summary: "List the tenant's users", Tag: "admin",
			Roles: admins, Owner: account.OwnerTenant, Query: usersQuery{}, Responses: ok(200, Page[userDTO]{}), Problems: []Kind{KindInvalidInput}, Handler: h.listUsers},
		{Method: http.MethodGet, Path: "/api/admin/users/:userId", Summary: "Get a user", Tag: "admin",
			Roles: admins, Owner: account.OwnerTenant, Responses: ok(200, userDTO{}), Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.getUser},
		{Method: http.MethodPatch, Path: "/api/admin/users/:userId", Summary: "Suspend, reactivate, change role or unlock a user", Tag: "admin",
			Roles: admins, Owner: account.OwnerTenant, Body: userPatchRequest{}, Responses: ok(200, userDTO{}),
			Problems: []Kind{KindInvalidInput, KindNotFound}, Handler: h.patchUser},
		{Method: http.MethodGet, Path: "/api/admin/audit", Summary: "The audit log, newest first", Tag: "admin",
			Roles: admins, Owner: account.OwnerTenant, Query: auditQuery{}, Responses: ok(200, Page[auditDTO]{}), Problems: []Kind{KindInvalidInput}, Handler: h.listAudit},
	}
}

// Query parameter documentation.
type (
	pageQuery struct {
		Limit  int    `query:"limit" doc:"1–200, default 50"`
		Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
	}
	verifyQuery struct {
		Token string `query:"token" doc:"the token from the verification email" required:"true"`
	}
	userQuery struct {
		UserID int64 `query:"user_id" doc:"staff: another user's profile"`
	}
	listPropertiesQuery struct {
		pageQuery
		UserID int64 `query:"user_id" doc:"staff: one consumer's properties"`
	}
	liveQuery struct {
		pageQuery
		MeterID      int64 `query:"meter_id"`
		ConnectionID int64 `query:"connection_id"`
	}
	historyQuery struct {
		ConnectionID int64  `query:"connection_id" doc:"give this or meter_id"`
		MeterID      int64  `query:"meter_id"`
		Granularity  string `query:"granularity" enum:"hour,day,month" doc:"default day"`
		From         string `query:"from" doc:"RFC 3339 time or YYYY-MM-DD; default a range ending at to"`
		To           string `query:"to" doc:"default now"`
		Format       string `query:"format" enum:"json,csv,svg" doc:"default json (or by Accept: text/csv, image/svg+xml)"`
	}
	ticketsQuery struct {
		pageQuery
		Status   string `query:"status" enum:"open,assigned,in_progress,resolved,closed"`
		Assignee string `query:"assignee" doc:"staff: 'me' or a user id"`
		Queued   bool   `query:"queued" doc:"staff: only tickets awaiting staff"`
	}
	usersQuery struct {
		pageQuery
		Role string `query:"role" enum:"consumer,official,support,admin"`
	}
	auditQuery struct {
		pageQuery
		EntityType string `query:"entity_type"`
		EntityID   string `query:"entity_id"`
	}
)
