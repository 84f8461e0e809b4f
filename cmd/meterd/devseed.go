package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/support"
)

// The demo tenant 'meterd dev' seeds. The password is printed in the
// banner: these accounts exist only in the private dev database.
const (
	demoTenant   = "demo"
	demoPassword = "demo-pass-2026"
	demoMeter    = "demo-meter-1"
	demoSerial   = "DEMO-0001"
)

// seedDemo creates, unless they exist, the demo tenant (INR,
// Asia/Kolkata) with a consumer who has a property, an electricity
// connection and an MQTT meter, an official of the metering department,
// a support staff member handling every ticket category, and an admin. It
// is idempotent: a second run changes nothing. The demo meter's MQTT
// password is kept in dataDir/keys/demo-meter.secret (0600), so the banner
// can show it on every run.
func seedDemo(ctx context.Context, svc api.Services, dataDir string) (demoLogins, error) {
	t, err := svc.Accounts.EnsureTenant(ctx, account.Tenant{Code: demoTenant, Name: "Demo Power Distribution", TimeZone: "Asia/Kolkata", Currency: "INR"})
	if err != nil {
		return demoLogins{}, fmt.Errorf("demo tenant: %w", err)
	}
	system := account.Actor{Principal: account.Principal{TenantID: t.ID, Role: account.RoleAdmin}, RequestID: "dev-seed"}
	scope := account.Scope{TenantID: t.ID}
	d := demoLogins{tenant: t.Code, password: demoPassword, meter: demoMeter,
		consumer: "consumer@demo.meterd.test", official: "official@demo.meterd.test",
		support: "support@demo.meterd.test", admin: "admin@demo.meterd.test"}
	users := map[string]account.User{}
	for _, u := range []account.NewUserInput{
		{Email: d.admin, Role: account.RoleAdmin, Name: "Anil Admin"},
		{Email: d.official, Role: account.RoleOfficial, Department: account.DepartmentMetering, Name: "Meera Official"},
		{Email: d.support, Role: account.RoleSupport, Name: "Sunil Support"},
		{Email: d.consumer, Role: account.RoleConsumer, Name: "Asha Consumer"},
	} {
		u.Password = demoPassword
		created, err := svc.Accounts.CreateUser(ctx, system, scope, u)
		if errors.Is(err, account.ErrEmailTaken) {
			created, err = svc.Accounts.FindUser(ctx, scope, u.Email)
		}
		if err != nil {
			return demoLogins{}, fmt.Errorf("demo user %s: %w", u.Email, err)
		}
		users[string(u.Role)] = created
	}
	skills := support.Categories()
	avail := true
	if _, err := svc.Support.PutStaff(ctx, system, scope, users["support"].ID, support.StaffInput{Skills: &skills, Available: &avail}); err != nil {
		return demoLogins{}, fmt.Errorf("demo support staff: %w", err)
	}
	secretFile := filepath.Join(dataDir, "keys", "demo-meter.secret")
	prov, err := svc.Accounts.ProvisionMeter(ctx, system, scope, account.MeterInput{
		ExternalID: demoMeter, Serial: demoSerial, Model: "sdm120", Protocol: account.ProtocolMQTT,
		Settings: map[string]any{"format": "canonical"}})
	switch {
	case errors.Is(err, account.ErrConflict):
	case err != nil:
		return demoLogins{}, fmt.Errorf("demo meter: %w", err)
	default:
		if err := os.MkdirAll(filepath.Dir(secretFile), 0o700); err != nil {
			return demoLogins{}, err
		}
		creds := prov.Credentials
		line := fmt.Sprintf("username=%s password=%s topic=%s\n", creds.Username, creds.Password, creds.Topic)
		if err := os.WriteFile(secretFile, []byte(line), 0o600); err != nil {
			return demoLogins{}, err
		}
	}
	consumer := users["consumer"]
	cscope := account.Scope{TenantID: t.ID, UserID: consumer.ID}
	props, err := svc.Accounts.ListProperties(ctx, cscope, 0, account.Page{})
	if err != nil {
		return demoLogins{}, err
	}
	if len(props) == 0 {
		load := decimal.NewFromInt(5)
		actor := account.Actor{Principal: account.Principal{TenantID: t.ID, UserID: consumer.ID, Role: account.RoleConsumer}, RequestID: "dev-seed"}
		p, err := svc.Accounts.AddProperty(ctx, actor, cscope, account.PropertyInput{Label: "Home",
			Address:     account.Address{Line1: "14 Residency Road", City: "Bengaluru", State: "Karnataka", PostalCode: "560025", Country: "IN"},
			Connections: []account.ConnectionInput{{MeterNumber: demoSerial, TariffPlan: "domestic-lt", SanctionedLoadKW: &load, UsageCategory: "RESIDENTIAL"}}})
		if err != nil {
			return demoLogins{}, fmt.Errorf("demo property: %w", err)
		}
		props = []account.Property{p}
	}
	d.tenantID = t.ID
	if len(props[0].Connections) > 0 {
		d.consumerCode, d.connectionID = props[0].Connections[0].ConsumerCode, props[0].Connections[0].ID
	}
	if b, err := os.ReadFile(secretFile); err == nil {
		d.meter += " (MQTT " + strings.TrimSpace(string(b)) + ")"
	}
	return d, nil
}
