// Package detect finds abnormal usage in the rollups: consumption above
// the tariff plan's threshold (AbnormalUsage), hours far from the meter's
// own baseline (same weekday and hour of earlier weeks, median and MAD),
// registers frozen for days (stuck), a register going backwards without a
// recorded reset (tamper), meters silent beyond their expected interval,
// and load above the sanctioned load.
//
// The rules (Deviation, Daily, Silent) are pure functions of rollup series;
// Scanner runs them incrementally per tenant — the hourly scan after each
// completed hour, the daily scan after each completed day, liveness with
// the daily scan — and hands their findings and clears to the store, which
// keeps one unresolved alert per meter and kind and notifies people when
// an alert opens.
//
// Amounts follow the meter's kind (meter.Kind): Wh and kWh for electricity
// meters, litres and kL for water meters.
//
// detect imports alerts and meter (and the standard library); it does no
// SQL and must not import api, ingest or the simulator.
package detect
