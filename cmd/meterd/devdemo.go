package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	accountpg "github.com/meterd/meterd/api/account/postgres"
	"github.com/meterd/meterd/billing/pdf"
	billingpg "github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/meter"
	meterpg "github.com/meterd/meterd/meter/postgres"
	"github.com/meterd/meterd/simulator"
)

// The demo consumer's simulated past: readings every demoReadingEvery from
// the first day of the month demoHistoryMonths before the current one (in
// the demo tenant's zone), so the last complete month can be billed on a
// fresh data directory.
const (
	demoHistoryMonths = 3
	demoReadingEvery  = 15 * time.Minute
	demoZone          = "Asia/Kolkata" // the demo tenant's (seedDemo)
	demoSeed          = 2026           // the simulated household
)

// demoWalkthrough gives 'meterd dev”s demo consumer something to look at
// and pay: months of simulated readings on their meter before the demo bill
// run, and the bill it issued, named in the banner.
type demoWalkthrough struct {
	pools   *poolComponent
	upkeep  schema.UpkeepConfig
	dataDir string
	logins  *demoLogins // filled by the demo data step
	log     *slog.Logger

	loc     *time.Location
	since   time.Time // the history's start
	written int       // readings written by this start
	own     bool      // the meter has readings of its own: not simulated further
	bill    *billingpg.StoredBill
}

// backfill writes the demo meter's simulated readings from the history's
// start (kept in the data directory) or, on later starts, from its newest
// reading up to now: the simulator's model written straight through the
// meter store (source import), then the rollups refreshed. The demo
// connection's service and meter installation are moved back to the
// history's start, so the readings belong to it. It is idempotent: a
// restart writes only what time added. A meter whose newest reading is not
// the model's (someone published to it) is left alone.
func (w *demoWalkthrough) backfill(ctx context.Context) error {
	if w.logins == nil || w.logins.connectionID == 0 {
		return nil
	}
	pool := w.pools.pool
	var err error
	if w.loc, err = time.LoadLocation(demoZone); err != nil {
		return err
	}
	now := time.Now().UTC()
	if w.since, err = w.epoch(now, w.loc); err != nil {
		return err
	}
	meters := meterpg.NewStore(pool)
	m, err := meters.MeterByRef(ctx, demoTenant, demoMeter)
	if err != nil {
		return fmt.Errorf("demo meter: %w", err)
	}
	if _, err := accountpg.New(pool).BackdateService(ctx, w.logins.tenantID, w.logins.connectionID, w.since); err != nil {
		return fmt.Errorf("demo connection: %w", err)
	}
	fleet, err := simulator.New(simulator.Config{Seed: demoSeed, Meters: 1, Start: w.since, Interval: demoReadingEvery, Step: demoReadingEvery,
		Tenant: demoTenant, TimeZone: demoZone, Models: []string{"sdm120"}, Residential: 1, NoSolar: true})
	if err != nil {
		return fmt.Errorf("demo history: %w", err)
	}
	state := fleet.NewState(0)
	from := w.since
	latest, err := meters.LatestStates(ctx, m.ID)
	if err != nil {
		return err
	}
	if len(latest) > 0 && !latest[0].ImportTime.IsZero() {
		last := latest[0]
		if !last.ImportTime.Equal(fleet.TickAtOrAfter(last.ImportTime)) || state.At(last.ImportTime).ImportWh != last.ImportWh {
			w.own = true
			w.log.Info("the demo meter has readings of its own; no simulated history added", "meter", demoMeter)
			return nil
		}
		from = last.ImportTime.Add(demoReadingEvery)
	}
	ticks := fleet.Ticks(from, now)
	if len(ticks) == 0 {
		return nil
	}
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		return err
	}
	up := schema.NewUpkeep(pool, st, w.upkeep)
	t0 := time.Now()
	if _, err := up.EnsurePartitions(ctx, ticks[0], ticks[len(ticks)-1]); err != nil {
		return err
	}
	t1 := time.Now()
	phases := fleet.Meter(0).Phases
	rows := make([]meter.Reading, len(ticks))
	for i, t := range ticks {
		r := state.At(t).Reading(phases)
		r.MeterID, r.ReceivedAt, r.Source = m.ID, t, meter.SourceImport
		rows[i] = r
	}
	res, err := meters.WriteReadings(ctx, rows)
	if err != nil {
		return fmt.Errorf("demo history: %w", err)
	}
	last := rows[len(rows)-1]
	if err := meters.UpsertLatest(ctx, []meterpg.Latest{{MeterID: m.ID, Reading: last, LastSeen: last.ReceivedAt,
		ImportWh: last.ImportWh, ImportTime: last.Time, ExportWh: last.ExportWh, ExportTime: last.Time}}); err != nil {
		return fmt.Errorf("demo history: %w", err)
	}
	t2 := time.Now()
	if err := refreshRollups(ctx, up); err != nil {
		return fmt.Errorf("demo history: %w", err)
	}
	w.written = res.Inserted
	w.log.Info("demo meter history", "meter", demoMeter, "from", ticks[0], "readings", res.Inserted,
		"partitions", t1.Sub(t0).Round(time.Millisecond), "write", t2.Sub(t1).Round(time.Millisecond), "rollups", time.Since(t2).Round(time.Millisecond))
	return nil
}

