package account

import (
	"fmt"
	"slices"
)

// Role is what a user is allowed to do, within their tenant.
type Role string

// The roles.
const (
	// RoleConsumer sees and changes only their own account, properties,
	// usage, bills and tickets.
	RoleConsumer Role = "consumer"
	// RoleOfficial is department staff of the utility: meters, connections,
	// tariffs and bill runs, tenant-wide. Officials belong to a department.
	RoleOfficial Role = "official"
	// RoleSupport is support-desk staff: tickets, and read access to the
	// consumer data a ticket needs.
	RoleSupport Role = "support"
	// RoleAdmin administers the tenant: users, roles, everything officials
	// and support staff can do.
	RoleAdmin Role = "admin"
)

// Roles lists every role.
func Roles() []Role { return []Role{RoleConsumer, RoleOfficial, RoleSupport, RoleAdmin} }

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles(), r) }

// Staff reports whether r is a staff role (anything but consumer).
func (r Role) Staff() bool { return r.Valid() && r != RoleConsumer }

// Departments an official may belong to. A route may be limited to some of
// them (meters are provisioned by metering officials).
const (
	DepartmentMetering   = "metering"
	DepartmentBilling    = "billing"
	DepartmentOperations = "operations"
)

// Principal is an authenticated user as an access token and the session
// behind it describe them.
type Principal struct {
	TenantID   int64
	UserID     int64
	Role       Role
	Department string // officials only
	SessionID  int64  // the refresh-token family the access token belongs to
}

// Authenticated reports whether p is a logged-in user.
func (p Principal) Authenticated() bool { return p.UserID != 0 }

// Actor is who performs an operation, for authorization and the audit log:
// the principal (zero for anonymous calls such as registration), the
// client's address and the request id.
type Actor struct {
	Principal
	Address   string
	RequestID string
	UserAgent string
}

// Ownership is a route's ownership rule: which records a caller allowed on
// the route may reach.
type Ownership int

// The ownership rules.
const (
	// OwnerNone: the route touches no tenant data (public endpoints).
	OwnerNone Ownership = iota
	// OwnerSelf: only the caller's own account and records, whatever the
	// role.
	OwnerSelf
	// OwnerSelfOrTenant: consumers reach only their own records; staff
	// reach every record of their tenant.
	OwnerSelfOrTenant
	// OwnerTenant: every record of the caller's tenant (staff routes).
	OwnerTenant
)

func (o Ownership) String() string {
	switch o {
	case OwnerNone:
		return "none"
	case OwnerSelf:
		return "self"
	case OwnerSelfOrTenant:
		return "self-or-tenant"
	case OwnerTenant:
		return "tenant"
	}
	return fmt.Sprintf("ownership(%d)", int(o))
}

// Scope is the set of records a request may reach: always one tenant, and
// one owner when UserID is set.
type Scope struct {
	TenantID int64
	// UserID, when non-zero, limits the request to records this user owns.
	UserID int64
}

// ScopeFor returns the scope rule o gives principal p.
func (o Ownership) ScopeFor(p Principal) Scope {
	s := Scope{TenantID: p.TenantID}
	switch o {
	case OwnerSelf:
		s.UserID = p.UserID
	case OwnerSelfOrTenant:
		if !p.Role.Staff() {
			s.UserID = p.UserID
		}
	}
	return s
}

// Owned reports whether s is limited to one owner.
func (s Scope) Owned() bool { return s.UserID != 0 }

// Allows reports whether a record of tenant tenantID owned by userID is in
// scope.
func (s Scope) Allows(tenantID, userID int64) bool {
	return tenantID == s.TenantID && (s.UserID == 0 || s.UserID == userID)
}
