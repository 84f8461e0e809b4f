package billing_test

import (
	"testing"
	"time"

	"github.com/meterd/meterd/billing"
)

func TestPeriodDays(t *testing.T) {
	tests := []struct {
		give billing.Period
		want int
	}{
		{give: billing.Period{From: billing.NewDate(2019, 7, 17), To: billing.NewDate(2019, 8, 15)}, want: 30}, // E05
		{give: billing.Period{From: billing.NewDate(2024, 2, 1), To: billing.NewDate(2024, 2, 29)}, want: 29},
		{give: billing.Period{From: billing.NewDate(2024, 3, 31), To: billing.NewDate(2024, 3, 31)}, want: 1},
	}
	for _, tt := range tests {
		if got := tt.give.Days(); got != tt.want {
			t.Errorf("%s has %d days, want %d", tt.give, got, tt.want)
		}
	}
}

func TestDateText(t *testing.T) {
	d, err := billing.ParseDate("2024-02-29")
	if err != nil || d != billing.NewDate(2024, 2, 29) || d.String() != "2024-02-29" || d.DaysInMonth() != 29 {
		t.Errorf("ParseDate = %v, %v", d, err)
	}
	for _, bad := range []string{"2023-02-29", "29/02/2024", ""} {
		if _, err := billing.ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) succeeded", bad)
		}
	}
	ist := time.FixedZone("IST", 5*3600+1800)
	if got := billing.DateOf(time.Date(2024, 4, 30, 20, 0, 0, 0, time.UTC), ist); got != billing.NewDate(2024, 5, 1) {
		t.Errorf("DateOf in IST = %s, want 2024-05-01", got)
	}
}

func TestFinancialYear(t *testing.T) {
	tests := []struct {
		give billing.Date
		want string
	}{
		{give: billing.NewDate(2024, 4, 1), want: "2024-25"},
		{give: billing.NewDate(2024, 3, 31), want: "2023-24"},
		{give: billing.NewDate(1999, 12, 31), want: "1999-00"},
	}
	for _, tt := range tests {
		fy := billing.FinancialYearOf(tt.give)
		if fy.String() != tt.want {
			t.Errorf("FinancialYearOf(%s) = %s, want %s", tt.give, fy, tt.want)
		}
		if back, err := billing.ParseFinancialYear(tt.want); err != nil || back != fy {
			t.Errorf("ParseFinancialYear(%s) = %v, %v", tt.want, back, err)
		}
	}
	for _, bad := range []string{"2024-26", "2024", "24-25", "2024-2025"} {
		if _, err := billing.ParseFinancialYear(bad); err == nil {
			t.Errorf("ParseFinancialYear(%q) succeeded", bad)
		}
	}
}

func TestParseCycle(t *testing.T) {
	for give, want := range map[string]billing.Cycle{"monthly": billing.CycleMonthly, "quaterly": billing.CycleQuarterly, "Quarterly": billing.CycleQuarterly, "yearly": billing.CycleYearly} {
		if got, err := billing.ParseCycle(give); err != nil || got != want {
			t.Errorf("ParseCycle(%q) = %v, %v; want %v", give, got, err, want)
		}
	}
	if _, err := billing.ParseCycle("fortnightly"); err == nil {
		t.Error("unknown cycles are refused (B15)")
	}
}
