package hub

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/hub/page"
	"git.coopcloud.tech/coop-cloud/meta/hub/tokens"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// ErrOpenAPI is a JSON API that would listen beyond loopback with no token
// to ask for, and without --insecure.
var ErrOpenAPI = errors.New("the JSON API would be open to the network")

// TokensFile is where the hub of the clone s keeps its API tokens' hashes
// (see package tokens for why there, not in meta.yaml).
func TokensFile(s *store.Store) string {
	return filepath.Join(s.MetaDir(), "tokens.json")
}

// openAPI reads the API's tokens and TLS files, and refuses an API that
// would listen beyond loopback with no token unless Insecure: anyone who
// reached it would read the log.
func (h *Hub) openAPI() error {
	path := h.cfg.TokensFile
	if path == "" {
		path = TokensFile(h.cfg.Store)
	}
	checker, err := tokens.NewChecker(path)
	if err != nil {
		return err
	}
	h.auth = &auth{tokens: checker, required: !h.cfg.Insecure && !loopback(h.cfg.HTTPListen), identityHeader: h.cfg.IdentityHeader, proxies: h.cfg.TrustedProxies}
	if n, err := checker.Count(); err != nil {
		return err
	} else if n == 0 && h.auth.required {
		return fmt.Errorf("%w: --listen %s reaches beyond this host and the hub has no API token, so anyone who reaches it could read the log; create one with `meta token create NAME` (clients send it as Authorization: Bearer TOKEN), or pass --insecure to serve the API without tokens", ErrOpenAPI, h.cfg.HTTPListen)
	}
	h.tls, err = loadTLS(h.cfg.TLSCert, h.cfg.TLSKey)
	return err
}

// auth asks every request for one of the hub's tokens, as
// `Authorization: Bearer TOKEN`, whenever the tokens file holds any; with
// required (an API beyond loopback), also when it holds none, so that
// removing the last token closes the API rather than opening it. Every
// handler that shows the log (the JSON API, a page later) goes through
// wrap; the push-webhook receivers have their HMAC instead.
type auth struct {
	tokens   *tokens.Checker
	required bool
	// identityHeader and proxies are Config's IdentityHeader and
	// TrustedProxies (none: defaultProxies).
	identityHeader string
	proxies        []netip.Prefix
}

// wrap serves next to requests with a token the file holds now; others get
// 401 with WWW-Authenticate and a JSON error, and a tokens file that cannot
// be read refuses every request (500) until it can. The hub logs nothing
// of a refused token.
func (a *auth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, problem := bearer(r.Header)
		_, err := a.tokens.Check(token)
		switch {
		case err == nil, errors.Is(err, tokens.ErrNone) && !a.required:
			next.ServeHTTP(w, r)
			return
		case errors.Is(err, tokens.ErrFile):
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": noTokensFile})
			return
		}
		challenge := `Bearer realm="meta"`
		if problem == "" {
			problem = "token not accepted (wrong, or removed)"
		}
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": problem})
	})
}

// noTokensFile is what every request is told while the tokens file cannot
// be read.
const noTokensFile = "the hub cannot read its API tokens; it refuses every request until it can"

// maxTokenHeader bounds the Authorization header looked at: a token is
// well under it, and nothing longer is hashed.
const maxTokenHeader = 256

