// Package guard wraps a payment.Provider so that every call to the
// provider has a timeout and sits behind a circuit breaker
// (sony/gobreaker/v2): after a run of failures the breaker opens and calls
// fail at once with payment.ErrProviderUnavailable (PaymentProcessing)
// instead of piling up on a provider that is down; after a cool-down one
// probe is let through.
//
// Only failures of the provider count: transport errors, timeouts, 429
// and 5xx (errors.Is payment.ErrProviderUnavailable). A refusal (a 4xx
// such as an invalid request) is the caller's problem and does not trip
// the breaker. Webhook parsing and checkout signature checks make no call
// and are not wrapped.
//
// guard imports billing/payment, gobreaker and the standard library; it
// must not import pgx, Fiber or api.
package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/meterd/meterd/billing/payment"
)

// Config configures the guard.
type Config struct {
	// Timeout bounds each provider call. Default 10 s.
	Timeout time.Duration
	// Failures is the number of consecutive failures that opens the
	// breaker. Default 5.
	Failures uint32
	// OpenFor is how long the breaker stays open before a probe. Default
	// 30 s.
	OpenFor time.Duration
	// OnStateChange, when set, is told of breaker state changes (metrics).
	OnStateChange func(provider string, from, to gobreaker.State)
	Logger        *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Timeout < 0 || c.OpenFor < 0 {
		return errors.New("guard: durations must not be negative")
	}
	return nil
}

// Provider is a guarded payment.Provider.
type Provider struct {
	p       payment.Provider
	cfg     Config
	breaker *gobreaker.CircuitBreaker[any]
}

var _ payment.Provider = (*Provider)(nil)

// Wrap returns p behind a timeout and a circuit breaker.
func Wrap(p payment.Provider, cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Failures == 0 {
		cfg.Failures = 5
	}
	if cfg.OpenFor == 0 {
		cfg.OpenFor = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Provider{p: p, cfg: cfg}
	g.breaker = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        p.Name(),
		MaxRequests: 1,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		IsSuccessful: func(err error) bool {
			return err == nil || !errors.Is(err, payment.ErrProviderUnavailable)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			cfg.Logger.Warn("payment provider circuit breaker", "provider", name, "from", from.String(), "to", to.String())
			if cfg.OnStateChange != nil {
				cfg.OnStateChange(name, from, to)
			}
		},
	})
	return g, nil
}

// State is the breaker's state.
func (g *Provider) State() gobreaker.State { return g.breaker.State() }

// call runs f with the timeout inside the breaker.
func call[T any](ctx context.Context, g *Provider, op string, f func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	out, err := g.breaker.Execute(func() (any, error) {
		cctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
		defer cancel()
		v, err := f(cctx)
		if err != nil && errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, payment.ErrProvider) {
			err = &payment.ProviderError{Provider: g.p.Name(), Op: op, Temporary: true, Err: err}
		}
		return v, err
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return zero, fmt.Errorf("%w: %s circuit breaker open: %w", payment.ErrProviderUnavailable, g.p.Name(), err)
	}
	if err != nil {
		return zero, err
	}
	v, _ := out.(T)
	return v, nil
}

// Name implements payment.Provider.
func (g *Provider) Name() string { return g.p.Name() }

// Supports implements payment.Provider.
func (g *Provider) Supports(m payment.Method) bool { return g.p.Supports(m) }

// CreateOrder implements payment.Provider.
func (g *Provider) CreateOrder(ctx context.Context, r payment.OrderRequest) (payment.Order, error) {
	return call(ctx, g, "create_order", func(ctx context.Context) (payment.Order, error) { return g.p.CreateOrder(ctx, r) })
}

// FetchOrder implements payment.Provider.
func (g *Provider) FetchOrder(ctx context.Context, orderID string) (payment.OrderState, error) {
	return call(ctx, g, "fetch_order", func(ctx context.Context) (payment.OrderState, error) { return g.p.FetchOrder(ctx, orderID) })
}

// Refund implements payment.Provider.
func (g *Provider) Refund(ctx context.Context, r payment.RefundRequest) (payment.RefundState, error) {
	return call(ctx, g, "refund", func(ctx context.Context) (payment.RefundState, error) { return g.p.Refund(ctx, r) })
}

// FetchRefund implements payment.Provider.
func (g *Provider) FetchRefund(ctx context.Context, r payment.RefundRequest, refundID string) (payment.RefundState, error) {
	return call(ctx, g, "fetch_refund", func(ctx context.Context) (payment.RefundState, error) { return g.p.FetchRefund(ctx, r, refundID) })
}

// ParseWebhook implements payment.Provider (no call: not guarded).
func (g *Provider) ParseWebhook(h payment.Header, body []byte, now time.Time) (payment.Event, error) {
	return g.p.ParseWebhook(h, body, now)
}

// VerifyCheckout implements payment.Provider (no call: not guarded).
func (g *Provider) VerifyCheckout(orderID string, fields map[string]string) (string, error) {
	return g.p.VerifyCheckout(orderID, fields)
}

// Unwrap returns the wrapped provider.
func (g *Provider) Unwrap() payment.Provider { return g.p }
