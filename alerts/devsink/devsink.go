package devsink

import (
	"context"
	"sync"
	"time"
)

// Captured is one message a sink received.
type Captured struct {
	Seq       int64     `json:"seq"`
	At        time.Time `json:"at"`
	Channel   string    `json:"channel"`
	Provider  string    `json:"provider"`
	From      string    `json:"from,omitempty"`
	To        []string  `json:"to"`
	Subject   string    `json:"subject,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	Text      string    `json:"text,omitempty"`
	HTML      string    `json:"html,omitempty"`
	// Headers are the email's top-level headers (first values).
	Headers     map[string]string `json:"headers,omitempty"`
	Attachments []File            `json:"attachments,omitempty"`
	// Raw is the email as received (not shown in JSON).
	Raw []byte `json:"-"`
	// Data are the push data pairs.
	Data map[string]string `json:"data,omitempty"`
}

// File is an attachment.
type File struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int    `json:"size"`
	Data        []byte `json:"-"`
}

// Log keeps the last messages the sinks captured. It is safe for
// concurrent use.
type Log struct {
	mu      sync.Mutex
	keep    int
	seq     int64
	msgs    []Captured
	changed chan struct{} // closed and replaced on every Add
}

// NewLog returns a log keeping the newest keep messages (default 500).
func NewLog(keep int) *Log {
	if keep <= 0 {
		keep = 500
	}
	return &Log{keep: keep, changed: make(chan struct{})}
}

// Add appends a message and returns it with its sequence number.
func (l *Log) Add(c Captured) Captured {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	c.Seq = l.seq
	if c.At.IsZero() {
		c.At = time.Now().UTC()
	}
	l.msgs = append(l.msgs, c)
	if len(l.msgs) > l.keep {
		l.msgs = append(l.msgs[:0:0], l.msgs[len(l.msgs)-l.keep:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return c
}

// All returns the kept messages, oldest first.
func (l *Log) All() []Captured {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Captured(nil), l.msgs...)
}

// Wait returns the kept messages once at least n were captured in all,
// or ctx's error.
func (l *Log) Wait(ctx context.Context, n int) ([]Captured, error) {
	for {
		l.mu.Lock()
		seq, ch := l.seq, l.changed
		msgs := append([]Captured(nil), l.msgs...)
		l.mu.Unlock()
		if seq >= int64(n) {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return msgs, ctx.Err()
		}
	}
}
