package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
	"github.com/meterd/meterd/api/outbox"
	outboxpg "github.com/meterd/meterd/api/outbox/postgres"

	"github.com/meterd/meterd/api/internal/sqlwhere"
)

const userColumns = `u.id, u.tenant_id, u.email, u.role, coalesce(u.department, ''), u.status, u.password_hash,
	u.email_verified_at, u.failed_logins, u.locked_until, u.last_login_at, u.totp_secret,
	u.totp_enabled_at IS NOT NULL, coalesce(u.totp_last_step, 0), u.created_at`

func scanUser(row pgx.Row) (account.User, error) {
	var u account.User
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.Role, &u.Department, &u.Status, &u.PasswordHash,
		&u.EmailVerifiedAt, &u.FailedLogins, &u.LockedUntil, &u.LastLoginAt, &u.TOTPSecret,
		&u.TOTPEnabled, &u.TOTPLastStep, &u.CreatedAt)
	return u, err
}

// CreateUser implements account.Store.
func (s *Store) CreateUser(ctx context.Context, nu account.NewUser, seal func(int64) (account.SealedProfile, error), v *account.Verification, m *outbox.Message, e audit.Entry) (account.User, error) {
	var u account.User
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO users (tenant_id, email, role, department, password_hash, email_verified_at)
			VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END) RETURNING id`,
			nu.TenantID, nu.Email, nu.Role, nullText(nu.Department), nu.PasswordHash, nu.Verified).Scan(&id)
		if err != nil {
			return err
		}
		sp, err := seal(id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO user_profiles (tenant_id, user_id, name, email_enc, phone_enc, address_enc)
			VALUES ($1, $2, $3, $4, $5, $6)`, nu.TenantID, id, sp.Name, sp.Email, sp.Phone, sp.Address); err != nil {
			return err
		}
		if v != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO email_verifications (token_hash, tenant_id, user_id, email, expires_at)
				VALUES ($1, $2, $3, $4, $5)`, v.Hash, nu.TenantID, id, v.Email, v.ExpiresAt); err != nil {
				return err
			}
		}
		if m != nil {
			mm := *m
			mm.UserID = id
			if err := outboxpg.Enqueue(ctx, tx, mm); err != nil {
				return err
			}
		}
		if u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id)); err != nil {
			return err
		}
		if e.ActorUserID == 0 && e.Action == "user.register" {
			e.ActorUserID, e.ActorRole = id, string(nu.Role)
		}
		return writeAudit(ctx, tx, e, nil, "users", "id", id)
	})
	return u, translate(err, "create user")
}

// UserByEmail implements account.Store.
func (s *Store) UserByEmail(ctx context.Context, tenantID int64, email string) (account.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.tenant_id = $1 AND u.email = $2`, tenantID, email))
	return u, notFound(err, account.ErrUserNotFound, "user by email")
}

// UserByID implements account.Store.
func (s *Store) UserByID(ctx context.Context, tenantID, userID int64) (account.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.tenant_id = $1 AND u.id = $2`, tenantID, userID))
	return u, notFound(err, account.ErrUserNotFound, "user")
}

// ListUsers implements account.Store.
func (s *Store) ListUsers(ctx context.Context, tenantID int64, role account.Role, p account.Page) ([]account.User, error) {
	var w sqlwhere.Where
	w.Add("u.tenant_id = ?", tenantID)
	if role != "" {
		w.Add("u.role = ?", string(role))
	}
	w.Add("u.id > ?", p.After)
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u WHERE `+w.String()+` ORDER BY u.id LIMIT `+w.Next(p.Limit), w.Args()...)
	if err != nil {
		return nil, translate(err, "list users")
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.User, error) { return scanUser(r) })
	return users, translate(err, "list users")
}

