// Package keyring seals short sensitive values (contact details, TOTP
// secrets, one-time tokens in the notification outbox) with AES-256-GCM
// under rotating keys, and reads the key files that hold those keys and the
// JWT signing keys.
//
// A sealed value is laid out as
//
//	key id (1 byte) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//
// and is sealed with additional data naming where it is stored
// ("<table>.<column>:<row key>"), so a ciphertext copied into another row or
// column fails to open. The key id selects the key on Open, so rows sealed
// under an old key still open after rotation; Seal always uses the current
// key, and NeedsRotation tells a re-encryption job which values to rewrite.
//
// Other components that need the same keys (payments' saved-method tokens,
// notifications reading contact details) declare their own narrow
// interface (Seal/Open) and are handed a *Ring by cmd.
//
// keyring imports only the standard library.
package keyring
