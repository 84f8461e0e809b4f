package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/meterd/meterd/api/account"
)

// portalView is what every portal template gets: the layout's data and
// the page's own (D).
type portalView struct {
	Title    string
	CSRF     string
	Flash    string
	User     *portalUser
	Tenant   string
	Loc      *time.Location
	TZ       string
	Currency string
	// LivePollS is the live-readings refresh interval in seconds.
	LivePollS int
	// Form holds the submitted values of the page's form, Errors its
	// invalid fields (by the service's field name), Problem the reason a
	// submission was refused.
	Form    map[string]string
	Errors  map[string]string
	Problem *Problem
	D       any
}

// portalUser is the logged-in user as the layout shows them.
type portalUser struct {
	ID         int64
	Email      string
	Role       account.Role
	Department string
	Staff      bool
	Admin      bool
	Official   bool // officials and admins
	Support    bool
	Billing    bool // may act for the billing department
	Metering   bool // may act for the metering department
}

func (p *Portal) view(r *Request, title string, data any) *portalView {
	st := stateOf(r.C)
	v := &portalView{Title: title, CSRF: st.csrf, Flash: p.takeFlash(r.C), Loc: time.UTC, TZ: "UTC", Currency: "INR",
		LivePollS: int(p.cfg.LivePoll / time.Second), Form: map[string]string{}, Errors: map[string]string{}, D: data}
	if v.LivePollS < 1 {
		v.LivePollS = 1
	}
	if st.flash != "" {
		v.Flash = st.flash
	}
	pr := r.Actor.Principal
	if !pr.Authenticated() {
		return v
	}
	u := &portalUser{ID: pr.UserID, Role: pr.Role, Department: pr.Department, Staff: pr.Role.Staff(), Admin: pr.Role == account.RoleAdmin,
		Official: pr.Role == account.RoleOfficial || pr.Role == account.RoleAdmin, Support: pr.Role == account.RoleSupport}
	u.Billing = pr.Role == account.RoleAdmin || (pr.Role == account.RoleOfficial && pr.Department == account.DepartmentBilling)
	u.Metering = pr.Role == account.RoleAdmin || (pr.Role == account.RoleOfficial && pr.Department == account.DepartmentMetering)
	if me, err := p.svc.Accounts.Me(r.C.UserContext(), r.Actor); err == nil {
		u.Email = me.Email
	}
	v.User = u
	if t, loc, ok := p.tenantOf(r); ok {
		v.Tenant, v.Loc, v.TZ, v.Currency = t.Name, loc, t.TimeZone, t.Currency
	}
	return v
}

const tenantCacheTTL = 5 * time.Minute

