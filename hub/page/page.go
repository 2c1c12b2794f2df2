// Package page is the web page `meta serve` serves at /: every app's truth
// at a glance, one page per app with its timeline, the channels and the
// plan. It is rendered on the server with html/template from the same
// store the JSON API reads, embedded in the binary with nothing fetched
// from elsewhere, and kept live by server-sent events (Live) that the hub
// sends whenever it publishes: a small script fetches the page again and
// swaps its content, so every page works without JavaScript and every
// link is a plain URL that can be shared.
//
// Who may look is the hub's business (its auth wraps this handler and
// names the viewer with WithViewer); this package shows the log, never a
// secret value (events hold none: env changes name keys only).
package page

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// DefaultCacheFor is how long a rendered page is served again to the
// same URL while nothing was published: a hundred open pages that a
// change sends back for the same page cost one render, not a hundred.
const DefaultCacheFor = time.Second

// Config says what the page shows.
type Config struct {
	Store *store.Store
	// Live is where the hub announces what it published; nil: the page
	// is not live (its script says so) and the cache keys on time alone.
	Live *Live
	// CacheFor overrides DefaultCacheFor; below zero turns the cache off.
	CacheFor time.Duration
	// Now is the clock leases and "ago" are read at; nil is time.Now.
	Now func() time.Time
}

// Page serves the web page. It is an http.Handler for every path the JSON
// API and the webhooks do not take.
type Page struct {
	cfg    Config
	pages  map[string]*template.Template
	mux    *http.ServeMux
	cache  renderCache
	static http.Handler
}

// pageNames are the templates a response is rendered from, each with
// layout.html around it.
var pageNames = []string{"apps", "app", "channels", "channel", "plan", "changes", "login", "error"}

// New parses the templates and routes the page's paths.
func New(cfg Config) (*Page, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheFor == 0 {
		cfg.CacheFor = DefaultCacheFor
	}
	p := &Page{cfg: cfg, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs(cfg.Now)).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("page template %s: %w", name, err)
		}
		p.pages[name] = t
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	p.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	p.mux.HandleFunc("GET /{$}", p.cached(p.apps))
	p.mux.HandleFunc("GET /apps/{ref...}", p.cached(p.app))
	p.mux.HandleFunc("GET /channels", p.cached(p.channels))
	p.mux.HandleFunc("GET /channels/{recipe}/{channel}", p.cached(p.channel))
	p.mux.HandleFunc("GET /plan", p.cached(p.plan))
	p.mux.HandleFunc("GET /changes", p.cached(p.changes))
	p.mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		// Embedded, so the same for the binary's life: cache for a day.
		w.Header().Set("Cache-Control", "public, max-age=86400")
		p.static.ServeHTTP(w, r)
	})
	if cfg.Live != nil {
		p.mux.Handle("GET /events", cfg.Live)
	}
	return p, nil
}

// ServeHTTP serves the page's paths; anything else is a page saying so.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SecureHeaders(w.Header())
	if _, pattern := p.mux.Handler(r); pattern == "" {
		status := http.StatusNotFound
		msg := "There is no page at " + r.URL.Path + "."
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			status, msg = http.StatusMethodNotAllowed, "The page only answers GET."
			w.Header().Set("Allow", "GET, HEAD")
		}
		p.Error(w, r, status, msg)
		return
	}
	p.mux.ServeHTTP(w, r)
}

// SecureHeaders sets the headers every answer of the page carries
// (the hub's sign-in and redirects too): nothing but the hub's own
// scripts, styles and images, no framing, no sniffing, and no URL (with
// its filters) sent to other sites.
func SecureHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

// Viewer is who looks at the page, as the hub's auth found them.
type Viewer struct {
	// Name is the token's name or the identity the proxy sent; "" when
	// the page is open to all.
	Name string
	// Via is how: "token" (the page's cookie, which signing out ends),
	// "bearer" (an Authorization header), "proxy", or "" (open).
	Via string
	// Still, when set, says whether the request may still see the page:
	// a live stream outlives the request that opened it, and ends when
	// its token is removed.
	Still func() bool
}

type viewerKey struct{}

