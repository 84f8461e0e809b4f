package mqttpub

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/manifest"
)

// Far-off timestamps of the future_time and past_time faults, relative to
// the wall clock: well beyond meter.Limits' defaults (5 minutes ahead, 400
// days back).
const (
	futureOffset = 30 * 24 * time.Hour
	pastOffset   = 2 * 365 * 24 * time.Hour
)

// Malformed builds the topic and payload of malformed-input fault k for
// meter i of f, next to a valid reading r taken at r.Time, at wall-clock
// time now. It returns the meter reference the input claims and the
// timestamp the database must not hold for it (zero when the input claims
// none).
func Malformed(f *simulator.Fleet, i int, k simulator.Kind, r meter.Reading, now time.Time) (topic string, body []byte, ref string, forbidden time.Time) {
	m := f.Meter(i)
	ref = m.ExternalID
	tasmota := m.Format == simulator.Tasmota
	topic = payload.CanonicalTopic(f.Config().Tenant, ref)
	if tasmota {
		topic = payload.TasmotaTopic(ref)
	}
	encode := func(r meter.Reading) []byte {
		if tasmota {
			return payload.AppendTasmota(nil, &r, payload.TasmotaOptions{Zone: f.Location(), WithOffset: true})
		}
		return payload.AppendCanonical(nil, &r, payload.CanonicalOptions{})
	}
	// A time between two ticks, so it can never be a valid reading's.
	between := r.Time.Add(f.Config().Interval / 2)
	if tasmota {
		between = between.Truncate(time.Second)
	}
	switch k {
	case simulator.KindBrokenJSON:
		r.Time = between
		full := encode(r)
		body = full[:len(full)/2]
		forbidden = between
	case simulator.KindWrongType:
		forbidden = between
		if tasmota {
			body = fmt.Appendf(nil, `{"Time":%q,"ENERGY":{"Total":"%d","Power":[%g,"x"],"Voltage":true}}`,
				between.In(f.Location()).Format("2006-01-02T15:04:05-07:00"), r.ImportWh, r.PowerW)
		} else {
			body = fmt.Appendf(nil, `{"v":1,"ts":%q,"import_wh":"%d","export_wh":%d.5,"power_w":"%g"}`,
				between.Format(time.RFC3339Nano), r.ImportWh, r.ExportWh, r.PowerW)
		}
	case simulator.KindUnknownMeter:
		ref = f.UnknownMeterRef(i)
		topic = payload.CanonicalTopic(f.Config().Tenant, ref)
		if tasmota {
			topic = payload.TasmotaTopic(ref)
		}
		body = encode(r)
		forbidden = r.Time
	case simulator.KindFutureTime:
		r.Time = now.Add(futureOffset).Truncate(time.Second).UTC()
		body = encode(r)
		forbidden = r.Time
	case simulator.KindPastTime:
		r.Time = now.Add(-pastOffset).Truncate(time.Second).UTC()
		body = encode(r)
		forbidden = r.Time
	}
	return topic, body, ref, forbidden
}

// sendMalformed publishes one malformed message once (no retry) and
// records the fault with the broker's answer.
func (w *worker) sendMalformed(ctx context.Context, ms *meterSlot, k simulator.Kind, first time.Time) error {
	p := w.p
	r := w.rs[0]
	for _, x := range w.rs {
		if x.Time.Equal(first) {
			r = x
		}
	}
	topic, body, ref, forbidden := Malformed(p.fleet, ms.idx, k, r, p.cfg.Now())
	qos := byte(1)
	if p.cfg.QoS0 {
		qos = 0
	}
	result := "accepted"
	cm, err := w.conn(ctx, ms)
	backoff := minBackoff
	for err == nil {
		pctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
		var resp *paho.PublishResponse
		resp, err = cm.Publish(pctx, &paho.Publish{QoS: qos, Topic: topic, Payload: body})
		cancel()
		if err == nil {
			break
		}
		if resp != nil && resp.ReasonCode == reasonQuotaExceeded && sleep(ctx, &backoff) {
			err = nil
			continue
		}
		if resp != nil {
			result = "refused: reason code " + strconv.Itoa(int(resp.ReasonCode))
			err = nil
			break
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		result = "error: " + err.Error()
		p.errs.Add(1)
	}
	p.malformed.Add(1)
	detail, _ := json.Marshal(map[string]string{"topic": topic, "result": result, "payload": string(body)})
	return w.fault(manifest.Fault{Kind: k, Meter: ms.idx, At: first, Ref: ref, Forbidden: forbidden, Detail: string(detail)})
}
