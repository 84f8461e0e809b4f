package keyring

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Key is one named secret key.
type Key struct {
	ID     string
	Secret []byte
}

// ErrKeyFile is wrapped by errors about a key file's contents.
var ErrKeyFile = errors.New("keyring: key file")

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseKeyFile reads a key file: one key per line as "<id> <base64 key>",
// the first key current, blank lines and lines starting with # ignored.
// Standard or URL-safe base64, padded or not, is accepted.
func ParseKeyFile(data []byte) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		fields := strings.Fields(s)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%w: line %d: want \"<id> <base64 key>\"", ErrKeyFile, line)
		}
		id := fields[0]
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("%w: line %d: key id %q: use letters, digits, '.', '_' or '-'", ErrKeyFile, line, id)
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: line %d: key id %q appears twice", ErrKeyFile, line, id)
		}
		seen[id] = true
		secret, err := decodeBase64(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: key %q is not base64", ErrKeyFile, line, id)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrKeyFile)
	}
	return keys, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// FormatKeyFile renders keys in the key file format.
func FormatKeyFile(comment string, keys []Key) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(comment, "\n") {
		if l != "" {
			fmt.Fprintf(&b, "# %s\n", l)
		}
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", k.ID, base64.StdEncoding.EncodeToString(k.Secret))
	}
	return b.Bytes()
}

// LoadKeyFile reads and parses the key file at path. It refuses a file
// that others may read (any group or other permission bits), because the
// keys in it protect every sealed value and every session.
func LoadKeyFile(path string) ([]Key, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; make it readable by its owner only (chmod 600)", ErrKeyFile, path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	keys, err := ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// EnsureKeyFile returns the keys in path, creating the file (mode 0600)
// with one new random key of size bytes named id when it does not exist.
// It is for development setups; production key files are provisioned as
// secrets.
func EnsureKeyFile(path, id string, size int, comment string) ([]Key, bool, error) {
	keys, err := LoadKeyFile(path)
	if err == nil {
		return keys, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	secret := make([]byte, size)
	if _, err := rand.Read(secret); err != nil {
		return nil, false, fmt.Errorf("keyring: generate key: %w", err)
	}
	keys = []Key{{ID: id, Secret: secret}}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("keyring: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("keyring: %w", err)
	}
	if _, err := f.Write(FormatKeyFile(comment, keys)); err != nil {
		_ = f.Close()
		return nil, false, fmt.Errorf("keyring: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("keyring: %w", err)
	}
	return keys, true, nil
}