// WithViewer says who makes the request r's context belongs to.
func WithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

func viewerOf(r *http.Request) Viewer {
	v, _ := r.Context().Value(viewerKey{}).(Viewer)
	return v
}

// base is what every template's layout reads.
type base struct {
	Title  string
	Nav    string // the section the page belongs to, for the menu
	Viewer Viewer
	// Generation is the Live generation the page was rendered at: the
	// script asks again when the hub is past it.
	Generation uint64
	Live       bool
	Now        time.Time
}

func (p *Page) base(r *http.Request, title, nav string) base {
	b := base{Title: title, Nav: nav, Viewer: viewerOf(r), Live: p.cfg.Live != nil, Now: p.cfg.Now()}
	if p.cfg.Live != nil {
		b.Generation = p.cfg.Live.Generation()
	}
	return b
}

// still is the base of a page that is not live: the sign-in page (whose
// viewer may not follow the log) and the error pages (nothing there to
// follow).
func (p *Page) still(r *http.Request, title string) base {
	return base{Title: title, Viewer: viewerOf(r), Now: p.cfg.Now()}
}

// render is one answer: a status and the page, or an error to show.
type render func(r *http.Request) (name string, status int, data any, err error)

// cached serves what fn renders, from the cache while it holds (same
// URL, same viewer, nothing published since, younger than CacheFor).
func (p *Page) cached(fn render) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		gen := uint64(0)
		if p.cfg.Live != nil {
			gen = p.cfg.Live.Generation()
		}
		v := viewerOf(r)
		key := v.Via + "\x00" + v.Name + "\x00" + r.URL.RequestURI()
		e := p.cache.get(key, gen, p.cfg.CacheFor, func() (int, []byte) {
			// The render is everyone's who asks for the key meanwhile:
			// the first viewer going does not cancel it for the others.
			return p.Render(r.WithContext(context.WithoutCancel(r.Context())), fn)
		})
		w.Header().Add("Vary", "Accept-Encoding")
		body := e.body
		// The main page of a thousand apps is most of a megabyte of
		// HTML, and a tenth of that compressed: compressed once per
		// render, however many pages fetch it.
		if acceptsGzip(r) && len(body) > minGzip {
			body = e.gzipped()
			w.Header().Set("Content-Encoding", "gzip")
		}
		write(w, e.status, body)
	}
}

// write sends a rendered page, never to be stored by the browser or a
// proxy: it is the log as it stands now.
func write(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// minGzip is the smallest page worth compressing.
const minGzip = 1 << 10

// acceptsGzip says r's client takes a gzip-compressed answer.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return params == "" // gzip, with no weight: wanted
		}
		w, err := strconv.ParseFloat(q, 64)
		return err == nil && w > 0
	}
	return false
}

// Render renders what fn says, or the error page for its error: 404 for
// what is not in the log, 400 for a bad name or query, 409 for an
// ambiguous domain, 500 for the rest.
func (p *Page) Render(r *http.Request, fn render) (int, []byte) {
	name, status, data, err := fn(r)
	if err != nil {
		status = http.StatusInternalServerError
		switch {
		case errors.Is(err, store.ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, projects.ErrInvalidName), errors.Is(err, plan.ErrBadQuery), errors.Is(err, errBadFilter):
			status = http.StatusBadRequest
		case errors.Is(err, store.ErrAmbiguous):
			status = http.StatusConflict
		}
		name, data = "error", errorData{base: p.still(r, http.StatusText(status)), Status: status, Message: err.Error()}
	}
	return p.execute(name, status, data)
}

// answer renders template name with data and sends it with status.
func (p *Page) answer(w http.ResponseWriter, name string, status int, data any) {
	status, body := p.execute(name, status, data)
	write(w, status, body)
}

// execute renders template name with data, answered with status.
func (p *Page) execute(name string, status int, data any) (int, []byte) {
	var buf bytes.Buffer
	if err := p.pages[name].Execute(&buf, data); err != nil {
		// A template that fails on data is meta's bug: say so plainly.
		return http.StatusInternalServerError, []byte("meta: the page could not be rendered: " + template.HTMLEscapeString(err.Error()) + "\n")
	}
	return status, buf.Bytes()
}