// tenantOf returns the caller's tenant and its time zone (cached: tenants
// change rarely).
func (p *Portal) tenantOf(r *Request) (account.Tenant, *time.Location, bool) {
	id := r.Actor.TenantID
	if id == 0 {
		return account.Tenant{}, time.UTC, false
	}
	now := time.Now()
	p.mu.Lock()
	ct, ok := p.tenant[id]
	p.mu.Unlock()
	if ok && now.Sub(ct.at) < tenantCacheTTL {
		return ct.t, ct.loc, true
	}
	t, err := p.tenants.TenantByID(r.C.UserContext(), id)
	if err != nil {
		return account.Tenant{}, time.UTC, false
	}
	loc, err := time.LoadLocation(t.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	p.mu.Lock()
	p.tenant[id] = cachedTenant{t: t, loc: loc, at: now}
	p.mu.Unlock()
	return t, loc, true
}

// loc is the caller's tenant time zone.
func (p *Portal) loc(r *Request) *time.Location {
	_, loc, _ := p.tenantOf(r)
	return loc
}

// render writes a page with the layout.
func (p *Portal) render(r *Request, status int, page, title string, data any) error {
	return p.write(r, status, page, "layout", p.view(r, title, data))
}

// renderForm writes a page whose form was refused: the submitted values,
// the invalid fields and the problem are shown with it.
func (p *Portal) renderForm(r *Request, page, title string, data any, form map[string]string, err error) error {
	v := p.view(r, title, data)
	pb := ProblemFor(err)
	v.Problem = &pb
	v.Form = form
	for _, f := range pb.Errors {
		v.Errors[f.Field] = f.Message
	}
	return p.write(r, pb.Status, page, "layout", v)
}

// fragment writes one block of a page, for htmx.
func (p *Portal) fragment(r *Request, page, block string, data any) error {
	return p.write(r, http.StatusOK, page, block, p.view(r, "", data))
}

func (p *Portal) write(r *Request, status int, page, block string, v *portalView) error {
	var b bytes.Buffer
	if err := p.views.Block(&b, page, block, v); err != nil {
		return err
	}
	r.C.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return r.C.Status(status).Send(b.Bytes())
}

// formProblem reports whether err is one a form shows next to its fields
// (invalid input, a conflict, a refused reading, wrong credentials …)
// rather than on an error page.
func formProblem(err error) bool {
	pb := ProblemFor(err)
	switch pb.Code {
	case KindUnauthorizedAccess.Code, KindUnauthenticated.Code:
		return false
	}
	return pb.Status >= 400 && pb.Status < 500 && pb.Status != http.StatusNotFound
}

// renderError shows err as a page (or, for htmx, a short message), with
// the status the API would answer. Server errors are logged once.
func (p *Portal) renderError(r *Request, err error) error {
	pb := ProblemFor(err)
	pb.RequestID = r.Actor.RequestID
	pb.Instance = r.C.Path()
	if pb.Status >= 500 {
		p.srv.deps.Logger.Error("portal request failed", "request_id", pb.RequestID, "method", r.C.Method(), "path", r.C.Path(), "err", err)
	}
	if r.C.Get("HX-Request") == "true" {
		r.C.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		return r.C.Status(pb.Status).SendString(pb.Title + ": " + pb.Detail)
	}
	v := p.view(r, pb.Title, nil)
	v.Problem = &pb
	return p.write(r, pb.Status, "error", "layout", v)
}

// newPortalToken returns a random 256-bit token, URL-safe.
func newPortalToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenKey is a token's SHA-256, as a map key that does not keep the
// token itself.
func tokenKey(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

func wellFormedToken(t string) bool {
	if len(t) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(t)
	return err == nil
}

// ensureCSRF returns the request's CSRF token, setting a new cookie when
// it has none.
func (p *Portal) ensureCSRF(c *fiber.Ctx) string {
	if t := c.Cookies(cookieCSRF); wellFormedToken(t) {
		return t
	}
	t := newPortalToken()
	p.setCookie(c, cookieCSRF, t, time.Time{})
	return t
}

// checkCSRF checks an unsafe request: it comes from this site and carries
// the cookie's token.
func (p *Portal) checkCSRF(c *fiber.Ctx, token string) bool {
	site := c.Get("Sec-Fetch-Site")
	if site == "cross-site" || site == "same-site" {
		return false
	}
	switch o := c.Get(fiber.HeaderOrigin); {
	case o == "null":
		// Browsers send "null" under some referrer policies; then only
		// their own word that the request is same-origin will do.
		if site != "same-origin" {
			return false
		}
	case o != "" && !p.sameOrigin(c, o):
		return false
	}
	sent := c.FormValue(csrfField)
	if sent == "" {
		sent = c.Get(csrfHeader)
	}
	return c.Cookies(cookieCSRF) == token && subtle.ConstantTimeCompare([]byte(sent), []byte(token)) == 1
}

func (p *Portal) sameOrigin(c *fiber.Ctx, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, string(c.Request().Host())) {
		return true
	}
	if p.cfg.PublicURL != "" {
		if pu, err := url.Parse(p.cfg.PublicURL); err == nil && strings.EqualFold(pu.Host, u.Host) {
			return true
		}
	}
	return false
}
