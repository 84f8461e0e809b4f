// Package payment takes payments for bills through payment providers
// (Razorpay, Stripe and a built-in sandbox, one subpackage each), so that
// money is never taken twice and never lost.
//
// The root holds the vocabulary and the rules: methods (card, net banking,
// wallet, UPI), the payment state machine (a capture is never undone by a
// later event; only a refund reverses it), the Provider port every adapter
// implements, provider events normalised from webhooks, minor-unit money,
// webhook signature helpers, the card-data detector (a request carrying a
// card number or a CVV is refused: card data never reaches meterd) and the
// Service that runs the flows:
//
//   - Create: an Idempotency-Key per caller is claimed durably together
//     with the payment row; the provider's order is created outside any
//     transaction; the response snapshot is stored and replayed for every
//     retry with the key, and a different request with the key is refused.
//   - HandleWebhook: the provider adapter verifies the signature on the raw
//     body and normalises the event; the Store records it (unique per
//     provider and event id) and, in the same transaction, posts the
//     collection through billing's ledger, issues the receipt with a
//     gap-free number and enqueues payment.succeeded.
//   - Confirm: a checkout callback's signature is verified against the
//     stored order and the provider is asked for the payment's state.
//   - Reconcile: payments and refunds left open past a threshold are looked
//     up at their provider and settled, failed or expired.
//   - Refund: staff refund with a reason; the ledger reverses the posting.
//   - Saved methods keep the provider's token sealed (Sealer), its brand
//     and last four digits.
//
// Every provider call goes through billing/payment/guard (timeout and
// circuit breaker) when cmd wires it.
//
// The root imports only the standard library, shopspring/decimal and
// billing. It must not import pgx, Fiber, api, alerts or an adapter
// subpackage; SQL lives in billing/payment/postgres.
package payment
