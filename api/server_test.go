package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

func newTestServer(t *testing.T, ready ReadyFunc) *Server {
	t.Helper()
	s, err := New(Config{BodyLimit: 64}, Deps{Registry: prometheus.NewRegistry(), Ready: ready, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.App().Get("/boom", func(*fiber.Ctx) error { panic("kaboom") })
	s.App().Post("/echo", func(c *fiber.Ctx) error { return c.Send(c.Body()) })
	s.App().Get("/fail", func(*fiber.Ctx) error { return errors.New("secret database detail") })
	s.App().Get("/invalid", func(*fiber.Ctx) error {
		return InvalidInput(FieldError{Field: "email", Message: "is not an email address"})
	})
	return s
}

// result is a response read whole (and closed).
type result struct {
	StatusCode int
	Header     http.Header
}

func do(t *testing.T, s *Server, req *http.Request) (result, []byte) {
	t.Helper()
	resp, err := s.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header}, body
}

func decodeProblem(t *testing.T, resp result, body []byte) Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q, want application/problem+json; body %s", ct, body)
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	if p.Status != resp.StatusCode {
		t.Errorf("problem status %d, response status %d", p.Status, resp.StatusCode)
	}
	if p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-ID") {
		t.Errorf("problem request id %q, header %q", p.RequestID, resp.Header.Get("X-Request-ID"))
	}
	return p
}

func TestProblems(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name       string
		give       *http.Request
		wantStatus int
		wantCode   string
		wantDetail string
	}{
		{"unknown route", httptest.NewRequest("GET", "/nope", nil), 404, "NotFound", "Cannot GET /nope"},
		{"panic", httptest.NewRequest("GET", "/boom", nil), 500, "Internal", "an internal error occurred; quote the request id when reporting it"},
		{"unknown error hides its cause", httptest.NewRequest("GET", "/fail", nil), 500, "Internal", "an internal error occurred; quote the request id when reporting it"},
		{"invalid input", httptest.NewRequest("GET", "/invalid", nil), 400, "InvalidInput", "invalid email"},
		{"wrong method", httptest.NewRequest("DELETE", "/healthz", nil), 405, "MethodNotAllowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, s, tt.give)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			p := decodeProblem(t, resp, body)
			if p.Code != tt.wantCode || p.Type != "/problems/"+tt.wantCode {
				t.Errorf("code %q type %q, want %q", p.Code, p.Type, tt.wantCode)
			}
			if tt.wantDetail != "" && p.Detail != tt.wantDetail {
				t.Errorf("detail %q, want %q", p.Detail, tt.wantDetail)
			}
			if strings.Contains(string(body), "secret") || strings.Contains(string(body), "kaboom") {
				t.Errorf("problem leaks the cause: %s", body)
			}
		})
	}
	// The server still serves after a panic.
	if resp, _ := do(t, s, httptest.NewRequest("GET", "/healthz", nil)); resp.StatusCode != 200 {
		t.Errorf("healthz after panic: %d", resp.StatusCode)
	}
}

func TestInvalidInputNamesFields(t *testing.T) {
	s := newTestServer(t, nil)
	resp, body := do(t, s, httptest.NewRequest("GET", "/invalid", nil))
	p := decodeProblem(t, resp, body)
	if len(p.Errors) != 1 || p.Errors[0].Field != "email" {
		t.Errorf("errors %+v, want the email field", p.Errors)
	}
}

func TestRequestID(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		give     string
		wantSame bool
	}{
		{"abc-123_DEF.4", true},
		{"", false},
		{"evil\nlog line", false},
		{strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.Header.Set("X-Request-ID", tt.give)
		resp, _ := do(t, s, req)
		got := resp.Header.Get("X-Request-ID")
		if (got == tt.give) != tt.wantSame || got == "" || !plainID(got) {
			t.Errorf("X-Request-ID %q -> %q (want same: %v)", tt.give, got, tt.wantSame)
		}
	}
}

func TestReadiness(t *testing.T) {
	var readyErr error
	s := newTestServer(t, func(context.Context) (map[string]any, error) {
		return map[string]any{"profile": "postgres"}, readyErr
	})
	get := func() (int, map[string]any) {
		resp, body := do(t, s, httptest.NewRequest("GET", "/readyz", nil))
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	if code, m := get(); code != 200 || m["status"] != "ready" || m["profile"] != "postgres" {
		t.Errorf("ready: %d %v", code, m)
	}
	readyErr = errors.New("database unreachable")
	if code, m := get(); code != 503 || m["status"] != "not ready" || m["error"] != "database unreachable" {
		t.Errorf("not ready: %d %v", code, m)
	}
	readyErr = nil
	s.Drain(context.Background())
	if code, m := get(); code != 503 || m["status"] != "draining" {
		t.Errorf("draining: %d %v", code, m)
	}
	if resp, _ := do(t, s, httptest.NewRequest("GET", "/healthz", nil)); resp.StatusCode != 200 {
		t.Errorf("healthz while draining: %d (liveness must not fail)", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	s := newTestServer(t, nil)
	for range 3 {
		do(t, s, httptest.NewRequest("GET", "/healthz", nil))
	}
	do(t, s, httptest.NewRequest("GET", "/nope/123", nil))
	_, body := do(t, s, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`meterd_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 3`,
		`meterd_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(body), "/nope/123") {
		t.Error("raw path used as a metric label")
	}
}

func TestProblemFor(t *testing.T) {
	tests := []struct {
		name string
		give error
		want Kind
	}{
		{"api error", Errorf(KindBillNotFound, "bill %d", 7), KindBillNotFound},
		{"wrapped api error", fmt.Errorf("load: %w", Errorf(KindAccountLocked, "locked")), KindAccountLocked},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), KindTimeout},
		{"fiber 404", fiber.ErrNotFound, KindNotFound},
		{"fiber 401", fiber.ErrUnauthorized, KindUnauthenticated},
		{"fiber 408: the client was slow", fiber.ErrRequestTimeout, KindRequestTimeout},
		{"unknown", errors.New("boom"), KindInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ProblemFor(tt.give); got.Code != tt.want.Code || got.Status != tt.want.Status {
				t.Errorf("ProblemFor(%v) = %s/%d, want %s/%d", tt.give, got.Code, got.Status, tt.want.Code, tt.want.Status)
			}
		})
	}
}

// TestBodyLimit goes over a real socket: fasthttp enforces the limit
// while reading, before any middleware runs.
func TestBodyLimit(t *testing.T) {
	s := newTestServer(t, nil)
	s.cfg.Addr = "127.0.0.1:0"
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	resp, err := http.Post("http://"+s.Addr()+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", 65)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if p := decodeProblem(t, result{resp.StatusCode, resp.Header}, body); p.Code != "PayloadTooLarge" {
		t.Errorf("code %q", p.Code)
	}
}

func TestServerStartStop(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("server still answers after Stop")
	}
}

// A listener opened by the caller is served on (its address known before
// Start) and closed by Stop.
func TestServerGivenListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Addr: "127.0.0.1:1"}, Deps{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != ln.Addr().String() {
		t.Fatalf("serving on %s, want the given %s", s.Addr(), ln.Addr())
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		_ = c.Close()
		t.Error("the given listener still accepts after Stop")
	}
}
