package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meterd/meterd/api/outbox"
)

// Execer is a transaction or connection.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Enqueue inserts m into notification_outbox; a message whose DedupeKey is
// already there is dropped. Call it in the transaction of the change that
// causes the message.
func Enqueue(ctx context.Context, q Execer, m outbox.Message) error {
	payload, err := json.Marshal(m.Payload)
	if err != nil {
		return fmt.Errorf("outbox %s: %w", m.Event, err)
	}
	if m.Payload == nil {
		payload = []byte("{}")
	}
	var user, channel, key any
	if m.UserID != 0 {
		user = m.UserID
	}
	if m.Channel != "" {
		channel = m.Channel
	}
	if m.DedupeKey != "" {
		key = m.DedupeKey
	}
	_, err = q.Exec(ctx, `INSERT INTO notification_outbox (tenant_id, user_id, event, channel, payload, secret, dedupe_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING`,
		m.TenantID, user, m.Event, channel, payload, m.Secret, key)
	if err != nil {
		return fmt.Errorf("outbox %s: %w", m.Event, err)
	}
	return nil
}
