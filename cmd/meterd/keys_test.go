package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

// TestKeysCommand: 'meterd keys generate' writes owner-only key files and
// refuses to overwrite one; 'meterd keys reencrypt' runs against a
// database with those keys.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	runCmd := func(env map[string]string, args ...string) (int, string) {
		var out syncBuffer
		code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &out)
		return code, out.String()
	}
	jwtFile, fieldFile := filepath.Join(dir, "jwt.keys"), filepath.Join(dir, "field.keys")
	if code, out := runCmd(nil, "keys", "generate", "--type", "jwt", "--out", jwtFile); code != 0 || !strings.Contains(out, "wrote jwt key") {
		t.Fatalf("generate jwt: %d %s", code, out)
	}
	if code, out := runCmd(nil, "keys", "generate", "--type", "field", "--id", "7", "--out", fieldFile); code != 0 {
		t.Fatalf("generate field: %d %s", code, out)
	}
	for _, f := range []string{jwtFile, fieldFile} {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v %v", f, st.Mode().Perm(), err)
		}
	}
	if code, out := runCmd(nil, "keys", "generate", "--type", "field", "--out", fieldFile); code == 0 || !strings.Contains(out, "exists") {
		t.Fatalf("overwrite: %d %s", code, out)
	}
	url := schematest.URL(t, schema.ProfilePostgres)
	env := map[string]string{"DATABASE_URL": url, "METERD_JWT_KEYS_FILE": jwtFile, "METERD_FIELD_KEYS_FILE": fieldFile}
	if code, out := runCmd(env, "keys", "reencrypt"); code != 0 || !strings.Contains(out, "re-encrypted 0 sealed values") {
		t.Fatalf("reencrypt: %d %s", code, out)
	}
	if code, out := runCmd(nil, "keys", "rotate"); code == 0 || !strings.Contains(out, "Usage: meterd keys") {
		t.Fatalf("unknown subcommand: %d %s", code, out)
	}
}
