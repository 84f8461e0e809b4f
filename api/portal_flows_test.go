package api_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 6238's algorithm, as authenticator apps compute it
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/account"
)

// setCookie finds a Set-Cookie header of an answer by cookie name.
func setCookie(p page, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestPortalSessionCookies checks the cookies a log-in sets, the CSRF
// token's replacement at log-in, the refresh of an expired access token
// (shared by requests that arrive together, so the refresh token's reuse
// detection does not end the session), and that logging out ends the
// session for every copy of its cookies.
func TestPortalSessionCookies(t *testing.T) {
	ps := newPortalStack(t, portalOptions{})
	u := ps.staffUser("demo", "cookie@demo.example.com", account.RoleConsumer, "")
	v := ps.visitor(t)
	first := v.get("/login")
	csrf := setCookie(first, "meterd_csrf")
	if csrf == nil || !csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode || csrf.Path != "/" || csrf.Secure {
		t.Fatalf("CSRF cookie %+v", csrf)
	}
	if !strings.Contains(first.Body, `name="_csrf" value="`+csrf.Value+`"`) || first.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("login form lacks the token or the page its policy")
	}
	r := v.post("/login", url.Values{"email": {u.Email}, "password": {password}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %s", r.Status, r.Header.Get("Location"))
	}
	for _, name := range []string{"meterd_session", "meterd_refresh", "meterd_csrf"} {
		c := setCookie(r, name)
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value == "" {
			t.Fatalf("%s cookie %+v", name, c)
		}
	}
	if setCookie(r, "meterd_csrf").Value == csrf.Value {
		t.Fatal("the CSRF token was not replaced at log-in")
	}
	wantPage(t, v.get("/profile"), http.StatusOK, "")

	// Past the access token's lifetime, requests that arrive together with
	// the same refresh token all succeed and share one new token pair.
	ps.clock.Advance(20 * time.Minute)
	base, _ := url.Parse(ps.base)
	cookies := v.c.Jar.Cookies(base)
	var wg sync.WaitGroup
	results := make([]page, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ps.visitor(t)
			c.c.Jar.SetCookies(base, cookies)
			results[i] = c.get("/usage/live", "HX-Request", "true")
		}()
	}
	wg.Wait()
	refreshed := map[string]bool{}
	for i, r := range results {
		if r.Status != http.StatusOK {
			t.Fatalf("concurrent request %d after expiry: %d %s", i, r.Status, r.Header.Get("HX-Redirect"))
		}
		c := setCookie(r, "meterd_refresh")
		if c == nil {
			t.Fatalf("request %d got no new refresh token", i)
		}
		refreshed[c.Value] = true
	}
	if len(refreshed) != 1 {
		t.Fatalf("%d different refresh tokens for one exchange", len(refreshed))
	}
	for _, c := range cookies {
		if c.Name == "meterd_refresh" && refreshed[c.Value] {
			t.Fatal("the refresh token was not rotated")
		}
	}
	wantPage(t, v.get("/profile"), http.StatusOK, "") // v's own jar got the new pair too

	// The old refresh token from another client is a stolen copy: the
	// session ends for everyone.
	ps.clock.Advance(20 * time.Minute)
	thief := ps.visitor(t)
	thief.c.Jar.SetCookies(base, cookies)
	if r := thief.get("/profile", "User-Agent", "another browser"); r.Status != http.StatusSeeOther {
		t.Fatalf("a stolen refresh token worked: %d", r.Status)
	}
	if r := v.get("/profile"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Fatalf("the session survived the reuse of its refresh token: %d", r.Status)
	}
	v.login(u.Email)

	// Logging out ends the session: a copy of its cookies no longer works.
	old := v.c.Jar.Cookies(base)
	r = v.post("/logout", nil)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d", r.Status)
	}
	thief = ps.visitor(t)
	thief.c.Jar.SetCookies(base, old)
	if r := thief.get("/profile"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Fatalf("a copy of the logged-out cookies still works: %d", r.Status)
	}
	// An htmx request without a session is told where to log in.
	if r := thief.get("/usage/live", "HX-Request", "true"); r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("HX-Redirect"), "/login") {
		t.Fatalf("htmx without a session: %d %q", r.Status, r.Header.Get("HX-Redirect"))
	}
}

// TestPortalSecureCookies: with SecureCookies (TLS ended by a proxy) every
// cookie is Secure.
func TestPortalSecureCookies(t *testing.T) {
	ps := newPortalStack(t, portalOptions{cfg: api.PortalConfig{SecureCookies: true}})
	if c := setCookie(ps.visitor(t).get("/login"), "meterd_csrf"); c == nil || !c.Secure {
		t.Fatalf("CSRF cookie %+v", c)
	}
}

