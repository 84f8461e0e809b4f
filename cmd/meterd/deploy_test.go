package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestDeployManifestsUseRealSettings reads the compose and Kubernetes
// manifests and checks that every meterd setting they set is one some
// meterd command actually reads, so a renamed flag cannot leave a manifest
// silently ignored.
func TestDeployManifestsUseRealSettings(t *testing.T) {
	known := map[string]bool{}
	envName := regexp.MustCompile(`\$(METERD_[A-Z0-9_]+|DATABASE_URL)\]`)
	for _, c := range commands() {
		out := &syncBuffer{}
		run(context.Background(), []string{c.Name, "--help"}, func(string) string { return "" }, out, out)
		for _, m := range envName.FindAllStringSubmatch(out.String(), -1) {
			known[m[1]] = true
		}
	}
	if !known["DATABASE_URL"] || !known["METERD_HTTP_ADDR"] {
		t.Fatalf("help output parsing found too little: %v", known)
	}
	files, err := filepath.Glob("../../deploy/*/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests found: %v", err)
	}
	used := regexp.MustCompile(`\b(METERD_[A-Z0-9_]+)\b`)
	var unknown []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range used.FindAllString(string(b), -1) {
			if !known[m] {
				unknown = append(unknown, filepath.Base(f)+": "+m)
			}
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("manifests set settings no meterd command reads:\n%s", strings.Join(unknown, "\n"))
	}
}

// TestDeployMemoryLimitsInStep: a Kubernetes manifest that gives the Go
// runtime a soft memory limit keeps it between 80 % and 95 % of the
// container's memory limit, so the collector works harder before the pod
// is OOM-killed rather than after.
func TestDeployMemoryLimitsInStep(t *testing.T) {
	files, err := filepath.Glob("../../deploy/k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests found: %v", err)
	}
	soft := regexp.MustCompile(`name: METERD_MEMORY_LIMIT_MIB\s+value: "(\d+)"`)
	hard := regexp.MustCompile(`limits: \{memory: (\d+)(Mi|Gi)\}`)
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// One Deployment per document.
		for _, doc := range strings.Split(string(b), "\n---") {
			s, h := soft.FindStringSubmatch(doc), hard.FindStringSubmatch(doc)
			if s == nil {
				continue
			}
			if h == nil {
				t.Errorf("%s: METERD_MEMORY_LIMIT_MIB without a container memory limit", filepath.Base(f))
				continue
			}
			mib, _ := strconv.Atoi(s[1])
			limit, _ := strconv.Atoi(h[1])
			if h[2] == "Gi" {
				limit *= 1024
			}
			if r := float64(mib) / float64(limit); r < 0.8 || r > 0.95 {
				t.Errorf("%s: METERD_MEMORY_LIMIT_MIB %d is %.0f %% of the %d MiB limit, want 80–95 %%", filepath.Base(f), mib, 100*r, limit)
			}
			checked++
		}
	}
	if checked < 2 {
		t.Fatalf("checked %d manifests, want the api and ingest ones", checked)
	}
}
