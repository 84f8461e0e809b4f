// Package postgres is the PostgreSQL store of payments (migration 400):
// payments, durable idempotency keys, the provider event inbox, receipts
// with gap-free numbers per tenant and financial year, refunds, saved
// payment methods and reconciliation runs. It implements payment.Store.
//
// Transaction boundaries (each one transaction):
//   - ClaimPayment: the Idempotency-Key row and the payment row (and the
//     audit entry), or the existing key found and locked;
//   - CompletePayment: the provider's order, any state it settled at once,
//     and the key's response snapshot;
//   - ApplyEvent: the event row (unique per provider and event id; a
//     duplicate stops here), the payment row locked, its transition and,
//     for a capture, billing's ledger posting (billing/postgres
//     PostCollection, idempotent by the payment's reference), the receipt
//     and its number (the counter row stays locked until commit: no gaps),
//     the saved method and the payment.succeeded outbox message; for a
//     processed refund, the ledger reversal (ReverseCollection) and the
//     re-posting of what remains after a partial refund;
//   - ClaimRefund / CompleteRefund: as for payments, with the checks of
//     what is left to refund under the payment's row lock.
//
// Locks are taken payment first, then refund, then (inside the ledger) the
// connection, in every path.
//
// It imports billing/payment, billing, billing/postgres (the ledger, in
// the caller's transaction, as billing/postgres's PostCollection is
// designed for) and pgx; it must not import api, alerts or Fiber. The pool
// must register the shopspring decimal codec for numeric, as cmd's does.
package postgres