// bearer is the token of an `Authorization: Bearer TOKEN` header (RFC
// 6750; the scheme's case does not matter), or what is wrong with the
// header. Nothing of the header is echoed back.
func bearer(h http.Header) (token, problem string) {
	values := h.Values("Authorization")
	switch {
	case len(values) == 0 || values[0] == "":
		return "", "this API needs a token: send Authorization: Bearer TOKEN (`meta token create NAME` on the hub makes one)"
	case len(values) > 1:
		return "", "more than one Authorization header"
	case len(values[0]) > maxTokenHeader:
		return "", "Authorization header too long for a token"
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	token = strings.TrimLeft(token, " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsFunc(token, func(c rune) bool { return c <= ' ' || c >= 0x7f }) {
		return "", "malformed Authorization header: want Bearer TOKEN"
	}
	return token, ""
}

// loopback says whether addr (host:port, checked) listens only on this
// host: 127.0.0.0/8, ::1, or a name that resolves to one. An empty host
// is every interface.
func loopback(addr string) bool {
	a, err := net.ResolveTCPAddr("tcp", addr)
	return err == nil && a.IP != nil && a.IP.IsLoopback()
}

// The page's sign-in: the same tokens as the JSON API, kept in a cookie
// the page's own requests carry, or a user a reverse proxy in front of
// the hub vouches for (Config.IdentityHeader).
const (
	// tokenCookie holds the viewer's token: HttpOnly (no script reads
	// it), SameSite=Lax (a shared link opens signed in, another site's
	// form posts without it), and over HTTPS Secure and named with the
	// __Host- prefix (hostCookie), which no other host can set.
	tokenCookie = "meta_token"
	hostCookie  = "__Host-" + tokenCookie
	cookieLife  = 30 * 24 * time.Hour
	// maxIdentity bounds the identity header believed.
	maxIdentity = 256
)

// CheckIdentityHeader says whether name may be Config.IdentityHeader: a
// header name (letters, digits, '-'), and not one that carries something
// else already. Empty is none, and fine.
func CheckIdentityHeader(name string) error {
	if name == "" {
		return nil
	}
	for _, c := range name {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("--identity-header %q: not a header name (letters, digits and '-', such as X-Forwarded-User)", name)
		}
	}
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Cookie", "Host":
		return fmt.Errorf("--identity-header %q: the API's tokens travel in it, or the browser sets it: name the header the proxy adds (X-Forwarded-User, Remote-User)", name)
	}
	return nil
}

// errNoViewer: the request carries nothing that lets it see the page.
var errNoViewer = errors.New("not signed in")

// defaultProxies are where an identity header is believed from when the
// operator names no proxy: this host, where a reverse proxy usually runs.
var defaultProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// viewer says who r comes from: the proxy's user, the token of the
// page's cookie or of an Authorization header, or no one on an open hub;
// errNoViewer otherwise, and tokens.ErrFile while the tokens file cannot
// be read.
func (a *auth) viewer(r *http.Request) (page.Viewer, error) {
	if name := a.proxyUser(r); name != "" {
		return page.Viewer{Name: name, Via: "proxy"}, nil
	}
	// Tokens the request presents, in the order they are tried: any of
	// the cookies sent (a sibling site of the same domain may set one of
	// the plain name, and it must not lock the viewer out), then an
	// Authorization header.
	type presented struct{ token, via string }
	var tried []presented
	for _, c := range append(r.CookiesNamed(hostCookie), r.CookiesNamed(tokenCookie)...) {
		if c.Value != "" && len(c.Value) <= maxTokenHeader {
			tried = append(tried, presented{c.Value, "token"})
		}
	}
	if r.Header.Get("Authorization") != "" {
		if token, problem := bearer(r.Header); problem == "" {
			tried = append(tried, presented{token, "bearer"})
		}
	}
	for _, p := range tried {
		name, err := a.tokens.Check(p.token)
		if err == nil {
			return page.Viewer{Name: name, Via: p.via}, nil
		} else if errors.Is(err, tokens.ErrFile) {
			return page.Viewer{}, err
		}
	}
	_, err := a.tokens.Check("")
	switch {
	// With an identity header named, the operator put a sign-in in front
	// of the page: it is never open to all, even with no token.
	case errors.Is(err, tokens.ErrNone) && !a.required && a.identityHeader == "":
		return page.Viewer{}, nil
	case errors.Is(err, tokens.ErrFile):
		return page.Viewer{}, err
	}
	return page.Viewer{}, errNoViewer
}

// proxyUser is the user the identity header names, when the operator
// named one and the request comes from a trusted proxy; "" otherwise.
// A name with control characters, or too long, is not believed.
func (a *auth) proxyUser(r *http.Request) string {
	if a.identityHeader == "" || !a.fromProxy(r) {
		return ""
	}
	values := r.Header.Values(a.identityHeader)
	if len(values) != 1 {
		return "" // none, or a proxy that added to what the client sent
	}
	name := strings.TrimSpace(values[0])
	// A comma is two values folded into one field: a proxy that added to
	// what the client sent.
	if name == "" || len(name) > maxIdentity || strings.ContainsFunc(name, func(c rune) bool { return c < ' ' || c == 0x7f || c == ',' }) {
		return ""
	}
	return name
}

// fromProxy says r's peer is one of the trusted proxies.
func (a *auth) fromProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	proxies := a.proxies
	if len(proxies) == 0 {
		proxies = defaultProxies
	}
	addr := ap.Addr().Unmap()
	return slices.ContainsFunc(proxies, func(p netip.Prefix) bool { return p.Contains(addr) })
}

