// Package billing is the billing domain: tariffs, rating, municipal
// calculators, consumption, demands, bills, bill runs, payments and receipts.
//
// The package root and its pure subpackages import only the standard
// library, a decimal type and meter. SQL lives in billing/postgres, payment
// providers in billing/payment/...; billing must not import ingest, alerts,
// api or any HTTP framework.
package billing
