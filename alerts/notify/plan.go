package notify

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/meterd/meterd/alerts"
)

// Outbox is a claimed notification_outbox row, as the fan-out sees it.
type Outbox struct {
	ID        int64
	TenantID  int64
	UserID    int64 // 0: an address or an audience
	Event     string
	Channel   alerts.Channel // forced channel; "" lets preferences decide
	Payload   json.RawMessage
	CreatedAt time.Time
	// Zone is the tenant's time zone (quiet hours).
	Zone *time.Location
}

// Recipient is one person (or address) an outbox row reaches, with what
// the fan-out needs to choose channels. Addresses themselves stay sealed.
type Recipient struct {
	UserID   int64 // 0: the payload's email address
	Role     string
	HasEmail bool
	HasPhone bool
	Devices  []int64 // active push devices
	Prefs    alerts.Preferences
}

// NewDelivery is a delivery the fan-out creates.
type NewDelivery struct {
	UserID         int64
	Channel        alerts.Channel
	DeviceID       int64
	Reason         string // preference | forced | fallback | escalation
	NextAttemptAt  time.Time
	DeferredReason string // "quiet_hours" when held back
	MaxAttempts    int
}

// Planner decides the deliveries of outbox rows: channels from the
// recipient's preferences (or the event's defaults, or the forced
// channel), only channels with a configured provider and an address, a
// fallback channel when none is left, extra channels up to the payload's
// min_channels (escalation), one delivery per push device, and quiet hours
// for ringing channels.
type Planner struct {
	// Available are the channels with a configured provider.
	Available map[alerts.Channel]bool
	// MaxAttempts per channel.
	MaxAttempts map[alerts.Channel]int
}

// Plan returns the deliveries of row for its recipients at now.
func (p Planner) Plan(row Outbox, recipients []Recipient, now time.Time) []NewDelivery {
	spec, _ := alerts.LookupEvent(row.Event)
	minChannels := payloadInt(row.Payload, "min_channels")
	zone := row.Zone
	if zone == nil {
		zone = time.UTC
	}
	var out []NewDelivery
	for _, r := range recipients {
		has := func(c alerts.Channel) bool {
			if !p.Available[c] {
				return false
			}
			switch c {
			case alerts.ChannelEmail:
				return r.HasEmail
			case alerts.ChannelSMS:
				return r.HasPhone
			case alerts.ChannelPush:
				return len(r.Devices) > 0
			}
			return false
		}
		res := r.Prefs.Resolve(spec)
		type pick struct {
			c      alerts.Channel
			reason string
		}
		var picks []pick
		add := func(c alerts.Channel, reason string) {
			if !has(c) || slices.ContainsFunc(picks, func(x pick) bool { return x.c == c }) {
				return
			}
			picks = append(picks, pick{c, reason})
		}
		switch {
		case row.Channel != "":
			add(row.Channel, "forced")
		case res.Muted && !spec.Transactional:
			continue
		default:
			for _, c := range res.Channels {
				add(c, "preference")
			}
		}
		if len(picks) == 0 {
			// Nothing chosen has an address (or the event is transactional
			// and muted): the first channel that can reach the person.
			for _, c := range alerts.Channels() {
				if len(picks) == 0 {
					add(c, "fallback")
				}
			}
		}
		for _, c := range alerts.Channels() {
			if len(picks) >= minChannels {
				break
			}
			add(c, "escalation")
		}
		for _, pk := range picks {
			next, deferred := now, ""
			if pk.c.Rings() && !spec.Urgent {
				if rel := res.Quiet.Release(now, zone); rel.After(now) {
					next, deferred = rel, "quiet_hours"
				}
			}
			d := NewDelivery{UserID: r.UserID, Channel: pk.c, Reason: pk.reason, NextAttemptAt: next, DeferredReason: deferred, MaxAttempts: p.maxAttempts(pk.c)}
			if pk.c == alerts.ChannelPush {
				for _, dev := range r.Devices {
					d.DeviceID = dev
					out = append(out, d)
				}
				continue
			}
			out = append(out, d)
		}
	}
	return out
}

func (p Planner) maxAttempts(c alerts.Channel) int {
	if n := p.MaxAttempts[c]; n > 0 {
		return n
	}
	return DefaultMaxAttempts
}

// payloadInt reads an integer field of a JSON payload; 0 when absent.
func payloadInt(raw json.RawMessage, key string) int {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return 0
	}
	v, ok := m[key]
	if !ok {
		return 0
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		n, _ := strconv.Atoi(s)
		return n
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		i, _ := n.Int64()
		return int(i)
	}
	return 0
}

// payloadString reads a string (or number, as text) field of a payload.
func payloadString(raw json.RawMessage, key string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	v, ok := m[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String()
	}
	return ""
}
