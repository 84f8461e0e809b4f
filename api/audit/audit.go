package audit

import (
	"strings"
	"time"
)

// Entry is one audit record.
type Entry struct {
	ID       int64
	TenantID int64 // 0: not tenant-scoped
	At       time.Time
	// ActorUserID is 0 for anonymous callers (registration, failed login)
	// and for the system (automatic assignment).
	ActorUserID int64
	ActorRole   string
	// Action is "<entity>.<verb>", e.g. user.register, session.login,
	// profile.update, ticket.status_changed.
	Action     string
	EntityType string
	EntityID   string
	Before     map[string]any
	After      map[string]any
	Address    string // client IP address; empty if unknown
	RequestID  string
}

// Masked is what a sealed column shows in a snapshot.
const Masked = "[encrypted]"

// secretColumns are dropped from snapshots altogether.
var secretColumns = map[string]bool{
	"password_hash":  true,
	"token_hash":     true,
	"secret":         true,
	"totp_last_step": true,
}

// Redact returns row with secret columns removed and sealed columns
// (suffix _enc, and totp_secret) replaced by Masked when set. It modifies
// and returns row.
func Redact(row map[string]any) map[string]any {
	for k, v := range row {
		switch {
		case secretColumns[k]:
			delete(row, k)
		case strings.HasSuffix(k, "_enc") || k == "totp_secret" || k == "mqtt_secret_hash":
			if v != nil {
				row[k] = Masked
			}
		}
	}
	return row
}
