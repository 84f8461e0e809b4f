// Package service is what people do with alerts and notifications through
// the API: read and acknowledge or resolve alerts, read a notification's
// delivery status and retry dead letters, set preferences (channels, quiet
// hours, locale), register push devices, and — for staff — set thresholds,
// the reminder policy, templates and branding. It validates input with the
// domain's rules and hands storage to a Store (alerts/postgres).
//
// service imports alerts and its subpackages; it must not import api,
// ingest or the simulator. What it needs from api (sealing push tokens) is
// the Sealer interface, satisfied by api/keyring's Ring in cmd.
package service
