package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// OpenAPI returns the OpenAPI 3.1 document of the mounted routes, built
// from the permission table: every route with its roles, ownership rule
// (x-meterd-roles, x-meterd-ownership), parameters, bodies, success
// responses and problem types; schemas are reflected from the DTO types.
func (s *Server) OpenAPI() map[string]any {
	g := &schemaGen{defs: map[string]any{}, names: map[reflect.Type]string{}}
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		p := openAPIPathOf(rt.Path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(rt.Method)] = g.operation(rt)
	}
	ops := map[string]any{
		"/healthz": map[string]any{"get": map[string]any{"summary": "Liveness", "tags": []string{"operations"}, "operationId": "get_healthz",
			"security": []any{}, "responses": map[string]any{"200": jsonResponse("ok", g.ref(reflect.TypeFor[healthDoc]()))}}},
		"/readyz": map[string]any{"get": map[string]any{"summary": "Readiness (503 while draining or not migrated)", "tags": []string{"operations"},
			"operationId": "get_readyz", "security": []any{},
			"responses": map[string]any{"200": jsonResponse("ready", readyDoc), "503": jsonResponse("not ready or draining", readyDoc)}}},
		"/metrics": map[string]any{"get": map[string]any{"summary": "Prometheus metrics", "tags": []string{"operations"}, "operationId": "get_metrics",
			"security": []any{}, "responses": map[string]any{"200": map[string]any{"description": "metrics",
				"content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}}}},
		openAPIPath: map[string]any{"get": map[string]any{"summary": "This document", "tags": []string{"operations"}, "operationId": "get_openapi",
			"security": []any{}, "responses": map[string]any{"200": map[string]any{"description": "OpenAPI 3.1 document",
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}}}},
	}
	allPaths := map[string]any{}
	for k, v := range paths {
		allPaths[k] = v
	}
	for k, v := range ops {
		allPaths[k] = v
	}
	g.ref(reflect.TypeFor[Problem]())
	codes := []string{}
	for _, k := range Kinds() {
		codes = append(codes, k.Code)
	}
	sort.Strings(codes)
	if prob, ok := g.defs["Problem"].(map[string]any); ok {
		props := prob["properties"].(map[string]any)
		props["code"] = map[string]any{"type": "string", "enum": codes, "description": "the problem kind; for the requirement's exceptions, the exception's name without 'Exception'"}
		props["ticket"] = map[string]any{"$ref": "#/components/schemas/" + g.names[reflect.TypeFor[ticketDTO]()], "description": "SupportStaffUnavailable only: the queued ticket"}
		prob["additionalProperties"] = false
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "meterd API",
			"version": s.deps.Version,
			"description": "Smart-meter ingestion gateway and utility billing backend: accounts, profiles, properties, usage, support desk. " +
				"Errors are RFC 9457 problem+json whose code names the requirement's exception. Lists are paginated with ?limit= and ?cursor= " +
				"(next_cursor of the previous page). Every route lists the roles that may call it (x-meterd-roles) and its ownership rule " +
				"(x-meterd-ownership: self, self-or-tenant, tenant).",
		},
		"paths":    allPaths,
		"security": []any{map[string]any{"bearerAuth": []string{}}},
		"components": map[string]any{
			"schemas": g.defs,
			"securitySchemes": map[string]any{"bearerAuth": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
				"description": "access token from POST /api/login or /authenticate"}},
		},
	}
}

type healthDoc struct {
	Status  string `json:"status" enum:"ok"`
	Version string `json:"version"`
}

// readyDoc is /readyz's body: a status and details (storage profile,
// schema versions, the error) that vary with the deployment.
var readyDoc = map[string]any{"type": "object", "required": []string{"status"},
	"properties": map[string]any{"status": map[string]any{"type": "string", "enum": []string{"ready", "not ready", "draining"}}}}

var fiberParam = regexp.MustCompile(`:([A-Za-z][A-Za-z0-9_]*)`)

// openAPIPathOf turns Fiber's ":name" parameters into OpenAPI's "{name}".
func openAPIPathOf(p string) string { return fiberParam.ReplaceAllString(p, "{$1}") }

func jsonResponse(desc string, schema any) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": schema}}}
}

