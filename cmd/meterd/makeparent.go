package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"
)

// withMakeInterrupt returns ctx, cancelled too when the GNU make whose
// recipe this process is ('make run' execs 'meterd dev') is interrupted on
// its own. make passes SIGTERM on to its recipe but not SIGINT: it counts
// on the terminal sending Ctrl-C's SIGINT to the whole process group, and
// otherwise waits for its recipe forever. A supervisor that sends SIGINT to
// make's process alone would so never see meterd stop. make's handler
// resets the signal to its default action before waiting, which
// /proc/<make>/status shows (SigCgt loses SIGINT): that, or make going
// away, ends this process as Ctrl-C does. Elsewhere (no /proc, another
// parent) ctx is returned as it is.
func withMakeInterrupt(ctx context.Context, log *slog.Logger, every time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	ppid := os.Getppid()
	if !parentIsMake(ppid) || !catches(ppid, sigint) {
		return ctx, cancel
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if os.Getppid() != ppid || !catches(ppid, sigint) {
				log.Info("make was interrupted: stopping as on Ctrl-C")
				cancel()
				return
			}
		}
	}()
	return ctx, cancel
}

const sigint = 2

func parentIsMake(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return false
	}
	name := string(bytes.TrimSpace(comm))
	return name == "make" || name == "gmake"
}

// catches reports whether process pid has a handler for signal sig
// (its SigCgt mask in /proc/<pid>/status).
func catches(pid, sig int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	return sigCaught(status, sig)
}

// sigCaught reads the SigCgt mask of a /proc/<pid>/status text.
func sigCaught(status []byte, sig int) bool {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("SigCgt:"))
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), 16, 64)
		return err == nil && mask&(1<<(sig-1)) != 0
	}
	return false
}
