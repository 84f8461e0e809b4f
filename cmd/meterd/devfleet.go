package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/mqttpub"
	simpg "github.com/meterd/meterd/simulator/postgres"
)

// devFleetEpoch is the simulated fleet's fixed start: its registers are
// integrated from here, so every 'meterd dev' run continues the same
// counters in the same database.
var devFleetEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// devFleet is 'meterd dev”s small simulated fleet: provisioned into the
// dev database before the gateway starts, then publishing live over MQTT
// to the embedded broker with each meter's own credentials.
type devFleet struct {
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
	start := devFleetEpoch
	if now := time.Now(); now.Before(start) {
		start = now.UTC().Truncate(24 * time.Hour)
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
