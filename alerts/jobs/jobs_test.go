package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/channel/email"
	"github.com/meterd/meterd/alerts/devsink"
	"github.com/meterd/meterd/alerts/internal/fixture"
	"github.com/meterd/meterd/alerts/jobs"
	"github.com/meterd/meterd/alerts/notify"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/alerts/template"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// countingReminders counts the scheduler's runs.
type countingReminders struct{ runs chan struct{} }

func (c countingReminders) Run(context.Context) (int, error) {
	select {
	case c.runs <- struct{}{}:
	default:
	}
	return 0, nil
}

// countingScanner counts the detector's scans, each reporting one finding.
type countingScanner struct{ hourly, daily chan struct{} }

func (c countingScanner) ScanHourly(context.Context) (int, error) {
	select {
	case c.hourly <- struct{}{}:
	default:
	}
	return 1, nil
}

func (c countingScanner) ScanDaily(context.Context) (int, error) {
	select {
	case c.daily <- struct{}{}:
	default:
	}
	return 1, nil
}

// A real River client runs the periodic pump, which inserts one delivery
// job per due delivery; the delivery workers send the outbox's messages
// to an SMTP server; the reminder job and both scans run on their
// schedules.
func TestRiverDelivers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := schematest.New(t)
	log := devsink.NewLog(0)
	sink := devsink.NewSMTP(devsink.SMTPConfig{}, log)
	if err := sink.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sink.Stop(context.Background()) }()
	mail, err := email.New(email.Config{Host: "127.0.0.1", Port: sink.Port(), TLS: email.TLSNone, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := template.New()
	if err != nil {
		t.Fatal(err)
	}
	store := alertspg.New(pool)
	engine, err := notify.New(notify.Config{}, notify.Deps{Store: store, Templates: tpl, Opener: fixture.Ring{}, Senders: []notify.Sender{mail}})
	if err != nil {
		t.Fatal(err)
	}
	tenant := fixture.Tenant(t, pool, "Asia/Kolkata")
	var users []int64
	for range 5 {
		users = append(users, fixture.NewUser(t, pool, tenant, fixture.User{}))
	}
	for _, u := range users {
		fixture.Enqueue(t, pool, fixture.Outbox{TenantID: tenant, UserID: u, Event: alerts.EventTicketCreated, Payload: template.Sample(alerts.EventTicketCreated).P})
	}
	runs := countingReminders{runs: make(chan struct{}, 1)}
	workers := river.NewWorkers()
	scans := countingScanner{hourly: make(chan struct{}, 1), daily: make(chan struct{}, 1)}
	periodic, err := jobs.AddWorkers(workers, jobs.Config{PumpEvery: time.Second}, jobs.Components{Notifier: engine, Reminders: runs, Scanner: scans})
	if err != nil {
		t.Fatal(err)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:       map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers:      workers,
		PeriodicJobs: periodic,
		TestOnly:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := client.Subscribe(river.EventKindJobCompleted)
	defer unsubscribe()
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Stop(context.Background()) }()
	for done := 0; done < len(users); {
		select {
		case ev := <-events:
			if ev.Job.Kind == (jobs.DeliverArgs{}).Kind() {
				done++
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d delivery jobs completed", done, len(users))
		}
	}
	if msgs := log.All(); len(msgs) != len(users) {
		t.Fatalf("the SMTP server got %d messages, want %d", len(msgs), len(users))
	}
	select {
	case <-runs.runs:
	case <-ctx.Done():
		t.Fatal("the reminder job did not run")
	}
	for name, ran := range map[string]chan struct{}{"hourly": scans.hourly, "daily": scans.daily} {
		select {
		case <-ran:
		case <-ctx.Done():
			t.Fatalf("the %s scan job did not run", name)
		}
	}
	// Every outbox row is sent once, and River ran one delivery job per
	// delivery.
	var sent int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM notification_outbox WHERE status = 'sent'`).Scan(&sent); err != nil || sent != len(users) {
		t.Fatalf("sent %d, %v", sent, err)
	}
	deliverJobs, err := client.JobList(ctx, river.NewJobListParams().Kinds(jobs.DeliverArgs{}.Kind()).States("completed").First(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(deliverJobs.Jobs) != len(users) {
		t.Fatalf("%d delivery jobs completed, want %d", len(deliverJobs.Jobs), len(users))
	}
}
