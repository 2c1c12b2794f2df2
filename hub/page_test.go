package hub

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/hub/tokens"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func send(t *testing.T, c *http.Client, method, u string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	r, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		r.Header[k] = v
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

var form = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

// The page is at every path the API and the webhooks do not take; what
// it does not know is a page saying so.
func TestPageRoutes(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	h := &Hub{cfg: Config{Store: s}, wake: make(chan struct{}, 1)}
	srv := httptest.NewServer(h.routes())
	defer srv.Close()
	for _, tt := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/", 200, "a.example.com"},
		{"GET", "/apps/a.example.com", 200, "1.0.0"},
		{"GET", "/nope", 404, "There is no page at /nope"},
		{"POST", "/", 405, "only answers GET"},
		{"GET", "/static/live.js", 200, "EventSource"},
		{"GET", "/static/nope.css", 404, ""},
	} {
		resp, body := send(t, http.DefaultClient, tt.method, srv.URL+tt.path, nil, "")
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s: %d, want %d with %q", tt.method, tt.path, resp.StatusCode, tt.status, tt.want)
		}
	}
}

// With tokens, the page asks for one and keeps it in a cookie; a reverse
// proxy the operator trusts may vouch for its user instead.
func TestPageSignIn(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	tok, err := tokens.Create(TokensFile(s), "alice-laptop", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h, srv := proxiedHub(t, s)

	// Without a token: sent to sign in, with where to come back to.
	resp, _ := send(t, noRedirects, "GET", srv.URL+"/apps/a.example.com?n=5", nil, "")
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login?next="+url.QueryEscape("/apps/a.example.com?n=5") {
		t.Fatalf("no token: %d to %q, want 303 to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/events", "/channels", "/plan", "/changes"} {
		resp, body := send(t, noRedirects, "GET", srv.URL+path, nil, "")
		if resp.StatusCode != 303 && resp.StatusCode != 401 || strings.Contains(body, "a.example.com") {
			t.Errorf("%s without a token: %d %q", path, resp.StatusCode, body)
		}
	}
	if resp, _ := send(t, noRedirects, "GET", srv.URL+"/events", nil, ""); resp.StatusCode != 401 {
		t.Errorf("/events without a token: %d, want 401", resp.StatusCode)
	}
	if resp, body := send(t, noRedirects, "GET", srv.URL+"/login", nil, ""); resp.StatusCode != 200 || !strings.Contains(body, `type="password"`) {
		t.Fatalf("sign-in page: %d", resp.StatusCode)
	}

	// A wrong token is refused and sets nothing.
	resp, body := send(t, noRedirects, "POST", srv.URL+"/login", form, "token=nope&next=/")
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 || !strings.Contains(body, "not one of this hub") {
		t.Fatalf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	// Another site's form cannot sign a browser in (or out).
	cross := http.Header{"Content-Type": form["Content-Type"], "Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}
	if resp, _ := send(t, noRedirects, "POST", srv.URL+"/login", cross, "token="+tok); resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site sign-in: %d, want 403 and no cookie", resp.StatusCode)
	}
	if resp, _ := send(t, noRedirects, "POST", srv.URL+"/logout", cross, ""); resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site sign-out: %d, want 403", resp.StatusCode)
	}

	// The right one: an HttpOnly, SameSite cookie, and on to next, but
	// never to another site.
	for next, want := range map[string]string{
		"/apps/a.example.com": "/apps/a.example.com", "": "/", "//evil.example/x": "/", "https://evil.example": "/",
		"/\\evil.example": "/", "/login": "/", "javascript:alert(1)": "/",
	} {
		resp, _ := send(t, noRedirects, "POST", srv.URL+"/login", form, url.Values{"token": {tok}, "next": {next}}.Encode())
		if resp.StatusCode != 303 || resp.Header.Get("Location") != want {
			t.Errorf("sign in, next %q: %d to %q, want %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		c := resp.Cookies()
		if len(c) != 1 || c[0].Name != tokenCookie || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode || c[0].Path != "/" {
			t.Fatalf("sign-in cookie: %+v", c)
		}
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, body = send(t, browser, "POST", srv.URL+"/login", form, "token="+tok+"&next=/")
	if resp.StatusCode != 200 || !strings.Contains(body, "a.example.com") || !strings.Contains(body, "alice-laptop") {
		t.Fatalf("signed in: %d, want the apps and who is signed in", resp.StatusCode)
	}
	// The cookie is the page's, not the API's: scripts and forms of other
	// sites never reach the JSON with it.
	if resp, _ := send(t, browser, "GET", srv.URL+"/v1/apps", nil, ""); resp.StatusCode != 401 {
		t.Errorf("/v1/apps with the page's cookie: %d, want 401", resp.StatusCode)
	}
	// Removing the token ends the session at the next request (another
	// token stays: with none, a hub on loopback is open to all, as its
	// API is).
	tok2, err := tokens.Create(TokensFile(s), "bob", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.Remove(TokensFile(s), "alice-laptop"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := send(t, browser, "GET", srv.URL+"/", nil, ""); resp.Request.URL.Path != "/login" {
		t.Errorf("after the token was removed: at %s, want the sign-in page", resp.Request.URL.Path)
	}
	send(t, browser, "POST", srv.URL+"/login", form, "token="+tok2)
	resp, _ = send(t, browser, "POST", srv.URL+"/logout", nil, "")
	if resp.Request.URL.Path != "/login" {
		t.Errorf("signed out: at %s, want the sign-in page", resp.Request.URL.Path)
	}
	if resp, _ := send(t, noRedirects, "GET", srv.URL+"/", nil, ""); resp.StatusCode != 303 {
		t.Errorf("after signing out: %d", resp.StatusCode)
	}
	// A bearer token works too (curl, a script).
	if resp, body := send(t, noRedirects, "GET", srv.URL+"/", bearerHeader(tok2), ""); resp.StatusCode != 200 || !strings.Contains(body, "a.example.com") {
		t.Errorf("bearer: %d", resp.StatusCode)
	}

	// The proxy's user, from loopback (the default trusted proxy).
	proxied := http.Header{"X-Forwarded-User": {"carol@example.org"}}
	if resp, body := send(t, noRedirects, "GET", srv.URL+"/", proxied, ""); resp.StatusCode != 200 || !strings.Contains(body, "carol@example.org") {
		t.Errorf("proxy user from loopback: %d", resp.StatusCode)
	}
	for name, header := range map[string]http.Header{
		"empty":          {"X-Forwarded-User": {" "}},
		"twice":          {"X-Forwarded-User": {"carol", "mallory"}},
		"too long":       {"X-Forwarded-User": {strings.Repeat("c", maxIdentity+1)}},
		"another header": {"X-Remote-User": {"carol"}},
	} {
		if resp, _ := send(t, noRedirects, "GET", srv.URL+"/", header, ""); resp.StatusCode != 303 {
			t.Errorf("proxy header %s: %d, want not believed", name, resp.StatusCode)
		}
	}
	// From an address that is not a trusted proxy, the header is anyone's
	// claim and means nothing.
	h.auth.proxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}
	if resp, _ := send(t, noRedirects, "GET", srv.URL+"/", proxied, ""); resp.StatusCode != 303 {
		t.Errorf("proxy header from an untrusted peer: %d, want 303 to sign in", resp.StatusCode)
	}
}

// The page is live: an open stream hears of what the hub publishes, in
// the order it publishes, and ends when the hub stops.
func TestPageLive(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	h, err := New(context.Background(), Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "nats"), HTTPListen: "127.0.0.1:0", HTTPWriteTimeout: time.Second, HTTPReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the hub did not stop within 5 s with a page open")
		}
	}()
	resp, err := http.Get("http://" + h.HTTPAddr() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("/events: %d %q", resp.StatusCode, ct)
	}
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		ev := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				events <- ev + " " + strings.TrimPrefix(line, "data: ")
			}
		}
		close(events)
	}()
	next := func(want string) string {
		t.Helper()
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("the stream ended before %q", want)
				}
				if strings.HasPrefix(e, want) {
					return e
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %q within 10 s", want)
			}
		}
	}
	next("hello")
	// The stream outlives the server's read and write timeouts (1 s).
	time.Sleep(1500 * time.Millisecond)
	appendEv(t, s, metav1.Kind_KIND_UPGRADE, "b.example.com", "2.0.0")
	h.Wake()
	// The first change may be the hub's first catch-up (a.example.com).
	if e := next("change"); !strings.Contains(e, `"coop/prod/b.example.com"`) {
		if e := next("change"); !strings.Contains(e, `"coop/prod/b.example.com"`) {
			t.Fatalf("change %s does not name b.example.com", e)
		}
	}
	if h.live.Open() != 1 {
		t.Errorf("%d pages open, want 1", h.live.Open())
	}
}

