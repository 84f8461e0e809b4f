package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	headerRequestID = "X-Request-ID"
	localRequestID  = "meterd.request_id"
)

// requestIDMiddleware gives every request an id: the caller's X-Request-ID
// when it is short and plain (so it cannot inject into logs), else a new
// random one. The id is echoed in the response and in problem documents.
func requestIDMiddleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		assignRequestID(c)
		return c.Next()
	}
}

func assignRequestID(c *fiber.Ctx) string {
	id := c.Get(headerRequestID)
	if !plainID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Locals(localRequestID, id)
	c.Set(headerRequestID, id)
	return id
}

func plainID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}

// requestID returns the id requestIDMiddleware assigned, assigning one if
// the request failed before middleware ran (a body over the limit, say).
func requestID(c *fiber.Ctx) string {
	if id, ok := c.Locals(localRequestID).(string); ok {
		return id
	}
	return assignRequestID(c)
}

// errPanic wraps a recovered panic value.
type errPanic struct{ value any }

func (e errPanic) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// recoverMiddleware turns a panic in a handler into a 500 problem and logs
// the stack once; no panic reaches the client or kills the server.
func recoverMiddleware(log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("handler panicked", "request_id", requestID(c), "method", c.Method(), "path", c.Path(),
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = errPanic{r}
			}
		}()
		return c.Next()
	}
}

// timeoutMiddleware gives handlers a context with the request deadline;
// handlers pass c.UserContext() to everything they call.
func timeoutMiddleware(d time.Duration) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), d)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	}
}

type httpMetrics struct {
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "meterd",
			Subsystem: "http",
			Name:      "request_duration_seconds",
			Help:      "HTTP request duration by route pattern, method and status.",
			Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "meterd", Subsystem: "http", Name: "requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.inflight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	return m, nil
}

// observeMiddleware renders errors (so it sees the final status), then
// records the request in the access log and the duration histogram. The
// route label is the matched pattern, never the raw path, to keep metric
// cardinality bounded.
func observeMiddleware(log *slog.Logger, m *httpMetrics) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		m.inflight.Inc()
		defer m.inflight.Dec()
		if err := c.Next(); err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		route := c.Route().Path
		if status == fiber.StatusNotFound && (route == "/" || route == "") {
			route = "unmatched"
		}
		took := time.Since(start)
		m.duration.WithLabelValues(c.Method(), route, strconv.Itoa(status)).Observe(took.Seconds())
		level := slog.LevelInfo
		switch route {
		case "/healthz", "/readyz", "/metrics":
			level = slog.LevelDebug
		}
		log.Log(c.UserContext(), level, "http request",
			"request_id", requestID(c), "method", c.Method(), "path", c.Path(), "route", route,
			"status", status, "bytes", len(c.Response().Body()), "took", took, "ip", c.IP())
		return nil
	}
}
