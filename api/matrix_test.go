package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/account"
)

// world is two tenants, each with every role and a consumer's property,
// connection, meter and ticket; tenant A has a second consumer (a peer).
type world struct {
	people map[string]session // by principal name
	// resources by target: "own" (consumer A's, tenant A), "peer"
	// (consumer A2's, tenant A), "foreign" (tenant B's).
	res map[string]resources
}

type resources struct {
	property, connection, meter, ticket, user, staff int64
}

func buildWorld(t *testing.T, s *stack) *world {
	w := &world{people: map[string]session{}, res: map[string]resources{}}
	for _, tn := range []string{"demo", "other"} {
		p := tn + "."
		w.people[p+"consumer"] = s.register(tn, "consumer@"+tn+".example.com", "Consumer "+tn)
		w.people[p+"official"] = s.staffUser(tn, "official@"+tn+".example.com", account.RoleOfficial, account.DepartmentMetering)
		w.people[p+"support"] = s.staffUser(tn, "support@"+tn+".example.com", account.RoleSupport, "")
		w.people[p+"admin"] = s.staffUser(tn, "admin@"+tn+".example.com", account.RoleAdmin, "")
	}
	w.people["demo.peer"] = s.register("demo", "peer@demo.example.com", "Peer")
	w.people["demo.official-billing"] = s.staffUser("demo", "billing@demo.example.com", account.RoleOfficial, account.DepartmentBilling)
	owned := func(tn, owner, target string) {
		off := w.people[tn+".official"]
		n := next()
		r := s.do("POST", "/api/meters", off.Token, map[string]any{"external_id": fmt.Sprintf("w-%d", n), "serial": fmt.Sprintf("W-%d", n), "model": "sdm120", "protocol": "mqtt"})
		want(t, r, 201, "")
		meter := num(r.JSON(t)["meter"].(map[string]any)["id"])
		who := w.people[owner]
		r = s.do("POST", "/api/users/properties", who.Token, map[string]any{"address": map[string]any{"line1": "1 Test Road", "city": "Pune", "postal_code": "411001"},
			"meter_number": fmt.Sprintf("W-%d", n), "tariff_plan": "domestic", "sanctioned_load_kw": "5"})
		want(t, r, 201, "")
		p := r.JSON(t)
		conn := num(p["connections"].([]any)[0].(map[string]any)["id"])
		s.readings(meter, time.Now().UTC().Add(-2*time.Hour), 8, 15*time.Minute, 1_000_000, 100)
		want(t, s.do("PUT", "/api/support/staff/me", w.people[tn+".support"].Token, map[string]any{"skills": []string{"meter", "billing"}, "available": true}), 200, "")
		r = s.do("POST", "/api/tickets", who.Token, map[string]any{"category": "meter", "description": "The display flickers at night."})
		want(t, r, 201, "")
		w.res[target] = resources{property: num(p["id"]), connection: conn, meter: meter, ticket: num(r.JSON(t)["id"]),
			user: who.ID, staff: w.people[tn+".support"].ID}
	}
	owned("demo", "demo.consumer", "own")
	owned("demo", "demo.peer", "peer")
	owned("other", "other.consumer", "foreign")
	return w
}

// call is one request of the matrix.
type call struct {
	path string
	body any
}

