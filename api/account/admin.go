package account

import (
	"context"
	"regexp"
	"strings"

	"github.com/meterd/meterd/api/audit"
)

// NewUserInput is a user created by an administrator.
type NewUserInput struct {
	Email      string
	Password   string
	Role       Role
	Department string
	Name       string
}

var departmentPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{1,39}$`)

func checkRole(v *Validator, role Role, department string) {
	if !role.Valid() {
		v.Add("role", "must be consumer, official, support or admin")
	}
	switch {
	case role == RoleOfficial && department == "":
		v.Add("department", "is required for officials")
	case department != "" && !departmentPattern.MatchString(department):
		v.Add("department", "must be 2 to 40 lower-case letters, digits, '_' or '-'")
	}
}

// CreateUser creates a user of any role in the caller's tenant (admin).
// The address is taken as verified: the administrator vouches for it.
func (s *Service) CreateUser(ctx context.Context, a Actor, scope Scope, in NewUserInput) (User, error) {
	in.Email = normalizeEmail(in.Email)
	in.Name = strings.TrimSpace(in.Name)
	in.Department = strings.TrimSpace(in.Department)
	v := NewValidator(ErrInvalidInput)
	if m := emailProblem(in.Email); m != "" {
		v.Add("email", m)
	}
	if m := s.cfg.Password.Check(in.Password, in.Email); m != "" {
		v.Add("password", m)
	}
	if m := textProblem(in.Name, true, 200); m != "" {
		v.Add("name", m)
	}
	checkRole(v, in.Role, in.Department)
	if err := v.Err(); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	nu := NewUser{TenantID: scope.TenantID, Email: in.Email, Role: in.Role, Department: in.Department, PasswordHash: hash, Verified: true}
	return s.store.CreateUser(ctx, nu, s.profileSealer(in.Name, in.Email, "", nil), nil, nil,
		a.entry(scope.TenantID, "user.create", "user", 0))
}

// ListUsers lists the tenant's users, optionally of one role.
func (s *Service) ListUsers(ctx context.Context, scope Scope, role Role, p Page) ([]User, error) {
	if role != "" && !role.Valid() {
		v := NewValidator(ErrInvalidInput)
		v.Add("role", "must be consumer, official, support or admin")
		return nil, v.Err()
	}
	return s.store.ListUsers(ctx, scope.TenantID, role, p.Normalize())
}

// GetUser returns one user of the tenant.
func (s *Service) GetUser(ctx context.Context, scope Scope, id int64) (User, error) {
	return s.store.UserByID(ctx, scope.TenantID, id)
}

// UpdateUser changes a user's status, role or department, or lifts a
// lockout (admin). Suspending ends the user's sessions at once.
func (s *Service) UpdateUser(ctx context.Context, a Actor, scope Scope, id int64, p UserPatch) (User, error) {
	cur, err := s.store.UserByID(ctx, scope.TenantID, id)
	if err != nil {
		return User{}, err
	}
	role, dept := cur.Role, cur.Department
	if p.Role != nil {
		role = *p.Role
	}
	if p.Department != nil {
		*p.Department = strings.TrimSpace(*p.Department)
		dept = *p.Department
	}
	if role != RoleOfficial && p.Role != nil && p.Department == nil {
		empty := ""
		p.Department, dept = &empty, ""
	}
	v := NewValidator(ErrInvalidInput)
	checkRole(v, role, dept)
	if p.Status != nil && *p.Status != StatusActive && *p.Status != StatusSuspended {
		v.Add("status", "must be active or suspended")
	}
	if id == a.UserID && ((p.Status != nil && *p.Status == StatusSuspended) || (p.Role != nil && *p.Role != RoleAdmin)) {
		v.Add("user_id", "administrators cannot suspend or demote themselves")
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	u, err := s.store.UpdateUser(ctx, scope.TenantID, id, p, a.entry(scope.TenantID, "user.update", "user", id))
	if err != nil {
		return User{}, err
	}
	if p.Status != nil && *p.Status == StatusSuspended {
		s.sessions.dropUser(id)
	}
	return u, nil
}

// ListAudit lists the tenant's audit log, newest first (admin);
// entityType and entityID narrow it.
func (s *Service) ListAudit(ctx context.Context, scope Scope, entityType, entityID string, p Page) ([]audit.Entry, error) {
	return s.store.ListAudit(ctx, scope.TenantID, entityType, entityID, p.Normalize())
}

var tenantCodePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// EnsureTenant creates a tenant (a utility) unless one with its code
// exists, and returns it. It is a platform operation (setup, the dev
// seed); no route exposes it.
func (s *Service) EnsureTenant(ctx context.Context, t Tenant) (Tenant, error) {
	v := NewValidator(ErrInvalidInput)
	v.Check(tenantCodePattern.MatchString(t.Code), "code", "must be 1 to 63 lower-case letters, digits or '-'")
	if m := textProblem(t.Name, true, 200); m != "" {
		v.Add("name", m)
	}
	if err := v.Err(); err != nil {
		return Tenant{}, err
	}
	return s.store.EnsureTenant(ctx, t)
}

// FindUser returns the user of the scope's tenant with the given email.
func (s *Service) FindUser(ctx context.Context, scope Scope, email string) (User, error) {
	return s.store.UserByEmail(ctx, scope.TenantID, normalizeEmail(email))
}
