package account

import (
	"sync"
	"time"
)

// LimitConfig is a token bucket: Burst attempts at once, refilled at Rate
// per Per.
type LimitConfig struct {
	Burst int
	Rate  int
	Per   time.Duration
}

// Limiter is a set of token buckets keyed by string (an address, an
// account), held in memory with at most MaxKeys buckets. It limits one
// instance; behind a load balancer each instance enforces its own share,
// and the per-account lockout in the database is the global backstop.
type Limiter struct {
	cfg     LimitConfig
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewLimiter returns a Limiter holding at most maxKeys buckets (default
// 100,000: a few MiB). now is the clock; nil means time.Now.
func NewLimiter(cfg LimitConfig, maxKeys int, now func() time.Time) *Limiter {
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{cfg: cfg, maxKeys: maxKeys, now: now, buckets: map[string]*bucket{}}
}

// Allow takes one token from key's bucket and reports whether there was
// one. A disabled limiter (Burst 0) always allows.
func (l *Limiter) Allow(key string) bool {
	if l == nil || l.cfg.Burst <= 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.maxKeys {
			l.sweep(now)
		}
		b = &bucket{tokens: float64(l.cfg.Burst), last: now}
		l.buckets[key] = b
	}
	b.refill(l.cfg, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) refill(cfg LimitConfig, now time.Time) {
	if cfg.Per > 0 && now.After(b.last) {
		b.tokens += float64(cfg.Rate) * float64(now.Sub(b.last)) / float64(cfg.Per)
		if b.tokens > float64(cfg.Burst) {
			b.tokens = float64(cfg.Burst)
		}
	}
	b.last = now
}

// sweep drops full buckets (they hold no information); if that frees
// nothing, it drops half the map, an arbitrary half, so memory stays
// bounded under a flood of distinct keys.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		b.refill(l.cfg, now)
		if b.tokens >= float64(l.cfg.Burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxKeys {
		return
	}
	n := len(l.buckets) / 2
	for k := range l.buckets {
		if n == 0 {
			break
		}
		delete(l.buckets, k)
		n--
	}
}
