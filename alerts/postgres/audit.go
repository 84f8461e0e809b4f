package postgres

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/alerts"
)

// Actor is who makes a change (alerts.Actor).
type Actor = alerts.Actor

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
