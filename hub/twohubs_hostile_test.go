package hub

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// A hostile review of two hubs at once: what one hub leaves in the shared
// bucket must not stop the other.

// refusePushes makes the bare remote refuse every push while the returned
// file exists.
func refusePushes(t testing.TB, remote string) (refuse, allow func()) {
	t.Helper()
	flag := filepath.Join(t.TempDir(), "refuse")
	hook := "#!/bin/sh\nif [ -e " + flag + " ]; then echo refused >&2; exit 1; fi\n"
	if err := os.WriteFile(filepath.Join(remote, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	return func() { os.WriteFile(flag, nil, 0o644) }, func() { os.Remove(flag) }
}

// Hub 0 commits an event it cannot push (the remote refuses it for a
// while) and dies: its clone, with the one copy of that commit, is gone.
// Hub 0 must not have published or delivered it (the log never holds it),
// and hub 1 must go on publishing and delivering what the remote gets
// after: the bucket both share (the commit published up to, the
// endpoint's cursor) must never name a commit only hub 0 had, or hub 1
// can never read from it ("bad object"), for good.
func TestTwoHubsGoOnPastACommitOnlyTheDeadHubHad(t *testing.T) {
	url := notifytest.Server(t).ClientURL()
	log := newRemoteLog(t)
	op := log.clone(t)
	refuse, allow := refusePushes(t, log.remote)
	secret := newSecret(t)
	key, _ := ParseSecret(secret)
	ep := &endpoint{t: t, key: key}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	var logs logLines
	clones := []*store.Store{log.clone(t), log.clone(t)}
	hubs := make([]*Hub, 2)
	stops := make([]func(), 2)
	for i := range hubs {
		cfg := Config{Store: clones[i], NATSURL: url, HTTPListen: "127.0.0.1:0", Poll: 100 * time.Millisecond,
			Webhooks: []Webhook{{Name: "dash", URL: srv.URL, Secret: secret}}, leaseTTL: time.Second,
			Logf: func(f string, a ...any) { logs.logf("hub %d: "+f, append([]any{i}, a...)...) }}
		hubs[i], stops[i] = runHub(t, cfg)
	}
	defer stops[1]()
	defer func() {
		if t.Failed() {
			t.Logf("hubs:\n%s", strings.Join(logs.with(""), "\n"))
		}
	}()
	waitFor(t, "both hubs to serve", func() bool { return len(logs.with("serving the log")) == 2 })
	first := appendEv(t, op, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	waitFor(t, "the first delivery", func() bool { return len(ep.got()) == 1 })

	// Hub 0's own commit (an observation, a group commit) that the
	// remote refuses: committed in its clone, published, delivered.
	refuse()
	only, err := clones[0].Append(context.Background(), &metav1.Event{Kind: metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
		Address: &metav1.Address{App: "a.example.com"}, Message: "only hub 0 has this"}, alice, time.Now(), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if only.Pushed {
		t.Fatal("the remote took the push it should refuse")
	}
	// Not believed before the remote holds it: neither published nor
	// delivered (the log may never hold it: here it never will).
	cycles := hubs[0].cycles.Load()
	hubs[0].committed()
	waitFor(t, "hub 0 to cycle thrice", func() bool { return hubs[0].cycles.Load() >= cycles+3 })
	if slices.Contains(streamIDsAt(t, url), only.Event.GetId()) || slices.Contains(ep.got(), only.Event.GetId()) {
		t.Errorf("an event the remote refused was published or delivered")
	}
	crash(hubs[0], stops[0])
	allow()

	// What the remote gets from now on reaches the stream and the
	// endpoint through hub 1.
	later := appendEv(t, op, metav1.Kind_KIND_UPGRADE, "a.example.com", "1.1.0")
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Contains(streamIDsAt(t, url), later) || !slices.Contains(ep.got(), later) {
		if time.Now().After(deadline) {
			t.Fatalf("after hub 0 died: on the stream %v, delivered %v; want %s in both (the first was %s)", streamIDsAt(t, url), ep.got(), later, first)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// streamIDsAt are the event ids on the stream of the NATS server at url.
func streamIDsAt(t *testing.T, url string) []string {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, notify.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil {
			ids = append(ids, m.Header.Get("ce-id"))
		}
	}
	return ids
}
