package municipal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// Calculation attributes: what a billing slab counts.
const (
	AttrWaterClosets     = "No. of water closets"
	AttrToilets          = "No. of toilets"
	AttrTaps             = "No. of taps"
	AttrPipeSize         = "Pipe Size"
	AttrWaterConsumption = "Water consumption"
	AttrFlat             = "Flat"
)

// openBound is the master data's "no upper limit": bands and plot slabs end
// at 1e9.
const openBound = 1_000_000_000

// Masters is one tenant's master data for one service, in the shape of the
// DIGIT MDMS module (sw-services-calculation or ws-services-calculation):
// load it with DecodeMasters.
type Masters struct {
	BillingSlabs          []BillingSlab          // SCBillingSlab or WCBillingSlab
	CalculationAttributes []CalculationAttribute // CalculationAttribute
	Interest              []TimeBasedMaster
	Penalty               []TimeBasedMaster
	Rebate                []TimeBasedMaster
	Cess                  []TimeBasedMaster // SewerageCess or WaterCess
	FeeSlabs              []FeeSlab
	RoadTypes             []RoadType
	PropertyUsageTypes    []PropertyUsageType
	PlotSizeSlabs         []PlotSizeSlab
}

// BillingSlab prices one combination of building type, connection type and
// calculation attribute. A Flat slab has no bands: its minimum charge is
// the charge.
type BillingSlab struct {
	ID                   ID              `json:"id"`
	BuildingType         string          `json:"buildingType"`
	ConnectionType       string          `json:"connectionType"`
	CalculationAttribute string          `json:"calculationAttribute"`
	MinimumCharge        decimal.Decimal `json:"minimumCharge"`
	Bands                []Band          `json:"slabs"`
}

// Band is units From ≤ u < To at Charge per unit.
type Band struct {
	From   decimal.Decimal `json:"from"`
	To     decimal.Decimal `json:"to"`
	Charge decimal.Decimal `json:"charge"`
}

// CalculationAttribute says which attribute slabs count for a connection
// type ("Non Metered" → "No. of water closets").
type CalculationAttribute struct {
	Name      string `json:"name"` // connection type
	Code      string `json:"code"`
	Attribute string `json:"attribute"`
	Active    bool   `json:"active"`
}

// TimeBasedMaster is an Interest, Penalty, Rebate or Cess entry. Rate is a
// percentage; FromFY ("2019-20") and StartingDay ("1/01/2019") say from
// when it applies; EndingDay ("25/09") ends a rebate's window in each
// financial year.
type TimeBasedMaster struct {
	ID                  string           `json:"id,omitempty"`
	Rate                *decimal.Decimal `json:"rate"`
	MinAmount           *decimal.Decimal `json:"minAmount"`
	MaxAmount           *decimal.Decimal `json:"maxAmount"`
	FlatAmount          *decimal.Decimal `json:"flatAmount"`
	ApplicableAfterDays *int             `json:"applicableAfterDays"`
	FromFY              string           `json:"fromFY"`
	StartingDay         string           `json:"startingDay"`
	EndingDay           string           `json:"endingDay"`
}

// FeeSlab holds the one-time fees; the first active entry applies.
type FeeSlab struct {
	FormFee       decimal.Decimal `json:"formFee"`
	ScrutinyFee   decimal.Decimal `json:"scrutinyFee"`
	MeterCost     decimal.Decimal `json:"meterCost"`
	Other         decimal.Decimal `json:"other"`
	TaxPercentage decimal.Decimal `json:"taxpercentage"`
	IsActive      *bool           `json:"isActive"`
}

// RoadType prices road cutting per unit of area.
type RoadType struct {
	Name     string          `json:"name"`
	Code     string          `json:"code"`
	UnitCost decimal.Decimal `json:"unitCost"`
	IsActive *bool           `json:"isActive"`
}

// PropertyUsageType prices the one-time fee per unit of road-cutting area
// for a property usage category (the full code, "NONRESIDENTIAL.COMMERCIAL").
type PropertyUsageType struct {
	Code     string          `json:"code"`
	UnitCost decimal.Decimal `json:"unitCost"`
	IsActive *bool           `json:"isActive"`
}

// PlotSizeSlab is the security charge for land areas From ≤ a < To (a flat
// amount, not per unit of area).
type PlotSizeSlab struct {
	From     decimal.Decimal `json:"from"`
	To       decimal.Decimal `json:"to"`
	UnitCost decimal.Decimal `json:"unitCost"`
	IsActive *bool           `json:"isActive"`
}

// active treats a missing isActive as active: the sample masters leave it
// out on entries that are plainly in use.
func active(b *bool) bool { return b == nil || *b }

