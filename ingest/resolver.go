package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/postgres"
)

// MeterDirectory is the part of the store the resolver reads.
type MeterDirectory interface {
	Meters(ctx context.Context) ([]postgres.Meter, error)
	MeterByRef(ctx context.Context, tenant, externalID string) (postgres.Meter, error)
	MetersByExternalID(ctx context.Context, externalID string) ([]postgres.Meter, error)
}

// ErrUnknownMeter means a meter reference resolves to no installed meter,
// or to several (a reference without a tenant that two tenants use).
var ErrUnknownMeter = errors.New("unknown meter")

// ResolverConfig tunes the Resolver.
type ResolverConfig struct {
	// Refresh is how often the whole directory is reloaded, to see
	// removed meters and changed serials. Default 5 minutes.
	Refresh time.Duration
	// NegativeTTL is how long a reference found to be unknown stays
	// unknown without asking the database again. Default 30 seconds: a
	// newly provisioned meter is accepted within that time, and a
	// misconfigured device publishing garbage costs one query per TTL.
	NegativeTTL time.Duration
	// MaxNegative bounds the unknown references remembered. Default 100 000.
	MaxNegative int
}

func (c *ResolverConfig) setDefaults() {
	if c.Refresh == 0 {
		c.Refresh = 5 * time.Minute
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = 30 * time.Second
	}
	if c.MaxNegative == 0 {
		c.MaxNegative = 100_000
	}
}

// Validate checks the configuration.
func (c ResolverConfig) Validate() error {
	if c.Refresh < 0 || c.NegativeTTL < 0 || c.MaxNegative < 0 {
		return errors.New("ingest: resolver durations and sizes must not be negative")
	}
	return nil
}

// Resolver maps meter references (tenant code and meters.external_id, or an
// external id alone) to installed meters, from an in-memory copy of the
// directory that it keeps current.
type Resolver struct {
	dir     MeterDirectory
	cfg     ResolverConfig
	metrics *Metrics

	// The cache holds one compact copy of each meter (no settings; shared
	// strings interned), so 100 000 meters cost tens of megabytes.
	mu       sync.RWMutex
	byRef    map[string]*postgres.Meter // "tenant/external_id"
	byExt    map[string][]int64         // external_id → meter ids (several tenants)
	byID     map[int64]*postgres.Meter
	negative map[string]time.Time // reference → unknown until
	intern   map[string]string    // tenant codes, models, protocols

	cancel context.CancelFunc
	done   chan struct{}
}

// NewResolver returns a resolver over dir.
func NewResolver(dir MeterDirectory, cfg ResolverConfig, m *Metrics) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Resolver{dir: dir, cfg: cfg, metrics: m, negative: map[string]time.Time{}, intern: map[string]string{},
		byRef: map[string]*postgres.Meter{}, byExt: map[string][]int64{}, byID: map[int64]*postgres.Meter{}}, nil
}

// Start loads the directory and keeps it current until Stop.
func (r *Resolver) Start(ctx context.Context) error {
	if err := r.Reload(ctx); err != nil {
		return err
	}
	// The loop outlives Start's context, which bounds start-up only.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel, r.done = cancel, make(chan struct{})
	go r.loop(ctx)
	return nil
}

func (r *Resolver) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A failed reload keeps the old copy; the next tick retries.
			_ = r.Reload(ctx)
		}
	}
}

// Stop ends the refresh loop.
func (r *Resolver) Stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reload replaces the cached directory with the database's.
func (r *Resolver) Reload(ctx context.Context) error {
	ms, err := r.dir.Meters(ctx)
	if err != nil {
		return fmt.Errorf("ingest: load meter directory: %w", err)
	}
	byRef := make(map[string]*postgres.Meter, len(ms))
	byExt := make(map[string][]int64, len(ms))
	byID := make(map[int64]*postgres.Meter, len(ms))
	intern := map[string]string{}
	for i := range ms {
		m := compact(&ms[i], intern)
		byRef[m.TenantCode+"/"+m.ExternalID] = m
		byExt[m.ExternalID] = append(byExt[m.ExternalID], m.ID)
		byID[m.ID] = m
	}
	r.mu.Lock()
	r.byRef, r.byExt, r.byID, r.intern = byRef, byExt, byID, intern
	r.negative = map[string]time.Time{}
	r.mu.Unlock()
	if r.metrics != nil {
		r.metrics.ResolverMeters.Set(float64(len(ms)))
	}
	return nil
}

