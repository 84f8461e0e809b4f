package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/helmet"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures the HTTP server.
type Config struct {
	// Addr is the listen address. Default ":8080".
	Addr string
	// ReadTimeout bounds reading a request, WriteTimeout writing a
	// response, IdleTimeout a keep-alive connection. Defaults 10 s, 30 s,
	// 120 s.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// RequestTimeout is the deadline handlers' contexts carry. Default 15 s.
	RequestTimeout time.Duration
	// BodyLimit is the largest accepted request body in bytes. Default 1 MiB.
	BodyLimit int
	// DrainDelay is how long /readyz reports 503 before the server stops
	// accepting requests, so load balancers stop routing here first.
	// Default 0.
	DrainDelay time.Duration
	// TrustedProxies are addresses or CIDRs whose X-Forwarded-For is
	// believed for the client address. Default none.
	TrustedProxies []string
	// CORSOrigins are the browser origins ("https://portal.example.com")
	// allowed to call the API from scripts. Default none: no CORS headers,
	// so browsers allow same-origin calls only. The API authenticates with
	// bearer tokens, never cookies, so no credentials mode is offered.
	CORSOrigins []string
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 15 * time.Second
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = 1 << 20
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("api: listen address %q: %w", c.Addr, err)
		}
	}
	for _, d := range []time.Duration{c.ReadTimeout, c.WriteTimeout, c.IdleTimeout, c.RequestTimeout, c.DrainDelay} {
		if d < 0 {
			return errors.New("api: timeouts must not be negative")
		}
	}
	if c.BodyLimit < 0 {
		return errors.New("api: body limit must not be negative")
	}
	for _, o := range c.CORSOrigins {
		u, err := url.Parse(o)
		if o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "") {
			return fmt.Errorf("api: CORS origin %q: want scheme://host[:port], or *", o)
		}
	}
	return nil
}

// ReadyFunc reports whether the service can serve: it returns details to
// show on /readyz (storage profile, schema version …) and an error when not
// ready.
type ReadyFunc func(ctx context.Context) (map[string]any, error)

// Deps are what the server needs from the rest of meterd.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // metrics are registered and served from here
	Ready    ReadyFunc            // nil means always ready
	Version  string
	// Now is the clock for response fields computed at request time
	// (token lifetimes, SLA breaches). Default time.Now.
	Now func() time.Time
	// Listener, when set, is where Start serves instead of listening on
	// Config.Addr: the caller opened it early to know the address before
	// the server starts (meterd dev derives its public URL from it). The
	// server closes it when it stops.
	Listener net.Listener
}

func (d Deps) now() func() time.Time {
	if d.Now == nil {
		return time.Now
	}
	return d.Now
}

// Server is the HTTP server, a component with Start and Stop.
type Server struct {
	cfg      Config
	deps     Deps
	app      *fiber.App
	ln       net.Listener
	draining atomic.Bool
	failed   chan error
	routes   []Route
}

