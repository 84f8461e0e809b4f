package localpg

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes the resources a cluster may use.
type Machine struct {
	MemoryBytes int64 // memory available to PostgreSQL
	CPUs        int   // CPUs available to PostgreSQL
}

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// DetectMachine reads the memory and CPU limits of this machine, honouring
// cgroup v2 limits (unlike timescaledb-tune, which reads host memory and so
// oversizes shared_buffers inside containers).
func DetectMachine() Machine {
	m := Machine{MemoryBytes: 4 * gib, CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, ok := meminfoTotalKB(string(b)); ok {
			m.MemoryBytes = kb * kib
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		s := strings.TrimSpace(string(b))
		if v, err := strconv.ParseInt(s, 10, 64); err == nil && v > 0 && v < m.MemoryBytes {
			m.MemoryBytes = v
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		if n, ok := cgroupCPUs(string(b)); ok && n < m.CPUs {
			m.CPUs = n
		}
	}
	return m
}

func meminfoTotalKB(s string) (int64, bool) {
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			v, err := strconv.ParseInt(f[1], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// cgroupCPUs parses cgroup v2 cpu.max ("max 100000" or "200000 100000").
func cgroupCPUs(s string) (int, bool) {
	f := strings.Fields(s)
	if len(f) != 2 || f[0] == "max" {
		return 0, false
	}
	quota, err1 := strconv.ParseInt(f[0], 10, 64)
	period, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || period <= 0 || quota <= 0 {
		return 0, false
	}
	n := int((quota + period - 1) / period)
	return max(n, 1), true
}

// Tune returns server settings for a machine, following the rules
// timescaledb-tune applies (shared_buffers a quarter of memory,
// effective_cache_size three quarters, maintenance_work_mem 5 % capped at
// 2 GiB, work_mem sized so every connection can run a few sorts, parallelism
// from the CPU count, SSD costs, JIT off, generous lock slots for the many
// partitions or chunks of a time-series table). maxConnections is the server's
// max_connections; timescale adds the background-worker settings the
// extension needs.
func Tune(m Machine, maxConnections int, timescale bool) map[string]string {
	mem := max(m.MemoryBytes, 256*mib)
	cpus := max(m.CPUs, 1)
	maxConnections = max(maxConnections, 10)

	sharedBuffers := mem / 4
	effectiveCache := mem * 3 / 4
	maintenance := min(mem/20, 2*gib)
	perGather := max(cpus/2, 1)
	// timescaledb-tune: (total - shared_buffers) / (connections * 3) / workers per gather.
	workMem := max((mem-sharedBuffers)/int64(maxConnections*3)/int64(perGather), 64*kib)
	backgroundWorkers := 0
	if timescale {
		backgroundWorkers = 8
	}

	s := map[string]string{
		"max_connections":                  strconv.Itoa(maxConnections),
		"shared_buffers":                   pgBytes(sharedBuffers),
		"effective_cache_size":             pgBytes(effectiveCache),
		"maintenance_work_mem":             pgBytes(maintenance),
		"work_mem":                         pgBytes(workMem),
		"wal_buffers":                      "16MB",
		"min_wal_size":                     "512MB",
		"max_wal_size":                     "1GB",
		"checkpoint_completion_target":     "0.9",
		"default_statistics_target":        "100",
		"random_page_cost":                 "1.1",
		"effective_io_concurrency":         "256",
		"jit":                              "off",
		"max_locks_per_transaction":        "512",
		"autovacuum_max_workers":           "10",
		"autovacuum_naptime":               "10",
		"max_worker_processes":             strconv.Itoa(cpus + backgroundWorkers + 3),
		"max_parallel_workers_per_gather":  strconv.Itoa(perGather),
		"max_parallel_workers":             strconv.Itoa(cpus),
		"max_parallel_maintenance_workers": strconv.Itoa(perGather),
	}
	if timescale {
		s["timescaledb.max_background_workers"] = strconv.Itoa(backgroundWorkers)
	}
	return s
}

// pgBytes renders a byte count in the largest whole PostgreSQL unit.
func pgBytes(b int64) string {
	switch {
	case b%gib == 0:
		return fmt.Sprintf("%dGB", b/gib)
	case b%mib == 0 || b >= 64*mib:
		return fmt.Sprintf("%dMB", b/mib)
	default:
		return fmt.Sprintf("%dkB", b/kib)
	}
}