// fixture returns a request for rt against the target's resources, made
// by caller; ok is false when the route takes no resource (target only
// "own").
func fixture(rt api.Route, res resources, caller session, w *world) call {
	n := next()
	ids := map[string]int64{"propertyId": res.property, "connectionId": res.connection, "meterId": res.meter, "ticketId": res.ticket, "userId": res.user}
	if strings.HasPrefix(rt.Path, "/api/support/staff/") {
		ids["userId"] = res.staff
	}
	path := rt.Path
	for k, v := range ids {
		path = strings.ReplaceAll(path, ":"+k, fmt.Sprint(v))
	}
	key := rt.Method + " " + rt.Path
	switch key {
	case "POST /api/register":
		return call{path, map[string]any{"email": fmt.Sprintf("new%d@example.com", n), "password": password, "name": "New"}}
	case "POST /api/login":
		return call{path, map[string]any{"email": "nobody@example.com", "password": password}}
	case "POST /authenticate":
		return call{path, map[string]any{"username": "nobody@example.com", "password": password}}
	case "POST /api/token/refresh":
		return call{path, map[string]any{"refresh_token": "not-a-token"}}
	case "POST /api/verify-email":
		return call{path, map[string]any{"token": "not-a-token"}}
	case "GET /api/verify-email":
		return call{path + "?token=not-a-token", nil}
	case "POST /api/verify-email/resend":
		return call{path, map[string]any{"email": "nobody@example.com"}}
	case "POST /api/account/password":
		return call{path, map[string]any{"current_password": "not it at all", "new_password": "another long password"}}
	case "POST /api/account/totp/enable":
		return call{path, map[string]any{"code": "000000"}}
	case "POST /api/account/totp/disable":
		return call{path, map[string]any{"password": "wrong", "code": "000000"}}
	case "GET /api/user-profiles":
		return call{fmt.Sprintf("%s?user_id=%d", path, res.user), nil}
	case "PUT /api/user-profiles":
		return call{path, map[string]any{"name": "Renamed"}}
	case "GET /api/users/properties", "GET /api/tickets", "GET /api/meters", "GET /api/admin/users", "GET /api/admin/audit":
		return call{path + "?limit=5", nil}
	case "POST /api/users/properties":
		body := map[string]any{"address": map[string]any{"line1": "2 Test Road", "city": "Pune", "postal_code": "411001"}, "meter_number": fmt.Sprintf("NEW-%d", n)}
		if caller.ID != res.user {
			body["user_id"] = res.user
		}
		return call{path, body}
	case "POST /api/users/properties/:propertyId/connections":
		return call{path, map[string]any{"service": "water", "water_closets": 1}}
	case "PATCH /api/connections/:connectionId":
		return call{path, map[string]any{"tariff_plan": "domestic-2"}}
	case "PUT /api/connections/:connectionId/meter":
		return call{path, map[string]any{"meter_id": res.meter}}
	case "POST /api/meters":
		return call{path, map[string]any{"external_id": fmt.Sprintf("n-%d", n), "serial": fmt.Sprintf("N-%d", n), "model": "x", "protocol": "manual"}}
	case "GET /api/usage-data":
		return call{fmt.Sprintf("%s?meter_id=%d", path, res.meter), nil}
	case "POST /api/usage-data":
		return call{path, map[string]any{"connection_id": res.connection, "import_wh": 1_000_000 + 800 + int64(n)}}
	case "GET /api/usage-data/history":
		return call{fmt.Sprintf("%s?connection_id=%d&granularity=hour", path, res.connection), nil}
	case "POST /api/notifications/query", "POST /api/tickets":
		return call{path, map[string]any{"category": "other", "description": "Just a question about the tariff."}}
	case "POST /api/tickets/:ticketId/comments":
		return call{path, map[string]any{"body": "Any news?"}}
	case "POST /api/tickets/:ticketId/status":
		return call{path, map[string]any{"status": "closed"}}
	case "POST /api/tickets/:ticketId/assign":
		return call{path, map[string]any{"staff_id": w.people["demo.support"].ID}}
	case "PUT /api/support/staff/me", "PUT /api/support/staff/:userId":
		return call{path, map[string]any{"available": true}}
	case "POST /api/notifications/reminder":
		return call{path, map[string]any{"days_before": 3, "channel": "email"}}
	case "POST /api/admin/users":
		return call{path, map[string]any{"email": fmt.Sprintf("staff%d@example.com", n), "password": password, "role": "support", "name": "S"}}
	case "PATCH /api/admin/users/:userId":
		return call{path, map[string]any{"unlock": true}}
	}
	if rt.Body != nil {
		return call{path, map[string]any{}}
	}
	return call{path, nil}
}

// resourceRoute reports whether the route reaches a specific record
// (by path or by a query parameter), so it is tried against other
// owners' and other tenants' records too.
func resourceRoute(rt api.Route) bool {
	if strings.Contains(rt.Path, ":") && rt.Path != "/api/support/staff/me" {
		return true
	}
	switch rt.Method + " " + rt.Path {
	case "GET /api/user-profiles", "GET /api/usage-data", "POST /api/usage-data", "GET /api/usage-data/history":
		return true
	}
	return false
}

