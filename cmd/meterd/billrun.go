package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/billrun"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// billrunConfig is the configuration of 'meterd billrun'.
type billrunConfig struct {
	log      logConfig
	db       dbConfig
	tenant   string
	service  string
	period   string
	issue    string
	batch    int
	enqueue  bool
	rerun    bool
	deadList bool
	showRun  int
	resume   int
	poll     time.Duration
}

func (c *billrunConfig) register(f *flags) {
	c.log.register(f, "text")
	c.db.register(f)
	f.String(&c.tenant, "tenant", "METERD_TENANT", "", "tenant code")
	f.String(&c.service, "service", "", "electricity", "service to bill: electricity, water or sewerage")
	f.String(&c.period, "period", "", "", "period to bill: YYYY-MM (month), YYYY-Qn (quarter) or FROM..TO dates; default the cycle before today's")
	f.String(&c.issue, "issue-date", "", "", "issue date YYYY-MM-DD (default today in the tenant's zone)")
	f.Int(&c.batch, "batch-size", "METERD_BILLRUN_BATCH_SIZE", 500, "connections per transaction")
	f.Bool(&c.enqueue, "enqueue", "", false, "hand the run to the serve instances' job workers and follow its progress (default: run it in this process)")
	f.Bool(&c.rerun, "rerun", "", false, "bill only the period's open dead letters")
	f.Bool(&c.deadList, "dead-letters", "", false, "list the tenant's open dead letters and exit")
	f.Int(&c.showRun, "show", "", 0, "print one run's progress and exit")
	f.Int(&c.resume, "resume", "", 0, "continue an interrupted run (by id) in this process")
	f.Duration(&c.poll, "poll", "", time.Second, "progress polling interval with --enqueue")
}

func runBillrun(ctx context.Context, e env, args []string) error {
	var c billrunConfig
	f := newFlags("billrun", "Usage: meterd billrun --tenant CODE [--period 2024-04] [flags]\n\nCreates a bill run for a tenant's service and period and runs it, printing a progress bar:\nconnections are billed in batches (one transaction each), a failed batch is retried one\nconnection at a time and connections that still fail become dead letters (--dead-letters\nlists them; --rerun bills them again). Running a period again creates nothing new.", e.getenv, e.stderr)
	c.register(f)
	if err := f.Parse(args); err != nil {
		return err
	}
	if c.tenant == "" {
		return errors.New("--tenant is required")
	}
	log, err := c.log.logger(e.stderr)
	if err != nil {
		return err
	}
	return withStore(ctx, c.db, func(s *billingpg.Store, pools *poolComponent) error {
		tid, err := s.TenantByCode(ctx, c.tenant)
		if err != nil {
			return err
		}
		if c.deadList {
			list, err := s.DeadLetters(ctx, tid, c.service, true, 0)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%d open dead letters\n", len(list))
			for _, d := range list {
				fmt.Fprintf(e.stdout, "  %-16s %s  attempts %d  run %d  %s\n", d.ConsumerCode, d.Period, d.Attempts, d.LastRunID, d.Reason)
			}
			return nil
		}
		if c.showRun != 0 {
			run, err := s.Run(ctx, tid, int64(c.showRun))
			if err != nil {
				return err
			}
			printRun(e.stdout, run)
			return printSkips(ctx, e.stdout, s, run)
		}
		st, err := s.Settings(ctx, tid, c.service)
		if err != nil {
			return err
		}
		_, loc, err := s.TenantLocation(ctx, tid)
		if err != nil {
			return err
		}
		now := time.Now()
		period, cycle, err := parseRunPeriod(c.period, st.Cycle, now, loc)
		if err != nil {
			return err
		}
		issue := billing.DateOf(now, loc)
		if c.issue != "" {
			if issue, err = billing.ParseDate(c.issue); err != nil {
				return err
			}
		}
		trigger := billingpg.TriggerCLI
		if c.rerun {
			trigger = billingpg.TriggerRerun
		}
		nr := billingpg.NewRun{TenantID: tid, Service: c.service, Cycle: cycle, Period: period, IssueDate: issue, Trigger: trigger, BatchSize: c.batch}
		if c.enqueue {
			client, err := river.NewClient(riverpgxv5.New(pools.pool), &river.Config{})
			if err != nil {
				return err
			}
			run, err := s.CreateRun(ctx, nr, billrun.EnqueueTx(client))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "bill run %d queued for %s %s %s\n", run.ID, c.tenant, c.service, period)
			return follow(ctx, e.stdout, s, run, c.poll)
		}
		runner, err := billrun.NewRunner(s, billrun.Config{BatchSize: c.batch}, log.With("component", "billing"), nil)
		if err != nil {
			return err
		}
		var run billingpg.Run
		if c.resume != 0 {
			run, err = s.Run(ctx, tid, int64(c.resume))
		} else {
			run, err = s.CreateRun(ctx, nr, nil)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "bill run %d: %s %s %s, batches of %d\n", run.ID, c.tenant, run.Service, run.Period, run.BatchSize)
		start := time.Now()
		done, err := runner.Execute(ctx, run.ID, func(r billingpg.Run) { progressBar(e.stdout, r) })
		fmt.Fprintln(e.stdout)
		if err != nil {
			return err
		}
		printRun(e.stdout, done)
		if secs := time.Since(start).Seconds(); secs > 0 {
			fmt.Fprintf(e.stdout, "took %.1fs (%.0f connections/s)\n", secs, float64(done.Processed)/secs)
		}
		return printSkips(ctx, e.stdout, s, done)
	})
}

