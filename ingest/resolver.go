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
	// EachMeter calls fn with every installed meter; the resolver keeps
	// what it needs of each as it arrives.
	EachMeter(ctx context.Context, fn func(postgres.Meter) error) error
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

	reloadMu sync.Mutex // one Reload at a time: its walk marks entries by index
	mu       sync.RWMutex
	d        directory
	negative map[string]time.Time // reference → unknown until

	cancel context.CancelFunc
	done   chan struct{}
}

// directory is the cached copy. One entry per meter, held by value in one
// slice and found through maps of indexes; repeated strings are interned:
// 100 000 meters cost about 30 MB.
type directory struct {
	entries []entry
	byRef   map[meterRef]int32
	byExt   map[string]int32 // external id → entry, or ambiguous when several tenants use it
	byID    map[int64]int32
	intern  map[string]string // tenant codes, models, protocols
}

// ambiguous marks an external id that names meters of several tenants.
const ambiguous = -1

type meterRef struct{ tenant, ext string }

// entry is a postgres.Meter without its settings.
type entry struct {
	id                                int64
	interval                          time.Duration
	tenant, ext, serial, model, proto string
	secretHash                        string
}

// is reports whether e caches m as it is.
func (e *entry) is(m *postgres.Meter) bool {
	return e.id == m.ID && e.interval == m.ExpectedInterval && e.tenant == m.TenantCode && e.ext == m.ExternalID &&
		e.serial == m.Serial && e.model == m.Model && e.proto == m.Protocol && e.secretHash == m.SecretHash
}

func (e *entry) meter() postgres.Meter {
	return postgres.Meter{ID: e.id, TenantCode: e.tenant, ExternalID: e.ext, Serial: e.serial, Model: e.model,
		Protocol: e.proto, SecretHash: e.secretHash, ExpectedInterval: e.interval}
}

func newDirectory(sizeHint int) directory {
	return directory{entries: make([]entry, 0, sizeHint), byRef: make(map[meterRef]int32, sizeHint),
		byExt: make(map[string]int32, sizeHint), byID: make(map[int64]int32, sizeHint), intern: map[string]string{}}
}

func (d *directory) internString(s string) string {
	if v, ok := d.intern[s]; ok {
		return v
	}
	d.intern[s] = s
	return s
}

// add caches m, replacing an entry with the same id or reference.
func (d *directory) add(m *postgres.Meter) entry {
	e := entry{id: m.ID, interval: m.ExpectedInterval, tenant: d.internString(m.TenantCode), ext: m.ExternalID,
		serial: m.Serial, model: d.internString(m.Model), proto: d.internString(m.Protocol), secretHash: m.SecretHash}
	i := int32(len(d.entries))
	d.entries = append(d.entries, e)
	d.byRef[meterRef{e.tenant, e.ext}] = i
	d.byID[e.id] = i
	if j, ok := d.byExt[e.ext]; !ok || (j != ambiguous && d.entries[j].id == e.id) {
		d.byExt[e.ext] = i
	} else {
		d.byExt[e.ext] = ambiguous
	}
	return e
}

// NewResolver returns a resolver over dir.
func NewResolver(dir MeterDirectory, cfg ResolverConfig, m *Metrics) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Resolver{dir: dir, cfg: cfg, metrics: m, negative: map[string]time.Time{}, d: newDirectory(0)}, nil
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

// Reload brings the cached directory up to the database's. It reads every
// installed meter and compares it with the cached copy; only when a meter
// was added, changed or removed is a new copy built (sharing the unchanged
// entries' strings) and swapped in. A reload that finds nothing new, the
// usual case, allocates next to nothing, so the periodic refresh does not
// raise the gateway's peak memory.
func (r *Resolver) Reload(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	r.mu.RLock()
	seen := make([]uint64, (len(r.d.entries)+63)/64) // by entry index
	r.mu.RUnlock()
	var (
		changed []postgres.Meter
		same    int
	)
	if err := r.dir.EachMeter(ctx, func(m postgres.Meter) error {
		r.mu.RLock()
		i, ok := r.d.byID[m.ID]
		ok = ok && int(i)/64 < len(seen) && r.d.entries[i].is(&m)
		r.mu.RUnlock()
		if ok {
			seen[i/64] |= 1 << (i % 64)
			same++
		} else {
			changed = append(changed, m)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("ingest: load meter directory: %w", err)
	}

	r.mu.RLock()
	current := len(changed) == 0 && same == len(r.d.byID)
	var d directory
	if !current {
		d = newDirectory(same + len(changed))
		for _, i := range r.d.byID {
			if int(i)/64 < len(seen) && seen[i/64]&(1<<(i%64)) != 0 {
				m := r.d.entries[i].meter()
				d.add(&m)
			}
		}
		for k := range changed {
			d.add(&changed[k])
		}
	}
	r.mu.RUnlock()

	r.mu.Lock()
	if !current {
		// Meters found by Resolve since the walk began are dropped here;
		// the next Resolve finds them again.
		r.d = d
	}
	r.negative = map[string]time.Time{}
	n := len(r.d.byID)
	r.mu.Unlock()
	if r.metrics != nil {
		r.metrics.ResolverMeters.Set(float64(n))
	}
	return nil
}

// ByID returns a cached meter by id (without its settings).
func (r *Resolver) ByID(id int64) (postgres.Meter, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i, ok := r.d.byID[id]
	if !ok {
		return postgres.Meter{}, false
	}
	return r.d.entries[i].meter(), true
}

// Resolve returns the installed meter a reference names. tenant may be
// empty: then externalID must be unique across tenants. Errors wrap
// ErrUnknownMeter, or are transient database errors (the caller retries).
func (r *Resolver) Resolve(ctx context.Context, tenant, externalID string) (postgres.Meter, error) {
	r.mu.RLock()
	var (
		i     int32
		found bool
	)
	if tenant != "" {
		i, found = r.d.byRef[meterRef{tenant, externalID}]
	} else {
		i, found = r.d.byExt[externalID]
		found = found && i != ambiguous
	}
	if found {
		m := r.d.entries[i].meter()
		r.mu.RUnlock()
		r.count("hit")
		return m, nil
	}
	key := tenant + "/" + externalID
	until, negative := r.negative[key]
	r.mu.RUnlock()
	now := time.Now()
	switch {
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
	e := r.d.add(&m)
	r.mu.Unlock()
	return e.meter(), nil
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
