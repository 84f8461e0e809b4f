package wait

import (
	"context"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("a short sleep reported cancellation")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan bool)
	go func() { done <- Sleep(ctx, time.Hour) }()
	select {
	case slept := <-done:
		if slept {
			t.Error("a cancelled sleep reported sleeping")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled context did not end the sleep")
	}
}
