// Package portal holds the web portal's presentation: the html/template
// pages and fragments, the static files (htmx 2.0.x and uPlot 1.6.x
// vendored from npm by vendor.sh, the portal's own CSS and script), and
// the formatting the pages use (₹ amounts with Indian digit grouping,
// kWh, dates in the tenant's time zone). Everything is embedded in the
// binary: no CDN, no build step at run time, and nothing inline that
// meterd's content security policy (default-src 'self') would block.
//
// The portal's routes, sessions, CSRF checks and handlers live in package
// api (api/portal*.go), which calls the same services as the REST
// handlers. This package must not import api, Fiber, pgx or any domain
// service: it renders what it is given.
package portal

//go:generate sh vendor.sh
