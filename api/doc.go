// Package api is meterd's HTTP transport on Fiber v2: routes, request and
// response DTOs, authentication and RBAC, health and metrics endpoints,
// OpenAPI, the web portal, and problem+json (RFC 9457) errors.
//
// Handlers parse and validate input, call a domain service or port and
// render the result; they hold no business rules and run no SQL. problem.go
// is the one place that maps errors to HTTP status codes. Account and
// support-desk logic lives in subpackages that do not import Fiber.
//
// api may import every domain package; no domain package may import api.
package api
