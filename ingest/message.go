package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/postgres"
)

// Message is one MQTT message as a source received it.
type Message struct {
	Topic      string
	Payload    []byte // kept, not copied: the source must not reuse it
	ReceivedAt time.Time
	// Publisher is the authenticated identity of the sender,
	// "<tenant>/<meter>" (or "<meter>"), when the broker vouches for it;
	// empty otherwise.
	Publisher string
}

// MessageDecoder turns MQTT messages into envelopes: it decodes the payload
// by topic (meter/payload), resolves meter references, checks every
// reading against meter.Limits, and turns every failure into a reject with
// the raw payload and a reason.
type MessageDecoder struct {
	dec     *payload.Decoder
	res     *Resolver
	limits  meter.Limits
	metrics *Metrics
}

// NewMessageDecoder returns a decoder.
func NewMessageDecoder(cfg payload.Config, limits meter.Limits, res *Resolver, m *Metrics) (*MessageDecoder, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	dec, err := payload.NewDecoder(cfg)
	if err != nil {
		return nil, err
	}
	return &MessageDecoder{dec: dec, res: res, limits: limits, metrics: m}, nil
}

// Envelope decodes msg. Bad input never fails: it becomes rejects in the
// envelope (a message with no meter data at all, reason no_reading, is
// counted and dropped without a row). The error is non-nil only when a
// meter reference could not be resolved for a transient reason (the
// database is unreachable); the caller retries later.
func (d *MessageDecoder) Envelope(ctx context.Context, msg Message) (*Envelope, error) {
	pubTenant, pubRef := SplitPublisher(msg.Publisher)
	var m payload.Message
	err := d.dec.DecodeInto(&m, payload.Input{Topic: msg.Topic, Payload: msg.Payload, ReceivedAt: msg.ReceivedAt, Publisher: pubRef})
	env := &Envelope{}
	reject := func(ref string, re *meter.RejectError, r *payload.Reading) {
		rj := postgres.Reject{ReceivedAt: msg.ReceivedAt.UTC(), Source: meter.SourceMQTT, Topic: msg.Topic, MeterRef: ref,
			Reason: re.Reason, Detail: re.Error()}
		// The raw payload is kept once per message; further rejected
		// readings of a batch carry their own canonical encoding.
		if len(env.Rejects) == 0 || r == nil {
			rj.Payload = msg.Payload
		} else {
			rj.Payload = payload.AppendCanonical(nil, &r.Reading, payload.CanonicalOptions{Meter: r.Meter})
		}
		env.Rejects = append(env.Rejects, rj)
	}
	if err != nil {
		re, ok := errors.AsType[*meter.RejectError](err)
		if !ok {
			re = meter.Reject(meter.ReasonUnknownFormat, "", err)
		}
		if re.Reason == meter.ReasonNoReading {
			d.count("no_reading")
			return env, nil
		}
		reject(pubRef, re, nil)
		d.count("rejected")
		return env, nil
	}
	type resolved struct {
		id  int64
		err error
	}
	cache := map[string]resolved{}
	env.Readings = make([]meter.Reading, 0, len(m.Readings))
	for i := range m.Readings {
		r := &m.Readings[i]
		tenant := m.Tenant
		if tenant == "" && pubTenant != "" && r.Meter == pubRef {
			tenant = pubTenant
		}
		key := tenant + "/" + r.Meter
		res, ok := cache[key]
		if !ok {
			mt, err := d.res.Resolve(ctx, tenant, r.Meter)
			if err != nil && !errors.Is(err, ErrUnknownMeter) {
				return nil, fmt.Errorf("ingest: %w", err)
			}
			res = resolved{mt.ID, err}
			cache[key] = res
		}
		if res.err != nil {
			reject(r.Meter, unknownMeterReject(res.err), r)
			continue
		}
		r.MeterID = res.id
		if err := d.limits.Check(&r.Reading, r.ReceivedAt); err != nil {
			re, _ := errors.AsType[*meter.RejectError](err)
			if re == nil {
				re = meter.Reject(meter.ReasonImpossibleValue, "", err)
			}
			reject(r.Meter, re, r)
			continue
		}
		env.Readings = append(env.Readings, r.Reading)
	}
	if d.metrics != nil {
		d.metrics.Received.WithLabelValues(meter.SourceMQTT.String()).Add(float64(len(m.Readings)))
	}
	if len(env.Rejects) > 0 {
		d.count("rejected")
	} else {
		d.count("accepted")
	}
	return env, nil
}

func (d *MessageDecoder) count(outcome string) {
	if d.metrics != nil {
		d.metrics.Messages.WithLabelValues(outcome).Inc()
	}
}
