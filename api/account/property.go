package account

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// PropertyInput is a property to add, with its connections.
type PropertyInput struct {
	// UserID is the owner when staff add a property for a consumer; 0
	// means the caller.
	UserID      int64
	Label       string
	Address     Address
	Connections []ConnectionInput
}

// ConnectionInput is a connection to add.
type ConnectionInput struct {
	Service ServiceType // default electricity
	// ConsumerCode may be given by staff (legacy codes); consumers get a
	// generated one.
	ConsumerCode     string
	MeterNumber      string
	TariffPlan       string
	ConnectionType   string // default Metered for electricity, Non Metered otherwise
	SanctionedLoadKW *decimal.Decimal
	UsageCategory    string
	WaterClosets     *int
	Toilets          *int
	RoadCutting      []RoadCutting
	PlotSizeM2       *decimal.Decimal
}

var (
	meterNumberPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$`)
	consumerCodePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9/_.-]{0,63}$`)
	tariffPlanPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	usageCategoryPattern = regexp.MustCompile(`^[A-Z][A-Z_]*(\.[A-Z][A-Z_]*)*$`)
	roadTypePattern      = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,39}$`)
	maxLoadKW            = decimal.NewFromInt(100_000)
)

func (c *ConnectionInput) normalize() {
	if c.Service == "" {
		c.Service = ServiceElectricity
	}
	c.MeterNumber = strings.TrimSpace(c.MeterNumber)
	c.ConsumerCode = strings.TrimSpace(c.ConsumerCode)
	c.TariffPlan = strings.ToLower(strings.TrimSpace(c.TariffPlan))
	c.UsageCategory = strings.ToUpper(strings.TrimSpace(c.UsageCategory))
	if c.ConnectionType == "" {
		c.ConnectionType = "Metered"
		if c.Service != ServiceElectricity && c.MeterNumber == "" {
			c.ConnectionType = "Non Metered"
		}
	}
}

func checkConnection(v *Validator, p string, c ConnectionInput, staff bool) {
	switch c.Service {
	case ServiceElectricity, ServiceWater, ServiceSewerage:
	default:
		v.Add(p+"service", "must be electricity, water or sewerage")
	}
	if c.ConsumerCode != "" {
		if !staff {
			v.Add(p+"consumer_code", "is assigned by the utility")
		} else if !consumerCodePattern.MatchString(c.ConsumerCode) {
			v.Add(p+"consumer_code", "must be 1 to 64 letters, digits, '/', '_', '.' or '-'")
		}
	}
	if c.MeterNumber != "" && !meterNumberPattern.MatchString(c.MeterNumber) {
		v.Add(p+"meter_number", "must be 1 to 64 letters, digits, '.', '_', ':', '/' or '-'")
	}
	if c.TariffPlan != "" && !tariffPlanPattern.MatchString(c.TariffPlan) {
		v.Add(p+"tariff_plan", "must be 1 to 64 lower-case letters, digits, '.', '_' or '-'")
	}
	switch c.ConnectionType {
	case "Metered":
		if c.Service == ServiceElectricity && c.MeterNumber == "" {
			v.Add(p+"meter_number", "is required for a metered electricity connection")
		}
	case "Non Metered":
		if c.Service == ServiceElectricity {
			v.Add(p+"connection_type", "electricity connections are metered")
		}
		if c.MeterNumber != "" {
			v.Add(p+"meter_number", "must be empty for a non-metered connection")
		}
	default:
		v.Add(p+"connection_type", "must be Metered or Non Metered")
	}
	if c.SanctionedLoadKW != nil && (!c.SanctionedLoadKW.IsPositive() || c.SanctionedLoadKW.GreaterThan(maxLoadKW) || c.SanctionedLoadKW.Exponent() < -3) {
		v.Add(p+"sanctioned_load_kw", "must be a positive number of kW, at most 100000, with up to 3 decimals")
	}
	if c.UsageCategory != "" && (!usageCategoryPattern.MatchString(c.UsageCategory) || len(c.UsageCategory) > 64) {
		v.Add(p+"usage_category", "must be like RESIDENTIAL or NONRESIDENTIAL.COMMERCIAL")
	}
	for _, f := range []struct {
		name string
		n    *int
	}{{"water_closets", c.WaterClosets}, {"toilets", c.Toilets}} {
		if f.n != nil && (*f.n < 0 || *f.n > 10_000) {
			v.Add(p+f.name, "must be between 0 and 10000")
		}
	}
	if len(c.RoadCutting) > 20 {
		v.Add(p+"road_cutting", "must have at most 20 entries")
	}
	for i, rc := range c.RoadCutting {
		q := fmt.Sprintf("%sroad_cutting[%d].", p, i)
		if !roadTypePattern.MatchString(rc.RoadType) {
			v.Add(q+"road_type", "must be a road type code such as CCROAD")
		}
		if !rc.AreaM2.IsPositive() || rc.AreaM2.GreaterThan(decimal.NewFromInt(1_000_000)) {
			v.Add(q+"area_m2", "must be a positive area in square metres")
		}
	}
	if c.PlotSizeM2 != nil && (!c.PlotSizeM2.IsPositive() || c.PlotSizeM2.GreaterThan(decimal.NewFromInt(10_000_000)) || c.PlotSizeM2.Exponent() < -2) {
		v.Add(p+"plot_size_m2", "must be a positive area in square metres with up to 2 decimals")
	}
}

func (c ConnectionInput) record(installedBy int64, now time.Time) NewConnection {
	return NewConnection{
		Now:          now.UTC().Truncate(time.Microsecond),
		Service:      c.Service,
		ConsumerCode: c.ConsumerCode,
		MeterNumber:  c.MeterNumber,
		InstalledBy:  installedBy,
		Attributes: Attributes{
			TariffPlan:       c.TariffPlan,
			ConnectionType:   c.ConnectionType,
			SanctionedLoadKW: c.SanctionedLoadKW,
			UsageCategory:    c.UsageCategory,
			WaterClosets:     c.WaterClosets,
			Toilets:          c.Toilets,
			RoadCutting:      c.RoadCutting,
			PlotSizeM2:       c.PlotSizeM2,
		},
	}
}

func propertyAAD(id int64) string { return fmt.Sprintf("properties.address:%d", id) }

// ownerFor resolves the owner of a new record: the caller, or for staff
// the consumer named by userID (who must be in the tenant).
func (s *Service) ownerFor(ctx context.Context, a Actor, scope Scope, userID int64) (int64, error) {
	if userID == 0 || userID == a.UserID {
		if !scope.Allows(a.TenantID, a.UserID) {
			return 0, ErrUnauthorized
		}
		return a.UserID, nil
	}
	if scope.Owned() {
		return 0, ErrUnauthorized
	}
	u, err := s.store.UserByID(ctx, scope.TenantID, userID)
	if err != nil {
		return 0, err
	}
	if u.Role != RoleConsumer {
		v := NewValidator(ErrInvalidInput)
		v.Add("user_id", "properties belong to consumers")
		return 0, v.Err()
	}
	return u.ID, nil
}

// AddProperty adds a property with its connections. A connection whose
// meter number is already registered fails with ErrDuplicateProperty; one
// whose meter is provisioned and free gets it installed (status active),
// otherwise it waits for staff to install one (status pending).
func (s *Service) AddProperty(ctx context.Context, a Actor, scope Scope, in PropertyInput) (Property, error) {
	owner, err := s.ownerFor(ctx, a, scope, in.UserID)
	if err != nil {
		return Property{}, err
	}
	in.Label = strings.TrimSpace(in.Label)
	normalizeAddress(&in.Address)
	v := NewValidator(ErrInvalidInput)
	if m := textProblem(in.Label, false, 100); m != "" {
		v.Add("label", m)
	}
	checkAddress(v, "address", in.Address)
	if len(in.Connections) == 0 {
		v.Add("connections", "at least one connection is required")
	}
	if len(in.Connections) > 3 {
		v.Add("connections", "at most one connection per service")
	}
	seen := map[ServiceType]bool{}
	np := NewProperty{TenantID: scope.TenantID, UserID: owner, Label: in.Label, InstalledBy: a.UserID}
	for i := range in.Connections {
		c := &in.Connections[i]
		c.normalize()
		checkConnection(v, fmt.Sprintf("connections[%d].", i), *c, a.Role.Staff())
		if seen[c.Service] {
			v.Add(fmt.Sprintf("connections[%d].service", i), "appears twice")
		}
		seen[c.Service] = true
		np.Connections = append(np.Connections, c.record(a.UserID, s.cfg.Now()))
	}
	if err := v.Err(); err != nil {
		return Property{}, err
	}
	addr, err := json.Marshal(in.Address)
	if err != nil {
		return Property{}, fmt.Errorf("property address: %w", err)
	}
	id, err := s.store.CreateProperty(ctx, np, func(id int64) ([]byte, error) {
		return s.ring.Seal(addr, propertyAAD(id))
	}, a.entry(scope.TenantID, "property.create", "property", 0))
	if err != nil {
		return Property{}, err
	}
	return s.GetProperty(ctx, scope, id)
}

// GetProperty returns one property in scope.
func (s *Service) GetProperty(ctx context.Context, scope Scope, id int64) (Property, error) {
	sp, err := s.store.Property(ctx, scope, id)
	if err != nil {
		return Property{}, err
	}
	return s.openProperty(sp)
}

func (s *Service) openProperty(sp SealedProperty) (Property, error) {
	p := Property{ID: sp.ID, TenantID: sp.TenantID, UserID: sp.UserID, Label: sp.Label, Connections: sp.Connections, CreatedAt: sp.CreatedAt}
	raw, err := s.ring.Open(sp.Address, propertyAAD(sp.ID))
	if err != nil {
		return Property{}, fmt.Errorf("open property %d address: %w", sp.ID, err)
	}
	if err := json.Unmarshal(raw, &p.Address); err != nil {
		return Property{}, fmt.Errorf("property %d address: %w", sp.ID, err)
	}
	return p, nil
}

// ListProperties lists the properties in scope, oldest first; ownerID
// narrows a staff listing to one consumer.
func (s *Service) ListProperties(ctx context.Context, scope Scope, ownerID int64, p Page) ([]Property, error) {
	sps, err := s.store.ListProperties(ctx, scope, ownerID, p.Normalize())
	if err != nil {
		return nil, err
	}
	out := make([]Property, 0, len(sps))
	for _, sp := range sps {
		pr, err := s.openProperty(sp)
		if err != nil {
			return nil, err
		}
		out = append(out, pr)
	}
	return out, nil
}

// AddConnection adds a connection (another service) to a property.
func (s *Service) AddConnection(ctx context.Context, a Actor, scope Scope, propertyID int64, in ConnectionInput) (Connection, error) {
	in.normalize()
	v := NewValidator(ErrInvalidInput)
	checkConnection(v, "", in, a.Role.Staff())
	if err := v.Err(); err != nil {
		return Connection{}, err
	}
	id, err := s.store.AddConnection(ctx, scope, propertyID, in.record(a.UserID, s.cfg.Now()), a.entry(scope.TenantID, "connection.create", "connection", 0))
	if err != nil {
		return Connection{}, err
	}
	return s.store.Connection(ctx, scope, id)
}

// GetConnection returns one connection in scope with its current meter.
func (s *Service) GetConnection(ctx context.Context, scope Scope, id int64) (Connection, error) {
	return s.store.Connection(ctx, scope, id)
}

// ConnectionHistory returns a connection's meter installations, newest
// first.
func (s *Service) ConnectionHistory(ctx context.Context, scope Scope, id int64) ([]Installation, error) {
	return s.store.Installations(ctx, scope, id)
}

// UpdateConnection changes a connection's status, tariff plan or billing
// attributes (staff).
func (s *Service) UpdateConnection(ctx context.Context, a Actor, scope Scope, id int64, p ConnectionPatch) (Connection, error) {
	cur, err := s.store.Connection(ctx, scope, id)
	if err != nil {
		return Connection{}, err
	}
	in := ConnectionInput{Service: cur.Service, MeterNumber: cur.MeterNumber, TariffPlan: cur.TariffPlan,
		ConnectionType: cur.ConnectionType, SanctionedLoadKW: cur.SanctionedLoadKW, UsageCategory: cur.UsageCategory,
		WaterClosets: cur.WaterClosets, Toilets: cur.Toilets, RoadCutting: cur.RoadCutting, PlotSizeM2: cur.PlotSizeM2}
	if p.TariffPlan != nil {
		*p.TariffPlan = strings.ToLower(strings.TrimSpace(*p.TariffPlan))
		in.TariffPlan = *p.TariffPlan
	}
	if p.ConnectionType != nil {
		in.ConnectionType = *p.ConnectionType
	}
	if p.SanctionedLoadKW != nil {
		in.SanctionedLoadKW = p.SanctionedLoadKW
	}
	if p.UsageCategory != nil {
		*p.UsageCategory = strings.ToUpper(strings.TrimSpace(*p.UsageCategory))
		in.UsageCategory = *p.UsageCategory
	}
	if p.WaterClosets != nil {
		in.WaterClosets = p.WaterClosets
	}
	if p.Toilets != nil {
		in.Toilets = p.Toilets
	}
	if p.RoadCutting != nil {
		in.RoadCutting = *p.RoadCutting
	}
	if p.PlotSizeM2 != nil {
		in.PlotSizeM2 = p.PlotSizeM2
	}
	v := NewValidator(ErrInvalidInput)
	checkConnection(v, "", in, true)
	if p.Status != nil {
		switch *p.Status {
		case ConnectionPending, ConnectionActive, ConnectionDisconnected, ConnectionClosed:
			if cur.Status == ConnectionClosed && *p.Status != ConnectionClosed {
				v.Add("status", "a closed connection cannot be reopened; add a new one")
			}
		default:
			v.Add("status", "must be pending, active, disconnected or closed")
		}
	}
	if err := v.Err(); err != nil {
		return Connection{}, err
	}
	return s.store.UpdateConnection(ctx, scope.TenantID, id, p, a.entry(scope.TenantID, "connection.update", "connection", id))
}

// InstallInput installs (or replaces) the meter of a connection.
type InstallInput struct {
	MeterID         int64
	At              time.Time // default now
	InitialImportWh *int64
	InitialExportWh *int64
	FinalImportWh   *int64 // registers of the meter being replaced
	FinalExportWh   *int64
	RemovalReason   string // replaced (default) or faulty
}

// InstallMeter installs a meter on a connection from in.At, ending the
// current installation (a replacement) at the same instant. The meter
// must not be installed elsewhere over that span.
func (s *Service) InstallMeter(ctx context.Context, a Actor, scope Scope, connectionID int64, in InstallInput) (Installation, error) {
	now := s.cfg.Now()
	if in.At.IsZero() {
		in.At = now
	}
	in.At = in.At.UTC().Truncate(time.Microsecond)
	v := NewValidator(ErrInvalidInput)
	v.Check(in.MeterID > 0, "meter_id", "is required")
	v.Check(!in.At.After(now.Add(5*time.Minute)), "installed_at", "must not be in the future")
	for _, f := range []struct {
		name string
		wh   *int64
	}{{"initial_import_wh", in.InitialImportWh}, {"initial_export_wh", in.InitialExportWh},
		{"final_import_wh", in.FinalImportWh}, {"final_export_wh", in.FinalExportWh}} {
		v.Check(f.wh == nil || *f.wh >= 0, f.name, "must not be negative")
	}
	if in.RemovalReason == "" {
		in.RemovalReason = "replaced"
	}
	v.Check(in.RemovalReason == "replaced" || in.RemovalReason == "faulty", "removal_reason", "must be replaced or faulty")
	if err := v.Err(); err != nil {
		return Installation{}, err
	}
	conn, err := s.store.Connection(ctx, scope, connectionID)
	if err != nil {
		return Installation{}, err
	}
	if conn.Status == ConnectionClosed {
		return Installation{}, fmt.Errorf("%w: connection %d is closed", ErrConflict, connectionID)
	}
	reason := "new"
	if conn.Meter != nil {
		reason = "replacement"
	}
	return s.store.InstallMeter(ctx, scope.TenantID, connectionID, NewInstallation{
		MeterID: in.MeterID, At: in.At, InitialImportWh: in.InitialImportWh, InitialExportWh: in.InitialExportWh,
		FinalImportWh: in.FinalImportWh, FinalExportWh: in.FinalExportWh, Reason: reason, RemovalReason: in.RemovalReason,
		InstalledBy: a.UserID,
	}, a.entry(scope.TenantID, "meter.install", "connection", connectionID))
}
