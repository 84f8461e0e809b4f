package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meterd/meterd/billing"
	"github.com/meterd/meterd/billing/municipal"
	"github.com/meterd/meterd/billing/tariff"
)

// Tariff formats.
const (
	FormatTariff    = "tariff"    // a billing/tariff document (electricity)
	FormatMunicipal = "municipal" // municipal masters (water, sewerage)
)

// TariffVersion is a published tariff version.
type TariffVersion struct {
	ID            int64        `json:"id"`
	TenantID      int64        `json:"tenant_id"`
	Service       string       `json:"service"`
	Plan          string       `json:"plan"`
	Version       string       `json:"version"`
	EffectiveFrom billing.Date `json:"effective_from"`
	Format        string       `json:"format"`
	SHA256        string       `json:"sha256"`
	PublishedAt   time.Time    `json:"published_at"`
	PublishedBy   int64        `json:"published_by,omitempty"`
	Document      []byte       `json:"-"`
}

// Publish is a tariff version to publish. For electricity Document is a
// billing/tariff document whose plan must equal Plan and whose version and
// effective date are taken from it; for water and sewerage it is municipal
// masters JSON and Version and EffectiveFrom must be given.
type Publish struct {
	TenantID      int64
	Service       string
	Plan          string
	Document      []byte
	Version       string       // municipal only
	EffectiveFrom billing.Date // municipal only
	PublishedBy   int64        // users.id; 0 for seeds
	Audit         *AuditContext
}

// PublishTariff validates and stores a tariff version verbatim. Invalid
// documents fail with a *billing.ValidationError naming the field (errors.Is
// billing.ErrInvalidInput); a version already published for the plan and
// date fails with billing.ErrConflict. Published versions are immutable.
func (s *Store) PublishTariff(ctx context.Context, p Publish) (TariffVersion, error) {
	// A YAML document is stored as the equivalent JSON.
	doc, err := billing.DocumentJSON(p.Document)
	if err != nil {
		return TariffVersion{}, err
	}
	p.Document = doc
	v := TariffVersion{TenantID: p.TenantID, Service: p.Service, Plan: p.Plan, PublishedBy: p.PublishedBy, Document: p.Document}
	ve := &billing.ValidationError{Subject: "tariff version"}
	switch p.Service {
	case "electricity":
		v.Format = FormatTariff
		t, err := tariff.Parse(p.Document)
		if err != nil {
			return TariffVersion{}, err
		}
		if t.Plan != p.Plan {
			ve.Add("plan", fmt.Sprintf("document names plan %q, publishing as %q", t.Plan, p.Plan))
		}
		v.Version, v.EffectiveFrom = t.Version, t.EffectiveFrom
	case "water", "sewerage":
		v.Format = FormatMunicipal
		if _, err := municipal.DecodeMasters(p.Document); err != nil {
			return TariffVersion{}, err
		}
		v.Version, v.EffectiveFrom = p.Version, p.EffectiveFrom
		if v.Version == "" {
			ve.Add("version", "required")
		}
		if v.EffectiveFrom.IsZero() {
			ve.Add("effective_from", "required")
		}
	default:
		ve.Add("service", "want electricity, water or sewerage")
	}
	if !json.Valid(p.Document) {
		ve.Add("", "not JSON")
	}
	if err := ve.Err(); err != nil {
		return TariffVersion{}, err
	}
	sum := sha256.Sum256(p.Document)
	v.SHA256 = fmt.Sprintf("%x", sum)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var code string
		if err := tx.QueryRow(ctx, `SELECT code FROM tenants WHERE id = $1`, p.TenantID).Scan(&code); err != nil {
			return fmt.Errorf("tenant %d: %w", p.TenantID, classify(err))
		}
		if v.Format == FormatTariff {
			var doc struct {
				Tenant string `json:"tenant"`
			}
			_ = json.Unmarshal(p.Document, &doc)
			if doc.Tenant != code {
				return &billing.ValidationError{Subject: "tariff version", Fields: []billing.FieldError{{Path: "tenant", Problem: fmt.Sprintf("document names tenant %q, publishing for %q", doc.Tenant, code)}}}
			}
		}
		var by *int64
		if p.PublishedBy != 0 {
			by = &p.PublishedBy
		}
		if err := tx.QueryRow(ctx, `INSERT INTO tariff_versions (tenant_id, service, plan, version, effective_from, format, document, sha256, published_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id, published_at`,
			p.TenantID, p.Service, p.Plan, v.Version, v.EffectiveFrom.String(), v.Format, string(p.Document), sum[:], by).Scan(&v.ID, &v.PublishedAt); err != nil {
			return classify(err)
		}
		if s.audit != nil && p.Audit != nil {
			return s.audit.Write(ctx, tx, p.Audit.entry(p.TenantID, "tariff.publish", "tariff_version", fmt.Sprint(v.ID), map[string]any{
				"service": v.Service, "plan": v.Plan, "version": v.Version, "effective_from": v.EffectiveFrom.String(), "sha256": v.SHA256}))
		}
		return nil
	})
	if err != nil {
		return TariffVersion{}, fmt.Errorf("publish tariff %s/%s: %w", p.Service, p.Plan, err)
	}
	return v, nil
}

