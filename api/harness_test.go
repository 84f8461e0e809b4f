package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/account"
	accountpg "github.com/meterd/meterd/api/account/postgres"
	"github.com/meterd/meterd/api/keyring"
	"github.com/meterd/meterd/api/outbox"
	"github.com/meterd/meterd/api/support"
	supportpg "github.com/meterd/meterd/api/support/postgres"
	"github.com/meterd/meterd/api/usage"
	usagepg "github.com/meterd/meterd/api/usage/postgres"
	"github.com/meterd/meterd/billing/billrun"
	billingpg "github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

// The keys of the test stack; tests forge tokens with them.
var (
	jwtKey   = keyring.Key{ID: "test-1", Secret: bytes.Repeat([]byte{0x5a}, 32)}
	fieldKey = keyring.Key{ID: "1", Secret: bytes.Repeat([]byte{0x33}, 32)}
)

// stack is the whole API on a real database, served on a real listener.
type stack struct {
	t      testing.TB
	pool   *pgxpool.Pool
	srv    *api.Server
	base   string
	ring   *keyring.Ring
	upkeep *schema.Upkeep
	svc    api.Services
	doc    map[string]any
	routes []api.Route
	client *http.Client
}

// newStack starts the API with the core services (accounts, support,
// usage) against a fresh database.
func newStack(t testing.TB) *stack { return newStackWith(t, nil) }

// newStackWith is newStack with the account configuration adjusted.
func newStackWith(t testing.TB, tweak func(*account.Config)) *stack {
	t.Helper()
	w := newWiring(t, tweak)
	svc := w.services()
	svc.Usage = w.usage(t)
	return w.serve(t, "127.0.0.1:0", svc)
}

// wiring is what every test stack shares: a fresh database, the keyring of
// the field key, the account service (cheap argon2 parameters — the
// production ones are benchmarked in api/account — and rate limits raised
// so tests can log in often), the support desk and the storage upkeep.
type wiring struct {
	pool     *pgxpool.Pool
	ring     *keyring.Ring
	upkeep   *schema.Upkeep
	accounts *account.Service
	desk     *support.Service
}

func newWiring(t testing.TB, tweak func(*account.Config)) *wiring {
	t.Helper()
	pool := schematest.New(t)
	ring, err := keyring.New([]keyring.Key{fieldKey})
	must(t, err)
	tokens, err := account.NewTokens(account.TokenConfig{Keys: []keyring.Key{jwtKey}})
	must(t, err)
	hasher, err := account.NewHasher(account.HasherConfig{Params: account.Argon2Params{MemoryKiB: 1024, Passes: 1, Lanes: 1, SaltBytes: 16, HashBytes: 32}})
	must(t, err)
	lots := account.LimitConfig{Burst: 10_000, Rate: 10_000, Per: time.Second}
	cfg := account.Config{DefaultTenant: "demo", LoginPerAddress: lots, LoginPerAccount: lots, RegisterPerAddress: lots, SessionCheckTTL: -1}
	if tweak != nil {
		tweak(&cfg)
	}
	accounts, err := account.New(accountpg.New(pool), tokens, hasher, ring, cfg)
	must(t, err)
	desk, err := support.New(supportpg.New(pool), support.Config{})
	must(t, err)
	st, err := schema.LoadStorage(context.Background(), pool)
	must(t, err)
	return &wiring{pool: pool, ring: ring, upkeep: schema.NewUpkeep(pool, st, schema.UpkeepConfig{}), accounts: accounts, desk: desk}
}

// services are the services every stack mounts: accounts and support.
func (w *wiring) services() api.Services { return api.Services{Accounts: w.accounts, Support: w.desk} }

// usage is the usage service, creating readings partitions as manual
// readings need them.
func (w *wiring) usage(t testing.TB) *usage.Service {
	t.Helper()
	use, err := usage.New(usagepg.New(w.pool, func(ctx context.Context, from, to time.Time) error {
		_, err := w.upkeep.EnsurePartitions(ctx, from, to)
		return err
	}), usage.Config{})
	must(t, err)
	return use
}

// decimalPool is a second pool on the database with the decimal codec
// registered, as billing's store needs (cmd registers it on its one pool);
// maxConns 0 keeps pgx's default.
func (w *wiring) decimalPool(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg := w.pool.Config().Copy()
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error { pgxdecimal.Register(c.TypeMap()); return nil }
	bpool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	must(t, err)
	t.Cleanup(bpool.Close)
	return bpool
}

