package billing_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestVectorCopiesMatchShared checks that the vector files copied into
// testdata (CI may not have the shared directory) are byte-identical to the
// shared originals, when the shared directory is reachable.
func TestVectorCopiesMatchShared(t *testing.T) {
	shared := filepath.Join("..", "..", "shared", "vectors")
	if _, err := os.Stat(shared); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s not present; nothing to compare against", shared)
	}
	for _, name := range []string{"electricity.json", "sewerage.json"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(shared, name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join("testdata", "vectors", name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("testdata/vectors/%s differs from %s; copy it again", name, filepath.Join(shared, name))
			}
		})
	}
}