// A name a proxy sends is believed only as plain text of bounded length.
func TestProxyUser(t *testing.T) {
	a := &auth{identityHeader: "Remote-User"}
	for value, want := range map[string]string{
		"carol": "carol", " carol ": "carol", "carol\x1b[31m": "", "a\x7fb": "", "": "", strings.Repeat("c", maxIdentity+1): "",
		"bob, eve": "", // two values folded into one field
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "127.0.0.1:5555"
		r.Header.Set("Remote-User", value)
		if got := a.proxyUser(r); got != want {
			t.Errorf("Remote-User %q: %q, want %q", value, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "[::ffff:127.0.0.1]:5555"
	r.Header.Set("Remote-User", "carol")
	if a.proxyUser(r) != "carol" {
		t.Error("a v4-mapped loopback peer is this host")
	}
	r.RemoteAddr = "198.51.100.7:5555"
	if a.proxyUser(r) != "" {
		t.Error("believed from a peer that is no trusted proxy")
	}
}

// An open page's stream ends when its token is removed: it does not go on
// naming the apps that change.
func TestPageLiveEndsWithItsToken(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	tok, err := tokens.Create(TokensFile(s), "alice", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Create(TokensFile(s), "bob", time.Now()); err != nil {
		t.Fatal(err)
	}
	h, stop := runHub(t, Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "nats"), HTTPListen: "127.0.0.1:0"})
	defer stop()
	req, _ := http.NewRequest("GET", "http://"+h.HTTPAddr()+"/events", nil)
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: tok})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/events with the cookie: %d", resp.StatusCode)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if err := tokens.Remove(TokensFile(s), "alice"); err != nil {
		t.Fatal(err)
	}
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "b.example.com", "1.0.0")
	h.Wake()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return // ended, as it should
			}
			if strings.Contains(l, "b.example.com") {
				t.Fatalf("the stream named b.example.com after its token was removed: %s", l)
			}
		case <-timeout:
			t.Fatal("the stream is still open 10 s after its token was removed and the log changed")
		}
	}
}

