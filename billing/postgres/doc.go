// Package postgres is the PostgreSQL adapter of billing: tariff versions
// (validated, stored verbatim, immutable), billing settings, demands and
// their append-only details, the collections journal and the ledger API the
// payments component posts through (PostCollection, ReverseCollection),
// bills with gap-free numbers per tenant and financial year, bill runs,
// their skips and dead letters, and the batch transaction a bill run bills
// connections in (BillBatch).
//
// Every SQL statement of billing lives here; pgx types never leave the
// package except in the consumer-side ports it declares (Outbox, Auditor),
// which cmd implements with the API's outbox and audit writers. Database
// failures are translated to billing's sentinels: a refused change of an
// immutable row (SQLSTATE MD001, raised by the schema's triggers) to
// billing.ErrImmutable, unique and exclusion violations to
// billing.ErrConflict, missing rows to billing.ErrNotFound.
//
// The pool must register the shopspring decimal codec for numeric, as
// cmd's pool does (pgx-shopspring-decimal).
//
// Water and sewerage (municipal.go, fee.go): published masters by plan
// (MunicipalPlans), the connection attributes the calculators read
// (MunicipalConnection, PutMunicipalAttributes for taps and pipe size),
// time-based amounts on overdue periodic demands (ApplyTimeBased for the
// scheduler; PostCollection applies them before spreading a payment),
// adhoc penalty and rebate on the oldest unpaid demand (ApplyAdhoc,
// audited), the one-time fee demand of an application with its own bill
// (IssueFeeDemand; demands.kind 'fee', paid separately from periodic
// bills), and the reads behind the calculators' API (EstimateFees,
// CalculateCharge, ConnectionDemands). Amounts come from billing/municipal.
//
// Tests: the ledger's TV18 shape here; bill runs, the electricity ledger
// with arrears and part payments, reversals, the immutability triggers
// and the municipal side in billing/billrun, which drives this package
// end to end.
//
// It imports billing and its pure subpackages, pgx and the standard
// library; it must not import api, alerts, ingest or simulator.
package postgres
