package detect_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/detect"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/meter"
	meterpg "github.com/meterd/meterd/meter/postgres"
	"github.com/meterd/meterd/simulator"
	simpg "github.com/meterd/meterd/simulator/postgres"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// Test flags: go test ./alerts/detect/ -args -quality.debug prints the
// findings on clean days and the evaluation of missed spikes.
var (
	qualityDebug    = flag.Bool("quality.debug", false, "print false positives and missed spikes")
	dailyScanMeters = flag.Int("daily-scan.meters", 100_000, "meters of BenchmarkDailyScan100k")
)

// qualityConfig sizes a detection-quality run.
type qualityConfig struct {
	Seed        uint64
	Meters      int
	Days        int // of data in all
	WarmupDays  int // before the evaluated days (the baseline's history)
	SpikeRate   float64
	StuckMeters int
	TamperMeter int
	// Legitimate events that must not be flagged.
	ResetRate, ReplacementRate, GapRate float64
}

// episode is an injected anomaly: what should be found.
type episode struct {
	kind     alerts.Kind
	meter    int
	from, to time.Time
}

// qualityRun is a fleet loaded into a database with its ground truth.
type qualityRun struct {
	cfg              qualityConfig
	pool             *pgxpool.Pool
	store            *alertspg.Store
	fleet            *simulator.Fleet
	tenant           detect.Tenant
	ids              []int64 // meter index → meters.id
	index            map[int64]int
	episodes         []episode
	legit            map[[2]int]string // (meter, day number) → legitimate event kind
	evalFrom, evalTo time.Time
	rz               *time.Location
	readings         int
	events           int
	loadTook         time.Duration
}

