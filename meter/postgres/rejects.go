package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/meter"
)

// Reject is input the gateway could not accept, kept whole with the reason
// (a row of readings_rejected).
type Reject struct {
	ReceivedAt time.Time
	Source     meter.Source
	Topic      string // MQTT topic or Modbus device address
	MeterRef   string // the meter the input claimed to be from
	Reason     meter.Reason
	Detail     string
	Payload    []byte
}

// WriteRejects stores rejects. Text fields are made valid UTF-8 without NUL
// bytes first (they come from untrusted input and PostgreSQL text accepts
// neither); the payload is kept byte for byte. Errors wrap ErrTransient or
// ErrBadRow.
func (s *Store) WriteRejects(ctx context.Context, rs []Reject) error {
	if len(rs) == 0 {
		return nil
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"readings_rejected"},
		[]string{"received_at", "source", "topic", "meter_ref", "reason", "detail", "payload"},
		pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
			r := &rs[i]
			payload := r.Payload
			if payload == nil {
				payload = []byte{}
			}
			return []any{r.ReceivedAt, int16(r.Source), cleanText(r.Topic, 1024), cleanText(r.MeterRef, 256),
				cleanText(string(r.Reason), 64), cleanText(r.Detail, 2048), payload}, nil
		}))
	if err != nil {
		return fmt.Errorf("write rejects: %w", classify(err))
	}
	return nil
}

// cleanText returns s as valid UTF-8 without NUL bytes, cut to at most max
// bytes.
func cleanText(s string, maxBytes int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) > maxBytes {
		s = strings.ToValidUTF8(s[:maxBytes], "")
	}
	return s
}
