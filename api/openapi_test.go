package api_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/meterd/meterd/api"
)

var fiberParam = regexp.MustCompile(`:([A-Za-z][A-Za-z0-9_]*)`)

// TestOpenAPICoversEveryRoute checks that every route the server answers
// is in /api/openapi.json with its method, that every documented operation
// is served, that every schema reference resolves, and that every
// requirement endpoint named by the issue is there. (Responses are checked
// against their schemas by every test request in this package.)
func TestOpenAPICoversEveryRoute(t *testing.T) {
	s := newStack(t)
	r := s.do("GET", "/api/openapi.json", "", nil)
	want(t, r, 200, "")
	doc := r.JSON(t)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	registered := map[string]bool{}
	for _, rt := range s.srv.App().GetRoutes(true) {
		if rt.Method == "HEAD" || rt.Method == "USE" {
			continue // Fiber answers HEAD for every GET; USE is middleware
		}
		p := fiberParam.ReplaceAllString(rt.Path, "{$1}")
		key := rt.Method + " " + p
		registered[key] = true
		item, ok := paths[p].(map[string]any)
		if !ok {
			t.Errorf("%s is served but not documented", key)
			continue
		}
		if _, ok := item[strings.ToLower(rt.Method)]; !ok {
			t.Errorf("%s is served but its method is not documented", key)
		}
	}
	for p, item := range paths {
		for m := range item.(map[string]any) {
			if !registered[strings.ToUpper(m)+" "+p] {
				t.Errorf("%s %s is documented but not served", strings.ToUpper(m), p)
			}
		}
	}
	for _, ep := range []string{
		"POST /api/register", "POST /api/login", "GET /api/user-profiles", "PUT /api/user-profiles",
		"GET /api/users/properties", "POST /api/users/properties", "GET /api/usage-data", "POST /api/usage-data",
		"GET /api/usage-data/history", "POST /api/notifications/reminder", "POST /api/notifications/query",
		"POST /authenticate", "GET /hello",
	} {
		if !registered[ep] {
			t.Errorf("requirement endpoint %s is not served", ep)
		}
	}
	// Bill routes are mounted only with a Billing service (this stack has
	// none) and payments by their own component: nothing answers for them
	// without the component behind it.
	for _, ep := range []string{"GET /api/bills", "GET /api/bills/{billId}", "GET /api/bills/{billId}/pdf", "POST /api/payments"} {
		if registered[ep] {
			t.Errorf("%s is served without a billing service", ep)
		}
	}
	// Every $ref resolves; every operation names its roles and ownership.
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if _, ok := schemas[strings.TrimPrefix(ref, "#/components/schemas/")]; !ok {
					t.Errorf("%s: unresolved %s", at, ref)
				}
			}
			for k, y := range x {
				walk(y, at+"/"+k)
			}
		case []any:
			for i, y := range x {
				walk(y, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc, "#")
	for _, rt := range s.routes {
		op := paths[fiberParam.ReplaceAllString(rt.Path, "{$1}")].(map[string]any)[strings.ToLower(rt.Method)].(map[string]any)
		if _, ok := op["x-meterd-roles"]; !ok || op["x-meterd-ownership"] == "" {
			t.Errorf("%s %s: roles or ownership missing", rt.Method, rt.Path)
		}
		if !rt.Public() {
			if _, ok := op["responses"].(map[string]any)["401"]; !ok {
				t.Errorf("%s %s: guarded route without a documented 401", rt.Method, rt.Path)
			}
		}
	}
}

// TestProblemTypesNameTheExceptions checks that every exception of the
// requirement has its problem type, as /problems/<Name>.
func TestProblemTypesNameTheExceptions(t *testing.T) {
	codes := map[string]bool{}
	for _, k := range api.Kinds() {
		codes[k.Code] = true
	}
	for _, e := range []string{"InvalidCredentials", "AccountLocked", "UnauthorizedAccess", "InvalidInput", "DuplicateProperty",
		"ProfileNotFound", "MeterConnection", "InvalidReading", "DataAccess", "BillingCalculation", "PaymentProcessing",
		"BillNotFound", "NotificationSending", "ReminderSetting", "AbnormalUsage", "InvalidQuery", "SupportTicketNotFound",
		"SupportStaffUnavailable"} {
		if !codes[e] {
			t.Errorf("no problem type for %sException", e)
		}
	}
}

// TestNoPlaintextContactDetailsAtRest reads the database directly after a
// consumer registered, updated the profile and added a property through
// the API: no phone number or address appears anywhere in the tables that
// hold them, in the audit log or in the notification outbox.
func TestNoPlaintextContactDetailsAtRest(t *testing.T) {
	s := newStack(t)
	u := s.register("demo", "plain@example.com", "Kavya Iyer")
	want(t, s.do("PUT", "/api/user-profiles", u.Token, map[string]any{"name": "Kavya Iyer", "phone": "+91 98123 45678",
		"email": "kavya.home@example.net", "address": map[string]any{"line1": "42 Jasmine Lane", "line2": "Koramangala 4th Block",
			"city": "Bengaluru", "postal_code": "560034"}}), 200, "")
	want(t, s.do("POST", "/api/users/properties", u.Token, map[string]any{"label": "Flat",
		"address": map[string]any{"line1": "17 Tamarind Court", "city": "Mysuru", "postal_code": "570001"}, "meter_number": "SN-PLAIN"}), 201, "")
	// Back through the API, the values are there.
	r := s.do("GET", "/api/user-profiles", u.Token, nil)
	if !strings.Contains(string(r.Body), "98123 45678") || !strings.Contains(string(r.Body), "Jasmine Lane") {
		t.Fatalf("profile lost its details: %s", r.Body)
	}
	secrets := []string{"98123", "45678", "Jasmine", "Koramangala", "Tamarind", "kavya.home"}
	ctx := context.Background()
	for _, table := range []string{"user_profiles", "properties", "connections", "users", "audit_log", "notification_outbox", "auth_sessions"} {
		var dump *string
		must(t, s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT string_agg(t::text, E'\n') FROM %s t`, table)).Scan(&dump))
		if dump == nil {
			continue
		}
		for _, sec := range secrets {
			if strings.Contains(*dump, sec) {
				t.Errorf("%q stored in plaintext in %s", sec, table)
			}
		}
	}
	var keyID int
	must(t, s.pool.QueryRow(ctx, `SELECT get_byte(phone_enc, 0) FROM user_profiles WHERE user_id = $1`, u.ID).Scan(&keyID))
	if keyID != 1 {
		t.Errorf("phone sealed under key id %d, want 1 (the current key)", keyID)
	}
}
