// Package billrun runs bill runs: per tenant, service and cycle, it bills
// every connection in scope in batches of configurable size, each batch in
// one transaction (billing/postgres.BillBatch); a batch that fails is
// retried connection by connection, and a connection that still fails
// becomes a dead letter with its reason, visible until a later run bills
// it. Re-running creates nothing new: a connection whose period already has
// a live bill is unchanged. Runs are River jobs (RunArgs) created by the
// scheduler (ScheduleArgs, hourly: monthly on the configured day, quarterly
// on that day in January, April, July and October, billing the cycle that
// just ended), by officials through the API, or by `meterd billrun`.
//
// Biller is the pure part: consumption from daily buckets (hourly for
// time-of-use tariffs), rating, demand details and deltas, late-payment
// surcharge on overdue demands, advance consumption and the bill.
//
// Water and sewerage runs rate with billing/municipal under the plan's
// masters in force on the period's first day: the period's demand is
// created from the matched billing slab (metered water graduated over the
// kilolitres its water meters counted) or recalculated by appending only
// the differences (TV08), interest, penalty and rebate are applied to
// earlier demands as of the issue date, and a bill whose demand changed
// is cancelled and replaced; a connection without a plan, masters or a
// matching slab is skipped with the reason. The scheduler also applies
// interest, penalty and rebate to every overdue water and sewerage demand
// (billing/postgres.ApplyTimeBased), as the ledger does before a payment.
//
// billrun imports billing, its pure subpackages, billing/postgres and
// River; it must not import api, alerts, ingest or simulator.
package billrun