type errorData struct {
	base
	Status  int
	Message string
}

// Error answers r with the error page: status and what went wrong.
func (p *Page) Error(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p.answer(w, "error", status, errorData{base: p.still(r, http.StatusText(status)), Status: status, Message: msg})
}

// LoginForm is what the sign-in page shows: where the viewer goes after
// it, and why they are (still) here.
type LoginForm struct {
	Next    string
	Problem string
}

type loginData struct {
	base
	LoginForm
}

// Login answers r with the sign-in page, with status (401 while a token
// is wanted).
func (p *Page) Login(w http.ResponseWriter, r *http.Request, status int, f LoginForm) {
	SecureHeaders(w.Header())
	p.answer(w, "login", status, loginData{base: p.still(r, "Sign in"), LoginForm: f})
}

// renderCache holds rendered pages by key. Concurrent requests for a key
// wait for one render instead of each making their own. Only answers below
// 500 are kept, expired entries are dropped as new ones come, and it
// holds at most maxCachedBytes.
type renderCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
	bytes   int
}

type cacheEntry struct {
	gen    uint64
	at     time.Time
	done   chan struct{}
	status int
	body   []byte
	gzOnce sync.Once
	gz     []byte
}

// gzipped is the body compressed, made once.
func (e *cacheEntry) gzipped() []byte {
	e.gzOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // a valid level: no error
		zw.Write(e.body)
		zw.Close()
		e.gz = buf.Bytes()
	})
	return e.gz
}

// maxCachedBytes bounds what the cache holds (a main page of a thousand
// apps is about a megabyte, and its compressed copy a tenth of that).
const maxCachedBytes = 32 << 20

func (c *renderCache) get(key string, gen uint64, ttl time.Duration, render func() (int, []byte)) *cacheEntry {
	if ttl < 0 {
		e := &cacheEntry{}
		e.status, e.body = safely(render)
		return e
	}
	now := time.Now()
	c.mu.Lock()
	if e := c.entries[key]; e != nil && e.gen == gen && now.Sub(e.at) < ttl {
		c.mu.Unlock()
		<-e.done
		if e.status < 500 {
			return e
		}
		return c.get(key, gen, ttl, render) // it failed: render again
	}
	if c.entries == nil {
		c.entries = map[string]*cacheEntry{}
	}
	for k, old := range c.entries {
		if now.Sub(old.at) >= ttl || old.gen != gen {
			c.drop(k, old)
		}
	}
	e := &cacheEntry{gen: gen, at: now, done: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()
	e.status, e.body = safely(render)
	c.mu.Lock()
	switch {
	case c.entries[key] != e:
		// Dropped meanwhile: keep nothing of it.
	case e.status >= 500:
		delete(c.entries, key)
	default:
		c.bytes += 2 * len(e.body) // with room for its compressed copy
		for k, old := range c.entries {
			if c.bytes <= maxCachedBytes {
				break
			}
			if old != e {
				c.drop(k, old)
			}
		}
		if c.bytes > maxCachedBytes {
			c.drop(key, e)
		}
	}
	c.mu.Unlock()
	close(e.done)
	return e
}

// drop forgets the entry at k; the caller holds c.mu. An entry whose
// render is under way is counted only once it is done.
func (c *renderCache) drop(k string, e *cacheEntry) {
	select {
	case <-e.done:
		c.bytes -= 2 * len(e.body)
	default:
	}
	delete(c.entries, k)
}

// safely renders, and makes a panic (meta's bug) a 500 that says so
// rather than an answer that never comes.
func safely(render func() (int, []byte)) (status int, body []byte) {
	defer func() {
		if v := recover(); v != nil {
			status, body = http.StatusInternalServerError, []byte(fmt.Sprintf("meta: the page could not be rendered: %v\n", v))
		}
	}()
	return render()
}

// pathRef is the app an /apps/ path names: a domain, or
// project/env/domain where a domain has apps under two.
func pathRef(r *http.Request) string {
	return strings.Trim(r.PathValue("ref"), "/")
}
