package page

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

func event(project, env, app string) *metav1.Event {
	return &metav1.Event{Address: &metav1.Address{Project: project, Env: env, App: app}}
}

// stream opens /events on srv and returns its events as "name data".
func stream(t *testing.T, ctx context.Context, url string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		name := ""
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				out <- name + " " + v
			}
		}
	}()
	return out
}

func next(t *testing.T, c <-chan string) (string, Change) {
	t.Helper()
	select {
	case e, ok := <-c:
		if !ok {
			t.Fatal("the stream ended")
		}
		name, data, _ := strings.Cut(e, " ")
		var ch Change
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		return name, ch
	case <-time.After(5 * time.Second):
		t.Fatal("nothing within 5 s")
	}
	return "", Change{}
}

func TestLive(t *testing.T) {
	live := NewLive()
	live.heartbeat = 50 * time.Millisecond
	srv := httptest.NewServer(live)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	live.Publish([]*metav1.Event{event("coop", "prod", "a.example.org")}) // before: generation 1
	c := stream(t, ctx, srv.URL)
	if name, ch := next(t, c); name != "hello" || ch.Generation != 1 {
		t.Fatalf("first %s %+v, want hello at generation 1", name, ch)
	}
	live.Publish(nil) // nothing, no change
	live.Publish([]*metav1.Event{event("coop", "prod", "b.example.org"), event("coop", "prod", "b.example.org"), event("_recipes", "nextcloud", "stable")})
	for {
		name, ch := next(t, c)
		if name == "ping" {
			continue
		}
		if name != "change" || ch.Generation != 2 || strings.Join(ch.Apps, ",") != "coop/prod/b.example.org" || strings.Join(ch.Channels, ",") != "nextcloud/stable" {
			t.Fatalf("%s %+v, want the change at generation 2 naming b once and the channel", name, ch)
		}
		break
	}
	if live.Open() != 1 {
		t.Fatalf("%d open", live.Open())
	}
	cancel()
	for deadline := time.Now().Add(5 * time.Second); live.Open() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a closed page still counted open")
		}
	}
}

// A page that reads nothing never holds up Publish: what it missed is one
// change, naming everything, or nothing once there are too many to name.
func TestLiveSlowPage(t *testing.T) {
	live := NewLive()
	s := &subscriber{ready: make(chan struct{}, 1), done: make(chan struct{})}
	live.subs[s] = struct{}{}
	done := make(chan struct{})
	go func() {
		for i := range 10_000 {
			live.Publish([]*metav1.Event{event("coop", "prod", "a.example.org")})
			if i == 0 {
				live.Publish([]*metav1.Event{event("coop", "prod", "b.example.org")})
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a page that reads nothing")
	}
	c := s.take()
	if c.Generation != 10_001 || strings.Join(c.Apps, ",") != "coop/prod/a.example.org,coop/prod/b.example.org" {
		t.Fatalf("merged %+v", c)
	}
	for i := range maxLiveApps + 1 {
		live.Publish([]*metav1.Event{event("coop", "prod", strings.Repeat("x", i+1)+".example.org")})
	}
	if c := s.take(); len(c.Apps) != 0 || c.Generation != 10_001+maxLiveApps+1 {
		t.Fatalf("too many to name, yet %d named", len(c.Apps))
	}
}

// Close ends every open stream at once and refuses new ones.
func TestLiveClose(t *testing.T) {
	live := NewLive()
	srv := httptest.NewServer(live)
	defer srv.Close()
	c := stream(t, context.Background(), srv.URL)
	next(t, c)
	live.Close()
	select {
	case _, ok := <-c:
		if ok {
			t.Fatal("an event after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived Close")
	}
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d, want 503", resp.StatusCode)
	}
}
