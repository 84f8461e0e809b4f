// Package wait is the gateway's cancellable pause: the pipeline's retry
// backoff, the Modbus poller's gaps between requests and the MQTT source's
// wait for outstanding acknowledgements all sleep through it, so a
// shutdown never waits out a sleep.
//
// wait imports only the standard library.
package wait

import (
	"context"
	"time"
)

// Sleep pauses for d or until ctx ends, and reports whether it slept the
// whole d (false: ctx ended first).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
