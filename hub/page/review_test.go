package page

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// A viewer who goes while their page renders (a tab closed mid-refresh)
// does not hand the next viewer an error: the render is not theirs to
// cancel, and an error is never served from the cache.
func TestCacheOutlivesACancelledRequest(t *testing.T) {
	p, err := New(Config{Store: seeded(t), CacheFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{"/apps/cloud.example.org", "/changes", "/"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("GET", url, nil).WithContext(ctx))
		if rec.Code != 200 {
			t.Errorf("%s for a viewer already gone: %d", url, rec.Code)
		}
		if status, body := get(t, p, url); status != 200 {
			t.Errorf("%s after a viewer went: %d %.300s", url, status, body)
		}
	}
}

// A render that fails is not kept: the next request renders again.
func TestCacheKeepsNoError(t *testing.T) {
	var c renderCache
	calls := 0
	render := func() (int, []byte) { calls++; return 500, []byte("boom") }
	c.get("k", 0, time.Hour, render)
	if e := c.get("k", 0, time.Hour, render); calls != 2 || e.status != 500 {
		t.Fatalf("%d renders, want 2: an error was served from the cache", calls)
	}
}

// A render that panics (meta's bug) answers 500 to whoever waited, and
// leaves nothing behind.
func TestCacheSurvivesAPanickingRender(t *testing.T) {
	var c renderCache
	func() {
		defer func() { recover() }()
		c.get("k", 0, time.Hour, func() (int, []byte) { panic("bug") })
	}()
	e := c.get("k", 0, time.Hour, func() (int, []byte) { return 200, []byte("ok") })
	if e.status != 200 || string(e.body) != "ok" {
		t.Fatalf("after a panic: %d %q", e.status, e.body)
	}
}

// Many URLs do not pin many renders: expired entries go, and the cache
// holds at most maxCachedBytes.
func TestCacheIsBounded(t *testing.T) {
	var c renderCache
	big := make([]byte, 1<<20)
	for i := range 200 {
		c.get(strings.Repeat("k", i+1), 0, time.Hour, func() (int, []byte) { return 200, big })
	}
	if c.bytes > maxCachedBytes {
		t.Fatalf("the cache holds %d bytes, more than %d", c.bytes, maxCachedBytes)
	}
	c2 := renderCache{}
	c2.get("old", 0, time.Millisecond, func() (int, []byte) { return 200, big })
	time.Sleep(5 * time.Millisecond)
	c2.get("new", 0, time.Millisecond, func() (int, []byte) { return 200, []byte("x") })
	if _, ok := c2.entries["old"]; ok {
		t.Fatal("an expired entry stays")
	}
}

// Viewers who signed in another way see their own page: the sign-out
// button is the cookie's, not the bearer's or the proxy's.
func TestCacheKeysOnHowTheViewerCame(t *testing.T) {
	p, err := New(Config{Store: seeded(t), CacheFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	as := func(v Viewer) string {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		p.ServeHTTP(rec, r.WithContext(WithViewer(r.Context(), v)))
		return rec.Body.String()
	}
	as(Viewer{Name: "t", Via: "bearer"})
	if body := as(Viewer{Name: "t", Via: "token"}); !strings.Contains(body, `action="/logout"`) {
		t.Error("the cookie's viewer got the bearer's page, without Sign out")
	}
}

// The sign-in and error pages are not live: no stream to ask for while
// signed out, and nothing of the hub's counters.
func TestLoginAndErrorPagesAreNotLive(t *testing.T) {
	live := NewLive()
	live.Publish([]*metav1.Event{event("coop", "prod", "a.example.org")})
	p, err := New(Config{Store: seeded(t), Live: live})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.Login(rec, httptest.NewRequest("GET", "/login", nil), 200, LoginForm{})
	_, notFound := get(t, p, "/nowhere")
	for name, body := range map[string]string{"login": rec.Body.String(), "error": notFound} {
		if !strings.Contains(body, `data-live="off"`) || strings.Contains(body, `data-generation="1"`) {
			t.Errorf("the %s page is live or tells the generation", name)
		}
	}
}

// Every answer of the page carries its security headers.
func TestSecurityHeaders(t *testing.T) {
	h := http.Header{}
	SecureHeaders(h)
	for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"} {
		if h.Get(k) == "" {
			t.Errorf("no %s", k)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for v, want := range map[string]bool{"gzip": true, "GZIP;q=0.5": true, "gzip;q=0": false, "gzip;q=0.0": false, "gzip; q=0.000": false, "br": false, "": false, "gzip;q=x": false} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", v)
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: %v, want %v", v, got, want)
		}
	}
}

// Too many apps to name stays "too many" until the page reads it, and
// every list is a list.
func TestLiveOverflowSticks(t *testing.T) {
	live := NewLive()
	s := &subscriber{ready: make(chan struct{}, 1), done: make(chan struct{})}
	live.subs[s] = struct{}{}
	var many []*metav1.Event
	for i := range maxLiveApps + 50 {
		many = append(many, event("p", "e", strings.Repeat("a", i+1)))
	}
	live.Publish(many)
	live.Publish([]*metav1.Event{event("p", "e", "one")})
	if c := s.take(); len(c.Apps) != 0 || !c.All {
		t.Fatalf("after too many: %+v, want none named and all", c)
	}
	live.Publish([]*metav1.Event{event("_recipes", "nextcloud", "stable")})
	if c := s.take(); c.Apps == nil || len(c.Channels) != 1 || c.All {
		t.Fatalf("a channel's change: %+v", c)
	}
}
