package postgres

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// Actor is who makes a change, for the audit log (invariant 6: every
// state change a person makes is audited). UserID 0 is the system.
type Actor struct {
	UserID    int64
	Role      string
	Address   string // client IP
	RequestID string
}

// writeAudit appends an audit_log row in tx.
func writeAudit(ctx context.Context, tx pgx.Tx, tenantID int64, a Actor, action, entity string, id int64, before, after map[string]any) error {
	var addr any
	if a.Address != "" {
		addr = a.Address
	}
	_, err := tx.Exec(ctx, `INSERT INTO audit_log (tenant_id, actor_user_id, actor_role, action, entity_type, entity_id, before, after, address, request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::inet, $10)`,
		tenantID, nullID(a.UserID), a.Role, action, entity, strconv.FormatInt(id, 10), before, after, addr, a.RequestID)
	return err
}
