package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/portal"
)

// The web portal: server-rendered pages for consumers at / and for staff
// at /staff, on the same services the REST handlers call. Its routes form
// a permission table of their own (PortalRoute), guarded like the API's:
// the same Route.Allows (roles and officials' departments) and the same
// ownership scopes, with a session cookie instead of a bearer token. Every
// portal row names the API rows whose services it calls (Mirrors); mounting
// fails unless the row's roles, departments and ownership rule are within
// theirs, so a page never lets anyone do what the API would refuse.
//
// Sessions: logging in through the portal starts an ordinary account
// session (the refresh-token family of api/account). The access token (a
// JWT, AccessTTL) and the refresh token (single use, rotated) are kept in
// two HttpOnly, SameSite=Strict cookies (Secure over TLS) that scripts
// cannot read. A request authenticates with the access token like an API
// call; when it has expired the refresh token is exchanged for new ones.
// Requests that arrive together from one browser with the same refresh
// token (a page and its htmx poll) share one exchange, so the rotation's
// reuse detection does not end the session; the same token from another
// client still does. Logout revokes the session.
//
// CSRF: every state-changing request must carry the token of the
// meterd_csrf cookie (double submit: a hidden _csrf form field, or the
// X-CSRF-Token header that portal.js adds to htmx requests), compared in
// constant time; a request whose Origin is another site, or that the
// browser labels Sec-Fetch-Site: cross-site, is refused too. The token is
// replaced at login and logout.

// PortalConfig configures the web portal. Zero values take the documented
// defaults.
type PortalConfig struct {
	// PublicURL is the portal's externally visible base URL
	// ("https://power.example.com"), for the return links given to payment
	// providers. Default: the scheme and host of each request.
	PublicURL string
	// LivePoll is how often the dashboard refreshes live readings. Default
	// 10 s.
	LivePoll time.Duration
	// SecureCookies sets the Secure flag on every cookie even when requests
	// arrive over plain HTTP (TLS terminated by a proxy that is not a
	// trusted proxy). Default: Secure when the request is HTTPS.
	SecureCookies bool
	// CheckoutScripts are the payment providers' browser SDKs, by the
	// next-action type of the payments that need them
	// ("razorpay_checkout", "stripe_confirm"). The checkout page loads the
	// one its payment needs, and only that page's content security policy
	// admits its origin. Defaults: Razorpay Checkout and Stripe.js v3, which
	// the providers require be loaded from their own origins.
	CheckoutScripts map[string]string
}

// Default checkout SDKs.
var defaultCheckoutScripts = map[string]string{
	"razorpay_checkout": "https://checkout.razorpay.com/v1/checkout.js",
	"stripe_confirm":    "https://js.stripe.com/v3/",
}

func (c *PortalConfig) setDefaults() {
	if c.LivePoll == 0 {
		c.LivePoll = 10 * time.Second
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	scripts := maps.Clone(defaultCheckoutScripts)
	maps.Copy(scripts, c.CheckoutScripts)
	c.CheckoutScripts = scripts
}

// Validate checks the configuration.
func (c PortalConfig) Validate() error {
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("portal: public URL %q: want scheme://host[:port]", c.PublicURL)
		}
	}
	if c.LivePoll < 0 {
		return errors.New("portal: LivePoll must not be negative")
	}
	for kind, script := range c.CheckoutScripts {
		if _, ok := defaultCheckoutScripts[kind]; !ok {
			return fmt.Errorf("portal: checkout script for %q: no such next action", kind)
		}
		if scriptOrigin(script) == "" {
			return fmt.Errorf("portal: checkout script %q: want an absolute http(s) URL", script)
		}
	}
	return nil
}

// TenantDirectory resolves a tenant for display: its name, time zone and
// currency (account/postgres.Store implements it).
type TenantDirectory interface {
	TenantByID(ctx context.Context, id int64) (account.Tenant, error)
}