// billing is billing's store on bpool with deps, and a runner on it
// (bill runs execute at once, in the request).
func (w *wiring) billing(t testing.TB, bpool *pgxpool.Pool, deps billingpg.Deps) (*billingpg.Store, *billrun.Runner) {
	t.Helper()
	store := billingpg.NewStore(bpool, deps)
	runner, err := billrun.NewRunner(store, billrun.Config{}, nil, nil)
	must(t, err)
	return store, runner
}

// serve mounts svc on a server listening on addr, starts it (stopped when
// the test ends), reads its OpenAPI document and creates the tenants demo
// and other.
func (w *wiring) serve(t testing.TB, addr string, svc api.Services) *stack {
	t.Helper()
	ctx := context.Background()
	srv, err := api.New(api.Config{Addr: addr}, api.Deps{Version: "test"})
	must(t, err)
	must(t, srv.Mount(svc))
	must(t, srv.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	s := &stack{t: t, pool: w.pool, srv: srv, base: "http://" + srv.Addr(), ring: w.ring, upkeep: w.upkeep, svc: svc, routes: srv.Routes(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	raw, err := json.Marshal(srv.OpenAPI())
	must(t, err)
	must(t, json.Unmarshal(raw, &s.doc))
	_, err = w.pool.Exec(ctx, `INSERT INTO tenants (code, name, time_zone, currency) VALUES
		('demo', 'Demo Power', 'Asia/Kolkata', 'INR'), ('other', 'Other Utility', 'Asia/Kolkata', 'INR')`)
	must(t, err)
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// resp is an HTTP answer read whole.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r resp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Code is the problem code of a problem+json answer, "" otherwise.
func (r resp) Code() string {
	var p struct {
		Code string `json:"code"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		_ = json.Unmarshal(r.Body, &p)
	}
	return p.Code
}

// do sends a request and checks the answer against the OpenAPI document:
// the status must be documented for the route, and a JSON body must match
// the documented schema for that status and content type.
func (s *stack) do(method, path, token string, body any, header ...string) resp {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(s.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	must(s.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	hr, err := s.client.Do(req)
	must(s.t, err)
	defer hr.Body.Close()
	b, err := io.ReadAll(hr.Body)
	must(s.t, err)
	r := resp{Status: hr.StatusCode, Header: hr.Header, Body: b}
	s.checkDocumented(method, path, r)
	return r
}

// want fails the test unless r has the status (and, for problems, the
// code) wanted.
func want(t testing.TB, r resp, status int, code string) {
	t.Helper()
	if r.Status != status || (code != "" && r.Code() != code) {
		t.Fatalf("got %d %s, want %d %s\n%s", r.Status, r.Code(), status, code, r.Body)
	}
}

// literalMatch prefers templates whose literal segments match (so
// /api/support/staff/me is not taken for /api/support/staff/{userId}).
func literalMatch(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if !strings.HasPrefix(ts[i], "{") && ts[i] != ps[i] {
			return false
		}
	}
	return true
}

func (s *stack) checkDocumented(method, path string, r resp) {
	s.t.Helper()
	op, ok := s.operationExact(method, path)
	if !ok {
		if r.Status == http.StatusNotFound || r.Status == http.StatusMethodNotAllowed {
			return // an unknown route answering 404/405 is fine
		}
		s.t.Fatalf("%s %s answered %d but is not documented", method, path, r.Status)
	}
	responses := op["responses"].(map[string]any)
	doc, ok := responses[fmt.Sprint(r.Status)].(map[string]any)
	if !ok {
		s.t.Fatalf("%s %s answered %d, not a documented status (documented: %v)\n%s", method, path, r.Status, keys(responses), r.Body)
	}
	ct := r.Header.Get("Content-Type")
	ct, _, _ = strings.Cut(ct, ";")
	content, _ := doc["content"].(map[string]any)
	if len(r.Body) == 0 {
		return
	}
	media, ok := content[ct].(map[string]any)
	if !ok {
		s.t.Fatalf("%s %s answered %d with %s, not a documented content type (%v)", method, path, r.Status, ct, keys(content))
	}
	if !strings.HasSuffix(ct, "json") {
		return
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		s.t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
	}
	if err := s.validate(media["schema"], v, "$"); err != nil {
		s.t.Fatalf("%s %s %d: response does not match its schema: %v\n%s", method, path, r.Status, err, r.Body)
	}
}

// operationExact finds the operation whose template matches path, literal
// segments first.
func (s *stack) operationExact(method, path string) (map[string]any, bool) {
	path, _, _ = strings.Cut(path, "?")
	paths := s.doc["paths"].(map[string]any)
	var best map[string]any
	bestLiterals := -1
	for tmpl, item := range paths {
		if !literalMatch(tmpl, path) {
			continue
		}
		op, ok := item.(map[string]any)[strings.ToLower(method)].(map[string]any)
		if !ok {
			continue
		}
		n := strings.Count(tmpl, "/") - strings.Count(tmpl, "{")
		if n > bestLiterals {
			best, bestLiterals = op, n
		}
	}
	return best, best != nil
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// validate checks v against a JSON Schema of the subset the document
// uses: $ref, type (one or several), properties, required,
// additionalProperties false, items, enum, oneOf, allOf, format date-time.
func (s *stack) validate(schema any, v any, at string) error {
	sc, ok := schema.(map[string]any)
	if !ok {
		return nil
	}
	if ref, ok := sc["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		def, ok := s.doc["components"].(map[string]any)["schemas"].(map[string]any)[name]
		if !ok {
			return fmt.Errorf("%s: unresolved $ref %s", at, ref)
		}
		return s.validate(def, v, at)
	}
	if all, ok := sc["allOf"].([]any); ok {
		for _, sub := range all {
			if err := s.validate(sub, v, at); err != nil {
				return err
			}
		}
	}
	if one, ok := sc["oneOf"].([]any); ok {
		matched := 0
		var last error
		for _, sub := range one {
			if err := s.validate(sub, v, at); err == nil {
				matched++
			} else {
				last = err
			}
		}
		if matched != 1 {
			return fmt.Errorf("%s: matches %d of oneOf (last error: %v)", at, matched, last)
		}
	}
	if enum, ok := sc["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if e == v {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
		}
	}
	if typ, ok := sc["type"]; ok {
		var types []string
		switch t := typ.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !typeMatches(types, v) {
			return fmt.Errorf("%s: %T (%v) is not %v", at, v, v, types)
		}
	}
	if sc["format"] == "date-time" {
		if str, ok := v.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				return fmt.Errorf("%s: %q is not a date-time", at, str)
			}
		}
	}
	switch val := v.(type) {
	case map[string]any:
		props, _ := sc["properties"].(map[string]any)
		for _, r := range asStrings(sc["required"]) {
			if _, ok := val[r]; !ok {
				return fmt.Errorf("%s: required property %q missing", at, r)
			}
		}
		for k, x := range val {
			p, ok := props[k]
			if !ok {
				if sc["additionalProperties"] == false {
					return fmt.Errorf("%s: property %q is not in the schema", at, k)
				}
				continue
			}
			if err := s.validate(p, x, at+"."+k); err != nil {
				return err
			}
		}
	case []any:
		for i, x := range val {
			if err := s.validate(sc["items"], x, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, x.(string))
	}
	return out
}

func typeMatches(types []string, v any) bool {
	for _, t := range types {
		switch t {
		case "null":
			if v == nil {
				return true
			}
		case "string":
			if _, ok := v.(string); ok {
				return true
			}
		case "boolean":
			if _, ok := v.(bool); ok {
				return true
			}
		case "number":
			if _, ok := v.(float64); ok {
				return true
			}
		case "integer":
			if f, ok := v.(float64); ok && f == math.Trunc(f) {
				return true
			}
		case "object":
			if _, ok := v.(map[string]any); ok {
				return true
			}
		case "array":
			if _, ok := v.([]any); ok {
				return true
			}
		}
	}
	return false
}

// --- fixtures through the API

// session is a logged-in user.
type session struct {
	ID     int64
	Tenant string
	Email  string
	Token  string
}

var seq struct {
	sync.Mutex
	n int
}

func next() int {
	seq.Lock()
	defer seq.Unlock()
	seq.n++
	return seq.n
}

const password = "correct horse battery"

// register signs up a consumer through the API, verifies the address with
// the token delivered through the outbox, and logs in.
func (s *stack) register(tenant, email, name string) session {
	s.t.Helper()
	r := s.do("POST", "/api/register", "", map[string]any{"tenant": tenant, "email": email, "password": password, "name": name})
	want(s.t, r, 201, "")
	r = s.do("GET", "/api/verify-email?token="+s.outboxToken(email), "", nil)
	want(s.t, r, 200, "")
	return s.login(tenant, email)
}

func (s *stack) login(tenant, email string) session {
	s.t.Helper()
	r := s.do("POST", "/api/login", "", map[string]any{"tenant": tenant, "email": email, "password": password})
	want(s.t, r, 200, "")
	m := r.JSON(s.t)
	u := m["user"].(map[string]any)
	return session{ID: int64(u["id"].(float64)), Tenant: tenant, Email: email, Token: m["access_token"].(string)}
}

// outboxToken opens the newest verification token sent to email, as the
// notification deliverer will.
func (s *stack) outboxToken(email string) string {
	s.t.Helper()
	var sealed []byte
	var key string
	must(s.t, s.pool.QueryRow(context.Background(), `SELECT secret, dedupe_key FROM notification_outbox
		WHERE event = $1 AND payload->>'email' = $2 ORDER BY id DESC LIMIT 1`, outbox.EventVerifyEmail, email).Scan(&sealed, &key))
	tok, err := s.ring.Open(sealed, outbox.SecretAAD(key))
	must(s.t, err)
	return string(tok)
}

// staffUser creates a user of any role directly through the account
// service (as an administrator would) and logs in.
func (s *stack) staffUser(tenant, email string, role account.Role, department string) session {
	s.t.Helper()
	ctx := context.Background()
	tn, err := accountpg.New(s.pool).TenantByCode(ctx, tenant)
	must(s.t, err)
	sys := account.Actor{Principal: account.Principal{TenantID: tn.ID, Role: account.RoleAdmin}, RequestID: "test"}
	_, err = s.svc.Accounts.CreateUser(ctx, sys, account.Scope{TenantID: tn.ID},
		account.NewUserInput{Email: email, Password: password, Role: role, Department: department, Name: strings.Split(email, "@")[0]})
	must(s.t, err)
	return s.login(tenant, email)
}

// readings inserts readings as the gateway would (readings and
// meter_latest) and refreshes the rollups: n readings, one per step,
// from start, the import register climbing stepWh each time.
func (s *stack) readings(meterID int64, start time.Time, n int, step time.Duration, baseWh, stepWh int64) {
	s.t.Helper()
	ctx := context.Background()
	_, err := s.upkeep.EnsurePartitions(ctx, start, start.Add(time.Duration(n)*step))
	must(s.t, err)
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{meterID, start.Add(time.Duration(i) * step), baseWh + int64(i)*stepWh, float32(stepWh) * float32(time.Hour/step), int16(1)}
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO readings (meter_id, ts, import_wh, power_w, source)
		SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::real[], $5::smallint[])`,
		column(rows, 0), column(rows, 1), column(rows, 2), column(rows, 3), column(rows, 4))
	must(s.t, err)
	last := rows[n-1]
	_, err = s.pool.Exec(ctx, `INSERT INTO meter_latest (meter_id, ts, received_at, last_seen, import_wh, import_ts, power_w, source)
		VALUES ($1, $2, now(), now(), $3, $2, $4, 1)
		ON CONFLICT (meter_id) DO UPDATE SET ts = excluded.ts, received_at = excluded.received_at, last_seen = excluded.last_seen,
			import_wh = excluded.import_wh, import_ts = excluded.import_ts, power_w = excluded.power_w`, last[0], last[1], last[2], last[3])
	must(s.t, err)
	_, err = s.upkeep.RefreshRollups(ctx)
	must(s.t, err)
}

func column(rows [][]any, i int) any {
	switch rows[0][i].(type) {
	case int64:
		out := make([]int64, len(rows))
		for j, r := range rows {
			out[j] = r[i].(int64)
		}
		return out
	case time.Time:
		out := make([]time.Time, len(rows))
		for j, r := range rows {
			out[j] = r[i].(time.Time)
		}
		return out
	case float32:
		out := make([]float32, len(rows))
		for j, r := range rows {
			out[j] = r[i].(float32)
		}
		return out
	case int16:
		out := make([]int16, len(rows))
		for j, r := range rows {
			out[j] = r[i].(int16)
		}
		return out
	}
	panic("column type")
}

func num(v any) int64 { return int64(v.(float64)) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