// epoch returns the history's start, kept in the data directory so that
// every start continues the same simulated registers.
func (w *demoWalkthrough) epoch(now time.Time, loc *time.Location) (time.Time, error) {
	path := filepath.Join(w.dataDir, "demo-epoch")
	if b, err := os.ReadFile(path); err == nil {
		if t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b))); err == nil && !t.After(now) {
			return t.UTC(), nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return time.Time{}, err
	}
	l := now.In(loc)
	t := time.Date(l.Year(), l.Month()-demoHistoryMonths, 1, 0, 0, 0, 0, loc).UTC()
	if err := os.WriteFile(path, []byte(t.Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// findBill looks up the demo connection's newest bill (after the demo bill
// run) for the banner.
func (w *demoWalkthrough) findBill(ctx context.Context) error {
	if w.logins == nil || w.logins.connectionID == 0 {
		return nil
	}
	list, _, err := billingStore(w.pools, w.log).Bills(ctx, billingpg.BillFilter{TenantID: w.logins.tenantID, ConnectionID: w.logins.connectionID, Limit: 1})
	if err != nil {
		return fmt.Errorf("demo bill: %w", err)
	}
	if len(list) > 0 {
		w.bill = &list[0]
	}
	return nil
}

// banner says what a newcomer can do with the demo consumer: log in, see
// the usage history and the bill, download it and pay it.
func (w *demoWalkthrough) banner(addr string, sandbox bool) string {
	if w.logins == nil || w.logins.consumer == "" {
		return ""
	}
	var b strings.Builder
	base := "http://" + addr
	fmt.Fprintf(&b, "  Try it      log in at %s/login as %s (password %s)\n", base, w.logins.consumer, w.logins.password)
	switch {
	case w.own:
		fmt.Fprintf(&b, "              usage at %s/usage: the demo meter's own readings\n", base)
	case !w.since.IsZero():
		fmt.Fprintf(&b, "              usage at %s/usage: simulated readings every %v since %s", base, demoReadingEvery, w.since.In(w.loc).Format("2 Jan 2006"))
		if w.written > 0 {
			fmt.Fprintf(&b, " (%d written now)", w.written)
		}
		b.WriteString("\n")
	}
	if w.bill == nil {
		b.WriteString("              no bill yet: the demo bill run bills the last complete month once it has readings\n")
		return b.String()
	}
	bl := w.bill
	fmt.Fprintf(&b, "              bill %s for %s: %s due %s, %s — %s/bills/%d (PDF: %s/bills/%d/pdf)\n",
		bl.Number, bl.Period, pdf.Money(bl.Currency, bl.Totals.Total), bl.DueDate, strings.ReplaceAll(bl.Status, "_", " "), base, bl.ID, base, bl.ID)
	if sandbox && bl.Status != "paid" && bl.Totals.Total.IsPositive() {
		fmt.Fprintf(&b, "              pay it: %s/bills/%d/pay, then in the sandbox checkout pick upi_success (or card_visa); the bill turns paid and a receipt is issued\n", base, bl.ID)
	}
	return b.String()
}

// devPublicURL is the base URL of links to a server listening on addr:
// http://localhost:<port> when it listens on every interface.
func devPublicURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// refreshRollups refreshes the rollups now, waiting out the upkeep job's
// own refresh: TimescaleDB refuses a second concurrent refresh of a
// continuous aggregate (lock_not_available) instead of queueing it.
func refreshRollups(ctx context.Context, up *schema.Upkeep) error {
	for attempt := 1; ; attempt++ {
		_, err := up.RefreshRollups(ctx)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55P03" || attempt == 50 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
