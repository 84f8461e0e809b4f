package payload

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/meterd/meterd/meter"
)

// Format is an MQTT payload format.
type Format uint8

// The formats, chosen by topic (see ParseTopic).
const (
	FormatCanonical   Format = iota + 1 // meters/<tenant>/<meter>/reading
	FormatTasmota                       // tele/<meter>/SENSOR
	FormatShelly                        // <meter>/events/rpc (Shelly Gen2+ NotifyStatus)
	FormatThingsBoard                   // v1/devices/me/telemetry, v1/gateway/telemetry
)

func (f Format) String() string {
	switch f {
	case FormatCanonical:
		return "canonical"
	case FormatTasmota:
		return "tasmota"
	case FormatShelly:
		return "shelly"
	case FormatThingsBoard:
		return "thingsboard"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// The ThingsBoard topics, fixed by its device and gateway APIs.
const (
	ThingsBoardDeviceTopic  = "v1/devices/me/telemetry"
	ThingsBoardGatewayTopic = "v1/gateway/telemetry"
)

// Subscriptions returns the topic filters a gateway subscribes to, one per
// topic pattern ParseTopic recognises. For shared subscriptions prefix each
// with "$share/<group>/".
func Subscriptions() []string {
	return []string{
		"meters/+/+/reading",
		"tele/+/SENSOR",
		"+/events/rpc",
		ThingsBoardDeviceTopic,
		ThingsBoardGatewayTopic,
	}
}

// CanonicalTopic returns the topic a meter publishes canonical JSON on.
func CanonicalTopic(tenant, meterRef string) string {
	return "meters/" + tenant + "/" + meterRef + "/reading"
}

// TasmotaTopic returns the topic a Tasmota device whose MQTT %topic% is
// meterRef publishes its SENSOR telemetry on.
func TasmotaTopic(meterRef string) string { return "tele/" + meterRef + "/SENSOR" }

// ShellyTopic returns the topic a Shelly Gen2+ device whose MQTT topic
// prefix is prefix publishes its notifications on.
func ShellyTopic(prefix string) string { return prefix + "/events/rpc" }

// Topic is what a topic says about the messages published on it.
type Topic struct {
	Format Format
	// Tenant is the tenant code from the topic (canonical format only);
	// empty when the topic carries none and the gateway resolves the meter
	// by other means (the publisher's credentials).
	Tenant string
	// Meter is the meter reference (meters.external_id) from the topic, or
	// the topic prefix for Shelly; empty when the payload (ThingsBoard
	// gateway API) or the publisher identity (ThingsBoard device API) names
	// the meter.
	Meter string
	// Gateway is set for the ThingsBoard gateway API topic, whose payload
	// carries readings for several meters.
	Gateway bool
}

// ParseTopic returns the format and meter reference a topic implies. It
// returns a *meter.RejectError: unknown_format when the topic matches no
// pattern, unknown_meter when it does but its tenant or meter segment is not
// a valid reference.
func ParseTopic(topic string) (Topic, error) {
	switch topic {
	case ThingsBoardDeviceTopic:
		return Topic{Format: FormatThingsBoard}, nil
	case ThingsBoardGatewayTopic:
		return Topic{Format: FormatThingsBoard, Gateway: true}, nil
	}
	// Split into at most four levels without allocating; n ends above 4
	// when there are more.
	var lv [4]string
	n := 0
	for rest := topic; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if n == len(lv) {
			n++
			break
		}
		lv[n] = seg
		n++
		if !more {
			break
		}
		rest = tail
	}
	var t Topic
	switch {
	case n == 4 && lv[0] == "meters" && lv[3] == "reading":
		t = Topic{Format: FormatCanonical, Tenant: lv[1], Meter: lv[2]}
		if !ValidTenant(t.Tenant) {
			return Topic{}, meter.Rejectf(meter.ReasonUnknownMeter, "topic", "tenant %q is not a valid tenant code", t.Tenant)
		}
	case n == 3 && lv[0] == "tele" && lv[2] == "SENSOR":
		t = Topic{Format: FormatTasmota, Meter: lv[1]}
	case n == 3 && lv[1] == "events" && lv[2] == "rpc":
		t = Topic{Format: FormatShelly, Meter: lv[0]}
	default:
		return Topic{}, meter.Rejectf(meter.ReasonUnknownFormat, "topic", "%q matches no payload format", topic)
	}
	if !ValidMeterRef(t.Meter) {
		return Topic{}, meter.Rejectf(meter.ReasonUnknownMeter, "topic", "%q is not a valid meter reference", t.Meter)
	}
	return t, nil
}

// ValidMeterRef reports whether s can be a meter reference: 1..128
// characters of A–Z a–z 0–9 . _ : - starting with a letter or digit (the
// meters.external_id constraint). It cannot contain MQTT wildcards or level
// separators.
func ValidMeterRef(s string) bool {
	if len(s) == 0 || len(s) > 128 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

// ValidTenant reports whether s can be a tenant code: 1..63 characters of
// a–z 0–9 - starting with a letter or digit (the tenants.code constraint).
func ValidTenant(s string) bool {
	if len(s) == 0 || len(s) > 63 || !lowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !lowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool      { return lowerAlnum(c) || c >= 'A' && c <= 'Z' }
func lowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Config tunes a Decoder.
type Config struct {
	// MaxPayloadBytes rejects larger payloads (too_large) before parsing.
	// Default 1 MiB: a 10 000-reading canonical batch is about 1 MB.
	MaxPayloadBytes int
	// MaxBatch is the most readings one message may carry (too_large).
	// Default 10 000, the gateway's batch size.
	MaxBatch int
	// DeviceZone is the time zone of devices whose timestamps carry none
	// (Tasmota's "Time" without SetOption52). Nil means such timestamps are
	// not trusted and the arrival time is used instead — right for devices
	// publishing live, wrong for messages a broker held during an outage,
	// which is why a zone can be configured.
	DeviceZone *time.Location
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{MaxPayloadBytes: 1 << 20, MaxBatch: 10_000}
}

// ErrInvalidConfig is wrapped by Config.Validate errors.
var ErrInvalidConfig = errors.New("invalid payload config")

// Validate reports whether c is usable.
func (c Config) Validate() error {
	var errs []error
	if c.MaxPayloadBytes <= 0 {
		errs = append(errs, fmt.Errorf("%w: MaxPayloadBytes must be positive, got %d", ErrInvalidConfig, c.MaxPayloadBytes))
	}
	if c.MaxBatch <= 0 {
		errs = append(errs, fmt.Errorf("%w: MaxBatch must be positive, got %d", ErrInvalidConfig, c.MaxBatch))
	}
	return errors.Join(errs...)
}

// Input is one MQTT message to decode.
type Input struct {
	Topic   string
	Payload []byte
	// ReceivedAt is the arrival time; it becomes every reading's ReceivedAt
	// and the source time of readings whose payload carries none.
	ReceivedAt time.Time
	// Publisher is the authenticated MQTT identity of the sender (the
	// username the embedded broker checked), when known. The ThingsBoard
	// device API topic names no meter, so it needs one.
	Publisher string
}

// Reading is a decoded reading and the meter reference it belongs to. The
// embedded meter.Reading has MeterID 0 (the gateway resolves Meter),
// Source meter.SourceMQTT, ReceivedAt from the Input and Time normalized
// with meter.NormalizeTime.
type Reading struct {
	Meter string // meter reference (meters.external_id)
	meter.Reading
}

// Message is the result of decoding one MQTT message.
type Message struct {
	Format Format
	// Tenant is the tenant code from the topic, or empty (see Topic).
	Tenant   string
	Readings []Reading
}

// Decoder decodes MQTT messages by topic. It is safe for concurrent use.
type Decoder struct {
	cfg       Config
	canonical sync.Pool // *canonicalMessage scratch, reused across calls
	slowOnly  bool      // tests: skip the canonical fast path
}

// NewDecoder returns a Decoder for cfg.
func NewDecoder(cfg Config) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{cfg: cfg}, nil
}

// Decode decodes one message. See DecodeInto.
func (d *Decoder) Decode(in Input) (Message, error) {
	var m Message
	err := d.DecodeInto(&m, in)
	return m, err
}

// DecodeInto decodes one message into m, reusing m.Readings' backing array,
// so a caller decoding in a loop allocates little.
//
// Structural problems reject the whole message: a *meter.RejectError with
// reason unknown_format, unknown_meter, too_large, bad_json, wrong_type,
// wrong_unit, missing_field, bad_timestamp, unsupported_version,
// meter_mismatch or no_reading. Plausibility (ranges, clock skew) is not
// checked here: run meter.Limits.Check on each reading. On error m.Readings
// is empty.
func (d *Decoder) DecodeInto(m *Message, in Input) error {
	m.Readings = m.Readings[:0]
	m.Format, m.Tenant = 0, ""
	t, err := ParseTopic(in.Topic)
	if err != nil {
		return err
	}
	m.Format, m.Tenant = t.Format, t.Tenant
	if len(in.Payload) > d.cfg.MaxPayloadBytes {
		return meter.Rejectf(meter.ReasonTooLarge, "", "payload of %d bytes exceeds %d", len(in.Payload), d.cfg.MaxPayloadBytes)
	}
	switch t.Format {
	case FormatCanonical:
		err = d.decodeCanonical(m, t, in)
	case FormatTasmota:
		err = d.decodeTasmota(m, t, in)
	case FormatShelly:
		err = d.decodeShelly(m, t, in)
	case FormatThingsBoard:
		err = d.decodeThingsBoard(m, t, in)
	}
	if err == nil && len(m.Readings) > d.cfg.MaxBatch {
		err = meter.Rejectf(meter.ReasonTooLarge, "", "%d readings exceed the batch limit of %d", len(m.Readings), d.cfg.MaxBatch)
	}
	if err != nil {
		m.Readings = m.Readings[:0]
		return err
	}
	return nil
}

// newReading returns a Reading for ref with the fields every decoder sets.
func newReading(ref string, ts time.Time, in *Input) Reading {
	return Reading{Meter: ref, Reading: meter.Reading{
		Time:       meter.NormalizeTime(ts),
		ReceivedAt: in.ReceivedAt.UTC(),
		Source:     meter.SourceMQTT,
	}}
}
