// Package billing is the billing domain: tariffs, rating, municipal
// calculators, consumption, demands, bills, bill runs, payments and receipts.
//
// The root holds what every billing subpackage shares: the error kinds the
// API maps to problem types (ErrCalculation → BillingCalculation,
// ErrInvalidInput and *ValidationError → InvalidInput), money rounding with
// named modes, civil dates and billing periods, billing cycles and financial
// years, and demands with their append-only demand details per tax head
// (delta computation on recalculation, running round-off, advance and
// payment apportionment), all as pure functions the storage layer calls.
//
// The root also composes a bill from open demands (ComposeBill: current
// charges, arrears, advance, round-off, total, minimum payable).
//
// Subpackages: billing/tariff (tariff documents, validation, rating and
// quotes), billing/municipal (sewerage and water calculators),
// billing/consumption (period consumption from register buckets,
// estimation and rebills), billing/postgres (tariff versions, demands and
// the ledger, bills, bill runs; the payments component posts through its
// PostCollection), billing/billrun (bill runs as River jobs: batches,
// retries, dead letters, scheduling), billing/pdf (bill PDFs).
//
// The package root and its pure subpackages import only the standard
// library, github.com/shopspring/decimal and meter. SQL lives in
// billing/postgres, payment providers in billing/payment/...; billing must
// not import ingest, alerts, api, pgx or any HTTP framework, and has no
// package-level mutable state and no init().
package billing
