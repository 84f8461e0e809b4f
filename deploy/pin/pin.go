//go:build tools

// Package pin holds blank imports of the vetted dependencies that no package
// imports yet, so that `go mod tidy` keeps their pinned versions (the module
// proxy here refuses version lists, so a dropped pin cannot simply be
// re-resolved). Remove a line once real code imports that module. It is
// never built.
package pin

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/eclipse/paho.golang/autopaho"
	_ "github.com/emersion/go-smtp"
	_ "github.com/goburrow/modbus"
	_ "github.com/gofiber/fiber/v2"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/jackc/pgx-shopspring-decimal"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/peterldowns/pgtestdb"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/riverqueue/river"
	_ "github.com/riverqueue/river/riverdriver/riverpgxv5"
	_ "github.com/shopspring/decimal"
	_ "github.com/signintech/gopdf"
	_ "github.com/simonvetter/modbus"
	_ "github.com/sony/gobreaker/v2"
	_ "github.com/wcharczuk/go-chart/v2"
	_ "github.com/wneessen/go-mail"
	_ "golang.org/x/crypto/argon2"
)
