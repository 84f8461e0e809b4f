package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/keyring"
	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/billrun"
	"github.com/meterd/meterd/billing/pdf"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// billingAPI implements api.Billing with billing's store, River (runs are
// jobs the serve instances' workers execute) and the PDF renderer.
type billingAPI struct {
	store *billingpg.Store
	jobs  *river.Client[pgx.Tx] // insert-only
	ring  *keyring.Ring         // opens property addresses for PDFs; nil prints none
	vpa   string                // UPI address on PDFs; "" means billing@<tenant>
}

func newBillingAPI(pool *pgxpool.Pool, ring *keyring.Ring, log *slog.Logger) (*billingAPI, error) {
	jobs, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		return nil, fmt.Errorf("billing jobs: %w", err)
	}
	store := billingpg.NewStore(pool, billingpg.Deps{Outbox: billingOutbox{}, Audit: billingAudit{}, Logger: log})
	return &billingAPI{store: store, jobs: jobs, ring: ring}, nil
}

var _ api.Billing = (*billingAPI)(nil)

func (b *billingAPI) Bills(ctx context.Context, f billingpg.BillFilter) ([]billingpg.StoredBill, int64, error) {
	return b.store.Bills(ctx, f)
}

func (b *billingAPI) Bill(ctx context.Context, tenantID, consumerUserID, id int64) (billingpg.StoredBill, error) {
	return b.store.Bill(ctx, tenantID, consumerUserID, id)
}

func (b *billingAPI) BillPDF(ctx context.Context, tenantID, consumerUserID, id int64) ([]byte, billingpg.StoredBill, error) {
	bill, err := b.store.Bill(ctx, tenantID, consumerUserID, id)
	if err != nil {
		return nil, bill, err
	}
	doc := billDocument(&bill)
	doc.Address = b.address(ctx, tenantID, bill.PropertyID)
	code, _, err := b.store.TenantLocation(ctx, tenantID)
	if err != nil {
		return nil, bill, err
	}
	data, err := pdf.Render(doc, payeeFor(b.vpa, code, bill.TenantName))
	return data, bill, err
}

// address opens the property's sealed address into printable lines; a
// property that cannot be opened prints none rather than failing the bill.
func (b *billingAPI) address(ctx context.Context, tenantID, propertyID int64) []string {
	if b.ring == nil || propertyID == 0 {
		return nil
	}
	ct, err := b.store.SealedAddress(ctx, tenantID, propertyID)
	if err != nil {
		return nil
	}
	plain, err := b.ring.Open(ct, fmt.Sprintf("properties.address:%d", propertyID))
	if err != nil {
		return nil
	}
	var a struct {
		Line1, Line2, City, State, Country string
		PostalCode                         string `json:"postal_code"`
	}
	if json.Unmarshal(plain, &a) != nil {
		return nil
	}
	var out []string
	for _, l := range []string{a.Line1, a.Line2, strings.TrimSpace(a.City + " " + a.PostalCode), a.State} {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (b *billingAPI) PublishTariff(ctx context.Context, p billingpg.Publish) (billingpg.TariffVersion, error) {
	return b.store.PublishTariff(ctx, p)
}

func (b *billingAPI) Tariffs(ctx context.Context, tenantID int64, service, plan string) ([]billingpg.TariffVersion, error) {
	return b.store.Tariffs(ctx, tenantID, service, plan)
}

func (b *billingAPI) TriggerRun(ctx context.Context, r api.RunRequest) (billingpg.Run, error) {
	st, err := b.store.Settings(ctx, r.TenantID, r.Service)
	if err != nil {
		return billingpg.Run{}, err
	}
	_, loc, err := b.store.TenantLocation(ctx, r.TenantID)
	if err != nil {
		return billingpg.Run{}, err
	}
	now := time.Now()
	n := billingpg.NewRun{TenantID: r.TenantID, Service: r.Service, Cycle: st.Cycle, IssueDate: billing.DateOf(now, loc),
		Trigger: billingpg.TriggerOfficial, BatchSize: r.BatchSize, Audit: r.Audit}
	if r.Audit != nil {
		n.RequestedBy = r.Audit.ActorUserID
	}
	if r.Period != nil {
		n.Period = *r.Period
	} else if n.Period, err = billrun.PreviousPeriod(st.Cycle, now, loc); err != nil {
		return billingpg.Run{}, err
	}
	if r.IssueDate != nil {
		n.IssueDate = *r.IssueDate
	}
	if n.BatchSize == 0 {
		n.BatchSize = 500
	}
	if r.Rerun {
		n.Trigger = billingpg.TriggerRerun
	}
	return b.store.CreateRun(ctx, n, billrun.EnqueueTx(b.jobs))
}

func (b *billingAPI) Run(ctx context.Context, tenantID, id int64) (billingpg.Run, error) {
	return b.store.Run(ctx, tenantID, id)
}

func (b *billingAPI) Runs(ctx context.Context, tenantID int64, limit int) ([]billingpg.Run, error) {
	return b.store.Runs(ctx, tenantID, limit)
}

func (b *billingAPI) DeadLetters(ctx context.Context, tenantID int64, service string, limit int) ([]billingpg.DeadLetter, error) {
	return b.store.DeadLetters(ctx, tenantID, service, true, limit)
}

// billing's store serves the municipal routes directly.
var _ api.Municipal = (*billingpg.Store)(nil)
