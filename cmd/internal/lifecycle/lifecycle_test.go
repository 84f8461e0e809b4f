package lifecycle

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

type fake struct {
	name     string
	r        *recorder
	startErr error
	failed   chan error
	stopWait time.Duration
}

func (f *fake) Start(context.Context) error {
	f.r.add("start " + f.name)
	return f.startErr
}

func (f *fake) Stop(ctx context.Context) error {
	f.r.add("stop " + f.name)
	if f.stopWait > 0 {
		select {
		case <-time.After(f.stopWait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fake) Failed() <-chan error { return f.failed }

func TestRunOrdersStartAndStop(t *testing.T) {
	r := &recorder{}
	g := New(nil)
	for _, n := range []string{"db", "jobs", "http"} {
		g.Add(n, &fake{name: n, r: r, failed: make(chan error)})
	}
	up := make(chan struct{})
	g.Add("signal", Funcs{StartFunc: func(context.Context) error { close(up); return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx, time.Second) }()
	<-up
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{"start db", "start jobs", "start http", "stop http", "stop jobs", "stop db"}
	if !slices.Equal(r.log, want) {
		t.Errorf("order %v, want %v", r.log, want)
	}
}

func TestRunStopsOnFailure(t *testing.T) {
	r := &recorder{}
	g := New(nil)
	db := &fake{name: "db", r: r, failed: make(chan error)}
	http := &fake{name: "http", r: r, failed: make(chan error, 1)}
	g.Add("db", db)
	g.Add("http", http)
	boom := errors.New("listener died")
	http.failed <- boom
	err := g.Run(context.Background(), time.Second)
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the failure", err)
	}
	want := []string{"start db", "start http", "stop http", "stop db"}
	if !slices.Equal(r.log, want) {
		t.Errorf("order %v, want %v", r.log, want)
	}
}

func TestRunStopsStartedOnStartError(t *testing.T) {
	r := &recorder{}
	g := New(nil)
	g.Add("db", &fake{name: "db", r: r})
	g.Add("broken", &fake{name: "broken", r: r, startErr: errors.New("port in use")})
	g.Add("never", &fake{name: "never", r: r})
	if err := g.Run(context.Background(), time.Second); err == nil {
		t.Fatal("Run succeeded despite a start error")
	}
	want := []string{"start db", "start broken", "stop db"}
	if !slices.Equal(r.log, want) {
		t.Errorf("order %v, want %v", r.log, want)
	}
}

func TestRunBoundsShutdown(t *testing.T) {
	r := &recorder{}
	g := New(nil)
	g.Add("slow", &fake{name: "slow", r: r, stopWait: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Cancelled before start: nothing starts, nothing stops.
	if err := g.Run(ctx, 50*time.Millisecond); err != nil || len(r.log) != 0 {
		t.Fatalf("Run on a cancelled context: %v, %v", err, r.log)
	}
	up := make(chan struct{})
	g.Add("signal", Funcs{StartFunc: func(context.Context) error { close(up); return nil }})
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx, 50*time.Millisecond) }()
	<-up
	cancel()
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow stop returned %v, want the deadline", err)
	}
}
