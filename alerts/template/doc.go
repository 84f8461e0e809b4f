// Package template renders notification messages: one template file per
// event and locale, defining the blocks subject, text, html, sms,
// push_title and push_body, with the HTML wrapped in a tenant-branded
// layout (name, colour, logo, footer, support contacts).
//
// Defaults are embedded (defaults/<locale>/<event>.tmpl; English for every
// event, Hindi for the consumer-facing ones, a generic default for events
// this binary does not know). A tenant may override any blocks of any
// event in any locale (notification_templates); the blocks it does not
// define come from the default. The locale is a dimension of the template
// set: a recipient's locale, then the tenant's, then English (Locales,
// Pick). text/template renders the plain parts and html/template the HTML
// part, so values are escaped where they land in HTML.
//
// Wording and units follow the meter's kind where a payload names it
// (meter_kind: water meters count litres, shown in kL; electricity Wh, kWh).
//
// template imports only the standard library, shopspring/decimal and meter.
package template
