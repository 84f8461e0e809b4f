package municipal_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/municipal"
)

// FuzzDecodeMasters: arbitrary master data never panics the decoder, and
// masters that validate never panic the calculators; their failures are
// calculation errors.
func FuzzDecodeMasters(f *testing.F) {
	for _, name := range []string{"pb-sewerage.json", "pb-water.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"SCBillingSlab":[{"id":2,"buildingType":"R","connectionType":"Non Metered","calculationAttribute":"Flat","minimumCharge":1e3,"slabs":[]}],"CalculationAttribute":[{"name":"Non Metered","attribute":"Flat","active":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := municipal.DecodeMasters(data)
		if err != nil {
			if !errors.Is(err, billing.ErrInvalidInput) {
				t.Fatalf("decode error of an unknown kind: %v", err)
			}
			return
		}
		p := policy()
		n := 3
		for _, conn := range []municipal.Connection{
			{ConnectionType: "Non Metered", WaterClosets: &n, Toilets: &n, Taps: &n, PipeSize: &n},
			{ConnectionType: "Metered", LastReading: num("10"), CurrentReading: num("47.5")},
		} {
			for _, svc := range []municipal.Service{sw, water} {
				if _, err := municipal.PeriodicCharge(svc, conn, residential, m, periodStart, p); err != nil && !errors.Is(err, billing.ErrCalculation) {
					t.Fatalf("charge error of an unknown kind: %v", err)
				}
				if _, err := municipal.FeeEstimates(svc, conn, municipal.Property{UsageCategory: "RESIDENTIAL", LandArea: num("500")}, m, p); err != nil && !errors.Is(err, billing.ErrCalculation) {
					t.Fatalf("fee error of an unknown kind: %v", err)
				}
			}
		}
	})
}