// compact returns a heap copy of m without its settings (the resolver does
// not need them) and with its repeated strings interned.
func compact(m *postgres.Meter, intern map[string]string) *postgres.Meter {
	c := *m
	c.Settings = nil
	for _, s := range []*string{&c.TenantCode, &c.Model, &c.Protocol} {
		if v, ok := intern[*s]; ok {
			*s = v
		} else {
			intern[*s] = *s
		}
	}
	return &c
}

// ByID returns a cached meter by id (without its settings).
func (r *Resolver) ByID(id int64) (postgres.Meter, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.byID[id]
	if !ok {
		return postgres.Meter{}, false
	}
	return *m, true
}

// Resolve returns the installed meter a reference names. tenant may be
// empty: then externalID must be unique across tenants. Errors wrap
// ErrUnknownMeter, or are transient database errors (the caller retries).
func (r *Resolver) Resolve(ctx context.Context, tenant, externalID string) (postgres.Meter, error) {
	key := tenant + "/" + externalID
	now := time.Now()
	r.mu.RLock()
	var (
		mp    *postgres.Meter
		found bool
	)
	if tenant != "" {
		mp, found = r.byRef[key]
	} else if ids := r.byExt[externalID]; len(ids) == 1 {
		mp, found = r.byID[ids[0]]
	}
	until, negative := r.negative[key]
	r.mu.RUnlock()
	switch {
	case found:
		r.count("hit")
		return *mp, nil
	case negative && now.Before(until):
		r.count("negative_hit")
		return postgres.Meter{}, fmt.Errorf("%w: %s", ErrUnknownMeter, refString(tenant, externalID))
	}

	var (
		m   postgres.Meter
		err error
	)
	if tenant != "" {
		m, err = r.dir.MeterByRef(ctx, tenant, externalID)
		if errors.Is(err, postgres.ErrMeterNotFound) {
			err = ErrUnknownMeter
		}
	} else {
		var ms []postgres.Meter
		ms, err = r.dir.MetersByExternalID(ctx, externalID)
		if err == nil && len(ms) != 1 {
			err = ErrUnknownMeter
		}
		if err == nil {
			m = ms[0]
		}
	}
	switch {
	case errors.Is(err, ErrUnknownMeter):
		r.count("miss_unknown")
		r.mu.Lock()
		if len(r.negative) >= r.cfg.MaxNegative {
			r.negative = map[string]time.Time{}
		}
		r.negative[key] = now.Add(r.cfg.NegativeTTL)
		r.mu.Unlock()
		return postgres.Meter{}, fmt.Errorf("%w: %s", ErrUnknownMeter, refString(tenant, externalID))
	case err != nil:
		return postgres.Meter{}, fmt.Errorf("ingest: resolve %s: %w", refString(tenant, externalID), err)
	}
	r.count("miss_found")
	r.mu.Lock()
	c := compact(&m, r.intern)
	r.byRef[c.TenantCode+"/"+c.ExternalID] = c
	if !containsID(r.byExt[c.ExternalID], c.ID) {
		r.byExt[c.ExternalID] = append(r.byExt[c.ExternalID], c.ID)
	}
	r.byID[c.ID] = c
	r.mu.Unlock()
	return *c, nil
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (r *Resolver) count(result string) {
	if r.metrics != nil {
		r.metrics.Lookups.WithLabelValues(result).Inc()
	}
}

func refString(tenant, externalID string) string {
	if tenant == "" {
		return externalID
	}
	return tenant + "/" + externalID
}

// SplitPublisher splits an MQTT username of the form "<tenant>/<meter>" (or
// a bare "<meter>") into tenant and meter reference.
func SplitPublisher(username string) (tenant, externalID string) {
	if t, m, ok := strings.Cut(username, "/"); ok {
		return t, m
	}
	return "", username
}

// unknownMeterReject turns a resolution failure into a reject.
func unknownMeterReject(err error) *meter.RejectError {
	return meter.Reject(meter.ReasonUnknownMeter, "", err)
}
