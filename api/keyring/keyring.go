package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
)

// KeySize is the length of a field-encryption key: AES-256.
const KeySize = 32

const (
	nonceSize = 12
	tagSize   = 16
	// Overhead is how many bytes sealing adds to a plaintext.
	Overhead = 1 + nonceSize + tagSize
)

// Errors returned by Open and New.
var (
	// ErrUnknownKey: the value was sealed under a key id the ring does not
	// hold (a key was removed before its rows were re-encrypted).
	ErrUnknownKey = errors.New("keyring: unknown key id")
	// ErrCorrupt: the value is too short, or fails authentication (wrong
	// key, tampered bytes, or sealed for another place).
	ErrCorrupt = errors.New("keyring: sealed value does not open")
	// ErrInvalidKeys: the key set given to New is unusable.
	ErrInvalidKeys = errors.New("keyring: invalid keys")
)

// Ring is a set of AES-256-GCM keys with one current key. It is safe for
// concurrent use.
type Ring struct {
	current byte
	aeads   map[byte]cipher.AEAD
}

// New builds a ring from keys; the first key is current (used by Seal).
// Field-encryption key ids are decimal numbers 1–255.
func New(keys []Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrInvalidKeys)
	}
	r := &Ring{aeads: make(map[byte]cipher.AEAD, len(keys))}
	for i, k := range keys {
		n, err := strconv.Atoi(k.ID)
		if err != nil || n < 1 || n > 255 {
			return nil, fmt.Errorf("%w: key id %q is not a number from 1 to 255", ErrInvalidKeys, k.ID)
		}
		id := byte(n)
		if _, dup := r.aeads[id]; dup {
			return nil, fmt.Errorf("%w: key id %d appears twice", ErrInvalidKeys, id)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("%w: key %d is %d bytes, want %d", ErrInvalidKeys, id, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrInvalidKeys, id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrInvalidKeys, id, err)
		}
		r.aeads[id] = aead
		if i == 0 {
			r.current = id
		}
	}
	return r, nil
}

// CurrentKeyID is the id of the key Seal uses.
func (r *Ring) CurrentKeyID() byte { return r.current }

// Seal encrypts plaintext under the current key, bound to aad (where the
// value is stored). A fresh random nonce is used every time, so sealing the
// same value twice gives different bytes.
func (r *Ring) Seal(plaintext []byte, aad string) ([]byte, error) {
	aead := r.aeads[r.current]
	out := make([]byte, 1+nonceSize, Overhead+len(plaintext))
	out[0] = r.current
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+nonceSize], plaintext, []byte(aad)), nil
}

// Open decrypts a value Seal produced for the same aad.
func (r *Ring) Open(sealed []byte, aad string) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, ErrCorrupt
	}
	aead, ok := r.aeads[sealed[0]]
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrUnknownKey, sealed[0])
	}
	pt, err := aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], []byte(aad))
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// NeedsRotation reports whether sealed was sealed under a key other than
// the current one.
func (r *Ring) NeedsRotation(sealed []byte) bool {
	return len(sealed) > 0 && sealed[0] != r.current
}
