package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/api/account"
)

// TestRequirementCases walks the requirement's test cases 1–9 and 18–20
// through the HTTP API against a real database. Cases 10–17 (abnormal
// usage, bills, payments, reminders sent) belong to the billing, payments
// and notifications components; their bill endpoints are not served yet.
func TestRequirementCases(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	var asha session

	t.Run("TC1 a user can register a new account", func(t *testing.T) {
		s.t = t
		r := s.do("POST", "/api/register", "", map[string]any{"email": "Asha.Rao@Example.com", "password": password, "name": "Asha Rao",
			"phone": "+91 98765 43210", "address": map[string]any{"line1": "12 MG Road", "city": "Bengaluru", "postal_code": "560001"}})
		want(t, r, 201, "")
		u := r.JSON(t)["user"].(map[string]any)
		if u["email"] != "asha.rao@example.com" || u["role"] != "consumer" || u["email_verified"] != false || num(u["id"]) <= 0 {
			t.Fatalf("registered user %v", u)
		}
		var hash string
		must(t, s.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, num(u["id"])).Scan(&hash))
		if !strings.HasPrefix(hash, "$argon2id$v=19$") || strings.Contains(hash, password) {
			t.Fatalf("stored password %q", hash)
		}
		want(t, s.do("POST", "/api/register", "", map[string]any{"email": "asha.rao@example.com", "password": password, "name": "Again"}), 409, "Conflict")
		r = s.do("POST", "/api/register", "", map[string]any{"email": "not-an-email", "password": "short", "name": ""})
		want(t, r, 400, "InvalidInput")
		if fields := fieldsOf(r); strings.Join(fields, ",") != "email,password,name" {
			t.Errorf("invalid fields %v", fields)
		}
	})

	t.Run("TC2 a registered user can log in with valid credentials", func(t *testing.T) {
		s.t = t
		login := map[string]any{"email": "asha.rao@example.com", "password": password}
		want(t, s.do("POST", "/api/login", "", login), 403, "EmailNotVerified")
		r := s.do("GET", "/api/verify-email?token="+s.outboxToken("asha.rao@example.com"), "", nil)
		want(t, r, 200, "")
		if r.JSON(t)["email_verified"] != true {
			t.Fatal("not verified")
		}
		r = s.do("POST", "/api/login", "", login)
		want(t, r, 200, "")
		m := r.JSON(t)
		if m["token_type"] != "Bearer" || num(m["expires_in"]) != 900 || m["refresh_token"] == "" {
			t.Fatalf("session %v", m)
		}
		asha = session{ID: num(m["user"].(map[string]any)["id"]), Tenant: "demo", Email: "asha.rao@example.com", Token: m["access_token"].(string)}
		want(t, s.do("POST", "/api/login", "", map[string]any{"email": "asha.rao@example.com", "password": "wrong password!"}), 401, "InvalidCredentials")
		want(t, s.do("POST", "/api/login", "", map[string]any{"email": "nobody@example.com", "password": password}), 401, "InvalidCredentials")
		// The requirement's /authenticate and /hello.
		r = s.do("POST", "/authenticate", "", map[string]any{"username": "asha.rao@example.com", "password": password})
		want(t, r, 200, "")
		jwtTok := r.JSON(t)["token"].(string)
		r = s.do("GET", "/hello", jwtTok, nil)
		want(t, r, 200, "")
		if r.JSON(t)["message"] != "Hello World" {
			t.Fatalf("hello %s", r.Body)
		}
		// Rotation: the refresh token works once; reusing it ends the session.
		rt := m["refresh_token"].(string)
		r = s.do("POST", "/api/token/refresh", "", map[string]any{"refresh_token": rt})
		want(t, r, 200, "")
		want(t, s.do("POST", "/api/token/refresh", "", map[string]any{"refresh_token": rt}), 401, "Unauthenticated")
		want(t, s.do("GET", "/api/me", r.JSON(t)["access_token"].(string), nil), 401, "Unauthenticated")
		asha = s.login("demo", "asha.rao@example.com")
	})

	t.Run("TC3 an unauthorized user is restricted from protected features", func(t *testing.T) {
		s.t = t
		want(t, s.do("GET", "/hello", "", nil), 401, "Unauthenticated")
		want(t, s.do("GET", "/api/user-profiles", "", nil), 401, "Unauthenticated")
		want(t, s.do("GET", "/api/usage-data", "not.a.token", nil), 401, "Unauthenticated")
		want(t, s.do("GET", "/api/admin/users", asha.Token, nil), 403, "UnauthorizedAccess")
		want(t, s.do("POST", "/api/meters", asha.Token, map[string]any{"external_id": "x", "serial": "x", "model": "x", "protocol": "manual"}), 403, "UnauthorizedAccess")
		// Logged out: the token stops working.
		other := s.register("demo", "ravi@example.com", "Ravi")
		want(t, s.do("POST", "/api/logout", other.Token, nil), 204, "")
		want(t, s.do("GET", "/api/me", other.Token, nil), 401, "Unauthenticated")
	})

	var official, billingOfficial, agent, admin session
	t.Run("TC4 roles are assigned and permissions enforced", func(t *testing.T) {
		s.t = t
		admin = s.staffUser("demo", "admin@example.com", account.RoleAdmin, "")
		r := s.do("POST", "/api/admin/users", admin.Token, map[string]any{"email": "meera@example.com", "password": password, "role": "official", "department": "metering", "name": "Meera"})
		want(t, r, 201, "")
		if u := r.JSON(t); u["role"] != "official" || u["department"] != "metering" || u["email_verified"] != true {
			t.Fatalf("official %v", u)
		}
		want(t, s.do("POST", "/api/admin/users", admin.Token, map[string]any{"email": "x@example.com", "password": password, "role": "official", "name": "X"}), 400, "InvalidInput")
		want(t, s.do("POST", "/api/admin/users", admin.Token, map[string]any{"email": "sunil@example.com", "password": password, "role": "support", "name": "Sunil"}), 201, "")
		want(t, s.do("POST", "/api/admin/users", admin.Token, map[string]any{"email": "bina@example.com", "password": password, "role": "official", "department": "billing", "name": "Bina"}), 201, "")
		official, agent, billingOfficial = s.login("demo", "meera@example.com"), s.login("demo", "sunil@example.com"), s.login("demo", "bina@example.com")
		for _, c := range []struct {
			who  session
			role string
		}{{asha, "consumer"}, {official, "official"}, {agent, "support"}, {admin, "admin"}} {
			if got := s.do("GET", "/api/me", c.who.Token, nil).JSON(t)["role"]; got != c.role {
				t.Errorf("%s has role %v, want %s", c.who.Email, got, c.role)
			}
		}
		meter := map[string]any{"external_id": "m-1001", "serial": "SN-1001", "model": "sdm120", "protocol": "mqtt"}
		want(t, s.do("POST", "/api/meters", agent.Token, meter), 403, "UnauthorizedAccess")
		want(t, s.do("POST", "/api/meters", billingOfficial.Token, meter), 403, "UnauthorizedAccess")
		r = s.do("POST", "/api/meters", official.Token, meter)
		want(t, r, 201, "")
		creds := r.JSON(t)["mqtt_credentials"].(map[string]any)
		if creds["username"] != "demo/m-1001" || len(creds["password"].(string)) < 32 || creds["topic"] != "meters/demo/m-1001/reading" {
			t.Fatalf("credentials %v", creds)
		}
		r = s.do("GET", fmt.Sprintf("/api/meters/%d", num(r.JSON(t)["meter"].(map[string]any)["id"])), official.Token, nil)
		if strings.Contains(string(r.Body), creds["password"].(string)) {
			t.Fatal("MQTT password shown twice")
		}
		want(t, s.do("POST", "/api/meters", official.Token, map[string]any{"external_id": "m-1002", "serial": "SN-1002", "model": "sdm630", "protocol": "modbus",
			"settings": map[string]any{"address": "10.1.1.5:502", "unit_id": 4, "map": "sdm630"}}), 201, "")
		r = s.do("POST", "/api/meters", official.Token, map[string]any{"external_id": "m-1003", "serial": "SN-1003", "model": "x", "protocol": "modbus",
			"settings": map[string]any{"address": "nowhere", "unit_id": 400, "map": "nope"}})
		want(t, r, 400, "InvalidInput")
		if f := fieldsOf(r); strings.Join(f, ",") != "settings.address,settings.unit_id,settings.map" {
			t.Errorf("modbus fields %v", f)
		}
	})

	t.Run("TC5 users can view and update their personal information", func(t *testing.T) {
		s.t = t
		r := s.do("GET", "/api/user-profiles", asha.Token, nil)
		want(t, r, 200, "")
		if p := r.JSON(t); p["name"] != "Asha Rao" || p["phone"] != "+91 98765 43210" || p["address"].(map[string]any)["country"] != "IN" {
			t.Fatalf("profile %v", p)
		}
		r = s.do("PUT", "/api/user-profiles", asha.Token, map[string]any{"name": "Asha R. Rao", "email": "asha.contact@example.com",
			"phone": "+91 90000 11111", "address": map[string]any{"line1": "7 Lake View Road", "city": "Pune", "state": "Maharashtra", "postal_code": "411001"}})
		want(t, r, 200, "")
		r = s.do("PUT", "/api/user-profiles", asha.Token, map[string]any{"name": "", "phone": "call me", "address": map[string]any{"city": "Pune"}})
		want(t, r, 400, "InvalidInput")
		if f := fieldsOf(r); strings.Join(f, ",") != "name,phone,address.line1,address.postal_code" {
			t.Errorf("invalid fields %v", f)
		}
		want(t, s.do("PUT", "/api/user-profiles", asha.Token, map[string]any{"name": "x", "nickname": "y"}), 400, "InvalidInput")
		// Support staff may look a consumer up; another consumer may not.
		want(t, s.do("GET", fmt.Sprintf("/api/user-profiles?user_id=%d", asha.ID), agent.Token, nil), 200, "")
		ravi := s.login("demo", "ravi@example.com")
		want(t, s.do("GET", fmt.Sprintf("/api/user-profiles?user_id=%d", asha.ID), ravi.Token, nil), 404, "ProfileNotFound")
		want(t, s.do("GET", "/api/user-profiles?user_id=999999", agent.Token, nil), 404, "ProfileNotFound")
	})

	var conn1 int64
	t.Run("TC6 users can add multiple properties", func(t *testing.T) {
		s.t = t
		// The requirement's flat form: address, meter number, tariff plan.
		r := s.do("POST", "/api/users/properties", asha.Token, map[string]any{"label": "Home",
			"address":      map[string]any{"line1": "7 Lake View Road", "city": "Pune", "postal_code": "411001"},
			"meter_number": "SN-1001", "tariff_plan": "domestic-lt", "sanctioned_load_kw": "5", "usage_category": "RESIDENTIAL"})
		want(t, r, 201, "")
		p := r.JSON(t)
		c := p["connections"].([]any)[0].(map[string]any)
		if c["service"] != "electricity" || c["status"] != "active" || c["tariff_plan"] != "domestic-lt" || c["sanctioned_load_kw"] != "5" ||
			c["meter"].(map[string]any)["serial"] != "SN-1001" || !strings.HasPrefix(c["consumer_code"].(string), "E") {
			t.Fatalf("connection %v", c)
		}
		conn1 = num(c["id"])
		// The full form: a shop with electricity (meter not provisioned
		// yet: pending) and sewerage billing attributes.
		r = s.do("POST", "/api/users/properties", asha.Token, map[string]any{"label": "Shop",
			"address": map[string]any{"line1": "3 Market Street", "city": "Pune", "postal_code": "411002"},
			"connections": []any{
				map[string]any{"service": "electricity", "meter_number": "SN-2001", "tariff_plan": "commercial-lt", "sanctioned_load_kw": 10.5, "usage_category": "NONRESIDENTIAL.COMMERCIAL"},
				map[string]any{"service": "sewerage", "water_closets": 2, "toilets": 1, "plot_size_m2": "500", "usage_category": "NONRESIDENTIAL.COMMERCIAL",
					"road_cutting": []any{map[string]any{"road_type": "CCROAD", "area_m2": "10"}}},
			}})
		want(t, r, 201, "")
		cs := r.JSON(t)["connections"].([]any)
		if e, sw := cs[0].(map[string]any), cs[1].(map[string]any); e["status"] != "pending" || e["meter"] != nil ||
			sw["connection_type"] != "Non Metered" || sw["building_type"] != "NONRESIDENTIAL" || num(sw["water_closets"]) != 2 {
			t.Fatalf("connections %v", cs)
		}
		r = s.do("GET", "/api/users/properties", asha.Token, nil)
		want(t, r, 200, "")
		if items := r.JSON(t)["items"].([]any); len(items) != 2 {
			t.Fatalf("%d properties", len(items))
		}
		// The same meter again: DuplicateProperty, for her and for anyone.
		dup := map[string]any{"address": map[string]any{"line1": "9 Other Road", "city": "Pune", "postal_code": "411003"}, "meter_number": "SN-1001"}
		want(t, s.do("POST", "/api/users/properties", asha.Token, dup), 409, "DuplicateProperty")
		want(t, s.do("POST", "/api/users/properties", s.login("demo", "ravi@example.com").Token, dup), 409, "DuplicateProperty")
		want(t, s.do("POST", "/api/users/properties", asha.Token, map[string]any{"address": map[string]any{"line1": "x", "city": "y", "postal_code": "411003"},
			"meter_number": "SN-2001"}), 409, "DuplicateProperty")
		// Staff install the provisioned meter on the pending connection.
		r = s.do("GET", "/api/meters", official.Token, nil)
		var m1002 int64
		for _, it := range r.JSON(t)["items"].([]any) {
			if m := it.(map[string]any); m["external_id"] == "m-1002" {
				m1002 = num(m["id"])
			}
		}
		pending := num(cs[0].(map[string]any)["id"])
		want(t, s.do("PUT", fmt.Sprintf("/api/connections/%d/meter", pending), official.Token, map[string]any{"meter_id": m1002, "initial_import_wh": 0}), 200, "")
		r = s.do("GET", fmt.Sprintf("/api/connections/%d", pending), asha.Token, nil)
		if c := r.JSON(t); c["status"] != "active" || c["meter_number"] != "SN-1002" {
			t.Fatalf("after installation %v", c)
		}
	})

	t.Run("TC7 changes to profiles are saved accurately", func(t *testing.T) {
		s.t = t
		r := s.do("GET", "/api/user-profiles", asha.Token, nil)
		p := r.JSON(t)
		a := p["address"].(map[string]any)
		if p["name"] != "Asha R. Rao" || p["email"] != "asha.contact@example.com" || p["phone"] != "+91 90000 11111" ||
			a["line1"] != "7 Lake View Road" || a["state"] != "Maharashtra" || a["postal_code"] != "411001" || a["country"] != "IN" {
			t.Fatalf("profile after update %v", p)
		}
		// Every change is in the audit log, without the personal data.
		r = s.do("GET", fmt.Sprintf("/api/admin/audit?entity_type=user&entity_id=%d", asha.ID), admin.Token, nil)
		want(t, r, 200, "")
		actions := map[string]bool{}
		for _, it := range r.JSON(t)["items"].([]any) {
			e := it.(map[string]any)
			actions[e["action"].(string)] = true
			if e["action"] == "profile.update" && (e["after"].(map[string]any)["phone_enc"] != "[encrypted]" || e["address"] == "") {
				t.Errorf("profile audit entry %v", e)
			}
		}
		for _, a := range []string{"user.register", "user.verify_email", "session.login", "profile.update"} {
			if !actions[a] {
				t.Errorf("no %s in the audit log (%v)", a, actions)
			}
		}
	})

	var meterID int64
	t.Run("TC8 real-time usage is retrieved accurately", func(t *testing.T) {
		s.t = t
		r := s.do("GET", "/api/usage-data", asha.Token, nil)
		want(t, r, 200, "")
		items := r.JSON(t)["items"].([]any)
		if len(items) != 2 {
			t.Fatalf("%d meters", len(items))
		}
		first := items[0].(map[string]any)
		meterID = num(first["meter_id"])
		if first["status"] != "never_reported" || first["reading"] != nil {
			t.Fatalf("silent meter %v", first)
		}
		want(t, s.do("GET", fmt.Sprintf("/api/usage-data?meter_id=%d", meterID), asha.Token, nil), 502, "MeterConnection")
		// The gateway stores readings: every 15 minutes, the last one a
		// quarter of an hour ago.
		now := time.Now().UTC().Truncate(time.Second)
		s.readings(meterID, now.Add(-75*time.Minute), 5, 15*time.Minute, 2_000_000, 400)
		r = s.do("GET", fmt.Sprintf("/api/usage-data?meter_id=%d", meterID), asha.Token, nil)
		want(t, r, 200, "")
		live := r.JSON(t)["items"].([]any)[0].(map[string]any)
		rd := live["reading"].(map[string]any)
		if age := num(live["age_seconds"]); live["status"] != "online" || num(rd["import_wh"]) != 2_001_600 || live["current_power_w"].(float64) != 1600 || age < 900 || age > 960 {
			t.Fatalf("live %v", live)
		}
		// Manual entry: accepted when plausible, InvalidReading otherwise.
		r = s.do("POST", "/api/usage-data", asha.Token, map[string]any{"connection_id": conn1, "import_wh": 2_002_000})
		want(t, r, 201, "")
		if e := r.JSON(t); num(e["consumption_wh"]) != 400 || e["source"] != "manual" {
			t.Fatalf("manual entry %v", e)
		}
		for _, bad := range []map[string]any{
			{"connection_id": conn1, "import_wh": 1_000},
			{"connection_id": conn1, "import_wh": 2_003_000, "ts": now.Add(2 * time.Hour)},
			{"connection_id": conn1, "import_wh": 900_000_000},
			{"connection_id": conn1, "import_wh": "lots"},
			{"connection_id": conn1},
		} {
			want(t, s.do("POST", "/api/usage-data", asha.Token, bad), 422, "InvalidReading")
		}
		r = s.do("GET", fmt.Sprintf("/api/usage-data?meter_id=%d", meterID), asha.Token, nil)
		if rd := r.JSON(t)["items"].([]any)[0].(map[string]any)["reading"].(map[string]any); num(rd["import_wh"]) != 2_002_000 || rd["source"] != "manual" {
			t.Fatalf("after manual entry %v", rd)
		}
	})

	t.Run("TC9 historical usage is stored and presented graphically", func(t *testing.T) {
		s.t = t
		ist, _ := time.LoadLocation("Asia/Kolkata")
		start := time.Date(2026, 1, 10, 0, 0, 0, 0, ist)
		// History shows readings only while the meter was on her
		// connection: say it was installed last year.
		_, err := s.pool.Exec(ctx, `UPDATE meter_installations SET installed_at = '2025-12-01' WHERE connection_id = $1`, conn1)
		must(t, err)
		s.readings(meterID, start, 72, time.Hour, 1_000_000, 250)
		base := fmt.Sprintf("/api/usage-data/history?connection_id=%d&from=2026-01-10T00:00:00%%2B05:30&to=2026-01-13T00:00:00%%2B05:30", conn1)
		r := s.do("GET", base+"&granularity=day", asha.Token, nil)
		want(t, r, 200, "")
		h := r.JSON(t)
		pts := h["points"].([]any)
		if len(pts) != 3 || h["time_zone"] != "Asia/Kolkata" || num(h["total_consumption_wh"]) != 71*250 {
			t.Fatalf("history %v", h)
		}
		if p := pts[1].(map[string]any); num(p["consumption_wh"]) != 24*250 || num(p["samples"]) != 24 || p["start"] != "2026-01-10T18:30:00Z" {
			t.Fatalf("day 2 %v", p)
		}
		r = s.do("GET", base+"&granularity=hour&format=csv", asha.Token, nil)
		want(t, r, 200, "")
		rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
		must(t, err)
		if len(rows) != 73 || rows[0][2] != "consumption_wh" || rows[2][0] != "2026-01-10T01:00:00+05:30" || rows[2][2] != "250" {
			t.Fatalf("csv: %d rows, %v %v", len(rows), rows[0], rows[2])
		}
		r = s.do("GET", base+"&granularity=day", asha.Token, nil, "Accept", "image/svg+xml")
		want(t, r, 200, "")
		if !strings.HasPrefix(string(r.Body), "<svg") || r.Header.Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("chart %.100s", r.Body)
		}
		want(t, s.do("GET", base+"&granularity=week", asha.Token, nil), 400, "InvalidInput")
		ravi := s.login("demo", "ravi@example.com")
		want(t, s.do("GET", base, ravi.Token, nil), 404, "NotFound")
	})

	var ticketID int64
	t.Run("TC18 users can raise queries and report issues", func(t *testing.T) {
		s.t = t
		// Nobody is on the desk yet: accepted, queued, flagged.
		r := s.do("POST", "/api/notifications/query", asha.Token, map[string]any{"category": "billing", "priority": "high",
			"description": "My January bill shows twice the usual amount.", "connection_id": conn1})
		want(t, r, 202, "SupportStaffUnavailable")
		tk := r.JSON(t)["ticket"].(map[string]any)
		ticketID = num(tk["id"])
		if tk["status"] != "open" || tk["awaiting_staff"] != true || tk["subject"] != "My January bill shows twice the usual amount." {
			t.Fatalf("queued ticket %v", tk)
		}
		due, err := time.Parse(time.RFC3339, tk["sla_due_at"].(string))
		must(t, err)
		created, _ := time.Parse(time.RFC3339, tk["created_at"].(string))
		if d := due.Sub(created); d < 8*time.Hour-time.Second || d > 8*time.Hour+time.Second {
			t.Errorf("SLA %v after creation, want 8h for high priority", d)
		}
		r = s.do("POST", "/api/notifications/query", asha.Token, map[string]any{"category": "weather", "description": "?"})
		want(t, r, 400, "InvalidQuery")
		if f := fieldsOf(r); strings.Join(f, ",") != "category,description" {
			t.Errorf("fields %v", f)
		}
		want(t, s.do("POST", "/api/notifications/query", asha.Token, map[string]any{"description": "Power keeps tripping at night."}), 400, "InvalidQuery")
	})

	t.Run("TC19 tickets are assigned to relevant staff", func(t *testing.T) {
		s.t = t
		// The agent comes on duty with the billing skill: the queued
		// ticket is assigned at once.
		r := s.do("PUT", "/api/support/staff/me", agent.Token, map[string]any{"skills": []string{"billing", "payment"}, "available": true})
		want(t, r, 200, "")
		if st := r.JSON(t); num(st["open_tickets"]) != 1 {
			t.Fatalf("staff %v", st)
		}
		r = s.do("GET", fmt.Sprintf("/api/tickets/%d", ticketID), asha.Token, nil)
		tk := r.JSON(t)
		if tk["status"] != "assigned" || num(tk["assigned_staff_id"]) != agent.ID || tk["awaiting_staff"] != false {
			t.Fatalf("ticket %v", tk)
		}
		// A second agent with the same skill: new tickets go to the less
		// loaded one; a meter ticket waits for a meter specialist.
		r = s.do("POST", "/api/admin/users", admin.Token, map[string]any{"email": "priya@example.com", "password": password, "role": "support", "name": "Priya"})
		want(t, r, 201, "")
		priya := s.login("demo", "priya@example.com")
		want(t, s.do("PUT", fmt.Sprintf("/api/support/staff/%d", priya.ID), admin.Token, map[string]any{"skills": []string{"billing"}, "available": true, "max_open": 5}), 200, "")
		r = s.do("POST", "/api/tickets", asha.Token, map[string]any{"category": "billing", "description": "I was charged a late fee after paying on time."})
		want(t, r, 201, "")
		if tk := r.JSON(t); num(tk["assigned_staff_id"]) != priya.ID {
			t.Fatalf("second billing ticket went to %v, want the less loaded %d", tk["assigned_staff_id"], priya.ID)
		}
		want(t, s.do("POST", "/api/tickets", asha.Token, map[string]any{"category": "meter", "description": "The meter display is blank."}), 202, "SupportStaffUnavailable")
		r = s.do("GET", "/api/tickets?queued=true", official.Token, nil)
		if items := r.JSON(t)["items"].([]any); len(items) != 1 {
			t.Fatalf("%d queued tickets", len(items))
		}
		r = s.do("GET", "/api/tickets?assignee=me", agent.Token, nil)
		if items := r.JSON(t)["items"].([]any); len(items) != 1 || num(items[0].(map[string]any)["id"]) != ticketID {
			t.Fatalf("agent's tickets %s", r.Body)
		}
	})

	t.Run("TC20 users receive updates on the status of their queries", func(t *testing.T) {
		s.t = t
		path := fmt.Sprintf("/api/tickets/%d", ticketID)
		want(t, s.do("POST", path+"/status", asha.Token, map[string]any{"status": "resolved", "note": "done"}), 409, "Conflict")
		want(t, s.do("POST", path+"/status", agent.Token, map[string]any{"status": "in_progress"}), 200, "")
		want(t, s.do("POST", path+"/comments", agent.Token, map[string]any{"body": "Checking the January meter reads.", "internal": false}), 201, "")
		want(t, s.do("POST", path+"/comments", agent.Token, map[string]any{"body": "Estimated read doubled; rebill.", "internal": true}), 201, "")
		want(t, s.do("POST", path+"/status", agent.Token, map[string]any{"status": "resolved"}), 400, "InvalidQuery")
		want(t, s.do("POST", path+"/status", agent.Token, map[string]any{"status": "resolved", "note": "The estimated read was corrected; a revised bill follows."}), 200, "")
		r := s.do("GET", path, asha.Token, nil)
		want(t, r, 200, "")
		tk := r.JSON(t)
		if tk["status"] != "resolved" || tk["first_response_at"] == nil || len(tk["comments"].([]any)) != 1 {
			t.Fatalf("consumer's view %v", tk)
		}
		var kinds []string
		for _, e := range tk["timeline"].([]any) {
			kinds = append(kinds, e.(map[string]any)["kind"].(string))
		}
		if got := strings.Join(kinds, ","); got != "created,queued,assigned,status_changed,commented,status_changed" {
			t.Errorf("timeline %s", got)
		}
		// Each update is queued for delivery to her.
		var events []string
		rows, err := s.pool.Query(ctx, `SELECT event FROM notification_outbox WHERE user_id = $1 AND payload->>'ticket_id' = $2 ORDER BY id`, asha.ID, fmt.Sprint(ticketID))
		must(t, err)
		for rows.Next() {
			var e string
			must(t, rows.Scan(&e))
			events = append(events, e)
		}
		if got := strings.Join(events, ","); got != "ticket.created,ticket.assigned,ticket.status_changed,ticket.comment,ticket.status_changed" {
			t.Errorf("notifications %s", got)
		}
		want(t, s.do("POST", path+"/status", asha.Token, map[string]any{"status": "closed"}), 200, "")
	})

	t.Run("reminders for upcoming due dates", func(t *testing.T) {
		s.t = t
		r := s.do("POST", "/api/notifications/reminder", asha.Token, map[string]any{"days_before": 3, "channel": "sms"})
		want(t, r, 200, "")
		if rm := r.JSON(t); rm["bill_id"] != nil || num(rm["days_before"]) != 3 || rm["enabled"] != true {
			t.Fatalf("reminder %v", rm)
		}
		want(t, s.do("POST", "/api/notifications/reminder", asha.Token, map[string]any{"days_before": 5, "channel": "email"}), 200, "")
		r = s.do("GET", "/api/notifications/reminder", asha.Token, nil)
		if items := r.JSON(t)["items"].([]any); len(items) != 1 || items[0].(map[string]any)["channel"] != "email" {
			t.Fatalf("reminders %s", r.Body)
		}
		want(t, s.do("POST", "/api/notifications/reminder", asha.Token, map[string]any{"days_before": 90, "channel": "fax"}), 400, "ReminderSetting")
		want(t, s.do("POST", "/api/notifications/reminder", asha.Token, map[string]any{"days_before": "soon"}), 400, "ReminderSetting")
		// Bills are not served until billing lands: a per-bill reminder is
		// refused rather than stored unchecked.
		want(t, s.do("POST", "/api/notifications/reminder", asha.Token, map[string]any{"bill_id": 7, "days_before": 2, "channel": "email"}), 400, "ReminderSetting")
	})
}

func fieldsOf(r resp) []string {
	var p struct {
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	_ = jsonUnmarshal(r.Body, &p)
	out := []string{}
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}
