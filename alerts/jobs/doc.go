// Package jobs runs alerts' work as River jobs: the notification pump
// (fan-out of the outbox and queueing of due deliveries) and one job per
// delivery attempt, the reminder scheduler, and the detector's scans
// (hourly baseline scan after each completed hour, daily scan, liveness).
// Periodic jobs run on River's elected leader only, so any number of
// instances share the work.
//
// jobs imports alerts/notify, River and pgx (River's transaction type); it
// does no SQL itself and must not import api, ingest or the simulator.
package jobs
