package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

func newSecret(t *testing.T) string {
	key := make([]byte, 32)
	rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// endpoint is a webhook receiver that answers with the statuses it is told
// to, in turn (200 when it runs out), checks every signature, and records
// what it accepted.
type endpoint struct {
	t        *testing.T
	key      []byte
	mu       sync.Mutex
	script   []int
	accepted []string
	tries    int
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		e.t.Errorf("timestamp %q", ts)
	}
	if got := r.Header.Get("webhook-signature"); got != Sign(e.key, id, sec, body) {
		e.t.Errorf("event %s: bad signature %q", id, got)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tries++
	status := http.StatusOK
	if len(e.script) > 0 {
		status, e.script = e.script[0], e.script[1:]
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	if status/100 == 2 {
		e.accepted = append(e.accepted, id)
	}
}

func (e *endpoint) got() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.accepted...)
}

func runHub(t testing.TB, cfg Config) (*Hub, func()) {
	t.Helper()
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.retryBase = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	return h, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An endpoint that fails, throttles, goes away with the hub and recovers
// gets every event exactly once, in order, correctly signed.
func TestWebhookDeliveries(t *testing.T) {
	s := newLog(t)
	secret := newSecret(t)
	key, _ := ParseSecret(secret)
	ep := &endpoint{t: t, key: key, script: []int{500, 502, 429}}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	data := t.TempDir()
	cfg := Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: data, HTTPListen: "127.0.0.1:0", Poll: 50 * time.Millisecond,
		Webhooks: []Webhook{{Name: "dash", URL: srv.URL, Secret: secret}}}
	_, stop := runHub(t, cfg)
	time.Sleep(200 * time.Millisecond) // the consumer starts with new events
	want := []string{
		appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0"),
		appendEv(t, s, metav1.Kind_KIND_UPGRADE, "a.example.com", "1.1.0"),
	}
	waitFor(t, "two deliveries", func() bool { return len(ep.got()) == 2 })
	// The hub stops; an event comes meanwhile; the endpoint fails once more.
	stop()
	want = append(want, appendEv(t, s, metav1.Kind_KIND_NOTE, "a.example.com", ""))
	ep.mu.Lock()
	ep.script = []int{503}
	ep.mu.Unlock()
	_, stop = runHub(t, cfg)
	defer stop()
	waitFor(t, "the third delivery", func() bool { return len(ep.got()) == 3 })
	got := ep.got()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivered %v, want %v", got, want)
		}
	}
	if ep.tries < 7 {
		t.Fatalf("%d tries: the failures were not retried", ep.tries)
	}
}

// A hub stopped in the middle of a batch remembers which of its events
// the endpoint took: restarted, it sends the rest, and nothing twice.
func TestWebhookResumesWithinABatch(t *testing.T) {
	s := newLog(t)
	secret := newSecret(t)
	key, _ := ParseSecret(secret)
	ep := &endpoint{t: t, key: key, script: []int{200, 500, 500, 500, 500, 500, 500, 500, 500, 500}}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	cfg := Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour,
		Webhooks: []Webhook{{Name: "dash", URL: srv.URL, Secret: secret}}}
	h, stop := runHub(t, cfg)
	waitFor(t, "the first cycle", func() bool { return h.cycles.Load() == 1 })
	want := []string{
		appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0"),
		appendEv(t, s, metav1.Kind_KIND_UPGRADE, "a.example.com", "1.1.0"),
	}
	h.Wake() // one cycle, one batch of two
	waitFor(t, "the first delivered, the second failing", func() bool {
		ep.mu.Lock()
		defer ep.mu.Unlock()
		return len(ep.accepted) == 1 && ep.tries >= 3
	})
	stop()
	ep.mu.Lock()
	ep.script = nil
	ep.mu.Unlock()
	_, stop = runHub(t, cfg)
	defer stop()
	waitFor(t, "the second delivery", func() bool { return len(ep.got()) == 2 })
	time.Sleep(300 * time.Millisecond) // long enough for a repeat to show
	if got := ep.got(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("delivered %v, want %v once each", got, want)
	}
}

// 410 Gone disables an endpoint for good: after a restart nothing more is
// sent to it.
func TestWebhookGoneDisables(t *testing.T) {
	s := newLog(t)
	secret := newSecret(t)
	key, _ := ParseSecret(secret)
	ep := &endpoint{t: t, key: key, script: []int{410}}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	cfg := Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: 50 * time.Millisecond,
		Webhooks: []Webhook{{Name: "old", URL: srv.URL, Secret: secret}}}
	h, stop := runHub(t, cfg)
	time.Sleep(200 * time.Millisecond)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	waitFor(t, "the 410", func() bool { ep.mu.Lock(); defer ep.mu.Unlock(); return ep.tries == 1 })
	waitFor(t, "the endpoint to be disabled", func() bool { return h.webhookDisabled(context.Background(), "old") })
	stop()
	_, stop = runHub(t, cfg)
	appendEv(t, s, metav1.Kind_KIND_NOTE, "a.example.com", "")
	time.Sleep(500 * time.Millisecond)
	stop()
	if ep.tries != 1 {
		t.Fatalf("a disabled endpoint got %d requests", ep.tries)
	}
}

func TestParseSecret(t *testing.T) {
	for _, bad := range []string{"", "secret", "whsec_", "whsec_!!!", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
	// The spec's example: the signature of a known message.
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature %s differs from the spec's example", got)
	}
}