// PortalRoute is one row of the portal's permission table.
type PortalRoute struct {
	Route
	// Mirrors are the API rows ("GET /api/bills") whose services the page
	// calls. The row is mounted only when they are, and its roles,
	// departments and ownership rule must be within theirs.
	Mirrors []string
}

// Portal is the mounted web portal.
type Portal struct {
	cfg     PortalConfig
	svc     Services
	tenants TenantDirectory
	views   *portal.Views
	srv     *Server
	now     func() time.Time
	routes  []PortalRoute

	mu      sync.Mutex
	tenant  map[int64]cachedTenant
	flights map[string]*refreshFlight
}

type cachedTenant struct {
	t   account.Tenant
	loc *time.Location
	at  time.Time
}

// Routes returns the portal's permission table, as mounted.
func (p *Portal) Routes() []PortalRoute { return slices.Clone(p.routes) }

// MountPortal mounts the web portal: its static files under /assets/ and
// the rows of its permission table. Call it after Mount (the portal's rows
// are checked against the API's) and before Start.
func (s *Server) MountPortal(svc Services, tenants TenantDirectory, cfg PortalConfig) (*Portal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if svc.Accounts == nil || tenants == nil {
		return nil, errors.New("portal: the account service and a tenant directory are required")
	}
	if len(s.routes) == 0 {
		return nil, errors.New("portal: mount the API first")
	}
	views, err := portal.NewViews()
	if err != nil {
		return nil, err
	}
	static, err := portal.Static()
	if err != nil {
		return nil, err
	}
	p := &Portal{cfg: cfg, svc: svc, tenants: tenants, views: views, srv: s, now: s.deps.now(),
		tenant: map[int64]cachedTenant{}, flights: map[string]*refreshFlight{}}
	api := map[string]Route{}
	for _, rt := range s.routes {
		api[rt.Method+" "+rt.Path] = rt
	}
	for _, rt := range p.table() {
		mounted := true
		for _, m := range rt.Mirrors {
			mirror, ok := api[m]
			if !ok {
				mounted = false
				break
			}
			if err := withinMirror(rt, mirror); err != nil {
				return nil, err
			}
		}
		if mounted {
			p.routes = append(p.routes, rt)
		}
	}
	s.app.Use("/assets", func(c *fiber.Ctx) error {
		// Asset URLs carry a hash of their content (?v=), so they may be
		// cached for long.
		c.Set(fiber.HeaderCacheControl, "public, max-age=604800")
		return c.Next()
	}, filesystem.New(filesystem.Config{Root: http.FS(static)}))
	for _, rt := range p.routes {
		s.app.Add(rt.Method, rt.Path, p.guard(rt))
	}
	s.app.Use(p.notFound)
	return p, nil
}

// withinMirror checks that portal row rt allows no more than API row m.
func withinMirror(rt PortalRoute, m Route) error {
	name := rt.Method + " " + rt.Path
	if rt.Public() != m.Public() && rt.Public() {
		return fmt.Errorf("portal: %s is public but %s %s is not", name, m.Method, m.Path)
	}
	for _, role := range rt.Roles {
		if !slices.Contains(m.Roles, role) && !m.Public() {
			return fmt.Errorf("portal: %s allows %s, which %s %s does not", name, role, m.Method, m.Path)
		}
	}
	if slices.Contains(rt.Roles, account.RoleOfficial) && len(m.Departments) > 0 {
		if len(rt.Departments) == 0 {
			return fmt.Errorf("portal: %s allows officials of every department; %s %s only %v", name, m.Method, m.Path, m.Departments)
		}
		for _, d := range rt.Departments {
			if !slices.Contains(m.Departments, d) {
				return fmt.Errorf("portal: %s allows department %s, which %s %s does not", name, d, m.Method, m.Path)
			}
		}
	}
	if !m.Public() {
		for _, role := range rt.Roles {
			if reach(rt.Owner, role) > reach(m.Owner, role) {
				return fmt.Errorf("portal: %s reaches more of a %s's records (%s) than %s %s (%s)", name, role, rt.Owner, m.Method, m.Path, m.Owner)
			}
		}
	}
	return nil
}