// follow polls a queued run until it finishes.
func follow(ctx context.Context, w io.Writer, s *billingpg.Store, run billingpg.Run, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cur, err := s.Run(ctx, run.TenantID, run.ID)
		if err != nil {
			return err
		}
		progressBar(w, cur)
		if cur.Status == billingpg.RunCompleted || cur.Status == billingpg.RunFailed {
			fmt.Fprintln(w)
			printRun(w, cur)
			return printSkips(ctx, w, s, cur)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(w)
			return ctx.Err()
		case <-t.C:
		}
	}
}

// progressBar redraws one line: [#####.....]  45%  450/1000 …
func progressBar(w io.Writer, r billingpg.Run) {
	const width = 30
	frac := 0.0
	if r.Total > 0 {
		frac = float64(r.Processed) / float64(r.Total)
	}
	n := int(frac * width)
	fmt.Fprintf(w, "\r[%s%s] %3.0f%%  %d/%d  billed %d  unchanged %d  skipped %d  failed %d ",
		strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, r.Processed, r.Total, r.Billed, r.Unchanged, r.Skipped, r.Failed)
}

func printRun(w io.Writer, r billingpg.Run) {
	fmt.Fprintf(w, "run %d %s: %s %s, %d connections: %d billed, %d unchanged, %d skipped, %d failed (dead letters)\n",
		r.ID, r.Status, r.Service, r.Period, r.Total, r.Billed, r.Unchanged, r.Skipped, r.Failed)
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
}

// parseRunPeriod reads --period: "" (the cycle before today's), YYYY-MM,
// YYYY-Qn or FROM..TO.
func parseRunPeriod(s string, cycle billing.Cycle, now time.Time, loc *time.Location) (billing.Period, billing.Cycle, error) {
	switch {
	case s == "":
		p, err := billrun.PreviousPeriod(cycle, now, loc)
		return p, cycle, err
	case strings.Contains(s, ".."):
		a, b, _ := strings.Cut(s, "..")
		from, err1 := billing.ParseDate(a)
		to, err2 := billing.ParseDate(b)
		if err := errors.Join(err1, err2); err != nil {
			return billing.Period{}, 0, err
		}
		return billing.Period{From: from, To: to}, cycle, nil
	case len(s) == 7 && s[4] == '-' && s[5] == 'Q':
		var y, q int
		if _, err := fmt.Sscanf(s, "%d-Q%d", &y, &q); err != nil || q < 1 || q > 4 {
			return billing.Period{}, 0, fmt.Errorf("period %q: want YYYY-Qn", s)
		}
		from := billing.NewDate(y, time.Month(3*(q-1)+1), 1)
		return billing.Period{From: from, To: billing.NewDate(y, time.Month(3*q+1), 0)}, billing.CycleQuarterly, nil
	default:
		t, err := time.Parse("2006-01", s)
		if err != nil {
			return billing.Period{}, 0, fmt.Errorf("period %q: want YYYY-MM, YYYY-Qn or FROM..TO", s)
		}
		from := billing.NewDate(t.Year(), t.Month(), 1)
		return billing.Period{From: from, To: billing.NewDate(t.Year(), t.Month()+1, 0)}, billing.CycleMonthly, nil
	}
}

// printSkips lists why connections were not billable, one line per
// reason with how many connections it applied to.
func printSkips(ctx context.Context, w io.Writer, s *billingpg.Store, r billingpg.Run) error {
	if r.Skipped == 0 {
		return nil
	}
	skips, err := s.RunSkips(ctx, r.TenantID, r.ID)
	if err != nil {
		return err
	}
	var reasons []string
	count := map[string]int{}
	first := map[string]string{}
	for _, k := range skips {
		if count[k.Reason] == 0 {
			reasons = append(reasons, k.Reason)
			first[k.Reason] = k.ConsumerCode
		}
		count[k.Reason]++
	}
	for _, reason := range reasons {
		fmt.Fprintf(w, "skipped %d (e.g. %s): %s\n", count[reason], first[reason], reason)
	}
	return nil
}
