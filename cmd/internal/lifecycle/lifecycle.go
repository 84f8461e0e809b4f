// Package lifecycle runs a process's long-lived components: it starts them
// in order, waits until the context ends or one of them fails, and stops
// them in reverse order, each within its share of a shutdown budget. This is
// how meterd gets its ordered shutdown (readiness off first, then HTTP, the
// gateway, the job workers, the pool and last the database).
//
// Only the binaries under cmd use it; it imports only the standard library.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Component is a long-running part of the process.
type Component interface {
	// Start brings the component up and returns once it runs; ctx bounds
	// start-up only.
	Start(ctx context.Context) error
	// Stop shuts it down and returns once everything it started has
	// stopped; ctx bounds the shutdown.
	Stop(ctx context.Context) error
}

// Failer is implemented by components that can fail after Start; a value on
// the channel stops the whole group.
type Failer interface {
	Failed() <-chan error
}

// Funcs adapts two functions to a Component. A nil function does nothing.
type Funcs struct {
	StartFunc func(ctx context.Context) error
	StopFunc  func(ctx context.Context) error
}

// Start calls StartFunc.
func (f Funcs) Start(ctx context.Context) error {
	if f.StartFunc == nil {
		return nil
	}
	return f.StartFunc(ctx)
}

// Stop calls StopFunc.
func (f Funcs) Stop(ctx context.Context) error {
	if f.StopFunc == nil {
		return nil
	}
	return f.StopFunc(ctx)
}

type named struct {
	name string
	c    Component
}

// Group is an ordered set of components.
type Group struct {
	log   *slog.Logger
	comps []named
}

// New returns an empty group that logs to log.
func New(log *slog.Logger) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{log: log}
}

// Add appends a component; it starts after, and stops before, those added
// earlier.
func (g *Group) Add(name string, c Component) {
	g.comps = append(g.comps, named{name, c})
}

// Run starts every component in order, then waits until ctx is done or a
// component fails, then stops the started components in reverse order.
// shutdown is the total stop budget: each component gets what the ones
// before it left over, but at least an even share. Run returns the start
// or run failure if there was one, else the first stop error.
func (g *Group) Run(ctx context.Context, shutdown time.Duration) error {
	started := 0
	var runErr error
	for _, n := range g.comps {
		if err := ctx.Err(); err != nil {
			break
		}
		if err := n.c.Start(ctx); err != nil {
			runErr = fmt.Errorf("start %s: %w", n.name, err)
			break
		}
		g.log.Debug("component started", "component", n.name)
		started++
	}
	if runErr == nil && started == len(g.comps) {
		runErr = g.wait(ctx)
	}
	if runErr != nil {
		g.log.Error("stopping after failure", "err", runErr)
	} else {
		g.log.Info("shutting down")
	}

	deadline := time.Now().Add(shutdown)
	var stopErr error
	for i := started - 1; i >= 0; i-- {
		n := g.comps[i]
		budget := max(time.Until(deadline), shutdown/time.Duration(max(started, 1)))
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
		t0 := time.Now()
		err := n.c.Stop(sctx)
		cancel()
		if err != nil {
			g.log.Error("component stop failed", "component", n.name, "err", err)
			stopErr = errors.Join(stopErr, fmt.Errorf("stop %s: %w", n.name, err))
			continue
		}
		g.log.Debug("component stopped", "component", n.name, "took", time.Since(t0))
	}
	if runErr != nil {
		return runErr
	}
	return stopErr
}

// wait blocks until ctx ends (a normal shutdown, nil) or a component fails.
func (g *Group) wait(ctx context.Context) error {
	failed := make(chan error, len(g.comps))
	stop := make(chan struct{})
	defer close(stop)
	for _, n := range g.comps {
		f, ok := n.c.(Failer)
		if !ok {
			continue
		}
		go func() {
			select {
			case err := <-f.Failed():
				if err == nil {
					err = errors.New("stopped unexpectedly")
				}
				failed <- fmt.Errorf("%s: %w", n.name, err)
			case <-stop:
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}
