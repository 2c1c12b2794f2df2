package hub

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
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
)

// forged is an event that is in no git: a deploy of 6.6.6 by an operator
// who does not exist.
func forged() *metav1.Event {
	return &metav1.Event{
		Id: "01JFORGEDFORGEDFORGEDFORGE", Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "6.6.6",
		Address: &metav1.Address{Project: "coop", Env: "prod", App: "a.example.com"},
		Actor:   &metav1.Actor{Name: "Mallory"}, Time: timestamppb.Now(),
	}
}

// asyncErrors collects what the server says to a connection on the side
// (permissions violations).
type asyncErrors struct {
	mu   sync.Mutex
	errs []string
}

func (a *asyncErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, err.Error())
}

func (a *asyncErrors) said(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.errs {
		if strings.Contains(e, s) {
			return true
		}
	}
	return false
}

// follow runs a follower with the followers' credentials and returns the
// ids it gets.
func follow(t *testing.T, h *Hub, name string) <-chan string {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(h.FollowerSeed())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- notify.Follow(ctx, notify.FollowOptions{
			Options: notify.Options{URL: h.NATSURL(), ConnectTimeout: time.Second, NATSOptions: []nats.Option{opt}},
			Name:    name, Filter: notify.SubjectPrefix + ".>", FromStart: true,
		}, func(ev *metav1.Event) error { got <- ev.GetId(); return nil })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("follower: %v", err)
		}
	})
	nc, err := connectAs(t, h, h.HubSeed())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	waitFor(t, "the follower's consumer", func() bool {
		_, err := js.Consumer(context.Background(), notify.StreamName, name)
		return err == nil
	})
	return got
}