// reach is how far an ownership rule lets a role reach: 1 its own
// records, 2 the tenant's.
func reach(o account.Ownership, role account.Role) int {
	if o.ScopeFor(account.Principal{TenantID: 1, UserID: 1, Role: role}).Owned() {
		return 1
	}
	return 2
}

// Cookies of the portal.
const (
	cookieAccess  = "meterd_session"
	cookieRefresh = "meterd_refresh"
	cookieCSRF    = "meterd_csrf"
	cookieFlash   = "meterd_flash"
	csrfField     = "_csrf"
	csrfHeader    = "X-CSRF-Token"
	localPortal   = "meterd.portal"
)

// portalState is what the guard learned about a request, for the handler
// and the layout.
type portalState struct {
	csrf  string
	flash string
}

func stateOf(c *fiber.Ctx) *portalState {
	if st, ok := c.Locals(localPortal).(*portalState); ok {
		return st
	}
	st := &portalState{}
	c.Locals(localPortal, st)
	return st
}

// guard authenticates (session cookies), checks CSRF on unsafe methods and
// authorizes with the row's rules, then runs the handler and renders its
// error, if any, as a page.
func (p *Portal) guard(rt PortalRoute) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		// Forms post to this origin: with the API's no-referrer policy
		// browsers would send "Origin: null", which says nothing.
		c.Set(fiber.HeaderReferrerPolicy, "same-origin")
		r := &Request{C: c, Actor: account.Actor{Address: c.IP(), RequestID: requestID(c), UserAgent: c.Get(fiber.HeaderUserAgent)}}
		st := stateOf(c)
		st.csrf = p.ensureCSRF(c)
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			if !p.checkCSRF(c, st.csrf) {
				return p.renderError(r, Errorf(KindUnauthorizedAccess,
					"this form has expired or did not come from this site; reload the page and try again"))
			}
		}
		principal, ok, err := p.authenticate(c, r.Actor)
		if err != nil {
			return p.renderError(r, err)
		}
		if ok {
			r.Actor.Principal = principal
		}
		if !rt.Public() {
			if !ok {
				return p.toLogin(r)
			}
			if !rt.Allows(principal) {
				return p.renderError(r, Errorf(KindUnauthorizedAccess, "your role (%s) may not open this page", describeRole(principal)))
			}
			r.Scope = rt.Owner.ScopeFor(principal)
		}
		if err := rt.Handler(r); err != nil {
			return p.renderError(r, err)
		}
		return nil
	}
}

// notFound answers unknown paths: an HTML page for browsers outside /api,
// else the API's problem document.
func (p *Portal) notFound(c *fiber.Ctx) error {
	if (c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead) && !strings.HasPrefix(c.Path(), "/api/") &&
		strings.Contains(c.Get(fiber.HeaderAccept), "text/html") {
		r := &Request{C: c, Actor: account.Actor{Address: c.IP(), RequestID: requestID(c)}}
		stateOf(c).csrf = p.ensureCSRF(c)
		if pr, ok, err := p.authenticate(c, r.Actor); err == nil && ok {
			r.Actor.Principal = pr
		}
		return p.renderError(r, Errorf(KindNotFound, "there is no page at %s", c.Path()))
	}
	return c.Next()
}

// secure reports whether cookies get the Secure flag.
func (p *Portal) secure(c *fiber.Ctx) bool {
	return p.cfg.SecureCookies || c.Protocol() == "https"
}