// TestAuthorizationMatrix calls every route as every role (and
// anonymously), on the caller's own records, another consumer's records in
// the same tenant, and another tenant's records, and checks the answer the
// permission table declares: 401 without a token, 403 for a role (or an
// official's department) the route does not allow, 404 for records outside
// the caller's scope, and a documented non-authorization answer otherwise.
func TestAuthorizationMatrix(t *testing.T) {
	s := newStack(t)
	w := buildWorld(t, s)
	callers := []string{"anonymous", "demo.consumer", "demo.official", "demo.official-billing", "demo.support", "demo.admin"}
	checked := 0
	for _, rt := range s.routes {
		for _, who := range callers {
			caller := w.people[who]
			if rt.Method == "POST" && rt.Path == "/api/logout" && who != "anonymous" {
				caller = s.login(caller.Tenant, caller.Email) // a session of its own to end
			}
			p := account.Principal{}
			if who != "anonymous" {
				st, err := s.svc.Accounts.Authenticate(t.Context(), caller.Token)
				must(t, err)
				p = st
			}
			targets := []string{"own"}
			if resourceRoute(rt) {
				targets = []string{"own", "peer", "foreign"}
			}
			for _, target := range targets {
				name := fmt.Sprintf("%s %s as %s on %s", rt.Method, rt.Path, who, target)
				t.Run(name, func(t *testing.T) {
					s.t = t
					c := fixture(rt, w.res[target], caller, w)
					r := s.do(rt.Method, c.path, caller.Token, c.body)
					checked++
					switch {
					case who == "anonymous" && !rt.Public():
						want(t, r, 401, "Unauthenticated")
					case !rt.Allows(p):
						want(t, r, 403, "UnauthorizedAccess")
					case r.Code() == "Unauthenticated" && !rt.Public() || r.Code() == "UnauthorizedAccess":
						t.Fatalf("allowed caller refused: %d %s", r.Status, r.Body)
					case r.Status >= 500:
						t.Fatalf("server error %d %s", r.Status, r.Body)
					case target == "foreign" || (target == "peer" && p.Role == account.RoleConsumer):
						if r.Status != 404 {
							t.Fatalf("reached a record outside its scope: %d %s", r.Status, r.Body)
						}
					case r.Status == 404:
						t.Fatalf("own record not found: %s", r.Body)
					}
				})
			}
		}
	}
	s.t = t
	if checked < 300 {
		t.Fatalf("only %d calls checked", checked)
	}
	t.Logf("%d route × caller × target calls checked", checked)

	// Lists never show other owners' or other tenants' records.
	listIDs := func(tok, path, field string) map[int64]bool {
		r := s.do("GET", path, tok, nil)
		want(t, r, 200, "")
		out := map[int64]bool{}
		for _, it := range r.JSON(t)["items"].([]any) {
			out[num(it.(map[string]any)[field])] = true
		}
		return out
	}
	own, peer, foreign := w.res["own"], w.res["peer"], w.res["foreign"]
	consumer, official, support, admin := w.people["demo.consumer"].Token, w.people["demo.official"].Token, w.people["demo.support"].Token, w.people["demo.admin"].Token
	for _, c := range []struct {
		name        string
		ids         map[int64]bool
		must, never []int64
	}{
		{"consumer's properties", listIDs(consumer, "/api/users/properties?limit=200", "id"), []int64{own.property}, []int64{peer.property, foreign.property}},
		{"consumer's tickets", listIDs(consumer, "/api/tickets?limit=200", "id"), []int64{own.ticket}, []int64{peer.ticket, foreign.ticket}},
		{"consumer's meters", listIDs(consumer, "/api/usage-data?limit=200", "meter_id"), []int64{own.meter}, []int64{peer.meter, foreign.meter}},
		{"official's properties", listIDs(official, "/api/users/properties?limit=200", "id"), []int64{own.property, peer.property}, []int64{foreign.property}},
		{"official's meters", listIDs(official, "/api/meters?limit=200", "id"), []int64{own.meter, peer.meter}, []int64{foreign.meter}},
		{"support's tickets", listIDs(support, "/api/tickets?limit=200", "id"), []int64{own.ticket, peer.ticket}, []int64{foreign.ticket}},
		{"admin's users", listIDs(admin, "/api/admin/users?limit=200", "id"), []int64{own.user, peer.user}, []int64{foreign.user}},
		{"support staff", listIDs(support, "/api/support/staff", "user_id"), []int64{own.staff}, []int64{foreign.staff}},
	} {
		for _, id := range c.must {
			if !c.ids[id] {
				t.Errorf("%s: %d missing", c.name, id)
			}
		}
		for _, id := range c.never {
			if c.ids[id] {
				t.Errorf("%s: shows %d, which is out of scope", c.name, id)
			}
		}
	}
	r := s.do("GET", "/api/admin/audit?limit=200", admin, nil)
	for _, it := range r.JSON(t)["items"].([]any) {
		e := it.(map[string]any)
		if e["entity_type"] == "user" && e["entity_id"] == fmt.Sprint(foreign.user) {
			t.Errorf("audit log shows another tenant's user: %v", e)
		}
	}
}

