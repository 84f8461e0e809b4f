package api

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"rsc.io/qr"

	"github.com/meterd/meterd/api/account"
)

// Portal pages for sessions and accounts: log in (with the second factor,
// lockout and unverified-address cases said plainly), register, verify,
// log out, profile, password and the TOTP second factor.

type loginData struct {
	Next       string
	NeedTOTP   bool
	Unverified bool
	Email      string
}

func (p *Portal) loginPage(r *Request) error {
	if r.Actor.Authenticated() {
		return r.C.Redirect(home(r.Actor.Principal), http.StatusSeeOther)
	}
	return p.render(r, http.StatusOK, "login", "Log in", loginData{Next: localPath(r.C.Query("next"))})
}

func (p *Portal) login(r *Request) error {
	f := formValues(r.C, "email", "password", "totp_code", "tenant", "next")
	d := loginData{Next: localPath(f["next"]), Email: f["email"], NeedTOTP: f["totp_code"] != ""}
	s, err := p.svc.Accounts.Login(r.C.UserContext(), r.Actor, account.LoginInput{Tenant: f["tenant"], Email: f["email"],
		Password: r.C.FormValue("password"), TOTPCode: f["totp_code"]})
	if err != nil {
		delete(f, "password")
		delete(f, "totp_code")
		switch {
		case errors.Is(err, account.ErrSecondFactorRequired):
			d.NeedTOTP = true
		case errors.Is(err, account.ErrEmailNotVerified):
			d.Unverified = true
		}
		if formProblem(err) {
			return p.renderForm(r, "login", "Log in", d, f, err)
		}
		return err
	}
	p.startSession(r.C, s)
	to := d.Next
	if to == "" {
		to = home(s.User.Principal(s.SessionID))
	}
	return p.redirect(r, to, "")
}

func (p *Portal) registerPage(r *Request) error {
	if r.Actor.Authenticated() {
		return r.C.Redirect(home(r.Actor.Principal), http.StatusSeeOther)
	}
	return p.render(r, http.StatusOK, "register", "Create an account", nil)
}

func (p *Portal) register(r *Request) error {
	f := formValues(r.C, "name", "email", "phone", "tenant")
	pw, pw2 := r.C.FormValue("password"), r.C.FormValue("password2")
	if pw != pw2 {
		return p.renderForm(r, "register", "Create an account", nil, f,
			InvalidInput(FieldError{Field: "password2", Message: "does not match the password"}))
	}
	u, err := p.svc.Accounts.Register(r.C.UserContext(), r.Actor, account.RegisterInput{Tenant: f["tenant"], Email: f["email"],
		Password: pw, Name: f["name"], Phone: f["phone"]})
	if err != nil {
		if formProblem(err) {
			return p.renderForm(r, "register", "Create an account", nil, f, err)
		}
		return err
	}
	return p.render(r, http.StatusCreated, "verify", "Check your email", verifyData{Sent: u.Email, Tenant: f["tenant"]})
}

type verifyData struct {
	Sent     string // the address a link was sent to
	Verified string // the address just verified
	Tenant   string
}

func (p *Portal) verifyPage(r *Request) error {
	token := r.C.Query("token")
	if token == "" {
		return p.render(r, http.StatusOK, "verify", "Verify your email address", verifyData{})
	}
	return p.verifyToken(r, token)
}

func (p *Portal) verify(r *Request) error {
	return p.verifyToken(r, strings.TrimSpace(r.C.FormValue("token")))
}

func (p *Portal) verifyToken(r *Request, token string) error {
	u, err := p.svc.Accounts.VerifyEmail(r.C.UserContext(), r.Actor, token)
	if err != nil {
		if formProblem(err) {
			return p.renderForm(r, "verify", "Verify your email address", verifyData{}, map[string]string{}, err)
		}
		return err
	}
	return p.render(r, http.StatusOK, "verify", "Email address verified", verifyData{Verified: u.Email})
}

func (p *Portal) resend(r *Request) error {
	f := formValues(r.C, "email", "tenant")
	if err := p.svc.Accounts.ResendVerification(r.C.UserContext(), r.Actor, f["tenant"], f["email"]); err != nil {
		if formProblem(err) {
			return p.renderForm(r, "verify", "Verify your email address", verifyData{}, f, err)
		}
		return err
	}
	return p.render(r, http.StatusAccepted, "verify", "Check your email", verifyData{Sent: f["email"], Tenant: f["tenant"]})
}

func (p *Portal) logout(r *Request) error {
	err := p.svc.Accounts.Logout(r.C.UserContext(), r.Actor)
	p.endSession(r.C)
	if err != nil && !errors.Is(err, account.ErrUnauthenticated) {
		return err
	}
	return p.redirect(r, "/login", "You have logged out.")
}

// --- profile

type profileData struct {
	Profile     account.Profile
	TOTPEnabled bool
	// TOTP is a second factor being set up: its secret, URI and QR code.
	TOTP *totpData
}

