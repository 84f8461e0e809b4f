package api

import (
	"strings"
	"testing"

	"github.com/meterd/meterd/api/account"
)

// TestWithinMirror: a portal row may allow no role, department or reach
// that the API row it mirrors does not.
func TestWithinMirror(t *testing.T) {
	consumersOnly := Route{Method: "GET", Path: "/api/x", Roles: everyone, Owner: account.OwnerSelfOrTenant}
	billingOnly := Route{Method: "POST", Path: "/api/y", Roles: officials, Departments: officialsBilling, Owner: account.OwnerTenant}
	selfOnly := Route{Method: "GET", Path: "/api/me", Roles: everyone, Owner: account.OwnerSelf}
	public := Route{Method: "POST", Path: "/api/login"}
	row := func(roles []account.Role, depts []string, owner account.Ownership) PortalRoute {
		return PortalRoute{Route: Route{Method: "GET", Path: "/p", Roles: roles, Departments: depts, Owner: owner}}
	}
	for _, tt := range []struct {
		name    string
		give    PortalRoute
		mirror  Route
		wantErr string
	}{
		{"narrower roles", row(consumers, nil, account.OwnerSelfOrTenant), consumersOnly, ""},
		{"own records only where the API reaches more", row(everyone, nil, account.OwnerSelf), consumersOnly, ""},
		{"consumer reach widened to the tenant", row(consumers, nil, account.OwnerTenant), consumersOnly, "reaches more"},
		{"officials' reach narrowed to their own records", row(officials, officialsBilling, account.OwnerSelf), billingOnly, ""},
		{"every role on the caller's own records", row(everyone, nil, account.OwnerSelf), selfOnly, ""},
		{"support staff where officials only", row(staff, officialsBilling, account.OwnerTenant), billingOnly, "allows support"},
		{"consumers on a staff route", row(everyone, nil, account.OwnerTenant), billingOnly, "allows consumer"},
		{"officials of every department", row(officials, nil, account.OwnerTenant), billingOnly, "every department"},
		{"another department", row(officials, []string{account.DepartmentMetering}, account.OwnerTenant), billingOnly, "department metering"},
		{"the same department", row(officials, []string{account.DepartmentBilling}, account.OwnerTenant), billingOnly, ""},
		{"public over public", row(anyone, nil, account.OwnerNone), public, ""},
		{"public over guarded", row(anyone, nil, account.OwnerNone), selfOnly, "is public"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := withinMirror(tt.give, tt.mirror)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestLocalPath: only paths on this site are followed after log-in.
func TestLocalPath(t *testing.T) {
	for _, tt := range []struct{ give, want string }{
		{"/bills/3", "/bills/3"},
		{"/usage?day=2026-01-02&_hop=1", "/usage?day=2026-01-02"},
		{"", ""},
		{"https://evil.example/", ""},
		{"//evil.example/x", ""},
		{"/\\evil.example", ""},
		{"bills", ""},
		{"javascript:alert(1)", ""},
	} {
		if got := localPath(tt.give); got != tt.want {
			t.Errorf("localPath(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestContentPolicies: every page keeps meterd's own-origin policy; the
// checkout page adds its provider's origins and nothing for the other.
func TestContentPolicies(t *testing.T) {
	if want := "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"; contentSecurityPolicy != want {
		t.Fatalf("base policy %q, want %q", contentSecurityPolicy, want)
	}
	rzp := checkoutPolicy("razorpay_checkout", "https://checkout.razorpay.com")
	for _, want := range []string{"script-src 'self' https://checkout.razorpay.com;", "frame-src https://checkout.razorpay.com https://api.razorpay.com;",
		"img-src 'self' data: https://cdn.razorpay.com;", "frame-ancestors 'none'"} {
		if !strings.Contains(rzp, want) {
			t.Errorf("razorpay policy %q lacks %q", rzp, want)
		}
	}
	if strings.Contains(rzp, "stripe") {
		t.Errorf("razorpay policy admits Stripe: %q", rzp)
	}
	if stp := checkoutPolicy("stripe_confirm", "https://js.stripe.com"); !strings.Contains(stp, "connect-src 'self' https://api.stripe.com;") ||
		!strings.Contains(stp, "script-src 'self' https://js.stripe.com https://*.js.stripe.com;") || strings.Contains(stp, "razorpay") {
		t.Errorf("stripe policy %q", stp)
	}
}
