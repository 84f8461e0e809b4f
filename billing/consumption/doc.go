// Package consumption turns metered energy into what a tariff rates: the
// consumption of a connection over a billing period from daily and hourly
// rollups (missing days estimated from average daily use and flagged),
// energy per time-of-use window from hourly data in the tenant's zone,
// meter spans on one connection summed so that slabs apply once (meter
// replacement, register rollover through meter.StepCounter, CT
// multiplier), and the estimate-then-actual rebill plan: cancel the
// estimated bills and rebill their periods and the current one on the
// averaged actual use.
//
// The input types are what a storage layer fills from readings_daily,
// readings_hourly and meter spans; this package does no I/O.
//
// consumption imports only the standard library, shopspring/decimal,
// meter, the billing root and billing/tariff. It must not import pgx, any
// HTTP framework or adapters, and it keeps no package-level state.
package consumption