// Tariffs lists a tenant's tariff versions, optionally of one service and
// plan, newest effective date first, without documents.
func (s *Store) Tariffs(ctx context.Context, tenantID int64, service, plan string) ([]TariffVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, service, plan, version, effective_from::text, format, encode(sha256, 'hex'), published_at, coalesce(published_by, 0)
		FROM tariff_versions WHERE tenant_id = $1 AND ($2 = '' OR service = $2) AND ($3 = '' OR plan = $3)
		ORDER BY service, plan, effective_from DESC LIMIT 1000`, tenantID, service, plan)
	if err != nil {
		return nil, fmt.Errorf("list tariffs: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanTariffVersion)
	if err != nil {
		return nil, fmt.Errorf("list tariffs: %w", err)
	}
	return out, nil
}

// TariffDocument returns one version with its document.
func (s *Store) TariffDocument(ctx context.Context, tenantID, id int64) (TariffVersion, error) {
	var doc string
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, service, plan, version, effective_from::text, format, encode(sha256, 'hex'), published_at, coalesce(published_by, 0), document
		FROM tariff_versions WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return TariffVersion{}, fmt.Errorf("tariff %d: %w", id, err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (TariffVersion, error) {
		var v TariffVersion
		var eff string
		err := r.Scan(&v.ID, &v.TenantID, &v.Service, &v.Plan, &v.Version, &eff, &v.Format, &v.SHA256, &v.PublishedAt, &v.PublishedBy, &doc)
		if err == nil {
			v.EffectiveFrom, err = billing.ParseDate(eff)
		}
		return v, err
	})
	if err != nil {
		return TariffVersion{}, fmt.Errorf("tariff %d: %w", id, classify(err))
	}
	v.Document = []byte(doc)
	return v, nil
}

func scanTariffVersion(r pgx.CollectableRow) (TariffVersion, error) {
	var v TariffVersion
	var eff string
	if err := r.Scan(&v.ID, &v.TenantID, &v.Service, &v.Plan, &v.Version, &eff, &v.Format, &v.SHA256, &v.PublishedAt, &v.PublishedBy); err != nil {
		return v, err
	}
	d, err := billing.ParseDate(eff)
	v.EffectiveFrom = d
	return v, err
}

// Schedules loads every electricity tariff plan of a tenant as schedules
// of their versions, keyed by plan name. A stored document that no longer
// parses (the parser grew stricter) fails the whole load: bills must not
// be computed from a tariff half-read.
func (s *Store) Schedules(ctx context.Context, tenantID int64) (map[string]*tariff.Schedule, error) {
	rows, err := s.pool.Query(ctx, `SELECT plan, document FROM tariff_versions
		WHERE tenant_id = $1 AND format = 'tariff' ORDER BY plan, effective_from`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("load tariffs: %w", err)
	}
	byPlan := map[string][]*tariff.Tariff{}
	var plan, doc string
	_, err = pgx.ForEachRow(rows, []any{&plan, &doc}, func() error {
		t, err := tariff.Parse([]byte(doc))
		if err != nil {
			return fmt.Errorf("plan %s: %w", plan, err)
		}
		byPlan[plan] = append(byPlan[plan], t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load tariffs: %w", err)
	}
	out := make(map[string]*tariff.Schedule, len(byPlan))
	for p, vs := range byPlan {
		sch, err := tariff.NewSchedule(vs...)
		if err != nil {
			return nil, fmt.Errorf("load tariffs: plan %s: %w", p, err)
		}
		out[p] = sch
	}
	return out, nil
}
