package hub

import (
	"net/http/httptest"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

func TestStatsSayWhatTheHubDid(t *testing.T) {
	for _, tt := range []struct {
		stats Stats
		want  string
	}{
		{Stats{Served: 350 * time.Millisecond}, "served 350ms: published 0 events"},
		{Stats{Served: 12*time.Minute + 3*time.Second + 400*time.Millisecond, Published: 1}, "served 12m3s: published 1 event"},
		{Stats{Served: 2 * time.Hour, Published: 3, Webhooks: 1}, "served 2h0m0s: published 3 events, delivered 0 webhooks"},
		{Stats{Served: time.Second, Published: 3, Webhooks: 2, Delivered: 1}, "served 1s: published 3 events, delivered 1 webhook"},
		{Stats{Served: time.Second, Published: 3, Webhooks: 2, Delivered: 5, Failed: 1}, "served 1s: published 3 events, delivered 5 webhooks (1 failed attempt)"},
		{Stats{Served: time.Second, Published: 3, Webhooks: 1, Delivered: 5, Failed: 2}, "served 1s: published 3 events, delivered 5 webhooks (2 failed attempts)"},
		{Stats{Served: time.Second, Published: 3, Engines: 1, Observed: 1}, "served 1s: published 3 events, recorded 1 observation of 1 Docker Engine"},
		{Stats{Served: time.Second, Published: 3, Engines: 2, Observed: 2, Lost: 3, Regained: 2}, "served 1s: published 3 events, recorded 2 observations of 2 Docker Engines (lost 3, back 2)"},
	} {
		if got := tt.stats.String(); got != tt.want {
			t.Errorf("%#v: %q, want %q", tt.stats, got, tt.want)
		}
	}
}

// The hub counts what it published from git and every delivery attempt,
// good or failed.
func TestStatsCountWhatHappened(t *testing.T) {
	s := newLog(t)
	secret := newSecret(t)
	key, _ := ParseSecret(secret)
	ep := &endpoint{t: t, key: key, script: []int{500, 503}}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	cfg := Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: 50 * time.Millisecond,
		Webhooks: []Webhook{{Name: "dash", URL: srv.URL, Secret: secret}}}
	started := time.Now()
	h, stop := runHub(t, cfg)
	time.Sleep(200 * time.Millisecond) // the consumer starts with new events
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	appendEv(t, s, metav1.Kind_KIND_NOTE, "a.example.com", "")
	waitFor(t, "two deliveries", func() bool { return len(ep.got()) == 2 })
	stop()
	ran := time.Since(started)
	got := h.Stats()
	ep.mu.Lock()
	tries := ep.tries
	ep.mu.Unlock()
	if got.Published != 2 || got.Webhooks != 1 || got.Delivered != 2 || got.Failed != tries-2 || got.Failed < 2 {
		t.Fatalf("stats %#v; want 2 published, 1 webhook, 2 delivered, %d failed", got, tries-2)
	}
	if got.Served <= 0 || got.Served > ran {
		t.Fatalf("served %s, yet the hub ran less than %s", got.Served, ran)
	}
}
