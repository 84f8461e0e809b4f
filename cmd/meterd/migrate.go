package main

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/deploy/schema"
)

// migrateConfig is the configuration of 'meterd migrate'.
type migrateConfig struct {
	log    logConfig
	db     dbConfig
	schema schema.Config
	tz     string
	prof   string
}

func (c *migrateConfig) register(f *flags) {
	c.log.register(f, "text")
	c.db.register(f)
	f.String(&c.prof, "profile", "METERD_PROFILE", "auto", "storage profile of a new database: auto (timescale when the extension can be created), timescale or postgres")
	f.String(&c.tz, "rollup-time-zone", "METERD_ROLLUP_TIME_ZONE", "UTC", "IANA zone of the rollups' hours and days (tenants should bill in the same zone)")
	f.Duration(&c.schema.PartitionInterval, "partition-interval", "METERD_PARTITION_INTERVAL", 24*time.Hour, "width of readings partitions or chunks, whole days")
}

func (c *migrateConfig) finish() error {
	c.schema.Profile = schema.Profile(c.prof)
	c.schema.RollupTimeZone = c.tz
	if err := c.db.Validate(); err != nil {
		return err
	}
	return c.schema.Validate()
}

func runMigrate(ctx context.Context, e env, args []string) error {
	var c migrateConfig
	f := newFlags("migrate", "Usage: meterd migrate [flags]\n\nApplies meterd's and River's migrations under an advisory lock (safe to run from several\nprocesses at once) and reports the storage profile. The profile, rollup zone and partition\ninterval take effect only on a database's first migration.", e.getenv, e.stderr)
	c.register(f)
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := c.finish(); err != nil {
		return err
	}
	log, err := c.log.logger(e.stderr)
	if err != nil {
		return err
	}
	c.schema.Logger = log
	st, err := schema.Migrate(ctx, c.db.url, c.schema)
	if err != nil {
		return err
	}
	printStatus(e, st)
	return nil
}

func printStatus(e env, st schema.Status) {
	fmt.Fprintf(e.stdout, "storage profile: %s (%s)\n", st.Profile, st.ProfileReason)
	if st.TimescaleVersion != "" {
		fmt.Fprintf(e.stdout, "timescaledb:     %s\n", st.TimescaleVersion)
	}
	fmt.Fprintf(e.stdout, "rollup zone:     %s\n", st.RollupTimeZone)
	fmt.Fprintf(e.stdout, "schema version:  %d of %d; river schema current: %v\n", st.SchemaVersion, st.SchemaLatest, st.RiverCurrent)
}
