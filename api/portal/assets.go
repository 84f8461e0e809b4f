package portal

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path"
	"strings"
)

// The embedded files. Templates whose name starts with "_" are the layout
// and the partials every page can use; every other template is a page.
var (
	//go:embed templates/*.html
	templateFiles embed.FS
	//go:embed static
	staticFiles embed.FS
)

// Static returns the static files (served under /assets/).
func Static() (fs.FS, error) {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("portal: static files: %w", err)
	}
	return sub, nil
}

// Views renders the portal's pages and their fragments.
type Views struct {
	pages  map[string]*template.Template
	assets map[string]string // static file name → URL with a content hash
}

// NewViews parses the embedded templates.
func NewViews() (*Views, error) {
	v := &Views{pages: map[string]*template.Template{}, assets: map[string]string{}}
	err := fs.WalkDir(staticFiles, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel := strings.TrimPrefix(name, "static/")
		v.assets[rel] = "/assets/" + rel + "?v=" + hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("portal: hash static files: %w", err)
	}
	funcs := Funcs()
	funcs["asset"] = v.asset
	base, err := template.New("portal").Funcs(funcs).ParseFS(templateFiles, "templates/_*.html")
	if err != nil {
		return nil, fmt.Errorf("portal: parse layout: %w", err)
	}
	files, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("portal: list templates: %w", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if strings.HasPrefix(name, "_") {
			continue
		}
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("portal: clone layout: %w", err)
		}
		if t, err = t.ParseFS(templateFiles, f); err != nil {
			return nil, fmt.Errorf("portal: parse %s: %w", f, err)
		}
		v.pages[name] = t
	}
	return v, nil
}

// asset returns the URL of a static file, with a hash of its content so
// that it can be cached for long; an unknown name is an error.
func (v *Views) asset(name string) (string, error) {
	u, ok := v.assets[name]
	if !ok {
		return "", fmt.Errorf("portal: no static file %q", name)
	}
	return u, nil
}

// Has reports whether a page exists.
func (v *Views) Has(page string) bool { _, ok := v.pages[page]; return ok }

// Page renders a whole page: the layout around the page's "content".
func (v *Views) Page(w io.Writer, page string, data any) error {
	return v.Block(w, page, "layout", data)
}

// Block renders one named template of a page: a fragment htmx swaps in.
func (v *Views) Block(w io.Writer, page, block string, data any) error {
	t, ok := v.pages[page]
	if !ok {
		return fmt.Errorf("portal: no page %q", page)
	}
	if err := t.ExecuteTemplate(w, block, data); err != nil {
		return fmt.Errorf("portal: render %s/%s: %w", page, block, err)
	}
	return nil
}
