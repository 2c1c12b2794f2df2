package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

var alice = &metav1.Actor{Name: "Alice"}

func newLog(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Init(t.TempDir(), store.InitOptions{Project: "coop", Env: "prod", Operator: store.Signature{Name: "Alice", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func appendEv(t *testing.T, s *store.Store, kind metav1.Kind, domain, version string) string {
	t.Helper()
	out, err := s.Append(context.Background(), &metav1.Event{Kind: kind, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: version, Address: &metav1.Address{App: domain}}, alice, time.Now(), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out.Event.GetId()
}

func get(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: content type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

func TestAPI(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	last := appendEv(t, s, metav1.Kind_KIND_UPGRADE, "a.example.com", "1.1.0")
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "b.example.com", "2.0.0")
	srv := httptest.NewServer(NewHandler(s))
	defer srv.Close()

	var heads []map[string]any
	if code := get(t, srv.URL+"/v1/apps", &heads); code != 200 || len(heads) != 2 || heads[0]["domain"] != "a.example.com" || heads[0]["version"] != "1.1.0" {
		t.Fatalf("apps: %d %v", code, heads)
	}
	var head map[string]any
	if code := get(t, srv.URL+"/v1/apps/a.example.com", &head); code != 200 || head["event_id"] != last || head["state"] != "deployed" {
		t.Fatalf("head: %d %v", code, head)
	}
	var log []map[string]any
	if code := get(t, srv.URL+"/v1/apps/a.example.com/log?n=1", &log); code != 200 || len(log) != 1 || log[0]["id"] != last {
		t.Fatalf("log: %d %v", code, log)
	}
	var health map[string]bool
	if code := get(t, srv.URL+"/healthz", &health); code != 200 || !health["ok"] {
		t.Fatalf("healthz: %d %v", code, health)
	}
	for url, want := range map[string]int{
		"/v1/apps/nobody.example.com":     404,
		"/v1/apps/Bad_Name":               400,
		"/v1/apps/a.example.com/log?n=-1": 400,
	} {
		var e map[string]string
		if code := get(t, srv.URL+url, &e); code != want || e["error"] == "" {
			t.Errorf("%s: %d %v, want %d with an error", url, code, e, want)
		}
	}
}

// connectAs connects to h's NATS with the credentials in seed (the hub's
// or the followers'; "" for none).
func connectAs(t *testing.T, h *Hub, seed string, opts ...nats.Option) (*nats.Conn, error) {
	t.Helper()
	if seed != "" {
		opt, err := nats.NkeyOptionFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, opt)
	}
	nc, err := nats.Connect(h.NATSURL(), opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

// streamIDs lists the event ids on the stream, in stream order.
func streamIDs(t *testing.T, h *Hub) []string {
	t.Helper()
	nc, err := connectAs(t, h, h.HubSeed())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	s, err := js.Stream(ctx, notify.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Header.Get("ce-id"))
	}
	return ids
}

// Events appended while nobody published them reach the stream through the
// hub, once, in order; a restarted hub republishes nothing.
func TestCatchUp(t *testing.T) {
	s := newLog(t)
	want := []string{
		appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0"),
		appendEv(t, s, metav1.Kind_KIND_UPGRADE, "a.example.com", "1.1.0"),
		appendEv(t, s, metav1.Kind_KIND_DEPLOY, "b.example.com", "2.0.0"),
	}
	data := filepath.Join(t.TempDir(), "nats")
	start := func() *Hub {
		h, err := New(context.Background(), Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: data, HTTPListen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := start()
	ctx := context.Background()
	if n, err := h.CatchUp(ctx); err != nil || n != 3 {
		t.Fatalf("first catch-up: %d, %v", n, err)
	}
	want = append(want, appendEv(t, s, metav1.Kind_KIND_NOTE, "b.example.com", ""))
	if n, err := h.CatchUp(ctx); err != nil || n != 1 {
		t.Fatalf("second catch-up: %d, %v", n, err)
	}
	if n, _ := h.CatchUp(ctx); n != 0 {
		t.Fatalf("nothing new, yet %d published", n)
	}
	got := streamIDs(t, h)
	if len(got) != len(want) {
		t.Fatalf("stream holds %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stream order %v, want %v", got, want)
		}
	}
	h.Close()
	// Restarted on the same data: it knows what it published.
	h = start()
	defer h.Close()
	if n, err := h.CatchUp(ctx); err != nil || n != 0 {
		t.Fatalf("after restart: %d, %v", n, err)
	}
	if got := streamIDs(t, h); len(got) != len(want) {
		t.Fatalf("after restart the stream holds %d", len(got))
	}
}

// Run serves HTTP, publishes on its own, and stops when asked.
func TestRunAndShutdown(t *testing.T) {
	s := newLog(t)
	id := appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	h, err := New(context.Background(), Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var head map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for get(t, "http://"+h.HTTPAddr()+"/v1/apps/a.example.com", &head) != 200 || len(streamIDs(t, h)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("hub did not serve and publish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ids := streamIDs(t, h); ids[0] != id {
		t.Fatalf("stream %v", ids)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
