package billrun

import (
	"testing"
	"time"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/postgres"
)

// The part of a run's period a connection is billed for, for every
// service: clipped to its connection and disconnection days in the
// tenant's zone, or skipped with the reason.
func TestConnectedPart(t *testing.T) {
	ist, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	run := postgres.Run{Period: april, Location: ist}
	at := func(d int, hour int) time.Time { return time.Date(2024, 4, d, hour, 0, 0, 0, ist) }
	ptr := func(t time.Time) *time.Time { return &t }
	active := func(c postgres.Connection) postgres.Connection {
		c.TariffPlan, c.Status = "lt-domestic", "active"
		return c
	}
	tests := []struct {
		name       string
		give       postgres.Connection
		want       billing.Period
		wantReason string
	}{
		{"whole period", active(postgres.Connection{ConnectedAt: at(1, 0).AddDate(-1, 0, 0)}), april, ""},
		{"connected within", active(postgres.Connection{ConnectedAt: at(10, 23)}), billing.Period{From: billing.NewDate(2024, 4, 10), To: april.To}, ""},
		{"connected 00:30 IST on 1 April is 31 March UTC", active(postgres.Connection{ConnectedAt: time.Date(2024, 3, 31, 19, 0, 0, 0, time.UTC)}), april, ""},
		{"disconnected within", active(postgres.Connection{ConnectedAt: at(1, 0), DisconnectedAt: ptr(at(20, 12))}), billing.Period{From: april.From, To: billing.NewDate(2024, 4, 20)}, ""},
		{"connected and disconnected within", active(postgres.Connection{ConnectedAt: at(5, 9), DisconnectedAt: ptr(at(6, 9))}),
			billing.Period{From: billing.NewDate(2024, 4, 5), To: billing.NewDate(2024, 4, 6)}, ""},
		{"connected after", active(postgres.Connection{ConnectedAt: time.Date(2024, 5, 1, 0, 0, 0, 0, ist)}), billing.Period{}, "connected after the period"},
		{"disconnected before", active(postgres.Connection{ConnectedAt: at(1, 0).AddDate(0, -2, 0), DisconnectedAt: ptr(at(1, 0).AddDate(0, 0, -1))}), billing.Period{}, "disconnected before the period"},
		{"no plan", postgres.Connection{Status: "active"}, billing.Period{}, "no tariff plan assigned"},
		{"pending", postgres.Connection{TariffPlan: "lt-domestic", Status: "pending"}, billing.Period{}, "connection pending: not connected yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := connectedPart(run, tt.give)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("connectedPart = %v %q, want %v %q", got, reason, tt.want, tt.wantReason)
			}
		})
	}
}