// The sign-in form is small: a body past its bound is refused before it
// is read, whatever it holds, and only a form is taken.
func TestLoginBodyBounded(t *testing.T) {
	_, tok, srv := tokenHub(t, httptest.NewServer)
	big := "token=" + tok + "&next=/&pad=" + strings.Repeat("x", 8<<20)
	if resp, _ := send(t, noRedirects, "POST", srv.URL+"/login", form, big); resp.StatusCode != 413 || len(resp.Cookies()) != 0 {
		t.Errorf("an 8 MiB sign-in: %d, cookies %v; want 413 and none", resp.StatusCode, resp.Cookies())
	}
	multipart := http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}
	body := "--x\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n" + tok + "\r\n--x--\r\n"
	if resp, _ := send(t, noRedirects, "POST", srv.URL+"/login", multipart, body); resp.StatusCode != 415 || len(resp.Cookies()) != 0 {
		t.Errorf("a multipart sign-in: %d; want 415", resp.StatusCode)
	}
	// next comes from the form on POST, not the query.
	resp, _ := send(t, noRedirects, "POST", srv.URL+"/login?next=/plan", form, "token="+tok+"&next=/channels")
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/channels" {
		t.Errorf("sign in: %d to %q, want 303 to the form's next", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// A cookie of the same name set by another site of the same domain (a
// sibling app) does not lock the viewer out: any valid one lets them in.
func TestTwoTokenCookies(t *testing.T) {
	s, tok, srv := tokenHub(t, httptest.NewServer)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	if resp, _ := send(t, noRedirects, "GET", srv.URL+"/", http.Header{"Cookie": {tokenCookie + "=junk; " + tokenCookie + "=" + tok}}, ""); resp.StatusCode != 200 {
		t.Errorf("a junk cookie before the valid one: %d, want 200", resp.StatusCode)
	}
}

// What the hub answers for the page (redirects, refusals, the sign-in)
// carries the page's security headers.
func TestAuthAnswersCarrySecurityHeaders(t *testing.T) {
	s := newLog(t)
	if _, err := tokens.Create(TokensFile(s), "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	h := &Hub{cfg: Config{Store: s}, wake: make(chan struct{}, 1)}
	srv := httptest.NewServer(h.routes())
	defer srv.Close()
	for _, tt := range []struct{ method, path string }{{"GET", "/"}, {"GET", "/events"}, {"GET", "/login"}, {"POST", "/logout"}} {
		var hdr http.Header
		if tt.method == "POST" {
			hdr = form
		}
		resp, _ := send(t, noRedirects, tt.method, srv.URL+tt.path, hdr, "")
		if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s (%d): no security headers", tt.method, tt.path, resp.StatusCode)
		}
	}
}

// Over HTTPS the cookie is __Host-meta_token: no other host can set it.
func TestTokenCookieOverHTTPS(t *testing.T) {
	_, tok, srv := tokenHub(t, httptest.NewTLSServer)
	c := srv.Client()
	c.CheckRedirect = noRedirects.CheckRedirect
	resp, _ := send(t, c, "POST", srv.URL+"/login", form, "token="+tok)
	ck := resp.Cookies()
	if len(ck) != 1 || ck[0].Name != "__Host-"+tokenCookie || !ck[0].Secure || ck[0].Path != "/" || ck[0].Domain != "" {
		t.Fatalf("cookie over HTTPS: %+v", ck)
	}
	if resp, _ := send(t, c, "GET", srv.URL+"/", http.Header{"Cookie": {ck[0].Name + "=" + ck[0].Value}}, ""); resp.StatusCode != 200 {
		t.Errorf("with the __Host- cookie: %d", resp.StatusCode)
	}
}

// tokenHub is a hub, served by serve, on a new log whose one token (alice's)
// it returns.
func tokenHub(t *testing.T, serve func(http.Handler) *httptest.Server) (*store.Store, string, *httptest.Server) {
	t.Helper()
	s := newLog(t)
	tok, err := tokens.Create(TokensFile(s), "alice", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := &Hub{cfg: Config{Store: s}, wake: make(chan struct{}, 1)}
	srv := serve(h.routes())
	t.Cleanup(srv.Close)
	return s, tok, srv
}

// With an identity header named, the page is never open to all: with no
// token at all, only the proxy's users see it, even on loopback.
func TestIdentityHeaderClosesTheOpenPage(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	_, srv := proxiedHub(t, s)
	if resp, body := send(t, noRedirects, "GET", srv.URL+"/", nil, ""); resp.StatusCode != 303 || strings.Contains(body, "a.example.com") {
		t.Errorf("no identity, no token: %d, want 303 to sign in", resp.StatusCode)
	}
	if resp, body := send(t, noRedirects, "GET", srv.URL+"/", http.Header{"X-Forwarded-User": {"carol"}}, ""); resp.StatusCode != 200 || !strings.Contains(body, "a.example.com") {
		t.Errorf("the proxy's user: %d", resp.StatusCode)
	}
	if resp, body := send(t, noRedirects, "GET", srv.URL+"/login", nil, ""); resp.StatusCode != 200 || !strings.Contains(body, "through the sign-in in front of it") {
		t.Errorf("the sign-in page with no token: %d, does not say how to get in", resp.StatusCode)
	}
}

// proxiedHub serves a hub on s that believes X-Forwarded-User from its
// trusted proxies (loopback, as the test's client is).
func proxiedHub(t *testing.T, s *store.Store) (*Hub, *httptest.Server) {
	t.Helper()
	h := &Hub{cfg: Config{Store: s}, wake: make(chan struct{}, 1)}
	checker, err := tokens.NewChecker(TokensFile(s))
	if err != nil {
		t.Fatal(err)
	}
	h.auth = &auth{tokens: checker, identityHeader: "X-Forwarded-User"}
	srv := httptest.NewServer(h.routes())
	t.Cleanup(srv.Close)
	return h, srv
}