func (g *schemaGen) operation(rt Route) map[string]any {
	op := map[string]any{
		"summary":            rt.Summary,
		"tags":               []string{rt.Tag},
		"operationId":        operationID(rt),
		"x-meterd-ownership": rt.Owner.String(),
	}
	roles := []string{}
	for _, r := range rt.Roles {
		roles = append(roles, string(r))
	}
	op["x-meterd-roles"] = roles
	if len(rt.Departments) > 0 {
		op["x-meterd-official-departments"] = rt.Departments
	}
	if rt.Public() {
		op["security"] = []any{}
	}
	var params []any
	for _, m := range fiberParam.FindAllStringSubmatch(rt.Path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
			"schema": map[string]any{"type": "integer", "minimum": 1}})
	}
	if rt.Query != nil {
		params = append(params, g.queryParams(reflect.TypeOf(rt.Query))...)
	}
	for _, hp := range rt.Headers {
		params = append(params, map[string]any{"name": hp.Name, "in": "header", "required": hp.Required, "description": hp.Doc,
			"schema": map[string]any{"type": "string", "minLength": 1, "maxLength": 255}})
	}
	if params != nil {
		op["parameters"] = params
	}
	if rt.Body != nil {
		ct := rt.BodyType
		if ct == "" {
			ct = "application/json"
		}
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{ct: map[string]any{"schema": g.ref(reflect.TypeOf(rt.Body))}}}
	}
	responses := map[string]any{}
	for _, resp := range rt.Responses {
		key := strconv.Itoa(resp.Status)
		desc := http.StatusText(resp.Status)
		if resp.Body == nil && resp.Type == "" {
			responses[key] = map[string]any{"description": desc}
			continue
		}
		ct := resp.Type
		if ct == "" {
			ct = "application/json"
		}
		var schema any = map[string]any{"type": "string"}
		if resp.Body != nil {
			schema = g.ref(reflect.TypeOf(resp.Body))
		}
		r, ok := responses[key].(map[string]any)
		if !ok {
			r = map[string]any{"description": desc, "content": map[string]any{}}
			responses[key] = r
		}
		r["content"].(map[string]any)[ct] = map[string]any{"schema": schema}
	}
	kinds := append([]Kind{}, rt.Problems...)
	if !rt.Public() {
		kinds = append(kinds, KindUnauthenticated, KindAccountLocked, KindUnauthorizedAccess)
	}
	kinds = append(kinds, KindTimeout, KindInternal)
	if rt.Body != nil {
		kinds = append(kinds, KindUnsupportedMedia, KindPayloadTooLarge)
	}
	byStatus := map[int][]string{}
	for _, k := range kinds {
		if !containsString(byStatus[k.Status], k.Code) {
			byStatus[k.Status] = append(byStatus[k.Status], k.Code)
		}
	}
	prob := g.ref(reflect.TypeFor[Problem]())
	for status, codes := range byStatus {
		key := strconv.Itoa(status)
		r, ok := responses[key].(map[string]any)
		if !ok {
			r = map[string]any{"description": "", "content": map[string]any{}}
			responses[key] = r
		}
		r["description"] = strings.TrimSpace(r["description"].(string) + " problem: " + strings.Join(codes, ", "))
		r["content"].(map[string]any)["application/problem+json"] = map[string]any{"schema": prob}
	}
	op["responses"] = responses
	return op
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func operationID(rt Route) string {
	p := strings.NewReplacer("/api/", "", "/", "_", ":", "by_", "-", "_", ".", "_").Replace(rt.Path)
	return strings.ToLower(rt.Method) + "_" + strings.Trim(p, "_")
}

// schemaGen reflects Go types into JSON Schema (2020-12, as OpenAPI 3.1
// uses it) under components/schemas.
type schemaGen struct {
	defs  map[string]any
	names map[reflect.Type]string
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	decimalType = reflect.TypeFor[decimal.Decimal]()
	rawType     = reflect.TypeFor[json.RawMessage]()
)

