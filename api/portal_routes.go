package api

import (
	"net/http"

	"github.com/meterd/meterd/api/account"
)

// table is the portal's permission table. Rows for optional services
// (billing, payments, notifications) are present only when the service
// is; every mirror a row names must then be mounted.
func (p *Portal) table() []PortalRoute {
	get, post := http.MethodGet, http.MethodPost
	row := func(method, path, summary string, roles []account.Role, owner account.Ownership, h func(*Request) error, mirrors ...string) PortalRoute {
		return PortalRoute{Route: Route{Method: method, Path: path, Summary: summary, Tag: "portal", Roles: roles, Owner: owner, Handler: h}, Mirrors: mirrors}
	}
	dept := func(rt PortalRoute, departments []string) PortalRoute {
		rt.Departments = departments
		return rt
	}
	self, selfOrTenant, tenant := account.OwnerSelf, account.OwnerSelfOrTenant, account.OwnerTenant
	dashboard := []string{"GET /api/usage-data", "GET /api/users/properties"}
	if p.svc.Billing != nil {
		dashboard = append(dashboard, "GET /api/bills")
	}
	if p.svc.Notifications != nil {
		dashboard = append(dashboard, "GET /api/alerts")
	}
	settings := []string{"GET /api/notifications/reminder"}
	if p.svc.Notifications != nil {
		settings = append(settings, "GET /api/notifications/preferences")
	}
	rts := []PortalRoute{
		// Sessions and accounts.
		row(get, "/login", "Log-in page", anyone, account.OwnerNone, p.loginPage),
		row(post, "/login", "Log in", anyone, account.OwnerNone, p.login, "POST /api/login"),
		row(get, "/register", "Registration page", anyone, account.OwnerNone, p.registerPage),
		row(post, "/register", "Register a consumer account", anyone, account.OwnerNone, p.register, "POST /api/register"),
		row(get, "/verify", "Verify an email address (link or form)", anyone, account.OwnerNone, p.verifyPage, "GET /api/verify-email"),
		row(post, "/verify", "Verify an email address with its token", anyone, account.OwnerNone, p.verify, "POST /api/verify-email"),
		row(post, "/verify/resend", "Send a new verification email", anyone, account.OwnerNone, p.resend, "POST /api/verify-email/resend"),
		row(post, "/logout", "Log out", everyone, self, p.logout, "POST /api/logout"),
		row(get, "/profile", "Profile, password and second factor", everyone, self, p.profilePage, "GET /api/user-profiles", "GET /api/me"),
		row(post, "/profile", "Update the profile", everyone, self, p.updateProfile, "PUT /api/user-profiles", "GET /api/me"),
		row(post, "/profile/password", "Change the password", everyone, self, p.changePassword, "POST /api/account/password", "GET /api/user-profiles", "GET /api/me"),
		row(post, "/profile/totp/setup", "Start setting up a second factor", everyone, self, p.totpSetup, "POST /api/account/totp/setup"),
		row(post, "/profile/totp/enable", "Turn the second factor on", everyone, self, p.totpEnable, "POST /api/account/totp/enable"),
		row(post, "/profile/totp/disable", "Turn the second factor off", everyone, self, p.totpDisable, "POST /api/account/totp/disable", "GET /api/user-profiles", "GET /api/me"),

		// Consumers: usage, properties, readings, support, reminders.
		row(get, "/", "Dashboard: live readings, usage chart, bills and alerts", everyone, selfOrTenant, p.dashboard, dashboard...),
		row(get, "/usage/live", "Live readings (fragment, polled)", consumers, selfOrTenant, p.liveFragment, "GET /api/usage-data"),
		row(get, "/usage", "Usage history with a chart", consumers, selfOrTenant, p.usagePage, "GET /api/usage-data/history", "GET /api/users/properties"),
		row(get, "/usage/chart", "Usage chart (fragment)", consumers, selfOrTenant, p.usageChart, "GET /api/usage-data/history", "GET /api/users/properties"),
		row(get, "/usage/csv", "Usage history as CSV", consumers, selfOrTenant, p.usageCSV, "GET /api/usage-data/history"),
		row(get, "/readings/new", "Manual reading form", consumers, selfOrTenant, p.readingPage, "GET /api/users/properties"),
		row(post, "/readings", "Submit a manual reading", consumers, selfOrTenant, p.submitReading, "POST /api/usage-data", "GET /api/users/properties"),
		row(get, "/properties", "Properties and connections", consumers, selfOrTenant, p.propertiesPage, "GET /api/users/properties"),
		row(post, "/properties", "Add a property with its meter and tariff plan", consumers, selfOrTenant, p.addProperty, "POST /api/users/properties", "GET /api/users/properties"),
		row(get, "/support", "Support queries", consumers, selfOrTenant, p.supportPage, "GET /api/tickets"),
		row(post, "/support", "Raise a support query", consumers, selfOrTenant, p.raiseTicket, "POST /api/notifications/query", "GET /api/tickets"),
		row(get, "/support/:ticketId", "A support query with its timeline", consumers, selfOrTenant, p.ticketPage, "GET /api/tickets/:ticketId"),
		row(post, "/support/:ticketId/comments", "Comment on a support query", consumers, selfOrTenant, p.commentTicket, "POST /api/tickets/:ticketId/comments", "GET /api/tickets/:ticketId"),
		row(post, "/support/:ticketId/status", "Close or reopen a support query", consumers, selfOrTenant, p.ticketStatus, "POST /api/tickets/:ticketId/status", "GET /api/tickets/:ticketId"),
		row(get, "/settings", "Bill reminders and notification preferences", consumers, self, p.settingsPage, settings...),
		row(post, "/settings/reminder", "Set a bill reminder", consumers, self, p.setReminder, append([]string{"POST /api/notifications/reminder"}, settings...)...),
	}
	if p.svc.Notifications != nil {
		rts = append(rts,
			row(post, "/settings/preferences", "Set notification channels and quiet hours", consumers, self, p.setPreferences, append([]string{"PUT /api/notifications/preferences"}, settings...)...),
			row(get, "/alerts", "Abnormal-usage alerts on the consumer's meters", consumers, selfOrTenant, p.alertsPage, "GET /api/alerts"),
			row(get, "/messages", "Messages sent to the consumer, with their delivery", consumers, selfOrTenant, p.messagesPage, "GET /api/notifications"),
			row(post, "/alerts/:alertId/acknowledge", "Acknowledge an alert", consumers, selfOrTenant, p.acknowledgeAlert, "POST /api/alerts/:alertId/acknowledge"),
		)
	}
	if p.svc.Billing != nil {
		rts = append(rts,
			row(get, "/bills", "Bills", consumers, selfOrTenant, p.billsPage, "GET /api/bills"),
			row(get, "/bills/:billId", "A bill with its lines", consumers, selfOrTenant, p.billPage, "GET /api/bills/:billId"),
			row(get, "/bills/:billId/pdf", "A bill as PDF", consumers, selfOrTenant, p.billPDF, "GET /api/bills/:billId/pdf"),
		)
	}
	if p.svc.Billing != nil && p.svc.Payments != nil {
		rts = append(rts,
			row(get, "/bills/:billId/pay", "Choose how to pay a bill", consumers, selfOrTenant, p.payPage, "GET /api/bills/:billId", "POST /api/payments"),
			row(post, "/bills/:billId/pay", "Pay a bill: on to the provider's checkout", consumers, selfOrTenant, p.pay, "POST /api/payments", "GET /api/bills/:billId"),
			row(get, "/bills/:billId/paid", "Back from the provider's checkout", consumers, selfOrTenant, p.paid, "GET /api/payments", "POST /api/payments/:paymentId/confirm"),
			row(get, "/payments", "Payments", consumers, selfOrTenant, p.paymentsPage, "GET /api/payments"),
			row(get, "/payments/:paymentId", "A payment and its receipt", consumers, selfOrTenant, p.paymentPage, "GET /api/payments/:paymentId", "GET /api/payments/:paymentId/receipt"),
			row(get, "/payments/:paymentId/status", "A payment's status (fragment, polled)", consumers, selfOrTenant, p.paymentStatus, "GET /api/payments/:paymentId", "GET /api/payments/:paymentId/receipt"),
			row(get, "/payments/:paymentId/receipt.pdf", "A receipt as PDF", consumers, selfOrTenant, p.receiptPDF, "GET /api/payments/:paymentId/receipt/pdf"),
		)
	}

	// Staff.
	rts = append(rts,
		row(get, "/staff", "Staff home", staff, selfOrTenant, p.staffHome, "GET /api/tickets"),
		row(get, "/staff/tickets", "Support queue", staff, selfOrTenant, p.staffTickets, "GET /api/tickets", "GET /api/support/staff"),
		row(post, "/staff/availability", "Set one's own availability", desk, self, p.staffAvailability, "PUT /api/support/staff/me"),
		row(get, "/staff/tickets/:ticketId", "A ticket: timeline, assignment, status, comments", staff, selfOrTenant, p.staffTicket, "GET /api/tickets/:ticketId", "GET /api/support/staff"),
		row(post, "/staff/tickets/:ticketId/assign", "Assign a ticket", officials, tenant, p.staffAssign, "POST /api/tickets/:ticketId/assign", "GET /api/tickets/:ticketId", "GET /api/support/staff"),
		row(post, "/staff/tickets/:ticketId/status", "Move a ticket through its workflow", staff, selfOrTenant, p.staffTicketStatus, "POST /api/tickets/:ticketId/status", "GET /api/tickets/:ticketId", "GET /api/support/staff"),
		row(post, "/staff/tickets/:ticketId/comments", "Comment on a ticket (or an internal note)", staff, selfOrTenant, p.staffComment, "POST /api/tickets/:ticketId/comments", "GET /api/tickets/:ticketId", "GET /api/support/staff"),
		row(get, "/staff/meters", "Meters", staff, tenant, p.staffMeters, "GET /api/meters"),
		dept(row(post, "/staff/meters", "Provision a meter (MQTT secret shown once)", officials, tenant, p.staffProvision, "POST /api/meters", "GET /api/meters"), meteringOnly),
		dept(row(post, "/staff/meters/:meterId/credentials", "Issue new MQTT credentials (shown once)", officials, tenant, p.staffRotate, "POST /api/meters/:meterId/credentials"), meteringOnly),
		row(get, "/staff/users", "Users", admins, tenant, p.staffUsers, "GET /api/admin/users"),
		row(post, "/staff/users", "Create a user", admins, tenant, p.staffCreateUser, "POST /api/admin/users", "GET /api/admin/users"),
		row(post, "/staff/users/:userId", "Suspend, reactivate or unlock a user", admins, tenant, p.staffPatchUser, "PATCH /api/admin/users/:userId"),
	)
	if p.svc.Billing != nil {
		rts = append(rts,
			row(get, "/staff/billing", "Bill runs and dead letters", officials, tenant, p.staffRuns, "GET /api/billing/runs", "GET /api/billing/dead-letters"),
			dept(row(post, "/staff/billing/runs", "Start a bill run or re-run dead letters", officials, tenant, p.staffTriggerRun, "POST /api/billing/runs", "GET /api/billing/runs", "GET /api/billing/dead-letters"), officialsBilling),
			row(get, "/staff/billing/runs/:runId", "A bill run's progress", officials, tenant, p.staffRun, "GET /api/billing/runs/:runId"),
			row(get, "/staff/billing/runs/:runId/progress", "A bill run's progress (fragment, polled)", officials, tenant, p.staffRunProgress, "GET /api/billing/runs/:runId"),
			row(get, "/staff/tariffs", "Tariff versions, publishing and quotes", staff, tenant, p.staffTariffs, "GET /api/billing/tariffs"),
			dept(row(post, "/staff/tariffs", "Publish a tariff version", officials, tenant, p.staffPublishTariff, "POST /api/billing/tariffs", "GET /api/billing/tariffs"), officialsBilling),
			row(post, "/staff/tariffs/quote", "Quote usage against a tariff document", staff, tenant, p.staffQuote, "POST /api/billing/quote", "GET /api/billing/tariffs"),
		)
	}
	if p.svc.Notifications != nil {
		rts = append(rts,
			row(get, "/staff/alerts", "Alerts", alertStaff, selfOrTenant, p.staffAlerts, "GET /api/alerts"),
			row(post, "/staff/alerts/:alertId/acknowledge", "Acknowledge an alert", alertStaff, selfOrTenant, p.staffAcknowledge, "POST /api/alerts/:alertId/acknowledge"),
			row(post, "/staff/alerts/:alertId/resolve", "Resolve an alert", alertStaff, tenant, p.staffResolve, "POST /api/alerts/:alertId/resolve"),
			row(get, "/staff/notifications", "Notification dead letters", staff, selfOrTenant, p.staffNotifications, "GET /api/notifications"),
			row(post, "/staff/notifications/:notificationId/retry", "Retry a dead letter", officials, tenant, p.staffRetry, "POST /api/notifications/:notificationId/retry"),
		)
	}
	return rts
}