// buildQuality generates a simulator fleet with injected spikes (at
// SpikeRate per meter-day), stuck meters (registers frozen for ~69 h),
// tampered meters (the import register wound back by 20–200 kWh), and
// legitimate resets, replacements and gaps; writes its readings every 15
// minutes with COPY, records the counter events the gateway would
// (meter.StepCounter), and refreshes the rollups with the production
// upkeep.
func buildQuality(t testing.TB, cfg qualityConfig) *qualityRun {
	t.Helper()
	ctx := context.Background()
	pool := schematest.New(t)
	startLoad := time.Now()
	kol, _ := time.LoadLocation("Asia/Kolkata")
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, kol)
	start := end.AddDate(0, 0, -cfg.Days)
	evalFrom := start.AddDate(0, 0, cfg.WarmupDays)
	rnd := rand.New(rand.NewPCG(cfg.Seed, 77))

	// Stuck and tampered meters, distinct, with their times.
	perm := rnd.Perm(cfg.Meters)
	stuck, tamper := perm[:cfg.StuckMeters], perm[cfg.StuckMeters:cfg.StuckMeters+cfg.TamperMeter]
	evalDays := cfg.Days - cfg.WarmupDays
	var sched []simulator.Scheduled
	var eps []episode
	for _, i := range stuck {
		s := evalFrom.Add(time.Duration(rnd.IntN(evalDays-5))*24*time.Hour + time.Duration(rnd.IntN(24*60))*time.Minute)
		// Four chained 23 h events: frozen for 92 h, so at least two whole
		// days whatever the start.
		for k := range 4 {
			sched = append(sched, simulator.Scheduled{Kind: simulator.KindStuck, Meter: i, At: s.Add(time.Duration(k) * 23 * time.Hour), For: 23 * time.Hour})
		}
		eps = append(eps, episode{kind: alerts.KindStuck, meter: i, from: s, to: s.Add(92 * time.Hour)})
	}
	fleet, err := simulator.New(simulator.Config{Seed: cfg.Seed, Meters: cfg.Meters, Start: start.UTC(), Interval: 15 * time.Minute, TimeZone: "Asia/Kolkata",
		Faults: simulator.Faults{Spike: cfg.SpikeRate, Reset: cfg.ResetRate, Replacement: cfg.ReplacementRate, Gap: cfg.GapRate, Schedule: sched}})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := simpg.Provision(ctx, pool, fleet)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := simpg.NewStore(pool).MeterIDs(ctx, fleet.Config().Tenant)
	if err != nil {
		t.Fatal(err)
	}
	run := &qualityRun{cfg: cfg, pool: pool, store: alertspg.New(pool), fleet: fleet, tenant: detect.Tenant{ID: prov.TenantID, Zone: kol},
		ids: make([]int64, cfg.Meters), index: map[int64]int{}, evalFrom: evalFrom.UTC(), evalTo: end.UTC(), rz: kol, legit: map[[2]int]string{}}
	for i := range cfg.Meters {
		run.ids[i] = ids[fleet.Meter(i).ExternalID]
		run.index[run.ids[i]] = i
	}
	// Tampered meters: ones without a reset or replacement after the
	// evaluation starts (those would restart the register anyway).
	tamperAt := map[int]time.Time{}
	tamperWh := map[int]int64{}
	for _, i := range tamper {
		for _, e := range fleet.EventsOn(i, evalFrom, end) {
			if e.Kind == simulator.KindReset || e.Kind == simulator.KindReplacement {
				i = -1
				break
			}
		}
		if i < 0 {
			continue
		}
		at := evalFrom.Add(time.Duration(rnd.IntN(evalDays-1))*24*time.Hour + time.Duration(rnd.IntN(24*60))*time.Minute)
		// Wound back by 20–200 kWh plus what the meter can use between two
		// readings, so the register really goes back at the reading.
		m := fleet.Meter(i)
		tamperAt[i], tamperWh[i] = at, int64(20_000+rnd.IntN(180_000))+int64((3*m.MeanW+1000*m.SolarKWp)*5*0.25)
		eps = append(eps, episode{kind: alerts.KindTamper, meter: i, from: at, to: at.Add(15 * time.Minute)})
	}
	// A spike while the meter is stuck (power 0 × 5) or offline never
	// reaches the data: it is not an injected anomaly to find.
	hidden := func(i int, from, to time.Time) bool {
		for _, x := range eps {
			if x.meter == i && x.kind == alerts.KindStuck && from.Before(x.to) && to.After(x.from) {
				return true
			}
		}
		for _, g := range fleet.EventsOn(i, from.Add(-24*time.Hour), to) {
			if g.Kind == simulator.KindGap && from.Before(g.At.Add(g.For)) && to.After(g.At) {
				return true
			}
		}
		return false
	}
	for i := range cfg.Meters {
		for _, e := range fleet.EventsOn(i, evalFrom, end) {
			switch e.Kind {
			case simulator.KindSpike:
				if hidden(i, e.At, e.At.Add(e.For)) {
					continue
				}
				eps = append(eps, episode{kind: alerts.KindUsageDeviation, meter: i, from: e.At, to: e.At.Add(e.For)})
			case simulator.KindReset, simulator.KindReplacement, simulator.KindGap:
				run.legit[[2]int{i, dayNum(e.At, kol)}] = e.Kind.String()
			}
		}
	}
	run.episodes = eps

	// Readings, counter events, partitions, rollups.
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	up := schema.NewUpkeep(pool, st, schema.UpkeepConfig{})
	if _, err := up.EnsurePartitions(ctx, start.Add(-24*time.Hour), end.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	ms := meterpg.NewStore(pool)
	type batch struct {
		rows []meter.Reading
		evs  []meterpg.CounterEvent
	}
	work := make(chan batch, 2)
	var wg sync.WaitGroup
	var werr error
	var once sync.Once
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if _, err := ms.CopyReadings(ctx, b.rows); err != nil {
					once.Do(func() { werr = err })
				}
				if err := ms.WriteCounterEvents(ctx, b.evs); err != nil {
					once.Do(func() { werr = err })
				}
			}
		}()
	}
	ticks := fleet.Ticks(start.UTC(), end.UTC())
	for i := range cfg.Meters {
		m := fleet.Meter(i)
		s := fleet.NewState(i)
		spec := meter.CounterSpec{ModulusWh: m.ModulusWh}
		maxW := 20*m.MeanW + 1000*m.SolarKWp + 1000
		var b batch
		var prev meter.CounterSample
		var prevExp meter.CounterSample
		have := false
		for _, tk := range ticks {
			smp := s.At(tk)
			if smp.Offline {
				continue
			}
			r := smp.Reading(m.Phases)
			r.MeterID, r.ReceivedAt, r.Source = run.ids[i], tk, meter.SourceMQTT
			if at, ok := tamperAt[i]; ok && !tk.Before(at) {
				r.ImportWh = max(r.ImportWh-tamperWh[i], 0)
			}
			cur := meter.CounterSample{Time: tk, ValueWh: r.ImportWh, Identity: smp.Serial}
			curExp := meter.CounterSample{Time: tk, ValueWh: r.ExportWh, Identity: smp.Serial}
			if have {
				for _, x := range []struct {
					reg       meter.Fields
					prev, cur meter.CounterSample
				}{{meter.FieldImport, prev, cur}, {meter.FieldExport, prevExp, curExp}} {
					step, err := meter.StepCounter(x.prev, x.cur, spec, maxW)
					if err != nil {
						t.Fatal(err)
					}
					if step.Kind != meter.CounterNormal {
						b.evs = append(b.evs, meterpg.CounterEvent{MeterID: run.ids[i], Register: x.reg, PrevTime: x.prev.Time, Time: x.cur.Time,
							PrevWh: x.prev.ValueWh, ValueWh: x.cur.ValueWh, Step: step})
					}
				}
			}
			prev, prevExp, have = cur, curExp, true
			b.rows = append(b.rows, r)
		}
		run.readings += len(b.rows)
		run.events += len(b.evs)
		work <- b
	}
	close(work)
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	for {
		s, err := up.RefreshRollups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.HourlyBuckets == 0 && s.DailyBuckets == 0 {
			break
		}
	}
	run.loadTook = time.Since(startLoad)
	return run
}

