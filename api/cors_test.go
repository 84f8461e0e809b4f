package api_test

import (
	"net/http/httptest"
	"testing"

	"github.com/meterd/meterd/api"
)

// TestCORSAndSecurityHeaders: browsers may call the API only from the
// configured origins; every answer carries the security headers, and API
// answers are never cached.
func TestCORSAndSecurityHeaders(t *testing.T) {
	if err := (api.Config{CORSOrigins: []string{"portal.example.com"}}).Validate(); err == nil {
		t.Error("origin without a scheme accepted")
	}
	srv, err := api.New(api.Config{CORSOrigins: []string{"https://portal.example.com"}}, api.Deps{})
	must(t, err)
	must(t, srv.Mount(api.Services{}))
	for _, tt := range []struct {
		origin string
		want   string
	}{{"https://portal.example.com", "https://portal.example.com"}, {"https://evil.example.com", ""}} {
		req := httptest.NewRequest("OPTIONS", "/api/login", nil)
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		res, err := srv.App().Test(req, -1)
		must(t, err)
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != tt.want {
			t.Errorf("preflight from %s: allow-origin %q, want %q", tt.origin, got, tt.want)
		}
	}
	res, err := srv.App().Test(httptest.NewRequest("GET", "/api/openapi.json", nil), -1)
	must(t, err)
	res.Body.Close()
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "SAMEORIGIN",
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("no Content-Security-Policy")
	}
}
