package page

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// fleet is the plan benchmark's log: apps apps of 10 events each, all
// following one channel a release ahead of them (fixture.BuildFleet),
// kept between runs under META_BENCH_DIR.
func fleet(tb testing.TB, apps int) *store.Store {
	tb.Helper()
	dir, err := fixture.CachedFleet(fixture.BenchDir(), apps, 10)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := store.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkPages is the server's time for the pages of a 1,000-app log,
// warm (heads memoised, as after any read): rendered anew each time
// (render), and as a hundred open pages refreshing after one change get
// it (cached).
func BenchmarkPages(b *testing.B) {
	s := fleet(b, 1000)
	fresh, err := New(Config{Store: s, CacheFor: -1})
	if err != nil {
		b.Fatal(err)
	}
	cached, err := New(Config{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	// What every page of the log starts with: the heads, channels and
	// releases read from the store. The rest is the page's own.
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if in, err := plan.FromStore(s); err != nil || len(in.Heads) != 1000 {
				b.Fatal(len(in.Heads), err)
			}
		}
	})
	first := ""
	for _, page := range []struct {
		name, url string
		p         *Page
	}{
		{"apps/render", "/", fresh},
		{"apps/cached", "/", cached},
		{"apps-filtered/render", "/?state=lagging&q=app-0001", fresh},
		{"app/render", "", fresh},
		{"plan/render", "/plan", fresh},
		{"channels/render", "/channels", fresh},
	} {
		if page.url == "" {
			page.url = "/apps/" + first
		}
		status, body := get(b, page.p, page.url) // warms the store's cache
		if status != 200 {
			b.Fatalf("%s: %d %.500s", page.url, status, body)
		}
		if first == "" {
			i := strings.Index(body, `<tr data-ref="`) + len(`<tr data-ref="`)
			first = body[i : i+strings.IndexByte(body[i:], '"')]
			b.Logf("main page of 1,000 apps: %d KiB", len(body)/1024)
		}
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				if status, _ := get(b, page.p, page.url); status != 200 {
					b.Fatal(status)
				}
			}
		})
	}
}

// BenchmarkLiveFanOut is what one change costs with 100 pages open, over
// real HTTP connections: the time until every page heard of it (notify),
// and until every page also fetched the 1,000-app main page again, as its
// script does (refresh). It reports the memory each open page holds on
// the server.
func BenchmarkLiveFanOut(b *testing.B) {
	const pages = 100
	s := fleet(b, 1000)
	live := NewLive()
	p, err := New(Config{Store: s, Live: live})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pages, MaxConnsPerHost: 2 * pages}}
	if _, body := get(b, p, "/"); !strings.Contains(body, "1000 of 1000") {
		b.Fatal("the fleet's main page does not show 1,000 apps")
	}
	for _, mode := range []string{"notify", "refresh"} {
		b.Run(mode, func(b *testing.B) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			heard := make(chan struct{}, pages)
			var streams []io.Closer
			for range pages {
				resp, err := client.Get(srv.URL + "/events")
				if err != nil {
					b.Fatal(err)
				}
				streams = append(streams, resp.Body)
				go func() {
					sc := bufio.NewScanner(resp.Body)
					for sc.Scan() {
						if !strings.HasPrefix(sc.Text(), "event: change") {
							continue
						}
						if mode == "refresh" {
							r, err := client.Get(srv.URL + "/")
							if err != nil {
								return
							}
							io.Copy(io.Discard, r.Body)
							r.Body.Close()
						}
						heard <- struct{}{}
					}
				}()
			}
			for live.Open() < pages {
				time.Sleep(time.Millisecond)
			}
			runtime.GC()
			var open runtime.MemStats
			runtime.ReadMemStats(&open)
			ev := &metav1.Event{Address: &metav1.Address{Project: "bench", Env: "prod", App: "x.example.org"}}
			for b.Loop() {
				live.Publish([]*metav1.Event{ev})
				for range pages {
					<-heard
				}
			}
			b.ReportMetric(float64(int64(open.HeapInuse)-int64(before.HeapInuse))/pages, "heap-B/page")
			var wg sync.WaitGroup
			for _, c := range streams {
				wg.Go(func() { c.Close() })
			}
			wg.Wait()
			for live.Open() > 0 {
				time.Sleep(time.Millisecond)
			}
		})
	}
}
