//go:build loadbench

package ingest_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/ingest/internal/brokertest"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/mqttpub"
	simpg "github.com/meterd/meterd/simulator/postgres"
)

// procMemMB returns a process's VmRSS and VmHWM (peak) in MB.
func procMemMB(b *testing.B, pid int) (rss, hwm float64) {
	b.Helper()
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// BenchmarkGatewayMemory100k runs 'meterd ingest' as a process against a
// database of 100 000 meters, publishes one reading for every meter through
// Mosquitto, waits until all are stored and the latest state is written,
// and reports the process's resident memory: right after start (resolver
// loaded: the same-run baseline) and at its peak, and the peak against the
// 200 MB budget.
//
// Slow (provisioning and 100 000 messages); run it with
//
//	go test -tags loadbench -run '^$' -bench GatewayMemory100k -benchtime 1x ./ingest/
func BenchmarkGatewayMemory100k(b *testing.B) {
	const meters = 100_000
	mq := brokertest.Start(b)
	bin, err := buildMeterd()
	if err != nil {
		b.Fatal(err)
	}
	dbURL := schematest.URL(b, schema.ProfilePostgres)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	f, err := simulator.New(simulator.Config{Seed: 9, Meters: meters, Start: time.Now().UTC().Add(-time.Hour).Truncate(time.Minute),
		Interval: time.Minute, Step: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := simpg.Provision(ctx, pool, f); err != nil {
		b.Fatal(err)
	}
	// The defaults; the defaults with the meter directory reloaded every
	// second, so that reloads (the old and the new copy held at once)
	// fall inside the burst; then the two ways to trade collector CPU for
	// memory.
	for _, flags := range [][]string{nil, {"--meter-refresh", "1s"}, {"--gc-percent", "50"}, {"--memory-limit-mib", "150"}} {
		name := "defaults"
		if flags != nil {
			name = strings.TrimPrefix(flags[0], "--") + "=" + flags[1]
		}
		b.Run(name, func(b *testing.B) {
			benchMemory(b, bin, dbURL, mq.Addr, pool, f, flags)
		})
	}
}

func benchMemory(b *testing.B, bin, dbURL, brokerAddr string, pool *pgxpool.Pool, f *simulator.Fleet, flags []string) {
	const meters = 100_000
	ctx := context.Background()
	for range b.N {
		// A fresh database state: the previous run's readings stay, so
		// this run publishes the next tick.
		if _, err := pool.Exec(ctx, `TRUNCATE meter_latest`); err != nil {
			b.Fatal(err)
		}
		var before int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&before); err != nil {
			b.Fatal(err)
		}
		gw := startGatewayProcessB(b, bin, dbURL, brokerAddr, filepath.Join(b.TempDir(), "gateway.log"), flags...)
		idle, _ := procMemMB(b, gw.cmd.Process.Pid)
		start := f.Config().Start.Add(time.Duration(before/meters) * f.Config().Interval)
		p, err := mqttpub.New(f, mqttpub.Config{BrokerURL: "mqtt://" + brokerAddr, SharedConnections: 8, Workers: 8,
			From: start, To: start.Add(f.Config().Interval)})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := p.Start(ctx); err != nil {
			b.Fatal(err)
		}
		<-p.Done()
		_ = p.Stop(ctx)
		deadline := time.Now().Add(5 * time.Minute)
		for {
			var n, latest int
			_ = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM meter_latest)`).Scan(&n, &latest)
			if n >= before+meters && latest >= meters {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("stored %d readings and %d latest states of %d", n, latest, meters)
			}
			time.Sleep(200 * time.Millisecond)
		}
		elapsed := time.Since(t0)
		rss, hwm := procMemMB(b, gw.cmd.Process.Pid)
		gw.kill()
		b.ReportMetric(idle, "idle_rss_MB")
		b.ReportMetric(rss, "rss_MB")
		b.ReportMetric(hwm, "peak_rss_MB")
		b.ReportMetric(hwm/idle, "peak/idle")
		b.ReportMetric(hwm/200, "peak/budget_200MB")
		b.ReportMetric(meters/elapsed.Seconds(), "msgs/s")
	}
}
