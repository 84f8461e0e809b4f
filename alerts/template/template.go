package template

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed defaults
var embedded embed.FS

// Blocks a template file defines. Every embedded default defines all of
// them; a tenant override may define any subset (the rest come from the
// default), and may redefine "layout", the HTML frame.
const (
	BlockSubject   = "subject"
	BlockText      = "text"
	BlockHTML      = "html"
	BlockSMS       = "sms"
	BlockPushTitle = "push_title"
	BlockPushBody  = "push_body"
)

// FallbackLocale is the locale every event has a default in.
const FallbackLocale = "en"

// defaultEvent is the file used for an event without its own default.
const defaultEvent = "default"

// ErrTemplate wraps template parse and execution errors.
var ErrTemplate = errors.New("notification template")

// Branding is the tenant's look and contact details in messages.
type Branding struct {
	Name         string // the tenant's name as shown
	SupportEmail string
	SupportPhone string
	WebsiteURL   string
	LogoURL      string
	Color        string // #rrggbb
	Footer       string
}

// Data is what templates see.
type Data struct {
	Event     string
	Locale    string
	Tenant    Branding
	Recipient Recipient
	// P is the outbox payload (JSON numbers as json.Number).
	P map[string]any
	// Link is the action link of the message (the verification link, the
	// bill, the ticket), absolute; "" when there is none.
	Link string
	// Zone is the tenant's time zone: dates and times are shown in it.
	Zone *time.Location
	// Currency is the tenant's currency code, for amounts without one.
	Currency string
}

// Recipient is the person a message is for.
type Recipient struct {
	Name string
	Role string // consumer | official | support | admin; "" for an address
}

// Rendered is a message in every channel's form.
type Rendered struct {
	Subject   string
	Text      string
	HTML      string
	SMS       string
	PushTitle string
	PushBody  string
}

// Set renders messages from the embedded defaults and tenant overrides.
// It is safe for concurrent use.
type Set struct {
	text map[string]*texttemplate.Template // key locale/event
	html map[string]*htmltemplate.Template
}

// New parses every embedded default; an error here is a bug in a default.
func New() (*Set, error) {
	s := &Set{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	layout, err := fs.ReadFile(embedded, "defaults/layout.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("%w: layout: %w", ErrTemplate, err)
	}
	err = fs.WalkDir(embedded, "defaults", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Count(p, "/") != 2 {
			return err
		}
		locale := path.Base(path.Dir(p))
		event := strings.TrimSuffix(path.Base(p), ".tmpl")
		src, err := fs.ReadFile(embedded, p)
		if err != nil {
			return err
		}
		tt, ht, err := parse(event+"@"+locale, string(layout), string(src))
		if err != nil {
			return err
		}
		key := locale + "/" + event
		s.text[key], s.html[key] = tt, ht
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := s.text[FallbackLocale+"/"+defaultEvent]; !ok {
		return nil, fmt.Errorf("%w: no %s/%s default", ErrTemplate, FallbackLocale, defaultEvent)
	}
	return s, nil
}

func parse(name, layout, src string, more ...string) (*texttemplate.Template, *htmltemplate.Template, error) {
	tt := texttemplate.New(name).Funcs(textFuncs())
	ht := htmltemplate.New(name).Funcs(htmlFuncs())
	for _, s := range append([]string{layout, src}, more...) {
		var err error
		if tt, err = tt.Parse(s); err != nil {
			return nil, nil, fmt.Errorf("%w %s: %w", ErrTemplate, name, err)
		}
		if ht, err = ht.Parse(s); err != nil {
			return nil, nil, fmt.Errorf("%w %s: %w", ErrTemplate, name, err)
		}
	}
	return tt, ht, nil
}

// Locales returns the locales to try for a recipient, best first: their
// own (and its language without the region), the tenant's default, then
// FallbackLocale.
func Locales(user, tenant string) []string {
	var out []string
	add := func(l string) {
		if l == "" {
			return
		}
		for _, x := range out {
			if x == l {
				return
			}
		}
		out = append(out, l)
	}
	for _, l := range []string{user, tenant} {
		add(l)
		if i := strings.IndexByte(l, '-'); i > 0 {
			add(l[:i])
		}
	}
	add(FallbackLocale)
	return out
}

// Pick returns the locale to render event in: the first of locales with a
// tenant override (overrides holds the locales that have one) or an
// embedded default for the event; FallbackLocale otherwise.
func (s *Set) Pick(event string, locales []string, overrides map[string]bool) string {
	for _, l := range locales {
		if overrides[l] {
			return l
		}
		if _, ok := s.text[l+"/"+event]; ok {
			return l
		}
	}
	return FallbackLocale
}

// base returns the default templates for event in locale, falling back to
// the locale's generic default, then English.
func (s *Set) base(event, locale string) (*texttemplate.Template, *htmltemplate.Template) {
	for _, key := range []string{locale + "/" + event, FallbackLocale + "/" + event, locale + "/" + defaultEvent, FallbackLocale + "/" + defaultEvent} {
		if tt, ok := s.text[key]; ok {
			return tt, s.html[key]
		}
	}
	return nil, nil // unreachable: New checks the fallback default exists
}

// Render renders event in locale with data. override, when not empty, is
// the tenant's template source for that event and locale: its blocks
// replace the default's.
func (s *Set) Render(event, locale, override string, data Data) (Rendered, error) {
	tt, ht := s.base(event, locale)
	// html/template refuses to clone a template once executed, so the
	// stored ones are never executed: every render works on a clone.
	ht, err := ht.Clone()
	if err != nil {
		return Rendered{}, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	if override != "" {
		if tt, err = tt.Clone(); err != nil {
			return Rendered{}, fmt.Errorf("%w: %w", ErrTemplate, err)
		}
		if tt, err = tt.Parse(override); err != nil {
			return Rendered{}, fmt.Errorf("%w %s@%s (tenant): %w", ErrTemplate, event, locale, err)
		}
		if ht, err = ht.Parse(override); err != nil {
			return Rendered{}, fmt.Errorf("%w %s@%s (tenant): %w", ErrTemplate, event, locale, err)
		}
	}
	if data.Zone == nil {
		data.Zone = time.UTC
	}
	data.Event, data.Locale = event, locale
	var r Rendered
	text := func(block string) string {
		if err != nil {
			return ""
		}
		var b bytes.Buffer
		if e := tt.ExecuteTemplate(&b, block, data); e != nil {
			err = fmt.Errorf("%w %s@%s %s: %w", ErrTemplate, event, locale, block, e)
		}
		return strings.TrimSpace(b.String())
	}
	r.Subject = oneLine(text(BlockSubject))
	r.Text = text(BlockText) + "\n"
	r.SMS = oneLine(text(BlockSMS))
	r.PushTitle = oneLine(text(BlockPushTitle))
	r.PushBody = oneLine(text(BlockPushBody))
	if err != nil {
		return Rendered{}, err
	}
	var b bytes.Buffer
	if e := ht.ExecuteTemplate(&b, "layout", data); e != nil {
		return Rendered{}, fmt.Errorf("%w %s@%s html: %w", ErrTemplate, event, locale, e)
	}
	r.HTML = b.String()
	return r, nil
}

// Validate checks a tenant override before it is stored: it must parse
// and render with sample data for the event.
func (s *Set) Validate(event, locale, source string, sample Data) error {
	_, err := s.Render(event, locale, source, sample)
	return err
}

// oneLine collapses whitespace runs (newlines included) to single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
