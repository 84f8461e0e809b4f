package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"
)

// guarded is a sender behind its provider's circuit breaker. Only failures
// that say something about the provider count: a refusal for good (an
// invalid number) is the recipient's problem and counts as a success, and
// our own cancellation is not counted at all.
type guarded struct {
	s  Sender
	cb *gobreaker.CircuitBreaker[Receipt]
	m  *Metrics
}

// permanent carries a refusal for good through the breaker.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func newGuarded(s Sender, cfg Config, m *Metrics) *guarded {
	g := &guarded{s: s, m: m}
	trip := uint32(cfg.BreakerTrip)
	g.cb = gobreaker.NewCircuitBreaker[Receipt](gobreaker.Settings{
		Name:        s.Provider(),
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= trip },
		IsSuccessful: func(err error) bool {
			var p permanent
			return err == nil || errors.As(err, &p)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			cfg.Logger.Warn("notification provider circuit", "provider", name, "from", from.String(), "to", to.String())
			m.breaker.WithLabelValues(name).Set(float64(to))
		},
	})
	m.breaker.WithLabelValues(s.Provider()).Set(0)
	return g
}

// send calls the provider through the breaker. An open breaker is a
// retryable failure that did not reach the provider.
func (g *guarded) send(ctx context.Context, m *Message) (Receipt, bool, error) {
	start := time.Now()
	rec, err := g.cb.Execute(func() (Receipt, error) {
		rec, retry, err := g.s.Send(ctx, m)
		if err != nil && !retry {
			return rec, permanent{err}
		}
		return rec, err
	})
	g.m.duration.WithLabelValues(string(g.s.Channel()), g.s.Provider()).Observe(time.Since(start).Seconds())
	if err == nil {
		return rec, false, nil
	}
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return Receipt{}, true, fmt.Errorf("%s: %w", g.s.Provider(), ErrProviderUnavailable)
	}
	var p permanent
	if errors.As(err, &p) {
		return Receipt{}, false, p.error
	}
	return Receipt{}, true, err
}