type totpData struct {
	Secret string
	URI    string
	QR     template.URL
}

func (p *Portal) profileData(r *Request) (profileData, map[string]string, error) {
	var d profileData
	me, err := p.svc.Accounts.Me(r.C.UserContext(), r.Actor)
	if err != nil {
		return d, nil, err
	}
	d.TOTPEnabled = me.TOTPEnabled
	pr, err := p.svc.Accounts.GetProfile(r.C.UserContext(), r.Actor, r.Scope, 0)
	if err != nil && !errors.Is(err, account.ErrProfileNotFound) {
		return d, nil, err
	}
	d.Profile = pr
	f := map[string]string{"name": pr.Name, "email": pr.Email, "phone": pr.Phone}
	if a := pr.Address; a != nil {
		f["address.line1"], f["address.line2"], f["address.city"] = a.Line1, a.Line2, a.City
		f["address.state"], f["address.postal_code"], f["address.country"] = a.State, a.PostalCode, a.Country
	}
	return d, f, nil
}

func (p *Portal) profilePage(r *Request) error {
	d, f, err := p.profileData(r)
	if err != nil {
		return err
	}
	v := p.view(r, "Profile", d)
	v.Form = f
	return p.write(r, http.StatusOK, "profile", "layout", v)
}

func (p *Portal) updateProfile(r *Request) error {
	f := formValues(r.C, "name", "email", "phone", "address.line1", "address.line2", "address.city", "address.state", "address.postal_code", "address.country")
	in := account.ProfileInput{Name: f["name"], Email: f["email"], Phone: f["phone"]}
	if f["address.line1"] != "" || f["address.city"] != "" || f["address.postal_code"] != "" || f["address.line2"] != "" {
		in.Address = &account.Address{Line1: f["address.line1"], Line2: f["address.line2"], City: f["address.city"], State: f["address.state"],
			PostalCode: f["address.postal_code"], Country: f["address.country"]}
	}
	if _, err := p.svc.Accounts.UpdateProfile(r.C.UserContext(), r.Actor, r.Scope, 0, in); err != nil {
		if formProblem(err) {
			d, _, derr := p.profileData(r)
			if derr != nil {
				return derr
			}
			return p.renderForm(r, "profile", "Profile", d, f, err)
		}
		return err
	}
	return p.redirect(r, "/profile", "Your profile is saved.")
}

// profileFailed shows the profile page again with a form problem err
// (the fields as they are now), or returns any other error.
func (p *Portal) profileFailed(r *Request, err error) error {
	if !formProblem(err) {
		return err
	}
	d, f, derr := p.profileData(r)
	if derr != nil {
		return derr
	}
	return p.renderForm(r, "profile", "Profile", d, f, err)
}

func (p *Portal) changePassword(r *Request) error {
	err := p.svc.Accounts.ChangePassword(r.C.UserContext(), r.Actor, r.C.FormValue("current_password"), r.C.FormValue("new_password"))
	if err != nil {
		if errors.Is(err, account.ErrInvalidCredentials) {
			err = InvalidInput(FieldError{Field: "current_password", Message: "is not your current password"})
		}
		return p.profileFailed(r, err)
	}
	return p.redirect(r, "/profile", "Your password is changed; your other sessions have ended.")
}

func (p *Portal) totpSetup(r *Request) error {
	s, err := p.svc.Accounts.SetupTOTP(r.C.UserContext(), r.Actor)
	if err != nil {
		if formProblem(err) {
			return p.renderForm(r, "profile", "Profile", profileData{TOTPEnabled: true}, map[string]string{}, err)
		}
		return err
	}
	t := &totpData{Secret: s.Secret, URI: s.URI}
	if code, err := qr.Encode(s.URI, qr.M); err == nil {
		// A data: URL of a PNG meterd made; the policy allows data: images.
		t.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(code.PNG()))
	}
	d, f, err := p.profileData(r)
	if err != nil {
		return err
	}
	d.TOTP = t
	v := p.view(r, "Set up two-step sign-in", d)
	v.Form = f
	return p.write(r, http.StatusOK, "profile", "layout", v)
}

func (p *Portal) totpEnable(r *Request) error {
	if err := p.svc.Accounts.EnableTOTP(r.C.UserContext(), r.Actor, strings.TrimSpace(r.C.FormValue("code"))); err != nil {
		return p.profileFailed(r, err)
	}
	return p.redirect(r, "/profile", "Two-step sign-in is on: you will be asked for a code when you log in.")
}

func (p *Portal) totpDisable(r *Request) error {
	err := p.svc.Accounts.DisableTOTP(r.C.UserContext(), r.Actor, r.C.FormValue("password"), strings.TrimSpace(r.C.FormValue("code")))
	if err != nil {
		if errors.Is(err, account.ErrInvalidCredentials) {
			err = InvalidInput(FieldError{Field: "code", Message: "the password or the code is not right"})
		}
		return p.profileFailed(r, err)
	}
	return p.redirect(r, "/profile", "Two-step sign-in is off.")
}
