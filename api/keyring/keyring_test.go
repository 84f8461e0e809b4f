package keyring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func key(id string, fill byte) Key { return Key{ID: id, Secret: bytes.Repeat([]byte{fill}, KeySize)} }

func TestSealOpenRotation(t *testing.T) {
	old, err := New([]Key{key("1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := old.Seal([]byte("+91 98765 43210"), "user_profiles.phone_enc:7")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("98765")) {
		t.Fatal("plaintext visible in sealed value")
	}
	if len(sealed) != len("+91 98765 43210")+Overhead || sealed[0] != 1 {
		t.Fatalf("layout: len %d, key id %d", len(sealed), sealed[0])
	}
	rotated, err := New([]Key{key("2", 2), key("1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := rotated.Open(sealed, "user_profiles.phone_enc:7")
	if err != nil || string(got) != "+91 98765 43210" {
		t.Fatalf("open after rotation: %q, %v", got, err)
	}
	if !rotated.NeedsRotation(sealed) {
		t.Error("value under old key does not need rotation")
	}
	fresh, _ := rotated.Seal(got, "user_profiles.phone_enc:7")
	if fresh[0] != 2 || rotated.NeedsRotation(fresh) {
		t.Errorf("new seal uses key %d", fresh[0])
	}
	tests := []struct {
		name string
		give []byte
		aad  string
		ring *Ring
		want error
	}{
		{"wrong place", sealed, "user_profiles.phone_enc:8", rotated, ErrCorrupt},
		{"tampered", append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1), "user_profiles.phone_enc:7", rotated, ErrCorrupt},
		{"short", sealed[:10], "user_profiles.phone_enc:7", rotated, ErrCorrupt},
		{"key removed", fresh, "user_profiles.phone_enc:7", old, ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.ring.Open(tt.give, tt.aad); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		give []Key
	}{
		{"none", nil},
		{"id not numeric", []Key{key("a", 1)}},
		{"id zero", []Key{key("0", 1)}},
		{"id too large", []Key{key("256", 1)}},
		{"duplicate", []Key{key("1", 1), key("01", 2)}},
		{"short key", []Key{{ID: "1", Secret: []byte("short")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.give); !errors.Is(err, ErrInvalidKeys) {
				t.Errorf("err %v, want ErrInvalidKeys", err)
			}
		})
	}
}

func TestKeyFile(t *testing.T) {
	keys := []Key{key("2", 2), key("1", 1)}
	data := FormatKeyFile("field keys\nfirst is current", keys)
	got, err := ParseKeyFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "2" || !bytes.Equal(got[1].Secret, keys[1].Secret) {
		t.Fatalf("round trip: %+v", got)
	}
	for _, bad := range []string{"", "# only a comment\n", "1\n", "1 !!!\n", "1 AAAA\n1 AAAA\n", "bad/id AAAA\n"} {
		if _, err := ParseKeyFile([]byte(bad)); !errors.Is(err, ErrKeyFile) {
			t.Errorf("%q: err %v, want ErrKeyFile", bad, err)
		}
	}
}

func TestEnsureKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "field.keys")
	first, created, err := EnsureKeyFile(path, "1", KeySize, "test")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode().Perm(), err)
	}
	again, created, err := EnsureKeyFile(path, "1", KeySize, "test")
	if err != nil || created || !bytes.Equal(first[0].Secret, again[0].Secret) {
		t.Fatalf("reuse: created %v, err %v", created, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path); !errors.Is(err, ErrKeyFile) {
		t.Errorf("world-readable file: err %v", err)
	}
}