func dayNum(t time.Time, loc *time.Location) int {
	y, m, d := t.In(loc).Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// recorder keeps every finding the scanner applies.
type recorder struct {
	detect.Store
	mu       sync.Mutex
	findings []alerts.Finding
}

func (r *recorder) Apply(ctx context.Context, now time.Time, f []alerts.Finding, c []alerts.Clear) (int, error) {
	r.mu.Lock()
	r.findings = append(r.findings, f...)
	r.mu.Unlock()
	return r.Store.Apply(ctx, now, f, c)
}

// scan runs the detector over the evaluated days as the periodic jobs
// would, day by day with the clock just after each day, and returns every
// finding.
func (q *qualityRun) scan(t testing.TB, cfg detect.Config) ([]alerts.Finding, time.Duration) {
	t.Helper()
	ctx := context.Background()
	rec := &recorder{Store: q.store}
	var now time.Time
	sc, err := detect.NewScanner(cfg, rec, func() time.Time { return now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for d := q.evalFrom; d.Before(q.evalTo); d = d.Add(24 * time.Hour) {
		next := d.Add(24 * time.Hour)
		now = next.Add(sc.Config().Settle)
		var hours []time.Time
		for h := d; h.Before(next); h = h.Add(time.Hour) {
			hours = append(hours, h)
		}
		if _, err := sc.ScanHours(ctx, q.tenant, hours); err != nil {
			t.Fatal(err)
		}
		ctxFrom := d.AddDate(0, 0, -40)
		if _, err := sc.ScanDays(ctx, q.tenant, q.rz, ctxFrom, d, next); err != nil {
			t.Fatal(err)
		}
	}
	return rec.findings, time.Since(began)
}

// Quality is the outcome of a run.
type Quality struct {
	Matrix     map[string]map[string]int // truth row → detected column → count
	Episodes   map[alerts.Kind]int
	Detected   map[alerts.Kind]int
	CleanDays  int
	FalseDays  int
	FalseKinds map[string]int
	Missed     []string
}

func (q Quality) Recall(k alerts.Kind) float64 {
	if q.Episodes[k] == 0 {
		return 1
	}
	return float64(q.Detected[k]) / float64(q.Episodes[k])
}

func (q Quality) FPRate() float64 { return float64(q.FalseDays) / float64(q.CleanDays) }

// score matches findings to episodes. A spike is found by a
// usage_deviation finding for an hour its window touches; a stuck meter by
// a stuck finding for a day from its start to a day after its end; a
// tamper by a tamper finding within a day of it. Clean meter-days are the
// evaluated days of every meter with no episode on that day or the day
// before (legitimate resets, replacements and gaps included: they must
// not be flagged); a clean day is a false positive when any finding is for
// it.
func (q *qualityRun) score(findings []alerts.Finding) Quality {
	res := Quality{Matrix: map[string]map[string]int{}, Episodes: map[alerts.Kind]int{}, Detected: map[alerts.Kind]int{}, FalseKinds: map[string]int{}}
	byMeter := map[int][]alerts.Finding{}
	for _, f := range findings {
		byMeter[q.index[f.MeterID]] = append(byMeter[q.index[f.MeterID]], f)
	}
	col := func(k alerts.Kind) string {
		switch k {
		case alerts.KindUsageDeviation, alerts.KindStuck, alerts.KindTamper:
			return string(k)
		}
		return "other"
	}
	row := func(name string) map[string]int {
		if res.Matrix[name] == nil {
			res.Matrix[name] = map[string]int{}
		}
		return res.Matrix[name]
	}
	dirty := map[[2]int]bool{}
	for _, e := range q.episodes {
		res.Episodes[e.kind]++
		for d := dayNum(e.from, q.rz); d <= dayNum(e.to, q.rz)+1; d++ {
			dirty[[2]int{e.meter, d}] = true
		}
		var lo, hi time.Time
		switch e.kind {
		case alerts.KindUsageDeviation:
			lo, hi = e.from.Truncate(time.Hour).Add(-time.Hour), e.to
		case alerts.KindStuck:
			lo, hi = startOfDay(e.from, q.rz), startOfDay(e.to, q.rz).Add(48*time.Hour)
		case alerts.KindTamper:
			lo, hi = e.from.Add(-24*time.Hour), e.from.Add(24*time.Hour)
		}
		seen := map[string]bool{}
		for _, f := range byMeter[e.meter] {
			if f.At.Before(lo) || !f.At.Before(hi) {
				continue
			}
			if e.kind == alerts.KindUsageDeviation && !f.At.Add(time.Hour).After(e.from) {
				continue // an hour ending before the spike
			}
			seen[col(f.Kind)] = true
		}
		r := row("injected " + string(e.kind))
		if seen[string(e.kind)] {
			res.Detected[e.kind]++
		} else {
			m := q.fleet.Meter(e.meter)
			res.Missed = append(res.Missed, fmt.Sprintf("%s meter %d (%s, mean %.0f W, solar %.1f kWp) at %s", e.kind, e.meter, m.Profile, m.MeanW, m.SolarKWp,
				e.from.In(q.rz).Format(time.DateTime)))
		}
		if len(seen) == 0 {
			r["none"]++
		}
		for c := range seen {
			r[c]++
		}
	}
	flagged := map[[2]int]map[string]bool{}
	for _, f := range findings {
		k := [2]int{q.index[f.MeterID], dayNum(f.At, q.rz)}
		if flagged[k] == nil {
			flagged[k] = map[string]bool{}
		}
		flagged[k][col(f.Kind)] = true
	}
	clean := row("clean meter-days")
	for i := range q.cfg.Meters {
		for d := dayNum(q.evalFrom, q.rz); d < dayNum(q.evalTo, q.rz); d++ {
			if dirty[[2]int{i, d}] || dirty[[2]int{i, d - 1}] {
				continue
			}
			res.CleanDays++
			if len(flagged[[2]int{i, d}]) == 0 {
				clean["none"]++
				continue
			}
			res.FalseDays++
			if *qualityDebug {
				for _, f := range byMeter[i] {
					if dayNum(f.At, q.rz) == d {
						m := q.fleet.Meter(i)
						fmt.Printf("FP meter %d (%s mean %.0f W solar %.1f) %s %v %s\n", i, m.Profile, m.MeanW, m.SolarKWp, f.At.In(q.rz).Format(time.DateTime), f.Evidence, f.Summary)
					}
				}
			}
			for c := range flagged[[2]int{i, d}] {
				clean[c]++
				res.FalseKinds[c]++
			}
		}
	}
	return res
}

func startOfDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// Write prints the confusion matrix and the rates.
func (q Quality) Write(w io.Writer) {
	cols := []string{"usage_deviation", "stuck", "tamper", "other", "none"}
	rows := []string{"injected usage_deviation", "injected stuck", "injected tamper", "clean meter-days"}
	fmt.Fprintf(w, "%-26s", "truth \\ detected")
	for _, c := range cols {
		fmt.Fprintf(w, "%16s", c)
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%-26s", strings.Replace(r, "usage_deviation", "spike", 1))
		for _, c := range cols {
			fmt.Fprintf(w, "%16d", q.Matrix[r][c])
		}
		fmt.Fprintln(w)
	}
	for _, k := range []alerts.Kind{alerts.KindUsageDeviation, alerts.KindStuck, alerts.KindTamper} {
		fmt.Fprintf(w, "recall %-16s %5.1f%% (%d of %d)\n", strings.Replace(string(k), "usage_deviation", "spike", 1), 100*q.Recall(k), q.Detected[k], q.Episodes[k])
	}
	fmt.Fprintf(w, "false positives: %d of %d clean meter-days = %.3f%% %v\n", q.FalseDays, q.CleanDays, 100*q.FPRate(), q.FalseKinds)
	missed := q.Missed
	sort.Strings(missed)
	if len(missed) > 10 {
		missed = append(missed[:10], fmt.Sprintf("… %d more", len(q.Missed)-10))
	}
	for _, m := range missed {
		fmt.Fprintln(w, "missed:", m)
	}
}

func (q Quality) check(t testing.TB) {
	t.Helper()
	for _, k := range []alerts.Kind{alerts.KindUsageDeviation, alerts.KindStuck, alerts.KindTamper} {
		if q.Recall(k) < 0.95 {
			t.Errorf("recall of %s %.1f%% < 95%%", k, 100*q.Recall(k))
		}
		if q.Episodes[k] == 0 {
			t.Errorf("no %s injected", k)
		}
	}
	if q.FPRate() > 0.01 {
		t.Errorf("false-positive rate %.2f%% > 1%% of clean meter-days", 100*q.FPRate())
	}
}

// TestDetectionQuality: a small fleet (the benchmark runs a larger one).
// Recall ≥ 95 % for injected spikes, stuck meters and tamper, and at most
// 1 % of clean meter-days flagged, with the default configuration.
func TestDetectionQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a simulated fleet")
	}
	q := buildQuality(t, qualityConfig{Seed: 11, Meters: 80, Days: 63, WarmupDays: 35, SpikeRate: 0.03, StuckMeters: 5, TamperMeter: 5,
		ResetRate: 0.005, ReplacementRate: 0.003, GapRate: 0.05})
	findings, took := q.scan(t, detect.Config{})
	res := q.score(findings)
	if *qualityDebug {
		q.explainMisses(t, res)
	}
	var b strings.Builder
	res.Write(&b)
	t.Logf("%d meters × %d days (%d evaluated), %d readings, %d counter events, loaded in %v, scanned in %v\n%s",
		q.cfg.Meters, q.cfg.Days, q.cfg.Days-q.cfg.WarmupDays, q.readings, q.events, q.loadTook.Round(time.Second), took.Round(time.Millisecond), b.String())
	res.check(t)
}

// BenchmarkDetectionQuality prints the confusion matrix of a larger
// simulated fleet (make bench; or go test -run '^$' -bench DetectionQuality
// ./alerts/detect/) and fails if recall or the false-positive rate miss
// their targets. The timed part is the scan of the evaluated days.
func BenchmarkDetectionQuality(b *testing.B) {
	q := buildQuality(b, qualityConfig{Seed: 2026, Meters: 400, Days: 90, WarmupDays: 35, SpikeRate: 0.02, StuckMeters: 20, TamperMeter: 20,
		ResetRate: 0.005, ReplacementRate: 0.003, GapRate: 0.05})
	var findings []alerts.Finding
	var took time.Duration
	for b.Loop() {
		findings, took = q.scan(b, detect.Config{})
	}
	res := q.score(findings)
	fmt.Fprintf(os.Stdout, "\ndetection quality: %d meters × %d days (%d evaluated, seed %d), %d readings, %d counter events; load %v, scan %v\n",
		q.cfg.Meters, q.cfg.Days, q.cfg.Days-q.cfg.WarmupDays, q.cfg.Seed, q.readings, q.events, q.loadTook.Round(time.Second), took.Round(time.Millisecond))
	res.Write(os.Stdout)
	b.ReportMetric(100*res.Recall(alerts.KindUsageDeviation), "%recall-spike")
	b.ReportMetric(100*res.Recall(alerts.KindStuck), "%recall-stuck")
	b.ReportMetric(100*res.Recall(alerts.KindTamper), "%recall-tamper")
	b.ReportMetric(100*res.FPRate(), "%fp-clean-days")
	res.check(b)
}

// explainMisses prints the evaluation of the hours of missed spikes.
func (q *qualityRun) explainMisses(t testing.TB, res Quality) {
	ctx := context.Background()
	cfg := detect.DefaultConfig()
	missed := map[string]bool{}
	for _, m := range res.Missed {
		missed[m] = true
	}
	for _, e := range q.episodes {
		if e.kind != alerts.KindUsageDeviation {
			continue
		}
		h := e.from.Truncate(time.Hour).Add(30 * time.Minute) // Kolkata buckets at :30 UTC
		if h.After(e.from) {
			h = h.Add(-time.Hour)
		}
		var buckets []time.Time
		for k := 0; k <= 8; k++ {
			buckets = append(buckets, h.AddDate(0, 0, -7*k))
		}
		rows, err := q.store.Hours(ctx, []int64{q.ids[e.meter]}, buckets)
		if err != nil {
			t.Fatal(err)
		}
		var cur detect.Hour
		var hist []detect.Hour
		for _, r := range rows {
			if r.Bucket.Equal(h) {
				cur = r.Hour
			} else {
				hist = append(hist, r.Hour)
			}
		}
		ev, ok := detect.Evaluate(cfg, q.ids[e.meter], 0, cur, hist)
		if f, found := ev.Finding(cfg, nil); ok && !found {
			fmt.Printf("MISS meter %d spike %s hour %s: cur %+v\n", e.meter, e.from.In(q.rz).Format(time.DateTime), h, cur)
			for _, x := range ev.Features {
				fmt.Printf("   %-12s obs %.0f median %.0f mad %.0f floor %.0f z %.1f\n", x.Name, x.Observed, x.Base.Median, x.Base.MAD, x.Floor, x.Z)
			}
			_ = f
		}
	}
}
