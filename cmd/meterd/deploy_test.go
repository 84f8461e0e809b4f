package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
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
