// Package tariff holds tariffs as data: per-tenant, effective-dated tariff
// versions authored as JSON documents, validated on load with errors that
// name the field path, and the pure rating engine that turns a tariff
// schedule and a usage description into bill lines.
//
// A document declares its components — energy charge (flat, telescopic,
// non-telescopic, group-selected, time-of-use), fixed charge (per
// connection, per kW, or whole load at its sanctioned-load band's rate),
// demand charge with a floor, minimum energy charge, per-unit pass-through
// charges, percentage taxes and duties on a declared base, subsidies,
// prompt-payment rebate, late-payment surcharge, net metering and a
// whole-currency round-off — each with a declared rounding. Rating splits a
// period that spans versions by days, prorates slab bounds and monthly
// charges, rounds each line once and totals the rounded lines. Quote is the
// entry point for `meterd billing quote` and the staff quote API.
//
// Money is github.com/shopspring/decimal throughout, never float64; energy
// enters as integer Wh and is converted to kWh with decimals.
//
// tariff imports only the standard library, shopspring/decimal and the
// billing root. It must not import pgx, any HTTP framework, other billing
// subpackages or adapters, and it keeps no package-level state.
package tariff
