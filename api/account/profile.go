package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

func profileAAD(column string, userID int64) string {
	return fmt.Sprintf("user_profiles.%s:%d", column, userID)
}

func (s *Service) sealProfile(userID int64, p Profile) (SealedProfile, error) {
	sp := SealedProfile{Name: p.Name}
	var err error
	if sp.Email, err = s.seal(p.Email, profileAAD("email_enc", userID)); err != nil {
		return sp, err
	}
	if sp.Phone, err = s.seal(p.Phone, profileAAD("phone_enc", userID)); err != nil {
		return sp, err
	}
	if p.Address != nil {
		b, err := json.Marshal(p.Address)
		if err != nil {
			return sp, fmt.Errorf("profile address: %w", err)
		}
		if sp.Address, err = s.seal(string(b), profileAAD("address_enc", userID)); err != nil {
			return sp, err
		}
	}
	return sp, nil
}

func (s *Service) openProfile(tenantID, userID int64, sp SealedProfile) (Profile, error) {
	p := Profile{UserID: userID, TenantID: tenantID, Name: sp.Name, UpdatedAt: sp.UpdatedAt}
	var err error
	if p.Email, err = s.open(sp.Email, profileAAD("email_enc", userID)); err != nil {
		return p, err
	}
	if p.Phone, err = s.open(sp.Phone, profileAAD("phone_enc", userID)); err != nil {
		return p, err
	}
	addr, err := s.open(sp.Address, profileAAD("address_enc", userID))
	if err != nil {
		return p, err
	}
	if addr != "" {
		p.Address = &Address{}
		if err := json.Unmarshal([]byte(addr), p.Address); err != nil {
			return p, fmt.Errorf("profile address: %w", err)
		}
	}
	return p, nil
}

// profileTarget resolves which user's profile a request means: userID 0
// is the caller; another user must be within scope (staff reading a
// consumer's profile), else ErrProfileNotFound.
func (s *Service) profileTarget(ctx context.Context, a Actor, scope Scope, userID int64) (int64, error) {
	if userID == 0 || userID == a.UserID {
		return a.UserID, nil
	}
	if scope.Owned() {
		return 0, ErrProfileNotFound
	}
	if _, err := s.store.UserByID(ctx, scope.TenantID, userID); errors.Is(err, ErrUserNotFound) {
		return 0, ErrProfileNotFound
	} else if err != nil {
		return 0, err
	}
	return userID, nil
}

// GetProfile returns the profile of userID (0: the caller).
func (s *Service) GetProfile(ctx context.Context, a Actor, scope Scope, userID int64) (Profile, error) {
	id, err := s.profileTarget(ctx, a, scope, userID)
	if err != nil {
		return Profile{}, err
	}
	sp, err := s.store.Profile(ctx, scope.TenantID, id)
	if err != nil {
		return Profile{}, err
	}
	return s.openProfile(scope.TenantID, id, sp)
}

// ProfileInput is a profile update: the whole profile (PUT semantics;
// empty optional fields clear them).
type ProfileInput struct {
	Name    string
	Email   string
	Phone   string
	Address *Address
}

// UpdateProfile replaces the profile of userID (0: the caller), creating
// it if the user has none. Errors name the invalid fields.
func (s *Service) UpdateProfile(ctx context.Context, a Actor, scope Scope, userID int64, in ProfileInput) (Profile, error) {
	id, err := s.profileTarget(ctx, a, scope, userID)
	if err != nil {
		return Profile{}, err
	}
	in.Name = strings.TrimSpace(in.Name)
	in.Email = normalizeEmail(in.Email)
	in.Phone = strings.TrimSpace(in.Phone)
	v := NewValidator(ErrInvalidInput)
	if m := textProblem(in.Name, true, 200); m != "" {
		v.Add("name", m)
	}
	if in.Email != "" {
		if m := emailProblem(in.Email); m != "" {
			v.Add("email", m)
		}
	}
	if m := phoneProblem(in.Phone); m != "" {
		v.Add("phone", m)
	}
	if in.Address != nil {
		normalizeAddress(in.Address)
		checkAddress(v, "address", *in.Address)
	}
	if err := v.Err(); err != nil {
		return Profile{}, err
	}
	p := Profile{Name: in.Name, Email: in.Email, Phone: in.Phone, Address: in.Address}
	sp, err := s.sealProfile(id, p)
	if err != nil {
		return Profile{}, err
	}
	if err := s.store.PutProfile(ctx, scope.TenantID, id, sp, a.entry(scope.TenantID, "profile.update", "user", id)); err != nil {
		return Profile{}, err
	}
	return s.GetProfile(ctx, a, scope, id)
}

// Reencrypt rewrites every sealed value not under the current key (after
// a key rotation), so the old key can then be removed from the key file.
// It returns how many values it rewrote.
func (s *Service) Reencrypt(ctx context.Context) (int, error) {
	return s.store.Reseal(ctx, s.ring.NeedsRotation, func(aad string, old []byte) ([]byte, error) {
		pt, err := s.ring.Open(old, aad)
		if err != nil {
			return nil, err
		}
		return s.ring.Seal(pt, aad)
	})
}
