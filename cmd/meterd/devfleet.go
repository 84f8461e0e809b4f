package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/mqttpub"
	simpg "github.com/meterd/meterd/simulator/postgres"
)

// devFleet is 'meterd dev”s small simulated fleet: provisioned into the
// dev database before the gateway starts, then publishing live over MQTT
// to the embedded broker with each meter's own credentials.
type devFleet struct {
	dataDir  string
	meters   int
	interval time.Duration
	pools    *poolComponent
	log      *slog.Logger
	fleet    *simulator.Fleet
	pub      *mqttpub.Publisher
}

// provision creates the fleet's tenant and meters (idempotent).
func (d *devFleet) provision(ctx context.Context) error {
	if d.meters == 0 {
		return nil
	}
	start, err := d.epoch()
	if err != nil {
		return err
	}
	f, err := simulator.New(simulator.Config{Meters: d.meters, Start: start, Interval: d.interval, Step: d.interval})
	if err != nil {
		return fmt.Errorf("simulated fleet: %w", err)
	}
	if _, err := simpg.Provision(ctx, d.pools.pool, f); err != nil {
		return fmt.Errorf("provision simulated fleet: %w", err)
	}
	d.fleet = f
	return nil
}

// maxEpochAge bounds how far back the fleet's start lies: the model
// integrates its registers from there once per meter at the first reading
// (a year at a 10 s step costs tens of seconds of CPU, a month a few).
const maxEpochAge = 30 * 24 * time.Hour

// epoch returns the fleet's start, kept in the data directory so that
// every run continues the same counters; it moves to today when older than
// maxEpochAge (the registers then step forward once, a counter "jump").
func (d *devFleet) epoch() (time.Time, error) {
	path := filepath.Join(d.dataDir, "sim-epoch")
	now := time.Now().UTC()
	if b, err := os.ReadFile(path); err == nil {
		if t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b))); err == nil && now.Sub(t) < maxEpochAge && !t.After(now) {
			return t, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return time.Time{}, err
	}
	t := now.Truncate(24 * time.Hour)
	if err := os.WriteFile(path, []byte(t.Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// publish starts the live publisher against brokerURL.
func (d *devFleet) publish(ctx context.Context, brokerURL string) error {
	if d.fleet == nil || brokerURL == "" {
		return nil
	}
	pub, err := mqttpub.New(d.fleet, mqttpub.Config{BrokerURL: brokerURL, Live: true, Workers: 4, Logger: d.log})
	if err != nil {
		return fmt.Errorf("simulated fleet: %w", err)
	}
	if err := pub.Start(ctx); err != nil {
		return fmt.Errorf("simulated fleet: %w", err)
	}
	d.pub = pub
	return nil
}

func (d *devFleet) stop(ctx context.Context) error {
	if d.pub == nil {
		return nil
	}
	return d.pub.Stop(ctx)
}
