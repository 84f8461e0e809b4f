// Package audit is the audit trail of meterd's API: who did what to which
// record, with the record before and after, from which address, when
// (DESIGN.md invariant 6). Entries are written by the stores of the
// account and support domains in the same transaction as the change they
// describe (audit/postgres), so a change without its entry cannot commit.
//
// Snapshots never carry secrets or sealed values: columns listed by Redact
// are replaced by "[encrypted]" or dropped.
//
// audit imports only the standard library.
package audit