// page serves next to viewers that may see the page, naming them in the
// request's context. Others are sent to sign in (a page) or refused with
// 401 (the live stream, and what is not a page).
func (a *auth) page(pg *page.Page, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page.SecureHeaders(w.Header())
		v, err := a.viewer(r)
		switch {
		case err == nil:
			v.Still = func() bool {
				now, err := a.viewer(r)
				return err == nil && now.Name == v.Name
			}
			next.ServeHTTP(w, r.WithContext(page.WithViewer(r.Context(), v)))
		case errors.Is(err, tokens.ErrFile):
			pg.Error(w, r, http.StatusInternalServerError, noTokensFile)
		case r.URL.Path == "/events" || (r.Method != http.MethodGet && r.Method != http.MethodHead):
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, "sign in at /login first")
		default:
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		}
	})
}

// maxLoginForm bounds the sign-in form: a token and where to go next.
const maxLoginForm = 4 << 10

// login is the sign-in page (GET) and form (POST, urlencoded, at most
// maxLoginForm): a token the tokens file holds is kept in the cookie, and
// the viewer goes on to next.
func (a *auth) login(pg *page.Page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page.SecureHeaders(w.Header())
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next := safeNext(r.URL.Query().Get("next"))
			if v, err := a.viewer(r); err == nil && v.Via != "bearer" {
				http.Redirect(w, r, next, http.StatusSeeOther) // nothing to sign in to
				return
			}
			f := page.LoginForm{Next: next}
			if n, err := a.tokens.Count(); err == nil && n == 0 && a.identityHeader != "" {
				f.Problem = "This hub shows its log to those who come through the sign-in in front of it (its proxy), and has no token of its own."
			}
			pg.Login(w, r, http.StatusOK, f)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, HEAD, POST")
			pg.Error(w, r, http.StatusMethodNotAllowed, "Sign in with GET (the form) or POST (what it sends).")
			return
		}
		if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
			pg.Login(w, r, http.StatusUnsupportedMediaType, page.LoginForm{Next: "/", Problem: "The sign-in takes the form's fields (application/x-www-form-urlencoded), nothing else."})
			return
		}
		if r.ContentLength > maxLoginForm {
			pg.Login(w, r, http.StatusRequestEntityTooLarge, page.LoginForm{Next: "/", Problem: "That is far more than a token."})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
		if err := r.ParseForm(); err != nil {
			status := http.StatusBadRequest
			if errors.As(err, new(*http.MaxBytesError)) {
				status = http.StatusRequestEntityTooLarge
			}
			pg.Login(w, r, status, page.LoginForm{Next: "/", Problem: "The form could not be read."})
			return
		}
		next := safeNext(r.PostForm.Get("next"))
		token := strings.TrimSpace(r.PostForm.Get("token"))
		_, err := a.tokens.Check(token)
		switch {
		case token == "" || len(token) > maxTokenHeader:
			pg.Login(w, r, http.StatusUnauthorized, page.LoginForm{Next: next, Problem: "Paste one of this hub's tokens."})
			return
		case errors.Is(err, tokens.ErrFile):
			pg.Error(w, r, http.StatusInternalServerError, noTokensFile)
			return
		case err != nil:
			pg.Login(w, r, http.StatusUnauthorized, page.LoginForm{Next: next, Problem: "That token is not one of this hub's (wrong, or removed)."})
			return
		}
		http.SetCookie(w, a.cookie(r, token, int(cookieLife/time.Second)))
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// logout forgets the cookie.
func (a *auth) logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page.SecureHeaders(w.Header())
		c := a.cookie(r, "", -1)
		http.SetCookie(w, c)
		if c.Name == hostCookie {
			// One set before the hub was reached over HTTPS, too.
			c.Name = tokenCookie
			http.SetCookie(w, c)
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
}

// cookie is the token's cookie for r's viewer: __Host- and Secure over
// HTTPS; maxAge below zero deletes it.
func (a *auth) cookie(r *http.Request, token string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: tokenCookie, Value: token, Path: "/", MaxAge: maxAge, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if a.https(r) {
		c.Name, c.Secure = hostCookie, true
	}
	return c
}

// https says the viewer reached the hub over HTTPS: its own TLS, or a
// trusted proxy's that says so.
func (a *auth) https(r *http.Request) bool {
	return r.TLS != nil || a.fromProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// safeNext is where a sign-in may send the viewer: a path of this hub,
// never another site ("//evil", "https://evil", "/\evil").
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Host != "" || u.Scheme != "" || u.Path == "/login" {
		return "/"
	}
	return next
}