// Followers believe only the log: a forged event published with no
// credentials or with a follower's is refused by the server and reaches
// no follower, no webhook and not the stream; a follower cannot purge the
// stream, delete its messages or write the hub's state; a nudge that
// carries a forged event makes the hub look at git, and what it publishes
// is what git has. The legitimate event reaches the follower and the
// webhook.
func TestForgedEventsReachNobody(t *testing.T) {
	s := newLog(t)
	secret := newSecret(t)
	key, _ := ParseSecret(secret)
	ep := &endpoint{t: t, key: key}
	web := httptest.NewServer(ep)
	defer web.Close()
	h, stop := runHub(t, Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour,
		Webhooks: []Webhook{{Name: "dash", URL: web.URL, Secret: secret}}})
	defer stop()
	got := follow(t, h, "ci")
	waitFor(t, "the hub's first cycle", func() bool { return h.cycles.Load() >= 1 })

	msg, err := notify.Message(forged(), "file:///forged", false)
	if err != nil {
		t.Fatal(err)
	}
	// Without credentials the server lets nobody in.
	if _, err := connectAs(t, h, ""); !errors.Is(err, nats.ErrAuthorization) || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("connected without credentials: %v", err)
	}

	var said asyncErrors
	nc, err := connectAs(t, h, h.FollowerSeed(), nats.ErrorHandler(said.handler))
	if err != nil {
		t.Fatalf("follower credentials: %v", err)
	}
	js, _ := jetstream.New(nc)
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	// A plain publish, and one through JetStream.
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	waitFor(t, "the server to refuse the publish", func() bool {
		return said.said(`Permissions Violation for Publish to "` + msg.Subject + `"`)
	})
	if _, err := js.PublishMsg(short(), msg); err == nil {
		t.Fatal("a follower published to the events stream through JetStream")
	}
	stream, err := js.Stream(short(), notify.StreamName)
	if err != nil {
		t.Fatalf("a follower cannot look up the stream: %v", err)
	}
	hubState := nats.NewMsg("$KV." + stateBucket + "." + publishedKey)
	hubState.Data = []byte("0000000000000000000000000000000000000000")
	for what, try := range map[string]func() error{
		"purge the stream":  func() error { return stream.Purge(short()) },
		"delete a message":  func() error { return stream.DeleteMsg(short(), 1) },
		"erase a message":   func() error { return stream.SecureDeleteMsg(short(), 1) },
		"delete the stream": func() error { return js.DeleteStream(short(), notify.StreamName) },
		"change the stream": func() error { _, err := js.UpdateStream(short(), notify.StreamConfig()); return err },
		"make a stream": func() error {
			_, err := js.CreateStream(short(), jetstream.StreamConfig{Name: "MINE", Subjects: []string{"mine.>"}})
			return err
		},
		"delete a consumer":       func() error { return js.DeleteConsumer(short(), notify.StreamName, "ci") },
		"open the hub's bucket":   func() error { _, err := js.KeyValue(short(), stateBucket); return err },
		"write the hub's bucket":  func() error { _, err := js.PublishMsg(short(), hubState); return err },
		"publish under meta.hub.": func() error { _, err := nc.Request("meta.hub.other", nil, 500*time.Millisecond); return err },
	} {
		if err := try(); err == nil {
			t.Errorf("a follower could %s", what)
		}
	}
	if !said.said("Permissions Violation for Publish to \"$JS.API.STREAM.PURGE."+notify.StreamName+"\"") ||
		!said.said("Permissions Violation for Publish to \"$JS.API.STREAM.MSG.DELETE."+notify.StreamName+"\"") {
		t.Errorf("the server did not say it refused the purge and the delete: %v", said.errs)
	}

	// The legitimate event, appended to git; the nudge carries the forged
	// one, which the hub never reads.
	legit := appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	cycles := h.cycles.Load()
	nudge := nats.NewMsg(notify.SyncSubject)
	nudge.Header, nudge.Data = msg.Header, msg.Data
	nudge.Reply = nc.NewRespInbox()
	if _, err := nc.RequestMsg(nudge, 5*time.Second); err != nil {
		t.Fatalf("nudge: %v", err)
	}
	waitFor(t, "the nudge's catch-up", func() bool { return h.cycles.Load() > cycles })
	select {
	case id := <-got:
		if id != legit {
			t.Fatalf("the follower got %s, want only %s", id, legit)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the legitimate event did not reach the follower")
	}
	waitFor(t, "the webhook delivery", func() bool { return len(ep.got()) == 1 })
	time.Sleep(300 * time.Millisecond) // long enough for a forged event to show
	if ids := ep.got(); len(ids) != 1 || ids[0] != legit {
		t.Fatalf("the webhook got %v, want only %s", ids, legit)
	}
	if ids := streamIDs(t, h); len(ids) != 1 || ids[0] != legit {
		t.Fatalf("the stream holds %v, want only %s", ids, legit)
	}
	select {
	case id := <-got:
		t.Fatalf("the follower got %s too", id)
	default:
	}
}

