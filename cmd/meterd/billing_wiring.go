package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
	"github.com/meterd/meterd/api/outbox"
	outboxpg "github.com/meterd/meterd/api/outbox/postgres"
	"github.com/meterd/meterd/billing/billrun"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// billingOutbox writes billing's notifications with the API's outbox, all
// of one call in one round trip.
type billingOutbox struct{}

func (billingOutbox) Enqueue(ctx context.Context, tx pgx.Tx, msgs []billingpg.Notification) error {
	var b pgx.Batch
	q := batchExecer{b: &b}
	for _, m := range msgs {
		if err := outboxpg.Enqueue(ctx, q, outbox.Message{TenantID: m.TenantID, UserID: m.UserID, Event: m.Event, Payload: m.Payload, DedupeKey: m.DedupeKey}); err != nil {
			return err
		}
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// batchExecer queues statements into a pgx.Batch; the batch is sent (and
// its errors reported) by the caller.
type batchExecer struct{ b *pgx.Batch }

func (e batchExecer) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	e.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// billingAudit writes billing's audit entries to the API's audit log.
type billingAudit struct{}

func (billingAudit) Write(ctx context.Context, tx pgx.Tx, e billingpg.AuditEntry) error {
	return auditpg.Write(ctx, tx, audit.Entry{TenantID: e.TenantID, ActorUserID: e.ActorUserID, ActorRole: e.ActorRole, Action: e.Action,
		EntityType: e.EntityType, EntityID: e.EntityID, After: e.After, Address: e.Address, RequestID: e.RequestID})
}

// billingStore returns billing's store on an open pool with the API's
// outbox and audit log.
func billingStore(pools *poolComponent, log *slog.Logger) *billingpg.Store {
	return billingpg.NewStore(pools.pool, billingpg.Deps{Outbox: billingOutbox{}, Audit: billingAudit{}, Logger: log})
}

// billingRegistrar registers the bill-run workers and the scheduler.
func billingRegistrar(pools *poolComponent, cfg billrun.Config, log *slog.Logger, reg prometheus.Registerer) registrar {
	return func(_ context.Context, w *river.Workers) ([]*river.PeriodicJob, error) {
		log := log.With("component", "billing")
		runner, err := billrun.NewRunner(billingStore(pools, log), cfg, log, reg)
		if err != nil {
			return nil, err
		}
		return runner.AddWorkers(w), nil
	}
}
