package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/api/audit"

	"github.com/meterd/meterd/api/internal/sqlwhere"
)

// Querier is what Write and Snapshot need: a transaction, a connection or
// a pool.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Write inserts e. Call it in the transaction of the change e describes.
func Write(ctx context.Context, q Querier, e audit.Entry) error {
	before, err := marshal(e.Before)
	if err != nil {
		return err
	}
	after, err := marshal(e.After)
	if err != nil {
		return err
	}
	var addr *netip.Addr
	if a, err := netip.ParseAddr(e.Address); err == nil {
		addr = &a
	}
	var at any
	if !e.At.IsZero() {
		at = e.At
	}
	_, err = q.Exec(ctx, `INSERT INTO audit_log
		(tenant_id, at, actor_user_id, actor_role, action, entity_type, entity_id, before, after, address, request_id)
		VALUES ($1, coalesce($2, now()), $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		nullID(e.TenantID), at, nullID(e.ActorUserID), e.ActorRole, e.Action, e.EntityType, e.EntityID,
		before, after, addr, e.RequestID)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

func marshal(m map[string]any) ([]byte, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("audit snapshot: %w", err)
	}
	return b, nil
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// Snapshot returns the row of table whose key column equals id, as JSON
// redacted by audit.Redact, or nil if there is none. table and key are
// identifiers chosen by the caller's code, never by input.
func Snapshot(ctx context.Context, q Querier, table, key string, id any) (map[string]any, error) {
	var raw []byte
	sql := fmt.Sprintf(`SELECT to_jsonb(t) FROM %s t WHERE %s = $1`,
		pgx.Identifier{table}.Sanitize(), pgx.Identifier{key}.Sanitize())
	err := q.QueryRow(ctx, sql, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit snapshot %s: %w", table, err)
	}
	var row map[string]any
	if err := json.Unmarshal(raw, &row); err != nil {
		return nil, fmt.Errorf("audit snapshot %s: %w", table, err)
	}
	return audit.Redact(row), nil
}

// Filter selects audit entries to list.
type Filter struct {
	TenantID   int64
	EntityType string // "" for any
	EntityID   string // "" for any
	ActorID    int64  // 0 for any
	BeforeID   int64  // keyset cursor: entries with smaller ids; 0 from the newest
	Limit      int
}

// List returns the newest entries matching f, newest first.
func List(ctx context.Context, pool *pgxpool.Pool, f Filter) ([]audit.Entry, error) {
	var w sqlwhere.Where
	w.Add("tenant_id = ?", f.TenantID)
	if f.EntityType != "" {
		w.Add("entity_type = ?", f.EntityType)
	}
	if f.EntityID != "" {
		w.Add("entity_id = ?", f.EntityID)
	}
	if f.ActorID != 0 {
		w.Add("actor_user_id = ?", f.ActorID)
	}
	if f.BeforeID != 0 {
		w.Add("id < ?", f.BeforeID)
	}
	rows, err := pool.Query(ctx, `SELECT id, coalesce(tenant_id, 0), at, coalesce(actor_user_id, 0), actor_role,
			action, entity_type, entity_id, before, after, coalesce(host(address), ''), request_id
		FROM audit_log WHERE `+w.String()+` ORDER BY id DESC LIMIT `+w.Next(f.Limit), w.Args()...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Entry, error) {
		var e audit.Entry
		var before, after []byte
		if err := r.Scan(&e.ID, &e.TenantID, &e.At, &e.ActorUserID, &e.ActorRole, &e.Action, &e.EntityType,
			&e.EntityID, &before, &after, &e.Address, &e.RequestID); err != nil {
			return e, err
		}
		if before != nil {
			if err := json.Unmarshal(before, &e.Before); err != nil {
				return e, err
			}
		}
		if after != nil {
			if err := json.Unmarshal(after, &e.After); err != nil {
				return e, err
			}
		}
		e.At = e.At.UTC()
		return e, nil
	})
}
