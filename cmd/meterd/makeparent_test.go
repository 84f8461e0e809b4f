//go:build unix

package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestSigCaught(t *testing.T) {
	status := []byte("Name:\tmake\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000004a03\n")
	for _, tt := range []struct {
		sig  int
		want bool
	}{{1, true}, {2, true}, {3, false}, {15, true}, {10, true}, {9, false}} {
		if got := sigCaught(status, tt.sig); got != tt.want {
			t.Errorf("sigCaught(SigCgt 4a03, %d) = %v, want %v", tt.sig, got, tt.want)
		}
	}
	if sigCaught([]byte("Name:\tsh\n"), 2) {
		t.Error("a status without SigCgt reports a handler")
	}
}

// TestMakeInterruptHelper is the recipe of TestMakeInterrupt's Makefile,
// not a test of its own.
func TestMakeInterruptHelper(t *testing.T) {
	if os.Getenv("METERD_TEST_MAKE_RECIPE") != "1" {
		t.Skip("the recipe process of TestMakeInterrupt")
	}
	ctx, cancel := withMakeInterrupt(context.Background(), slog.New(slog.DiscardHandler), 20*time.Millisecond)
	defer cancel()
	fmt.Println("watching")
	<-ctx.Done()
	fmt.Println("interrupted")
	os.Exit(0)
}

// TestMakeInterrupt runs a recipe under GNU make as 'make run' runs meterd
// dev, sends SIGINT to make alone (which make does not pass on), and
// checks the recipe stops.
func TestMakeInterrupt(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	mf := filepath.Join(t.TempDir(), "Makefile")
	if err := os.WriteFile(mf, []byte("run:\n\t@exec "+os.Args[0]+" -test.run=^TestMakeInterruptHelper$$\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(makeBin, "-f", mf, "run")
	cmd.Env = append(os.Environ(), "METERD_TEST_MAKE_RECIPE=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group to clean up
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	await := func(want string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the recipe ended before %q", want)
				}
				if l == want {
					return
				}
			case <-timeout:
				t.Fatalf("no %q from the recipe in 30 s", want)
			}
		}
	}
	await("watching")
	if err := cmd.Process.Signal(os.Interrupt); err != nil { // make alone, not its group
		t.Fatal(err)
	}
	await("interrupted")
}
