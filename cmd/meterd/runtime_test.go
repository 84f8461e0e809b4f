package main

import (
	"runtime/debug"
	"testing"
)

func TestRuntimeConfig(t *testing.T) {
	for _, tt := range []struct {
		give    runtimeConfig
		wantErr bool
	}{
		{give: runtimeConfig{gcPercent: 400}},
		{give: runtimeConfig{gcPercent: -1, memLimitMiB: 150}},
		{give: runtimeConfig{gcPercent: -2}, wantErr: true},
		{give: runtimeConfig{gcPercent: 100, memLimitMiB: -1}, wantErr: true},
	} {
		if err := tt.give.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v: Validate() = %v, want error %v", tt.give, err, tt.wantErr)
		}
	}
	oldGC, oldLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldGC); debug.SetMemoryLimit(oldLimit) })
	runtimeConfig{gcPercent: 400, memLimitMiB: 150}.apply()
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("GC percent after apply = %d, want 400", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 150<<20 {
		t.Errorf("memory limit after apply = %d, want %d", got, 150<<20)
	}
}

// TestRoleGCDefaults checks the roles' collector defaults: the API trades
// memory for a shorter latency tail, the gateway keeps the runtime's.
func TestRoleGCDefaults(t *testing.T) {
	getenv := func(string) string { return "" }
	var s serveConfig
	fs := newFlags("serve", "", getenv, nil)
	s.register(fs, ":8080", "json")
	var in ingestConfig
	fi := newFlags("ingest", "", getenv, nil)
	in.register(fi)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := fi.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if s.runtime.gcPercent != 400 || in.runtime.gcPercent != 100 {
		t.Errorf("gc-percent defaults: serve %d, ingest %d; want 400 and 100", s.runtime.gcPercent, in.runtime.gcPercent)
	}
}
