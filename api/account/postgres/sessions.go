package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
)

func addr(s string) *netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return nil
	}
	return &a
}

// StartSession implements account.Store.
func (s *Store) StartSession(ctx context.Context, ns account.NewSession, e audit.Entry) (int64, error) {
	var sid int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $2,
				password_hash = coalesce(nullif($3, ''), password_hash),
				totp_last_step = CASE WHEN $4 > 0 THEN $4 ELSE totp_last_step END
			WHERE id = $1`, ns.UserID, ns.Now, ns.Rehash, ns.TOTPStep); err != nil {
			return err
		}
		ua := ns.UserAgent
		if len(ua) > 256 {
			ua = ua[:256]
		}
		if err := tx.QueryRow(ctx, `INSERT INTO auth_sessions (tenant_id, user_id, created_at, last_refreshed_at, expires_at, address, user_agent)
			VALUES ($1, $2, $3, $3, $4, $5, $6) RETURNING id`,
			ns.TenantID, ns.UserID, ns.Now, ns.SessionExpires, addr(ns.Address), ua).Scan(&sid); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at)
			VALUES ($1, $2, $3, least($4::timestamptz, $5::timestamptz))`, ns.RefreshHash, sid, ns.Now, ns.RefreshExpires, ns.SessionExpires); err != nil {
			return err
		}
		e.After = map[string]any{"session_id": sid, "rehashed": ns.Rehash != ""}
		return auditpg.Write(ctx, tx, e)
	})
	return sid, translate(err, "start session")
}

// RotateRefresh implements account.Store.
func (s *Store) RotateRefresh(ctx context.Context, old, next []byte, now, nextExpires time.Time, reuse audit.Entry) (account.Refreshed, error) {
	var r account.Refreshed
	var reused bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var tokExpires, sessExpires time.Time
		var usedAt, revokedAt *time.Time
		var userID, tenantID int64
		err := tx.QueryRow(ctx, `SELECT rt.session_id, rt.expires_at, rt.used_at, s.expires_at, s.revoked_at, s.user_id, s.tenant_id
			FROM refresh_tokens rt JOIN auth_sessions s ON s.id = rt.session_id
			WHERE rt.token_hash = $1 FOR UPDATE OF rt, s`, old).
			Scan(&r.SessionID, &tokExpires, &usedAt, &sessExpires, &revokedAt, &userID, &tenantID)
		if errors.Is(err, pgx.ErrNoRows) {
			return account.ErrUnauthenticated
		}
		if err != nil {
			return err
		}
		if usedAt != nil {
			// A used token came back: someone holds a copy. End the
			// family for both holders, and commit that.
			reused = true
			if revokedAt != nil {
				return nil
			}
			if _, err := tx.Exec(ctx, `UPDATE auth_sessions SET revoked_at = $2, revoked_reason = 'reuse_detected' WHERE id = $1`, r.SessionID, now); err != nil {
				return err
			}
			reuse.TenantID, reuse.EntityID = tenantID, fmt.Sprint(r.SessionID)
			reuse.After = map[string]any{"user_id": userID, "token_used_at": usedAt.UTC()}
			return auditpg.Write(ctx, tx, reuse)
		}
		if revokedAt != nil || !tokExpires.After(now) || !sessExpires.After(now) {
			return account.ErrUnauthenticated
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1`, old, now); err != nil {
			return err
		}
		if nextExpires.After(sessExpires) {
			nextExpires = sessExpires
		}
		r.RefreshExpires = nextExpires
		if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)`,
			next, r.SessionID, now, nextExpires); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE auth_sessions SET last_refreshed_at = $2 WHERE id = $1`, r.SessionID, now); err != nil {
			return err
		}
		r.User, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, userID))
		return err
	})
	if err == nil && reused {
		return account.Refreshed{}, account.ErrRefreshReuse
	}
	return r, translate(err, "rotate refresh token")
}

// RevokeSession implements account.Store.
func (s *Store) RevokeSession(ctx context.Context, userID, sessionID int64, reason string, e audit.Entry) error {
	return translate(s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $3
			WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, sessionID, userID, reason)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return auditpg.Write(ctx, tx, e)
	}), "revoke session")
}

// SessionState implements account.Store.
func (s *Store) SessionState(ctx context.Context, sessionID int64) (account.SessionState, error) {
	var st account.SessionState
	err := s.pool.QueryRow(ctx, `SELECT s.id, s.user_id, s.tenant_id, u.role, coalesce(u.department, ''), u.status,
			s.revoked_at IS NOT NULL, s.expires_at
		FROM auth_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`, sessionID).
		Scan(&st.SessionID, &st.UserID, &st.TenantID, &st.Role, &st.Department, &st.UserStatus, &st.Revoked, &st.ExpiresAt)
	return st, notFound(err, account.ErrUnauthenticated, "session state")
}

// PurgeExpired implements account.Store.
func (s *Store) PurgeExpired(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	for _, q := range []string{
		`DELETE FROM auth_sessions WHERE expires_at < $1 OR revoked_at < $1`,
		`DELETE FROM refresh_tokens WHERE expires_at < $1`,
		`DELETE FROM email_verifications WHERE expires_at < $1`,
	} {
		tag, err := s.pool.Exec(ctx, q, cutoff)
		if err != nil {
			return n, translate(err, "purge expired")
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
