// Package municipal holds the municipal sewerage and water calculators,
// implementing the recommended behaviour of the eGov DIGIT rules restated
// in reference/egov-sewerage-rules.md (not the reference system's bugs):
// billing-slab matching by building type, connection type and calculation
// attribute; per-unit charge with a minimum; flat charge; correctly
// graduated metered water; water (and, when configured, sewerage) cess;
// one-time fee estimation (form, scrutiny, meter, other, road cutting,
// one-time fee, security, tax and cess, adhoc amounts); interest, penalty
// and rebate with the due-date day gate and order-independent master
// selection; adhoc penalty and rebate; recalculation as appended deltas
// with the running round-off kept within (−0.5, 0.5].
//
// Every function is pure: it takes masters, connection attributes and
// existing demand details and returns estimates or the details to append.
// The storage layer loads masters and demands and persists the results:
// billing/postgres keeps published masters as tariff versions (Plans:
// versions per plan, At a day) and billing/billrun drives the calculators
// in bill runs.
//
// Metered water volume: a water meter (model starting with "water")
// counts litres in the import register electricity meters count Wh in;
// slabs count kilolitres (Kilolitres, IsWaterMeter).
//
// municipal imports only the standard library, shopspring/decimal, the
// billing root and meter (the meter kinds). It must not import pgx, any HTTP framework or other
// billing subpackages, and it keeps no package-level state.
package municipal
