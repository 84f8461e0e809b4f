// Package paymenttest is test support for payments: local HTTP peers that
// speak Razorpay's and Stripe's documented API shapes (and refuse what
// they would refuse), play the payer and send signed webhooks; and ledger
// fixtures that put demands, demand details and an issued bill in a test
// database the way billing/postgres stores them.
//
// It is imported by tests only (billing/payment/..., api). It imports
// billing/payment, pgx and the standard library.
package paymenttest
