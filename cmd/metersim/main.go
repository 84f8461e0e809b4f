// Command metersim is the meter simulator: a virtual fleet that publishes
// readings over MQTT (metersim run), answers Modbus TCP polls (metersim
// modbus), provisions itself into a meterd database (metersim provision)
// and checks what the database holds against its ground-truth manifest
// (metersim verify). It is a thin wrapper over the simulator packages.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second Ctrl-C ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