// New builds the server and its routes.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, deps: deps, failed: make(chan error, 1)}
	metrics, err := newHTTPMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "meterd",
		DisableStartupMessage: true,
		// Values from *fiber.Ctx are copied, so nothing a handler keeps
		// can be overwritten when Fiber reuses its buffers.
		Immutable:               true,
		ReadTimeout:             cfg.ReadTimeout,
		WriteTimeout:            cfg.WriteTimeout,
		IdleTimeout:             cfg.IdleTimeout,
		BodyLimit:               cfg.BodyLimit,
		ErrorHandler:            errorHandler(deps.Logger),
		EnableTrustedProxyCheck: len(cfg.TrustedProxies) > 0,
		TrustedProxies:          cfg.TrustedProxies,
		ProxyHeader:             proxyHeader(cfg.TrustedProxies),
	})
	s.app.Use(
		requestIDMiddleware(),
		observeMiddleware(deps.Logger, metrics),
		recoverMiddleware(deps.Logger),
		timeoutMiddleware(cfg.RequestTimeout),
		helmet.New(helmet.Config{
			// The portal loads its own scripts and styles only (the
			// checkout page widens it for one payment provider).
			ContentSecurityPolicy: contentSecurityPolicy,
			// Sent on HTTPS only (behind a TLS-terminating proxy).
			HSTSMaxAge: 365 * 24 * 3600,
		}),
	)
	if len(cfg.CORSOrigins) > 0 {
		s.app.Use(cors.New(cors.Config{
			AllowOrigins:  strings.Join(cfg.CORSOrigins, ","),
			AllowMethods:  "GET,POST,PUT,PATCH,DELETE",
			AllowHeaders:  "Authorization,Content-Type,Idempotency-Key,X-Request-ID",
			ExposeHeaders: "X-Request-ID,Location,Content-Disposition",
			MaxAge:        600,
		}))
	}
	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{Registry: deps.Registry})))
	return s, nil
}

func proxyHeader(trusted []string) string {
	if len(trusted) == 0 {
		return ""
	}
	return fiber.HeaderXForwardedFor
}

// App exposes the Fiber app so that route groups can be mounted before
// Start. It must not be used after Start.
func (s *Server) App() *fiber.App { return s.app }

// Start listens (or takes Deps.Listener) and serves in the background; it
// returns once the listener is open.
func (s *Server) Start(context.Context) error {
	ln := s.deps.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("api: listen: %w", err)
		}
	}
	s.ln = ln
	go func() {
		if err := s.app.Listener(ln); err != nil {
			s.failed <- fmt.Errorf("api: serve: %w", err)
		}
	}()
	s.deps.Logger.Info("HTTP server listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Failed reports a serving error after Start.
func (s *Server) Failed() <-chan error { return s.failed }

// Drain makes /readyz report 503 and waits DrainDelay, so that load
// balancers stop sending requests before the server stops.
func (s *Server) Drain(ctx context.Context) {
	s.draining.Store(true)
	if s.cfg.DrainDelay <= 0 {
		return
	}
	t := time.NewTimer(s.cfg.DrainDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Stop drains, then stops accepting connections and waits for in-flight
// requests until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	if !s.draining.Load() {
		s.Drain(ctx)
	}
	if s.ln == nil {
		return nil
	}
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok", "version": s.deps.Version})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	if s.draining.Load() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "draining"})
	}
	if s.deps.Ready == nil {
		return c.JSON(fiber.Map{"status": "ready"})
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
	defer cancel()
	details, err := s.deps.Ready(ctx)
	body := fiber.Map{"status": "ready"}
	for k, v := range details {
		body[k] = v
	}
	if err != nil {
		body["status"] = "not ready"
		body["error"] = err.Error()
		return c.Status(fiber.StatusServiceUnavailable).JSON(body)
	}
	return c.JSON(body)
}

// contentSecurityPolicy is every page's policy: meterd's own scripts and
// styles only.
var contentSecurityPolicy = contentPolicy(nil, nil, nil, nil)

// contentPolicy is meterd's content security policy with further origins
// admitted for scripts, frames, fetches and images (the portal's checkout
// page); with none it is contentSecurityPolicy.
func contentPolicy(script, frame, connect, img []string) string {
	join := func(xs []string) string { return strings.Join(slices.Compact(slices.Clone(xs)), " ") }
	p := []string{"default-src 'self'"}
	if len(script) > 0 {
		p = append(p, "script-src 'self' "+join(script))
	}
	if len(frame) > 0 {
		p = append(p, "frame-src "+join(frame))
	}
	if len(connect) > 0 {
		p = append(p, "connect-src 'self' "+join(connect))
	}
	return strings.Join(append(p, strings.TrimSpace("img-src 'self' data: "+join(img)),
		"style-src 'self' 'unsafe-inline'", "frame-ancestors 'none'"), "; ")
}