// UpdateUser implements account.Store.
func (s *Store) UpdateUser(ctx context.Context, tenantID, userID int64, p account.UserPatch, e audit.Entry) (account.User, error) {
	var u account.User
	err := s.tx(ctx, func(tx pgx.Tx) error {
		before, err := auditpg.Snapshot(ctx, tx, "users", "id", userID)
		if err != nil {
			return err
		}
		var status, role *string
		if p.Status != nil {
			status = (*string)(p.Status)
		}
		if p.Role != nil {
			role = (*string)(p.Role)
		}
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users u SET
				status = coalesce($3, status),
				role = coalesce($4, role),
				department = CASE WHEN $5::text IS NULL THEN department ELSE nullif($5, '') END,
				failed_logins = CASE WHEN $6 THEN 0 ELSE failed_logins END,
				locked_until = CASE WHEN $6 THEN NULL ELSE locked_until END,
				updated_at = now()
			WHERE tenant_id = $1 AND id = $2
			RETURNING `+userColumns, tenantID, userID, status, role, p.Department, p.Unlock))
		if err != nil {
			return err
		}
		if u.Status == account.StatusSuspended {
			if _, err := tx.Exec(ctx, `UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'suspended'
				WHERE user_id = $1 AND revoked_at IS NULL`, userID); err != nil {
				return err
			}
		}
		return writeAudit(ctx, tx, e, before, "users", "id", userID)
	})
	return u, notFound(err, account.ErrUserNotFound, "update user")
}

// RecordLoginFailure implements account.Store.
func (s *Store) RecordLoginFailure(ctx context.Context, userID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration, e audit.Entry) (*time.Time, error) {
	var locked *time.Time
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var failures int
		var until *time.Time
		err := tx.QueryRow(ctx, `WITH c AS (
				SELECT id, CASE WHEN last_failed_login_at IS NULL OR last_failed_login_at < $2::timestamptz - $3::interval
					THEN 1 ELSE failed_logins + 1 END AS n
				FROM users WHERE id = $1 FOR UPDATE)
			UPDATE users u SET failed_logins = c.n, last_failed_login_at = $2,
				locked_until = CASE WHEN c.n >= $4 THEN $2::timestamptz + $5::interval ELSE u.locked_until END
			FROM c WHERE u.id = c.id
			RETURNING u.failed_logins, u.locked_until`, userID, now, window, maxFailures, lockFor).Scan(&failures, &until)
		if err != nil {
			return err
		}
		if e.After == nil {
			e.After = map[string]any{}
		}
		e.After["failed_logins"] = failures
		if err := auditpg.Write(ctx, tx, e); err != nil {
			return err
		}
		if until != nil && until.After(now) {
			locked = until
			if failures == maxFailures {
				le := e
				le.Action, le.After = "user.locked", map[string]any{"locked_until": until.UTC(), "failed_logins": failures}
				return auditpg.Write(ctx, tx, le)
			}
		}
		return nil
	})
	return locked, translate(err, "record login failure")
}

// SetPassword implements account.Store.
func (s *Store) SetPassword(ctx context.Context, userID int64, hash string, keep int64, e audit.Entry) error {
	return translate(s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE id = $1`, userID, hash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'password_changed'
			WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL`, userID, keep); err != nil {
			return err
		}
		return auditpg.Write(ctx, tx, e)
	}), "set password")
}

// SetTOTP implements account.Store.
func (s *Store) SetTOTP(ctx context.Context, userID int64, secret []byte, enabled bool, lastStep int64, e audit.Entry) error {
	return translate(s.tx(ctx, func(tx pgx.Tx) error {
		before, err := auditpg.Snapshot(ctx, tx, "users", "id", userID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET totp_secret = $2,
				totp_enabled_at = CASE WHEN $3 THEN coalesce(totp_enabled_at, now()) END,
				totp_last_step = nullif($4, 0), updated_at = now()
			WHERE id = $1`, userID, secret, enabled, lastStep); err != nil {
			return err
		}
		return writeAudit(ctx, tx, e, before, "users", "id", userID)
	}), "set totp")
}

// AddVerification implements account.Store.
func (s *Store) AddVerification(ctx context.Context, v account.Verification, m outbox.Message, e audit.Entry) error {
	return translate(s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO email_verifications (token_hash, tenant_id, user_id, email, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, v.Hash, v.TenantID, v.UserID, v.Email, v.ExpiresAt); err != nil {
			return err
		}
		if err := outboxpg.Enqueue(ctx, tx, m); err != nil {
			return err
		}
		return auditpg.Write(ctx, tx, e)
	}), "add verification")
}

// UseVerification implements account.Store.
func (s *Store) UseVerification(ctx context.Context, hash []byte, now time.Time, e audit.Entry) (account.User, error) {
	var u account.User
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var tenantID, userID int64
		var email string
		err := tx.QueryRow(ctx, `UPDATE email_verifications SET used_at = $2
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
			RETURNING tenant_id, user_id, email`, hash, now).Scan(&tenantID, &userID, &email)
		if errors.Is(err, pgx.ErrNoRows) {
			return account.ErrTokenInvalid
		}
		if err != nil {
			return err
		}
		before, err := auditpg.Snapshot(ctx, tx, "users", "id", userID)
		if err != nil {
			return err
		}
		// The address verified must still be the account's address.
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users u SET email_verified_at = coalesce(email_verified_at, $2), updated_at = now()
			WHERE id = $1 AND email = $3 RETURNING `+userColumns, userID, now, email))
		if errors.Is(err, pgx.ErrNoRows) {
			return account.ErrTokenInvalid
		}
		if err != nil {
			return err
		}
		e.TenantID = tenantID
		if e.ActorUserID == 0 {
			e.ActorUserID, e.ActorRole = userID, string(u.Role)
		}
		return writeAudit(ctx, tx, e, before, "users", "id", userID)
	})
	return u, translate(err, "use verification")
}

// Profile implements account.Store.
func (s *Store) Profile(ctx context.Context, tenantID, userID int64) (account.SealedProfile, error) {
	var p account.SealedProfile
	err := s.pool.QueryRow(ctx, `SELECT name, email_enc, phone_enc, address_enc, updated_at FROM user_profiles
		WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID).Scan(&p.Name, &p.Email, &p.Phone, &p.Address, &p.UpdatedAt)
	return p, notFound(err, account.ErrProfileNotFound, "profile")
}

// PutProfile implements account.Store.
func (s *Store) PutProfile(ctx context.Context, tenantID, userID int64, p account.SealedProfile, e audit.Entry) error {
	return translate(s.tx(ctx, func(tx pgx.Tx) error {
		before, err := auditpg.Snapshot(ctx, tx, "user_profiles", "user_id", userID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO user_profiles (tenant_id, user_id, name, email_enc, phone_enc, address_enc)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, email_enc = excluded.email_enc,
				phone_enc = excluded.phone_enc, address_enc = excluded.address_enc, updated_at = now()`,
			tenantID, userID, p.Name, p.Email, p.Phone, p.Address); err != nil {
			return err
		}
		return writeAudit(ctx, tx, e, before, "user_profiles", "user_id", userID)
	}), "put profile")
}