// The followers' credentials allow all a follower does: follow under a
// name that one holds at a time, park an event, list what it parked, and
// ask the account's JetStream (meta doctor).
func TestFollowerCredentialsSuffice(t *testing.T) {
	s := newLog(t)
	id := appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	h, stop := runHub(t, Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	waitFor(t, "the event on the stream", func() bool { return len(streamIDs(t, h)) == 1 })
	opt, err := nats.NkeyOptionFromSeed(h.FollowerSeed())
	if err != nil {
		t.Fatal(err)
	}
	o := notify.Options{URL: h.NATSURL(), ConnectTimeout: time.Second, NATSOptions: []nats.Option{opt}}
	if err := notify.Ping(context.Background(), o); err != nil {
		t.Fatalf("ping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tried := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- notify.Follow(ctx, notify.FollowOptions{Options: o, Name: "hook", FromStart: true, MaxAttempts: 1},
			func(*metav1.Event) error { tried <- struct{}{}; return errors.New("down") })
	}()
	<-tried
	var parked []notify.Parked
	waitFor(t, "the parked event", func() bool {
		parked, err = notify.ListParked(ctx, o, "hook")
		return err == nil && len(parked) == 1
	})
	if parked[0].EventID != id {
		t.Fatalf("parked %v", parked)
	}
	// The name is held: a second follower under it is refused.
	err = notify.Follow(ctx, notify.FollowOptions{Options: o, Name: "hook"}, func(*metav1.Event) error { return nil })
	if !errors.Is(err, notify.ErrNameInUse) {
		t.Fatalf("a second follower under the name: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow: %v", err)
	}
}

// Nudges and wakes, however many, make at most one sync per wakeGap, and
// the first one at once.
func TestWakesAreCoalesced(t *testing.T) {
	s := newLog(t)
	h, stop := runHub(t, Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	waitFor(t, "the first cycle", func() bool { return h.cycles.Load() == 1 })
	time.Sleep(h.wakeGap) // idle for longer than the gap
	opt, _ := nats.NkeyOptionFromSeed(h.FollowerSeed())
	o := notify.Options{URL: h.NATSURL(), ConnectTimeout: time.Second, NATSOptions: []nats.Option{opt}}
	start := time.Now()
	if err := notify.Nudge(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the nudge's sync", func() bool { return h.cycles.Load() == 2 })
	if d := time.Since(start); d > h.wakeGap {
		t.Errorf("the first nudge after a quiet spell took %v to start a sync", d)
	}
	nc, err := connectAs(t, h, h.FollowerSeed())
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	for time.Since(start) < 2*time.Second {
		nc.Publish(notify.SyncSubject, nil)
		h.Wake()
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	time.Sleep(h.wakeGap + 200*time.Millisecond)
	n := h.cycles.Load() - 2
	if most := int64(elapsed/h.wakeGap) + 2; n < 2 || n > most {
		t.Fatalf("%d syncs for %v of nudges, want 2 to %d", n, elapsed, most)
	}
}

// The hub makes its credential files once, readable by its owner only,
// and keeps them across restarts; a file that is not a seed is refused,
// naming it.
func TestCredentialFiles(t *testing.T) {
	s := newLog(t)
	data := t.TempDir()
	start := func() (*Hub, error) {
		return New(context.Background(), Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: data, HTTPListen: "127.0.0.1:0"})
	}
	h, err := start()
	if err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{}
	for _, f := range []string{h.HubSeed(), h.FollowerSeed()} {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, info.Mode().Perm())
		}
		seeds[f], _ = os.ReadFile(f)
	}
	if string(seeds[h.HubSeed()]) == string(seeds[h.FollowerSeed()]) {
		t.Fatal("the hub and followers share a key")
	}
	h.Close()
	if h, err = start(); err != nil {
		t.Fatal(err)
	}
	for f, was := range seeds {
		if now, _ := os.ReadFile(f); string(now) != string(was) {
			t.Errorf("%s changed across a restart", f)
		}
	}
	if _, err := connectAs(t, h, h.FollowerSeed()); err != nil {
		t.Fatalf("the follower file of the first start: %v", err)
	}
	h.Close()

	bad := filepath.Join(data, FollowerSeedFile)
	os.WriteFile(bad, []byte("not a seed\n"), 0o600)
	if _, err := start(); err == nil || !strings.Contains(err.Error(), bad+" is not an nkey user seed") {
		t.Fatalf("a bad seed file: %v", err)
	}
}

// README's example server configuration gives followers exactly the
// permissions of the embedded server's follower key.
func TestREADMEListsFollowerPermissions(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "authorization {\n")
	end := strings.Index(text[max(start, 0):], "\n```")
	if start < 0 || end < 0 {
		t.Fatal("README has no authorization block")
	}
	block := text[start : start+end]
	section := func(from, to string) []string {
		part := block[strings.Index(block, from):]
		part = part[:strings.Index(part, to)]
		var quoted []string
		for i := strings.IndexByte(part, '"'); i >= 0; i = strings.IndexByte(part, '"') {
			j := strings.IndexByte(part[i+1:], '"')
			quoted = append(quoted, part[i+1:i+1+j])
			part = part[i+j+2:]
		}
		return quoted
	}
	for what, tt := range map[string]struct {
		got, want []string
	}{
		"publish":   {section("publish:", "subscribe:"), FollowerPublish()},
		"subscribe": {section("subscribe:", "}"), FollowerSubscribe()},
	} {
		if strings.Join(tt.got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("README's follower %s permissions\n%v\nwant\n%v", what, tt.got, tt.want)
		}
	}
}
