package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

// meta append, given the hub's NATS, tells the hub to look, and the hub
// publishes the event it reads from git (it polls once an hour here: only
// the nudge could have made it look). Without credentials, with a NATS
// server no hub listens on, or with NATS down, the append still succeeds,
// says why the hub was not told, and takes at most publishBudget longer;
// and it never publishes an event itself.
func TestAppendNudgesTheHub(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	hub := newHub(t, dir)
	hub.args = []string{"--nats-json"} // the hub's choice of body, not the append's
	hub.start()
	id, errOut, err := metaFull(t, dir, append(hub.flags(), "append", "deploy", "matrix.example.com", "--version", "1.0.0")...)
	if err != nil || strings.Contains(errOut, "warning") {
		t.Fatalf("append: %v\n%s", err, errOut)
	}
	id = strings.TrimSpace(id)
	js, err := jetstream.New(hub.conn(filepath.Join(hub.data, "hub.nk")))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var msg *jetstream.RawStreamMsg
	waitUntil(t, "the hub to publish the appended event", func() bool {
		s, err := js.Stream(ctx, notify.StreamName)
		if err == nil {
			msg, err = s.GetLastMsgForSubject(ctx, "meta.events.coop.prod.matrix_example_com.deploy")
		}
		return err == nil
	})
	if got := msg.Header.Get("ce-id"); got != id {
		t.Fatalf("ce-id %q, want %q", got, id)
	}
	if got := msg.Header.Get("ce-source"); got != "file://"+dir {
		t.Fatalf("ce-source %q", got)
	}
	if ct := msg.Header.Get("Content-Type"); ct != notify.ContentJSON || !strings.Contains(string(msg.Data), `"version":"1.0.0"`) {
		t.Fatalf("JSON body: %s %s", ct, msg.Data)
	}

	// Not told, and said why; never slower than the budget.
	plain := notifytest.Server(t) // no credentials asked, no hub listening
	for _, tt := range []struct {
		name string
		nats []string
		want string
	}{
		{"no credentials", []string{"--nats", hub.url}, "Authorization Violation"},
		{"not a seed", []string{"--nats", hub.url, "--nats-nkey", filepath.Join(dir, "meta.yaml")}, "--nats-nkey " + filepath.Join(dir, "meta.yaml")},
		{"no hub on that server", []string{"--nats", plain.ClientURL()}, "no hub answers on NATS at " + plain.ClientURL() + " (is meta serve running?)"},
		{"NATS down", []string{"--nats", "nats://127.0.0.1:1"}, "connect to NATS at nats://127.0.0.1:1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			out, errOut, err := metaFull(t, dir, append(tt.nats, "append", "note", "matrix.example.com", "-m", tt.name)...)
			took := time.Since(start)
			if err != nil || strings.TrimSpace(out) == "" {
				t.Fatalf("append: %v\n%s", err, errOut)
			}
			if !strings.Contains(errOut, "meta: warning: appended, but the hub was not told (it finds the event at its next poll): ") || !strings.Contains(errOut, tt.want) {
				t.Fatalf("stderr %q, want the warning saying %q", errOut, tt.want)
			}
			if took > publishBudget+time.Second {
				t.Fatalf("the append took %v", took)
			}
		})
	}
	// Nothing reached the server without a hub: the append publishes no
	// event itself, and makes no stream.
	pjs := notifytest.JetStream(t, plain.ClientURL())
	for name := range pjs.StreamNames(ctx).Name() {
		t.Errorf("an append made stream %s", name)
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forgedPublishIsRefused publishes a forged event (a deploy of 6.6.6 by
// an operator who does not exist) to the NATS at url, without credentials
// and with the follower's in followerSeed, and tries to purge the stream
// and delete its messages: the server refuses each, saying so, and the
// stream (read with the hub's credentials in hubSeed) holds no forged
// event. It returns the forged event's id.
func forgedPublishIsRefused(t *testing.T, url, followerSeed, hubSeed string) string {
	t.Helper()
	ev := &metav1.Event{
		Id: "01JFORGEDFORGEDFORGEDFORGE", Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "6.6.6",
		Address: &metav1.Address{Project: "coop", Env: "prod", App: "matrix.example.com"},
		Actor:   &metav1.Actor{Name: "Mallory"}, Time: timestamppb.Now(),
	}
	msg, err := notify.Message(ev, "file:///forged", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nats.Connect(url); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connected without credentials: %v", err)
	}
	opt, err := nats.NkeyOptionFromSeed(followerSeed)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var said []string
	nc, err := nats.Connect(url, opt, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		defer mu.Unlock()
		said = append(said, err.Error())
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	heard := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(said, "\n"), s)
	}
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err == nil {
		t.Fatal("a follower published an event through JetStream")
	}
	s, err := js.Stream(context.Background(), notify.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.Purge(ctx); err == nil {
		t.Fatal("a follower purged the stream")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("a follower deleted a message")
	}
	waitUntil(t, "the server to say it refused", func() bool {
		return heard(`Permissions Violation for Publish to "`+msg.Subject+`"`) &&
			heard(`Permissions Violation for Publish to "$JS.API.STREAM.PURGE.`+notify.StreamName+`"`) &&
			heard(`Permissions Violation for Publish to "$JS.API.STREAM.MSG.DELETE.`+notify.StreamName+`"`)
	})
	hubOpt, err := nats.NkeyOptionFromSeed(hubSeed)
	if err != nil {
		t.Fatal(err)
	}
	hnc, err := nats.Connect(url, hubOpt)
	if err != nil {
		t.Fatal(err)
	}
	defer hnc.Close()
	hjs, _ := jetstream.New(hnc)
	if s, err = hjs.Stream(context.Background(), notify.StreamName); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("ce-id") == ev.GetId() {
			t.Fatalf("the forged event is on the stream at %d", seq)
		}
	}
	return ev.GetId()
}

// receiver is a webhook endpoint that records the ids it was sent.
type receiver struct {
	mu  sync.Mutex
	ids []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	io.Copy(io.Discard, req.Body)
	r.mu.Lock()
	r.ids = append(r.ids, req.Header.Get("webhook-id"))
	r.mu.Unlock()
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// The whole loop with real processes: a forged event published to the
// hub's NATS, without credentials or with the followers', is refused and
// reaches neither `meta watch` nor the hub's webhook, while the events
// appended to git (one nudged, one found by the hub on its own) reach both.
func TestForgedPublishReachesNoFollower(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	web := &receiver{}
	srv := httptest.NewServer(web)
	defer srv.Close()
	f, err := os.OpenFile(filepath.Join(dir, "meta.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("webhooks:\n  - name: dash\n    url: " + srv.URL + "\n    secret_env: META_TEST_WEBHOOK\n")
	f.Close()
	if out, err := exec.Command("git", "-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "a webhook").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	key := make([]byte, 32)
	rand.Read(key)
	t.Setenv("META_TEST_WEBHOOK", "whsec_"+base64.StdEncoding.EncodeToString(key))

	hub := startHub(t, dir)
	w := startWatch(t, hub.flags(), "--json", "--name", "dash", "--from-start")
	waitFollower(t, hub, "dash")
	forged := forgedPublishIsRefused(t, hub.url, hub.follower(), filepath.Join(hub.data, "hub.nk"))

	nudged, errOut, err := metaFull(t, dir, append(hub.flags(), "append", "deploy", "matrix.example.com", "--version", "1.0.0")...)
	if err != nil || strings.Contains(errOut, "warning") {
		t.Fatalf("append: %v\n%s", err, errOut)
	}
	want := []string{strings.TrimSpace(nudged)}
	if got := w.next(t); got != want[0] {
		t.Fatalf("the follower got %s, want %s (the forged one is %s)", got, want[0], forged)
	}
	// Appended without NATS: the hub finds it when it starts again.
	quiet, err := meta(t, dir, "append", "note", "matrix.example.com", "-m", "quiet")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, strings.TrimSpace(quiet))
	waitAcked(t, hub, "dash")
	hub.stop()
	hub.start()
	if got := w.next(t); got != want[1] {
		t.Fatalf("the follower got %s, want %s", got, want[1])
	}
	waitUntil(t, "both webhook deliveries", func() bool { return len(web.got()) >= 2 })
	time.Sleep(300 * time.Millisecond) // long enough for one too many to show
	if got := web.got(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the webhook got %v, want %v", got, want)
	}
	w.stop(t)
}
