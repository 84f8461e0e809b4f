package guard_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/guard"
)

// flaky is a provider whose CreateOrder answers with err (or blocks until
// the context ends when block is set).
type flaky struct {
	calls atomic.Int32
	err   error
	block bool
}

func (f *flaky) Name() string                 { return "flaky" }
func (f *flaky) Supports(payment.Method) bool { return true }
func (f *flaky) CreateOrder(ctx context.Context, _ payment.OrderRequest) (payment.Order, error) {
	f.calls.Add(1)
	if f.block {
		<-ctx.Done()
		return payment.Order{}, ctx.Err()
	}
	if f.err != nil {
		return payment.Order{}, f.err
	}
	return payment.Order{ID: "order_1"}, nil
}
func (f *flaky) FetchOrder(context.Context, string) (payment.OrderState, error) {
	return payment.OrderState{}, nil
}
func (f *flaky) Refund(context.Context, payment.RefundRequest) (payment.RefundState, error) {
	return payment.RefundState{}, nil
}
func (f *flaky) FetchRefund(context.Context, payment.RefundRequest, string) (payment.RefundState, error) {
	return payment.RefundState{}, nil
}
func (f *flaky) ParseWebhook(payment.Header, []byte, time.Time) (payment.Event, error) {
	return payment.Event{}, nil
}
func (f *flaky) VerifyCheckout(string, map[string]string) (string, error) { return "", nil }

func TestBreakerOpensOnProviderFailures(t *testing.T) {
	f := &flaky{err: &payment.ProviderError{Provider: "flaky", Op: "create_order", Status: 503, Temporary: true}}
	g, err := guard.Wrap(f, guard.Config{Failures: 3, OpenFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := g.CreateOrder(ctx, payment.OrderRequest{}); !errors.Is(err, payment.ErrProviderUnavailable) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if g.State() != gobreaker.StateOpen {
		t.Fatalf("state %s after 3 failures", g.State())
	}
	_, err = g.CreateOrder(ctx, payment.OrderRequest{})
	if !errors.Is(err, payment.ErrProviderUnavailable) || !errors.Is(err, payment.ErrProvider) {
		t.Fatalf("open breaker: %v", err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("the provider was called %d times; an open breaker must not call it", n)
	}
}

func TestRefusalsDoNotTrip(t *testing.T) {
	f := &flaky{err: &payment.ProviderError{Provider: "flaky", Op: "create_order", Status: 400, Code: "BAD_REQUEST_ERROR"}}
	g, err := guard.Wrap(f, guard.Config{Failures: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		_, err := g.CreateOrder(context.Background(), payment.OrderRequest{})
		if !errors.Is(err, payment.ErrProvider) || errors.Is(err, payment.ErrProviderUnavailable) {
			t.Fatalf("refusal: %v", err)
		}
	}
	if g.State() != gobreaker.StateClosed {
		t.Errorf("state %s after refusals", g.State())
	}
}

func TestTimeout(t *testing.T) {
	f := &flaky{block: true}
	g, err := guard.Wrap(f, guard.Config{Timeout: 20 * time.Millisecond, Failures: 1, OpenFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.CreateOrder(context.Background(), payment.OrderRequest{})
	if !errors.Is(err, payment.ErrProviderUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	if g.State() != gobreaker.StateOpen {
		t.Errorf("a timeout is a provider failure; state %s", g.State())
	}
}
