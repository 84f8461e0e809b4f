// Package account is meterd's identity and customer domain: users and their
// roles, registration with email verification, login with argon2id
// passwords, lockout, rate limits and an optional TOTP second factor, JWT
// access tokens with rotating refresh-token families, profiles with sealed
// contact details, properties with their connections and meter
// installations, staff provisioning of meters, reminder preferences, and
// the audit trail of every change.
//
// The roles and the ownership rules the API's permission table declares are
// here (Role, Principal, Ownership, Scope): every service method takes the
// caller's Actor and the Scope its route allows, and every query it makes is
// bounded by that scope's tenant and, for consumers, its owner.
//
// Service is the entry point; Store is the port it persists through
// (implemented in account/postgres). account must not import Fiber or any
// HTTP package, nor pgx: SQL lives in account/postgres.
package account