// TestPortalCSRF: a state-changing request needs the token of its cookie
// and must come from this site.
func TestPortalCSRF(t *testing.T) {
	ps := newPortalStack(t, portalOptions{})
	u := ps.staffUser("demo", "csrf@demo.example.com", account.RoleConsumer, "")
	v := ps.visitor(t)
	// Log-in CSRF: the log-in form is protected too.
	wantPage(t, v.post("/login", url.Values{"email": {u.Email}, "password": {password}, "_csrf": {""}}), http.StatusForbidden, "UnauthorizedAccess")
	v.login(u.Email)
	ticket := url.Values{"category": {"other"}, "description": {"A question about my bill, please."}}
	with := func(extra url.Values) url.Values {
		f := url.Values{}
		for k, vs := range ticket {
			f[k] = vs
		}
		for k, vs := range extra {
			f[k] = vs
		}
		return f
	}
	for _, c := range []struct {
		name string
		form url.Values
		hdr  []string
	}{
		{"no token", with(url.Values{"_csrf": {""}}), nil},
		{"another token", with(url.Values{"_csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}), nil},
		{"another site's origin", with(nil), []string{"Origin", "https://evil.example"}},
		{"cross-site fetch", with(nil), []string{"Sec-Fetch-Site", "cross-site"}},
		{"a sibling subdomain", with(nil), []string{"Sec-Fetch-Site", "same-site"}},
		{"an opaque origin without fetch metadata", with(nil), []string{"Origin", "null"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v.t = t
			wantPage(t, v.post("/support", c.form, c.hdr...), http.StatusForbidden, "UnauthorizedAccess")
		})
	}
	v.t = t
	var n int
	must(t, ps.pool.QueryRow(context.Background(), `SELECT count(*) FROM support_tickets`).Scan(&n))
	if n != 0 {
		t.Fatalf("%d tickets raised by refused requests", n)
	}
	// The form's token, and the header htmx sends, are accepted.
	if r := v.post("/support", with(nil), "Origin", ps.base, "Sec-Fetch-Site", "same-origin"); r.Status != http.StatusSeeOther {
		t.Fatalf("with the token: %d %s", r.Status, r.Problem())
	}
	hdr := with(url.Values{"_csrf": {""}})
	hdr.Del("_csrf")
	req, _ := http.NewRequest(http.MethodPost, ps.base+"/support", strings.NewReader(hdr.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := v.do(req, []string{"X-CSRF-Token", v.cookie("meterd_csrf"), "Origin", "null", "Sec-Fetch-Site", "same-origin"}); r.Status != http.StatusSeeOther {
		t.Fatalf("with the header: %d %s", r.Status, r.Problem())
	}
}

// totp computes an RFC 6238 code, as an authenticator app does.
func totp(secret string, at time.Time) string {
	key, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/30))
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	return fmt.Sprintf("%06d", (binary.BigEndian.Uint32(sum[off:off+4])&0x7fffffff)%1_000_000)
}

// TestPortalAccountFlows walks registration, verification (the token read
// from the outbox, as the email carries it), the log-in answers people
// need to understand (unverified, wrong password, locked, second factor),
// profile changes with field errors (requirement cases 5 and 7), and
// setting up, using and turning off the second factor.
func TestPortalAccountFlows(t *testing.T) {
	ps := newPortalStack(t, portalOptions{})
	v := ps.visitor(t)
	email := "asha@example.com"
	r := v.post("/register", url.Values{"name": {"Asha"}, "email": {email}, "password": {password}, "password2": {"something else entirely"}})
	wantPage(t, r, http.StatusBadRequest, "InvalidInput")
	wantContains(t, r, `id="f-password2-err"`, "does not match the password", `value="Asha"`)
	r = v.post("/register", url.Values{"name": {"Asha"}, "email": {"not-an-email"}, "password": {"short"}, "password2": {"short"}})
	wantPage(t, r, http.StatusBadRequest, "InvalidInput")
	wantContains(t, r, `id="f-email-err"`, `id="f-password-err"`, `aria-invalid="true"`)
	r = v.post("/register", url.Values{"name": {"Asha"}, "email": {email}, "password": {password}, "password2": {password}})
	wantPage(t, r, http.StatusCreated, "")
	wantContains(t, r, "Check your email", email)

	r = v.post("/login", url.Values{"email": {email}, "password": {password}})
	wantPage(t, r, http.StatusForbidden, "EmailNotVerified")
	wantContains(t, r, "Verify your email address first", `action="/verify/resend"`)

	r = v.get("/verify?token=" + url.QueryEscape("not-a-real-token"))
	wantPage(t, r, http.StatusBadRequest, "InvalidToken")
	r = v.get("/verify?token=" + url.QueryEscape(ps.outboxToken(email)))
	wantPage(t, r, http.StatusOK, "")
	wantContains(t, r, "Email address verified", email)

	r = v.post("/login", url.Values{"email": {email}, "password": {"wrong password here"}})
	wantPage(t, r, http.StatusUnauthorized, "InvalidCredentials")
	if strings.Contains(r.Body, "wrong password here") {
		t.Fatal("the password was echoed back")
	}
	v.login(email)

	// Profile: field errors name the fields; a good update is saved.
	r = v.post("/profile", url.Values{"name": {""}, "phone": {"call me maybe"}, "address.line1": {"12 MG Road"}})
	wantPage(t, r, http.StatusBadRequest, "InvalidInput")
	wantContains(t, r, `id="f-name-err"`, `id="f-phone-err"`, `id="f-address-city-err"`, `value="12 MG Road"`)
	r = v.post("/profile", url.Values{"name": {"Asha Rao"}, "phone": {"+91 98450 12345"}, "address.line1": {"12 MG Road"},
		"address.city": {"Bengaluru"}, "address.postal_code": {"560001"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("profile update: %d %s", r.Status, r.Problem())
	}
	r = v.get("/profile")
	wantContains(t, r, "Your profile is saved.", `value="Asha Rao"`, `value="&#43;91 98450 12345"`, `value="Bengaluru"`, `value="IN"`)
	wantPage(t, v.post("/profile/password", url.Values{"current_password": {"not it"}, "new_password": {"a brand new passphrase"}}), http.StatusBadRequest, "InvalidInput")

	// Second factor: set up from the page's key, turned on with a code.
	r = v.post("/profile/totp/setup", nil)
	wantPage(t, r, http.StatusOK, "")
	m := regexp.MustCompile(`Key: <code>([A-Z2-7]+)</code>`).FindStringSubmatch(r.Body)
	if m == nil || !strings.Contains(r.Body, `src="data:image/png;base64,`) {
		t.Fatalf("setup page lacks the key or its QR code\n%s", r.Body)
	}
	secret := m[1]
	wantPage(t, v.post("/profile/totp/enable", url.Values{"code": {"000000"}}), http.StatusBadRequest, "InvalidInput")
	now := time.Now()
	if r := v.post("/profile/totp/enable", url.Values{"code": {totp(secret, now)}}); r.Status != http.StatusSeeOther {
		t.Fatalf("enable: %d %s", r.Status, r.Problem())
	}
	v2 := ps.visitor(t)
	r = v2.post("/login", url.Values{"email": {email}, "password": {password}})
	wantPage(t, r, http.StatusUnauthorized, "SecondFactorRequired")
	wantContains(t, r, `id="f-totp-code"`, "6-digit code")
	r = v2.post("/login", url.Values{"email": {email}, "password": {password}, "totp_code": {totp(secret, now.Add(30*time.Second))}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("login with a code: %d %s", r.Status, r.Problem())
	}
	ps.clock.Advance(time.Minute) // a code is good once: wait for the next one
	if r := v2.post("/profile/totp/disable", url.Values{"password": {password}, "code": {totp(secret, now.Add(60*time.Second))}}); r.Status != http.StatusSeeOther {
		t.Fatalf("disable: %d %s", r.Status, r.Problem())
	}

	// Five wrong passwords lock the account; the page says so.
	v3 := ps.visitor(t)
	for range 5 {
		r = v3.post("/login", url.Values{"email": {email}, "password": {"wrong password here"}})
	}
	wantPage(t, r, http.StatusLocked, "AccountLocked")
	wantContains(t, r, "This account is locked")
	wantPage(t, v3.post("/login", url.Values{"email": {email}, "password": {password}}), http.StatusLocked, "AccountLocked")
}

// TestPortalReturnFromAnotherSite: a browser that arrives from another
// site (a payment provider's return link) sends no SameSite=Strict
// cookies, so it is sent back here once from this site; without a session
// it then logs in and lands where it was going.
func TestPortalReturnFromAnotherSite(t *testing.T) {
	ps := newPortalStack(t, portalOptions{})
	u := ps.staffUser("demo", "hop@demo.example.com", account.RoleConsumer, "")
	v := ps.visitor(t)
	target := "/payments?from=provider"
	r := v.get(target, "Sec-Fetch-Site", "cross-site")
	wantPage(t, r, http.StatusOK, "")
	wantContains(t, r, `href="/payments?from=provider&amp;_hop=1" data-autofollow`)
	r = v.get(target+"&_hop=1", "Sec-Fetch-Site", "same-origin")
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login?next="+url.QueryEscape(target) {
		t.Fatalf("after the hop: %d %s", r.Status, r.Header.Get("Location"))
	}
	login := v.get(r.Header.Get("Location"))
	wantContains(t, login, `name="next" value="/payments?from=provider"`)
	r = v.post("/login", url.Values{"email": {u.Email}, "password": {password}, "next": {target}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != target {
		t.Fatalf("login: %d %s", r.Status, r.Header.Get("Location"))
	}
	// Only paths on this site are followed.
	v2 := ps.visitor(t)
	r = v2.post("/login", url.Values{"email": {u.Email}, "password": {password}, "next": {"https://evil.example/"}})
	if r.Header.Get("Location") != "/" {
		t.Fatalf("followed %s", r.Header.Get("Location"))
	}
}