// ref returns a $ref to the schema of named struct type t (defining it on
// first use), or the inline schema of other types.
func (g *schemaGen) ref(t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType || t == decimalType {
		return g.schema(t)
	}
	if name, ok := g.names[t]; ok {
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	name := schemaName(t)
	g.names[t] = name
	g.defs[name] = map[string]any{} // placeholder for recursion
	g.defs[name] = g.object(t)
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

var genericArgs = regexp.MustCompile(`\[.*\]`)

func schemaName(t reflect.Type) string {
	name := t.Name()
	if i := strings.Index(name, "["); i >= 0 {
		arg := genericArgs.FindString(name)
		arg = strings.Trim(arg, "[]")
		if j := strings.LastIndex(arg, "."); j >= 0 {
			arg = arg[j+1:]
		}
		name = name[:i] + "Of" + export(strings.TrimSuffix(arg, "DTO"))
	}
	return export(strings.TrimSuffix(name, "DTO"))
}

func export(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case decimalType:
		return map[string]any{"type": []string{"string", "number"}, "format": "decimal", "description": "exact decimal, sent as a string"}
	case rawType:
		return map[string]any{"type": "object"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.schemaOrRef(t.Elem())
		return nullable(s)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": g.schemaOrRef(t.Elem())}
	case reflect.Map:
		// A nil map is null in JSON.
		return map[string]any{"type": []string{"object", "null"}}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		return g.object(t)
	}
	return map[string]any{}
}

func (g *schemaGen) schemaOrRef(t reflect.Type) map[string]any {
	base := t
	for base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Kind() == reflect.Struct && base != timeType && base != decimalType {
		ref := g.ref(t).(map[string]any)
		if t.Kind() == reflect.Pointer {
			return nullable(ref)
		}
		return ref
	}
	return g.schema(t)
}

// nullable lets s also be null.
func nullable(s map[string]any) map[string]any {
	if ref, ok := s["$ref"]; ok {
		return map[string]any{"oneOf": []any{map[string]any{"$ref": ref}, map[string]any{"type": "null"}}}
	}
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	switch typ := s["type"].(type) {
	case string:
		out["type"] = []string{typ, "null"}
	case []string:
		out["type"] = append(append([]string{}, typ...), "null")
	}
	return out
}

// object reflects a struct: json-tagged fields (embedded structs
// flattened); fields without omitempty are required; no other properties
// are allowed (requests are decoded strictly).
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	g.fields(t, props, &required)
	sort.Strings(required)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func (g *schemaGen) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			g.fields(f.Type, props, required)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s := g.schemaOrRef(f.Type)
		if enum := f.Tag.Get("enum"); enum != "" {
			s = withEnum(s, strings.Split(enum, ","))
		}
		if doc := f.Tag.Get("doc"); doc != "" {
			if _, isRef := s["$ref"]; isRef {
				s = map[string]any{"allOf": []any{s}, "description": doc}
			} else {
				s = copyMap(s)
				s["description"] = doc
			}
		}
		props[name] = s
		if !strings.Contains(opts, "omitempty") {
			*required = append(*required, name)
		}
	}
}

func withEnum(s map[string]any, values []string) map[string]any {
	out := copyMap(s)
	vals := make([]any, 0, len(values)+1)
	for _, v := range values {
		vals = append(vals, v)
	}
	if typ, ok := s["type"].([]string); ok && containsString(typ, "null") {
		vals = append(vals, nil)
	}
	out["enum"] = vals
	return out
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// queryParams documents a query struct's `query`-tagged fields (embedded
// structs flattened).
func (g *schemaGen) queryParams(t reflect.Type) []any {
	var out []any
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, g.queryParams(f.Type)...)
			continue
		}
		name := f.Tag.Get("query")
		if name == "" {
			continue
		}
		s := g.schema(f.Type)
		if enum := f.Tag.Get("enum"); enum != "" {
			s = withEnum(s, strings.Split(enum, ","))
		}
		p := map[string]any{"name": name, "in": "query", "schema": s}
		if doc := f.Tag.Get("doc"); doc != "" {
			p["description"] = doc
		}
		if f.Tag.Get("required") == "true" {
			p["required"] = true
		}
		out = append(out, p)
	}
	return out
}