// TestRejectedTokens checks that only tokens this server issued, unexpired,
// for this audience, signed with HS256 and a known key, of a live session,
// are accepted.
func TestRejectedTokens(t *testing.T) {
	s := newStack(t)
	u := s.register("demo", "t@example.com", "T")
	good, err := s.svc.Accounts.Authenticate(t.Context(), u.Token)
	must(t, err)
	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "meterd", "aud": "meterd-api", "sub": fmt.Sprint(good.UserID), "tid": good.TenantID,
			"role": "admin", "sid": good.SessionID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
		tok := jwt.NewWithClaims(m, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		str, err := tok.SignedString(key)
		must(t, err)
		return str
	}
	parts := strings.Split(u.Token, ".")
	var payload map[string]any
	raw, _ := jwt.NewParser().DecodeSegment(parts[1])
	must(t, json.Unmarshal(raw, &payload))
	payload["role"] = "admin"
	forgedBody, _ := json.Marshal(payload)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forgedBody) + "." + parts[2]

	// A control token made the same way is accepted (as the role it names):
	// the failures below fail for their stated reason.
	control := sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(nil), jwtKey.ID)
	want(t, s.do("GET", "/hello", control, nil), 200, "")

	for _, tt := range []struct {
		name  string
		token string
	}{
		{"forged payload (role raised, signature of the original)", forged},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), jwtKey.ID)},
		{"HS512 with the right key", sign(jwt.SigningMethodHS512, jwtKey.Secret, claims(nil), jwtKey.ID)},
		{"wrong key", sign(jwt.SigningMethodHS256, []byte("another key of thirty-two bytes!"), claims(nil), jwtKey.ID)},
		{"unknown key id", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(nil), "test-9")},
		{"expired", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), jwtKey.ID)},
		{"wrong audience", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["aud"] = "payments" }), jwtKey.ID)},
		{"wrong issuer", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["iss"] = "someone" }), jwtKey.ID)},
		{"another user's session", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["sub"] = "999" }), jwtKey.ID)},
		{"other tenant claimed", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["tid"] = good.TenantID + 1 }), jwtKey.ID)},
		{"no such session", sign(jwt.SigningMethodHS256, jwtKey.Secret, claims(func(c jwt.MapClaims) { c["sid"] = 424242 }), jwtKey.ID)},
		{"malformed", "abc.def"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.t = t
			for _, path := range []string{"/hello", "/api/me", "/api/usage-data"} {
				want(t, s.do("GET", path, tt.token, nil), 401, "Unauthenticated")
			}
		})
	}
	s.t = t
	// The control token named the admin role, but the session's user is a
	// consumer: the role comes from the session, not the token.
	want(t, s.do("GET", "/api/admin/users", control, nil), 403, "UnauthorizedAccess")
	// Revoked sessions end their tokens.
	want(t, s.do("POST", "/api/logout", u.Token, nil), 204, "")
	want(t, s.do("GET", "/hello", u.Token, nil), 401, "Unauthenticated")
	want(t, s.do("GET", "/hello", control, nil), 401, "Unauthenticated")
}
