package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/meter/regmap"
)

// MeterInput is a meter to provision.
type MeterInput struct {
	// ExternalID is the meter's reference in MQTT topics and payloads.
	ExternalID string
	// Serial is the number printed on the meter; consumers register
	// properties with it as the meter number.
	Serial   string
	Model    string
	Protocol Protocol
	// Settings are the protocol settings: for MQTT {"format": "canonical"
	// | "tasmota" | "shelly" | "thingsboard"}; for Modbus {"address":
	// "host:port" or a serial device, "unit_id": 1–247, "map": a register
	// map model, "word_order"?: ...}; for manual meters none.
	Settings         map[string]any
	Multiplier       *decimal.Decimal // CT/PT ratio; default 1
	ExpectedInterval time.Duration    // default 15 minutes
}

var (
	externalIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	mqttFormats       = []string{"canonical", "tasmota", "shelly", "thingsboard"}
)

// Provisioned is a new meter and, for MQTT meters, its credentials, which
// are shown this once: only their hash is stored.
type Provisioned struct {
	Meter       Meter
	Credentials *MQTTCredentials
}

// ProvisionMeter registers a meter in the tenant (staff). MQTT meters get
// a random 192-bit password.
func (s *Service) ProvisionMeter(ctx context.Context, a Actor, scope Scope, in MeterInput) (Provisioned, error) {
	in.ExternalID = strings.TrimSpace(in.ExternalID)
	in.Serial = strings.TrimSpace(in.Serial)
	in.Model = strings.TrimSpace(in.Model)
	if in.Settings == nil {
		in.Settings = map[string]any{}
	}
	if in.ExpectedInterval == 0 {
		in.ExpectedInterval = 15 * time.Minute
	}
	mult := decimal.NewFromInt(1)
	if in.Multiplier != nil {
		mult = *in.Multiplier
	}
	v := NewValidator(ErrInvalidInput)
	v.Check(externalIDPattern.MatchString(in.ExternalID), "external_id", "must be 1 to 128 letters, digits, '.', '_', ':' or '-'")
	v.Check(meterNumberPattern.MatchString(in.Serial), "serial", "must be 1 to 64 letters, digits, '.', '_', ':', '/' or '-'")
	if m := textProblem(in.Model, true, 64); m != "" {
		v.Add("model", m)
	}
	v.Check(mult.IsPositive() && mult.LessThanOrEqual(decimal.NewFromInt(100_000)) && mult.Exponent() >= -4, "multiplier", "must be positive, at most 100000, with up to 4 decimals")
	v.Check(in.ExpectedInterval >= time.Second && in.ExpectedInterval <= 24*time.Hour, "expected_interval_s", "must be between 1 and 86400 seconds")
	switch in.Protocol {
	case ProtocolMQTT:
		f, _ := in.Settings["format"].(string)
		if f == "" {
			in.Settings["format"] = "canonical"
		} else if !slices.Contains(mqttFormats, f) {
			v.Add("settings.format", "must be one of "+strings.Join(mqttFormats, ", "))
		}
	case ProtocolModbus:
		checkModbus(v, in.Settings)
	case ProtocolManual:
	default:
		v.Add("protocol", "must be mqtt, modbus or manual")
	}
	settings, err := json.Marshal(in.Settings)
	if err != nil || len(settings) > 4096 {
		v.Add("settings", "must be a JSON object of at most 4 KiB")
	}
	if err := v.Err(); err != nil {
		return Provisioned{}, err
	}
	nm := NewMeter{TenantID: scope.TenantID, ExternalID: in.ExternalID, Serial: in.Serial, Model: in.Model,
		Protocol: in.Protocol, Settings: settings, Multiplier: mult, ExpectedInterval: in.ExpectedInterval}
	var creds *MQTTCredentials
	if in.Protocol == ProtocolMQTT {
		secret, hash, err := newMeterSecret()
		if err != nil {
			return Provisioned{}, err
		}
		nm.SecretHash = hash
		if creds, err = s.credentials(ctx, scope.TenantID, in.ExternalID, secret); err != nil {
			return Provisioned{}, err
		}
	}
	m, err := s.store.CreateMeter(ctx, nm, a.entry(scope.TenantID, "meter.provision", "meter", 0))
	if err != nil {
		return Provisioned{}, err
	}
	return Provisioned{Meter: m, Credentials: creds}, nil
}

func checkModbus(v *Validator, s map[string]any) {
	addr, _ := s["address"].(string)
	if addr == "" {
		v.Add("settings.address", "is required: host:port for Modbus TCP, or a serial device path for RTU")
	} else if !strings.HasPrefix(addr, "/dev/") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			v.Add("settings.address", "must be host:port or a serial device path")
		}
	}
	unit, ok := s["unit_id"].(float64)
	if !ok || unit != float64(int(unit)) || unit < 1 || unit > 247 {
		v.Add("settings.unit_id", "must be a whole number from 1 to 247")
	}
	model, _ := s["map"].(string)
	if !slices.Contains(regmap.Models(), model) {
		v.Add("settings.map", "must be one of "+strings.Join(regmap.Models(), ", "))
	}
}

// newMeterSecret returns a random 192-bit MQTT password and its stored
// form, "sha256:<hex>" (meter secrets are random, so a fast hash is safe
// and lets the broker check 100,000 reconnecting meters quickly).
func newMeterSecret() (string, string, error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", fmt.Errorf("meter secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	return secret, "sha256:" + hex.EncodeToString(sum[:]), nil
}

func (s *Service) credentials(ctx context.Context, tenantID int64, externalID, secret string) (*MQTTCredentials, error) {
	t, err := s.store.TenantByID(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	// The gateway's broker resolves "<tenant>/<meter>" usernames
	// (ingest/broker), unambiguous across tenants.
	return &MQTTCredentials{Username: t.Code + "/" + externalID, Password: secret, Topic: "meters/" + t.Code + "/" + externalID + "/reading"}, nil
}

// RotateMeterSecret issues a new MQTT password for a meter, replacing the
// old one, and returns it (shown once).
func (s *Service) RotateMeterSecret(ctx context.Context, a Actor, scope Scope, id int64) (MQTTCredentials, error) {
	m, err := s.store.Meter(ctx, scope.TenantID, id)
	if err != nil {
		return MQTTCredentials{}, err
	}
	if m.Protocol != ProtocolMQTT {
		return MQTTCredentials{}, fmt.Errorf("%w: meter %d does not use MQTT", ErrConflict, id)
	}
	secret, hash, err := newMeterSecret()
	if err != nil {
		return MQTTCredentials{}, err
	}
	if err := s.store.SetMeterSecret(ctx, scope.TenantID, id, hash, a.entry(scope.TenantID, "meter.rotate_secret", "meter", id)); err != nil {
		return MQTTCredentials{}, err
	}
	c, err := s.credentials(ctx, scope.TenantID, m.ExternalID, secret)
	if err != nil {
		return MQTTCredentials{}, err
	}
	return *c, nil
}

// GetMeter returns a meter of the tenant.
func (s *Service) GetMeter(ctx context.Context, scope Scope, id int64) (Meter, error) {
	return s.store.Meter(ctx, scope.TenantID, id)
}

// ListMeters lists the tenant's meters by id.
func (s *Service) ListMeters(ctx context.Context, scope Scope, p Page) ([]Meter, error) {
	return s.store.ListMeters(ctx, scope.TenantID, p.Normalize())
}