// ID is a master entry id; the master data writes some as strings and some
// as numbers.
type ID string

// UnmarshalJSON accepts "1" and 1.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	if _, err := strconv.ParseFloat(string(b), 64); err != nil {
		return fmt.Errorf("id: want a string or a number, got %s", b)
	}
	*id = ID(b)
	return nil
}

// DecodeMasters decodes an MDMS-shaped master document: an object whose
// keys are master names (SCBillingSlab or WCBillingSlab,
// CalculationAttribute, Interest, Penalty, Rebate, SewerageCess or
// WaterCess, FeeSlab, RoadType, PropertyUsageType, PlotSizeSlab; other keys
// such as tenantId, moduleName and billingPeriod are ignored), and
// validates it (see Masters.Validate).
func DecodeMasters(data []byte) (*Masters, error) {
	var raw struct {
		SC                []BillingSlab          `json:"SCBillingSlab"`
		WC                []BillingSlab          `json:"WCBillingSlab"`
		Attributes        []CalculationAttribute `json:"CalculationAttribute"`
		Interest          []TimeBasedMaster      `json:"Interest"`
		Penalty           []TimeBasedMaster      `json:"Penalty"`
		Rebate            []TimeBasedMaster      `json:"Rebate"`
		SewerageCess      []TimeBasedMaster      `json:"SewerageCess"`
		WaterCess         []TimeBasedMaster      `json:"WaterCess"`
		FeeSlab           []FeeSlab              `json:"FeeSlab"`
		RoadType          []RoadType             `json:"RoadType"`
		PropertyUsageType []PropertyUsageType    `json:"PropertyUsageType"`
		PlotSizeSlab      []PlotSizeSlab         `json:"PlotSizeSlab"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		ve := &billing.ValidationError{Subject: "master data"}
		ve.Add("", err.Error())
		return nil, ve
	}
	m := &Masters{
		BillingSlabs:          append(raw.SC, raw.WC...),
		CalculationAttributes: raw.Attributes,
		Interest:              raw.Interest,
		Penalty:               raw.Penalty,
		Rebate:                raw.Rebate,
		Cess:                  append(raw.SewerageCess, raw.WaterCess...),
		FeeSlabs:              raw.FeeSlab,
		RoadTypes:             raw.RoadType,
		PropertyUsageTypes:    raw.PropertyUsageType,
		PlotSizeSlabs:         raw.PlotSizeSlab,
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Validate checks the master data so that calculation never meets a hole:
// billing-slab bands start at 0, are contiguous and end open (to ≥ 1e9),
// with non-negative charges; Flat slabs carry no bands; time-based entries
// have valid financial years and days and non-negative amounts; plot-size
// slabs are contiguous. The error is a *billing.ValidationError whose paths
// use the master names.
func (m *Masters) Validate() error {
	ve := &billing.ValidationError{Subject: "master data"}
	for i, s := range m.BillingSlabs {
		path := fmt.Sprintf("BillingSlab[%d]", i)
		if s.MinimumCharge.IsNegative() {
			ve.Add(path+".minimumCharge", "must not be negative")
		}
		if strings.EqualFold(s.CalculationAttribute, AttrFlat) {
			if len(s.Bands) > 0 {
				ve.Add(path+".slabs", "a Flat slab charges its minimumCharge and has no bands")
			}
			continue
		}
		validateBands(ve, path+".slabs", len(s.Bands), func(j int) (from, to decimal.Decimal) { return s.Bands[j].From, s.Bands[j].To })
		for j, b := range s.Bands {
			if b.Charge.IsNegative() {
				ve.Add(fmt.Sprintf("%s.slabs[%d].charge", path, j), "must not be negative")
			}
		}
	}
	for name, list := range map[string][]TimeBasedMaster{"Interest": m.Interest, "Penalty": m.Penalty, "Rebate": m.Rebate, "Cess": m.Cess} {
		for i, e := range list {
			validateTimeBased(ve, fmt.Sprintf("%s[%d]", name, i), e)
		}
	}
	validateBands(ve, "PlotSizeSlab", len(m.PlotSizeSlabs), func(j int) (from, to decimal.Decimal) { return m.PlotSizeSlabs[j].From, m.PlotSizeSlabs[j].To })
	sortFieldErrors(ve)
	return ve.Err()
}

// validateBands checks n bands [from, to): starting at 0, contiguous,
// non-empty and ending open.
func validateBands(ve *billing.ValidationError, path string, n int, band func(int) (from, to decimal.Decimal)) {
	if n == 0 {
		if path != "PlotSizeSlab" {
			ve.Add(path, "required: at least one band")
		}
		return
	}
	prevTo := decimal.Zero
	for j := 0; j < n; j++ {
		from, to := band(j)
		bpath := fmt.Sprintf("%s[%d]", path, j)
		if !from.Equal(prevTo) {
			ve.Add(bpath+".from", fmt.Sprintf("want %s, where the previous band ends (bands must be contiguous from 0)", prevTo))
		}
		if !to.GreaterThan(from) {
			ve.Add(bpath+".to", "must be greater than from")
		}
		prevTo = to
	}
	if prevTo.LessThan(decimal.NewFromInt(openBound)) {
		ve.Add(fmt.Sprintf("%s[%d].to", path, n-1), fmt.Sprintf("the last band must be open-ended (to ≥ %d), got %s", openBound, prevTo))
	}
}

func validateTimeBased(ve *billing.ValidationError, path string, e TimeBasedMaster) {
	for field, d := range map[string]*decimal.Decimal{"rate": e.Rate, "minAmount": e.MinAmount, "maxAmount": e.MaxAmount, "flatAmount": e.FlatAmount} {
		if d != nil && d.IsNegative() {
			ve.Add(path+"."+field, "must not be negative")
		}
	}
	if e.ApplicableAfterDays != nil && *e.ApplicableAfterDays < 0 {
		ve.Add(path+".applicableAfterDays", "must not be negative")
	}
	if _, err := billing.ParseFinancialYear(e.FromFY); err != nil {
		ve.Add(path+".fromFY", err.Error())
	}
	if e.StartingDay != "" {
		if _, err := parseDay(e.StartingDay); err != nil {
			ve.Add(path+".startingDay", err.Error())
		}
	}
	if e.EndingDay != "" {
		if _, _, err := parseDayMonth(e.EndingDay); err != nil {
			ve.Add(path+".endingDay", err.Error())
		}
	}
}

// sortFieldErrors orders problems by path so that reports are stable.
func sortFieldErrors(ve *billing.ValidationError) {
	f := ve.Fields
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j].Path < f[j-1].Path; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
}

// parseDay parses the master's lenient "d/MM/yyyy" ("1/01/2019").
func parseDay(s string) (billing.Date, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return billing.Date{}, fmt.Errorf("want d/MM/yyyy, got %q", s)
	}
	d, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	y, err3 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || d < 1 || d > 31 || m < 1 || m > 12 || y < 1900 || y > 9999 {
		return billing.Date{}, fmt.Errorf("want d/MM/yyyy, got %q", s)
	}
	return billing.NewDate(y, time.Month(m), d), nil
}

// parseDayMonth parses "dd/MM".
func parseDayMonth(s string) (int, time.Month, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 2 {
		return 0, 0, fmt.Errorf("want dd/MM, got %q", s)
	}
	d, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || d < 1 || d > 31 || m < 1 || m > 12 {
		return 0, 0, fmt.Errorf("want dd/MM, got %q", s)
	}
	return d, time.Month(m), nil
}

// attribute returns the active calculation attribute of connType.
func (m *Masters) attribute(connType string) (string, error) {
	for _, a := range m.CalculationAttributes {
		if a.Active && strings.EqualFold(a.Name, connType) {
			return a.Attribute, nil
		}
	}
	return "", fmt.Errorf("connection type %q: %w", connType, ErrNoCalculationAttribute)
}

// slab returns the one billing slab matching all three criteria,
// case-insensitively. buildingType is the usage category's first segment.
func (m *Masters) slab(buildingType, connType, attr string) (*BillingSlab, error) {
	var found *BillingSlab
	for i := range m.BillingSlabs {
		s := &m.BillingSlabs[i]
		if strings.EqualFold(s.BuildingType, buildingType) && strings.EqualFold(s.ConnectionType, connType) &&
			strings.EqualFold(s.CalculationAttribute, attr) {
			if found != nil {
				return nil, fmt.Errorf("building type %q, connection type %q, attribute %q: slabs %s and %s: %w",
					buildingType, connType, attr, found.ID, s.ID, ErrAmbiguousBillingSlab)
			}
			found = s
		}
	}
	if found == nil {
		return nil, fmt.Errorf("building type %q, connection type %q, attribute %q: %w", buildingType, connType, attr, ErrNoBillingSlab)
	}
	return found, nil
}

// BuildingType is the first dot-separated segment of a property usage
// category: "NONRESIDENTIAL.COMMERCIAL" → "NONRESIDENTIAL".
func BuildingType(usageCategory string) string {
	bt, _, _ := strings.Cut(usageCategory, ".")
	return bt
}
