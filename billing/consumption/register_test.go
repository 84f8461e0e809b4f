package consumption

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

func TestMeterSeriesEnergy(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2024, 5, d, 0, 0, 0, 0, loc) }
	next := func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	bucket := func(d int, first, last int64) RegisterBucket {
		return RegisterBucket{Start: day(d), FirstTime: day(d).Add(time.Hour), LastTime: day(d).Add(23 * time.Hour), FirstWh: first, LastWh: last}
	}
	i64 := func(v int64) *int64 { return &v }
	base := bucket(0, 500, 1000) // 30 April
	tests := []struct {
		name      string
		give      MeterSeries
		want      map[int]int64
		wantReads Reads
		wantErr   error
	}{
		{
			name:      "consecutive days",
			give:      MeterSeries{Baseline: &base, Buckets: []RegisterBucket{bucket(1, 1100, 2000), bucket(2, 2000, 3500), bucket(3, 3600, 4000)}},
			want:      map[int]int64{1: 1000, 2: 1500, 3: 500},
			wantReads: Reads{Previous: 1000, Current: 4000, Known: true},
		},
		{
			name:      "gap spread over the days it brackets",
			give:      MeterSeries{Baseline: &base, Buckets: []RegisterBucket{bucket(1, 1100, 2000), bucket(4, 4500, 5001)}},
			want:      map[int]int64{1: 1000, 2: 1001, 3: 1000, 4: 1000},
			wantReads: Reads{Previous: 1000, Current: 5001, Known: true},
		},
		{
			name:      "no baseline: counting starts at the first reading; trailing days left out",
			give:      MeterSeries{Buckets: []RegisterBucket{bucket(2, 100, 300), bucket(3, 300, 700)}},
			want:      map[int]int64{2: 200, 3: 400},
			wantReads: Reads{Previous: 100, Current: 700, Known: true},
		},
		{
			name: "rollover corrected by its counter event (E11: 99,950 → 70 kWh counts 120 kWh)",
			give: MeterSeries{Baseline: &RegisterBucket{Start: day(0), LastTime: day(0).Add(23 * time.Hour), LastWh: 99_950_000},
				Buckets:     []RegisterBucket{bucket(1, 99_990_000, 70_000)},
				Corrections: []StepCorrection{{Time: day(1).Add(2 * time.Hour), DeltaWh: 70_000 - 99_990_000, ConsumptionWh: 80_000}}},
			want:      map[int]int64{1: 120_000},
			wantReads: Reads{Previous: 99_950_000, Current: 70_000, Known: true},
		},
		{
			name: "counter event before the baseline is ignored",
			give: MeterSeries{Baseline: &base, Buckets: []RegisterBucket{bucket(1, 1000, 1500)},
				Corrections: []StepCorrection{{Time: day(0).Add(time.Hour), DeltaWh: -5, ConsumptionWh: 0}}},
			want:      map[int]int64{1: 500},
			wantReads: Reads{Previous: 1000, Current: 1500, Known: true},
		},
		{
			name:      "CT multiplier on the running total",
			give:      MeterSeries{Baseline: &base, Buckets: []RegisterBucket{bucket(1, 1000, 1001), bucket(2, 1001, 1002), bucket(3, 1002, 1003)}, Multiplier: decimal.RequireFromString("2.5")},
			want:      map[int]int64{1: 3, 2: 2, 3: 3},
			wantReads: Reads{Previous: 1000, Current: 1003, Known: true},
		},
		{
			name: "replaced meter: final register read at removal counts to the removal day",
			give: MeterSeries{Baseline: &base, Buckets: []RegisterBucket{bucket(1, 1000, 2000), bucket(2, 2000, 2500)},
				Removed: day(3).Add(10 * time.Hour), FinalWh: i64(2800)},
			want:      map[int]int64{1: 1000, 2: 500, 3: 300},
			wantReads: Reads{Previous: 1000, Current: 2800, Known: true},
		},
		{
			name: "new meter: initial register read at installation",
			give: MeterSeries{Installed: day(3).Add(11 * time.Hour), InitialWh: i64(0),
				Buckets: []RegisterBucket{bucket(3, 10, 400), bucket(4, 400, 900)}},
			want:      map[int]int64{3: 400, 4: 500},
			wantReads: Reads{Previous: 0, Current: 900, Known: true},
		},
		{
			name:    "backwards without an event",
			give:    MeterSeries{Baseline: &base, Buckets: []RegisterBucket{bucket(1, 900, 900)}},
			wantErr: billing.ErrCalculation,
		},
		{
			name: "nothing read",
			give: MeterSeries{},
			want: map[int]int64{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reads, err := tt.give.Energy(day(1), day(32), next)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if reads != tt.wantReads {
				t.Errorf("reads = %+v, want %+v", reads, tt.wantReads)
			}
			gotMap := map[int]int64{}
			for _, b := range got {
				gotMap[b.Start.In(loc).Day()] = b.Wh
			}
			if len(gotMap) != len(tt.want) {
				t.Fatalf("buckets = %v, want %v", gotMap, tt.want)
			}
			for d, wh := range tt.want {
				if gotMap[d] != wh {
					t.Errorf("day %d = %d Wh, want %d (all %v)", d, gotMap[d], wh, gotMap)
				}
			}
		})
	}
}

func TestDaysSumsMetersOnce(t *testing.T) {
	loc := time.UTC
	d := func(n int) time.Time { return time.Date(2024, 5, n, 0, 0, 0, 0, loc) }
	old := []BucketWh{{d(1), 145_000}}
	nu := []BucketWh{{d(1), 30_000}, {d(2), 150_000}}
	got := Days(loc, old, nu)
	if len(got) != 2 || got[0].ImportWh != 175_000 || got[1].ImportWh != 150_000 {
		t.Fatalf("Days = %+v", got)
	}
	hours := Hours(old, nu)
	if len(hours) != 2 || hours[0].ImportWh != 175_000 {
		t.Fatalf("Hours = %+v", hours)
	}
}

func TestScaleWindows(t *testing.T) {
	tests := []struct {
		name    string
		give    map[string]int64
		total   int64
		want    map[string]int64
		wantErr bool
	}{
		{"unchanged", map[string]int64{"day": 10, "night": 5}, 15, map[string]int64{"day": 10, "night": 5}, false},
		{"scaled up with remainder", map[string]int64{"day": 1, "night": 1, "peak": 1}, 10, map[string]int64{"day": 4, "night": 3, "peak": 3}, false},
		{"nothing measured", map[string]int64{"day": 0}, 10, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ScaleWindows(tt.give, tt.total)
			if tt.wantErr {
				if !errors.Is(err, billing.ErrCalculation) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %d, want %d", k, got[k], v)
				}
			}
			for _, v := range got {
				sum += v
			}
			if sum != tt.total {
				t.Errorf("sum %d, want %d", sum, tt.total)
			}
		})
	}
}
