package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/meterd/meterd/api/account"
)

// Request is what a handler gets besides the Fiber context: the caller
// (Actor) and the records the route's ownership rule lets it reach (Scope).
type Request struct {
	C     *fiber.Ctx
	Actor account.Actor
	Scope account.Scope
}

// bind decodes a JSON body strictly (unknown fields, trailing data and a
// wrong content type are errors) into dst. Problems are reported as a
// validation error wrapping kind (the route's invalid-input exception).
func (r *Request) bind(dst any, kind error) error {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.C.Get(fiber.HeaderContentType), ";")[0]))
	if ct != fiber.MIMEApplicationJSON {
		return Errorf(KindUnsupportedMedia, "send the body as application/json")
	}
	body := r.C.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return bodyError(kind, "body", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "body"
			}
			return bodyError(kind, field, "must be "+jsonKind(te.Type.String()))
		case errors.As(err, &se):
			return bodyError(kind, "body", fmt.Sprintf("is not valid JSON (at byte %d)", se.Offset))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return bodyError(kind, strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "is not a field of this request")
		}
		return bodyError(kind, "body", "is not a valid request: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bodyError(kind, "body", "must hold a single JSON object")
	}
	return nil
}

func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "float"), strings.Contains(goType, "Decimal"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "true or false"
	case strings.Contains(goType, "Time"):
		return "an RFC 3339 time"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "string"):
		return "a string"
	}
	return "an object"
}

func bodyError(kind error, field, msg string) error {
	if kind == nil {
		kind = account.ErrInvalidInput
	}
	v := account.NewValidator(kind)
	v.Add(field, msg)
	return v.Err()
}

// pathID parses a positive integer path parameter.
func (r *Request) pathID(name string) (int64, error) {
	id, err := strconv.ParseInt(r.C.Params(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, InvalidInput(FieldError{Field: name, Message: "must be a positive integer"})
	}
	return id, nil
}

// queryID parses an optional positive integer query parameter (0 when
// absent).
func (r *Request) queryID(name string) (int64, error) {
	s := r.C.Query(name)
	if s == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, InvalidInput(FieldError{Field: name, Message: "must be a positive integer"})
	}
	return id, nil
}

// queryTime parses an optional RFC 3339 time or date (YYYY-MM-DD, taken in
// loc) query parameter.
func (r *Request) queryTime(name string) (time.Time, error) {
	s := r.C.Query(name)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, InvalidInput(FieldError{Field: name, Message: "must be an RFC 3339 time or a YYYY-MM-DD date"})
}

// page reads the pagination parameters: ?limit= (1–200, default 50) and
// ?cursor= (opaque, from next_cursor).
func (r *Request) page() (account.Page, error) {
	var p account.Page
	if s := r.C.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			return p, InvalidInput(FieldError{Field: "limit", Message: "must be between 1 and 200"})
		}
		p.Limit = n
	}
	if s := r.C.Query("cursor"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		var id int64
		if err == nil {
			id, err = strconv.ParseInt(string(b), 10, 64)
		}
		if err != nil || id <= 0 {
			return p, InvalidInput(FieldError{Field: "cursor", Message: "is not a cursor this server issued"})
		}
		p.After = id
	}
	return p.Normalize(), nil
}

// mapped returns f of each element of in, in order (the DTOs of a list).
func mapped[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// pageOf wraps items in the list envelope; the next cursor is the key of
// the last item when the page is full.
func pageOf[T any](items []T, p account.Page, key func(T) int64) Page[T] {
	out := Page[T]{Items: items}
	if out.Items == nil {
		out.Items = []T{}
	}
	if len(items) == p.Limit && len(items) > 0 {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(key(items[len(items)-1]), 10)))
	}
	return out
}

// ok writes v as JSON with the given status.
func (r *Request) ok(status int, v any) error {
	return r.C.Status(status).JSON(v)
}