func (p *Portal) setCookie(c *fiber.Ctx, name, value string, expires time.Time) {
	ck := &fiber.Cookie{Name: name, Value: value, Path: "/", HTTPOnly: true, Secure: p.secure(c), SameSite: fiber.CookieSameSiteStrictMode}
	if expires.IsZero() {
		ck.SessionOnly = true
	} else {
		ck.Expires = expires
		ck.MaxAge = int(time.Until(expires).Seconds())
		if ck.MaxAge <= 0 {
			ck.MaxAge = -1
		}
	}
	c.Cookie(ck)
}

func (p *Portal) clearCookie(c *fiber.Ctx, name string) {
	c.Cookie(&fiber.Cookie{Name: name, Value: "", Path: "/", HTTPOnly: true, Secure: p.secure(c), SameSite: fiber.CookieSameSiteStrictMode,
		MaxAge: -1, Expires: time.Unix(1, 0)})
}

// startSession stores a new session's tokens in the cookies and replaces
// the CSRF token (a token known before login is worth nothing after it).
func (p *Portal) startSession(c *fiber.Ctx, s account.Session) {
	p.setCookie(c, cookieAccess, s.AccessToken, s.AccessExpires)
	p.setCookie(c, cookieRefresh, s.RefreshToken, s.RefreshExpires)
	st := stateOf(c)
	st.csrf = newPortalToken()
	p.setCookie(c, cookieCSRF, st.csrf, time.Time{})
}

// endSession clears the session cookies and replaces the CSRF token.
func (p *Portal) endSession(c *fiber.Ctx) {
	p.clearCookie(c, cookieAccess)
	p.clearCookie(c, cookieRefresh)
	st := stateOf(c)
	st.csrf = newPortalToken()
	p.setCookie(c, cookieCSRF, st.csrf, time.Time{})
}

// authenticate reads the session cookies: the access token if it is still
// good, else a refresh. ok is false for anonymous requests (and for
// sessions that ended: their cookies are cleared).
func (p *Portal) authenticate(c *fiber.Ctx, a account.Actor) (account.Principal, bool, error) {
	ctx := c.UserContext()
	access, refresh := c.Cookies(cookieAccess), c.Cookies(cookieRefresh)
	if access != "" {
		pr, err := p.svc.Accounts.Authenticate(ctx, access)
		switch {
		case err == nil:
			return pr, true, nil
		case errors.Is(err, account.ErrAccountLocked):
			p.endSession(c)
			return account.Principal{}, false, nil
		case !errors.Is(err, account.ErrUnauthenticated):
			return account.Principal{}, false, err
		}
	}
	if refresh == "" {
		if access != "" {
			p.endSession(c)
		}
		return account.Principal{}, false, nil
	}
	s, err := p.refresh(ctx, a, refresh)
	switch {
	case err == nil:
		p.setCookie(c, cookieAccess, s.AccessToken, s.AccessExpires)
		p.setCookie(c, cookieRefresh, s.RefreshToken, s.RefreshExpires)
		return s.User.Principal(s.SessionID), true, nil
	case errors.Is(err, account.ErrUnauthenticated), errors.Is(err, account.ErrRefreshReuse), errors.Is(err, account.ErrAccountLocked):
		p.endSession(c)
		return account.Principal{}, false, nil
	}
	return account.Principal{}, false, err
}

// refreshFlight is one refresh-token exchange, shared by the requests that
// present the same refresh token from the same client (address and user
// agent) within refreshShare. A copy of the token presented from anywhere
// else is a second use, which ends the session.
type refreshFlight struct {
	done chan struct{}
	s    account.Session
	err  error
	at   time.Time
}

const (
	refreshShare      = 10 * time.Second
	refreshFlightsMax = 10_000
)

func (p *Portal) refresh(ctx context.Context, a account.Actor, token string) (account.Session, error) {
	key := tokenKey(token + "\x00" + a.Address + "\x00" + a.UserAgent)
	now := time.Now()
	p.mu.Lock()
	for k, f := range p.flights {
		if !f.at.IsZero() && now.Sub(f.at) > refreshShare {
			delete(p.flights, k)
		}
	}
	f, shared := p.flights[key]
	if !shared {
		f = &refreshFlight{done: make(chan struct{})}
		if len(p.flights) < refreshFlightsMax {
			p.flights[key] = f
		}
	}
	p.mu.Unlock()
	if shared {
		select {
		case <-f.done:
			return f.s, f.err
		case <-ctx.Done():
			return account.Session{}, ctx.Err()
		}
	}
	f.s, f.err = p.svc.Accounts.Refresh(ctx, a, token)
	p.mu.Lock()
	f.at = time.Now()
	p.mu.Unlock()
	close(f.done)
	return f.s, f.err
}

// toLogin answers a request without a session: a redirect to the login
// page that comes back here afterwards. A browser arriving from another
// site (a payment provider's return link, a link in an email) sends no
// SameSite=Strict cookies, so it is first sent back here from this site,
// once, with a page that reloads itself.
func (p *Portal) toLogin(r *Request) error {
	c := r.C
	next := c.OriginalURL()
	if c.Method() != fiber.MethodGet {
		next = "/"
	}
	if c.Method() == fiber.MethodGet && c.Get("Sec-Fetch-Site") == "cross-site" && c.Query("_hop") == "" {
		sep := "?"
		if strings.Contains(next, "?") {
			sep = "&"
		}
		return p.render(r, http.StatusOK, "hop", "Continuing…", struct{ URL string }{next + sep + "_hop=1"})
	}
	loc := "/login?next=" + url.QueryEscape(stripHop(next))
	if c.Get("HX-Request") == "true" {
		c.Set("HX-Redirect", loc)
		return c.SendStatus(fiber.StatusUnauthorized)
	}
	return c.Redirect(loc, fiber.StatusSeeOther)
}

func stripHop(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "/"
	}
	q := pu.Query()
	if !q.Has("_hop") {
		return u
	}
	q.Del("_hop")
	pu.RawQuery = q.Encode()
	return pu.RequestURI()
}

// localPath returns next when it is a path on this site, else "".
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return ""
	}
	return stripHop(next)
}

// home is where a principal's portal starts.
func home(pr account.Principal) string {
	if pr.Role.Staff() {
		return "/staff"
	}
	return "/"
}

// baseURL is the portal's base URL for links that leave the site.
func (p *Portal) baseURL(c *fiber.Ctx) string {
	if p.cfg.PublicURL != "" {
		return p.cfg.PublicURL
	}
	return c.BaseURL()
}

// redirect answers a successful form post (post/redirect/get), with a
// message for the next page.
func (p *Portal) redirect(r *Request, to, flash string) error {
	if flash != "" {
		p.setCookie(r.C, cookieFlash, url.QueryEscape(flash), time.Time{})
	}
	return r.C.Redirect(to, fiber.StatusSeeOther)
}

// takeFlash returns and clears the message a redirect left.
func (p *Portal) takeFlash(c *fiber.Ctx) string {
	v := c.Cookies(cookieFlash)
	if v == "" {
		return ""
	}
	p.clearCookie(c, cookieFlash)
	msg, err := url.QueryUnescape(v)
	if err != nil || len(msg) > 500 {
		return ""
	}
	return msg
}

// formValues reads the named fields of a posted form.
func formValues(c *fiber.Ctx, names ...string) map[string]string {
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = strings.TrimSpace(c.FormValue(n))
	}
	return out
}

// optionalInt64 parses an optional integer form value; ok is false when it
// is present but not an integer.
func optionalInt64(s string) (*int64, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if s == "" {
		return nil, true
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, false
	}
	return &v, true
}

// pathID parses a positive integer path parameter of a portal page; a
// malformed id is a page that does not exist.
func portalID(r *Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.C.Params(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, Errorf(KindNotFound, "there is no such page")
	}
	return id, nil
}
