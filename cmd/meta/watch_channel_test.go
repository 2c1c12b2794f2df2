package main

import (
	"context"
	"encoding/json"
	"errors"
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
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// channelLog is a log with a hub on it, written through the store, each
// write nudging the hub and waiting until it published the event.
type channelLog struct {
	t   *testing.T
	hub *natsHub
	s   *store.Store
}

var promoter = &metav1.Actor{Name: "Release Manager"}

func newChannelLog(t *testing.T) *channelLog {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &channelLog{t: t, hub: startHub(t, dir), s: s}
}

// published nudges the hub and waits until it published id.
func (l *channelLog) published(id string) string {
	l.t.Helper()
	opt, err := nats.NkeyOptionFromSeed(l.hub.follower())
	if err != nil {
		l.t.Fatal(err)
	}
	if err := notify.Nudge(context.Background(), notify.Options{URL: l.hub.url, ConnectTimeout: 5 * time.Second, NATSOptions: []nats.Option{opt}}); err != nil {
		l.t.Fatal(err)
	}
	l.hub.waitPublished(id)
	return id
}

func (l *channelLog) release(recipe, version string) string {
	l.t.Helper()
	out, err := l.s.AddReleases(context.Background(), []store.ReleaseSpec{{Recipe: recipe, Version: version}}, false, promoter, time.Now(), store.AppendOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	return l.published(out.Events[0].GetId())
}

func (l *channelLog) promote(channel, version string) string {
	l.t.Helper()
	ref, err := projects.ParseChannelRef(channel)
	if err != nil {
		l.t.Fatal(err)
	}
	out, err := l.s.Promote(context.Background(), store.PromoteSpec{Channel: ref, Version: version}, promoter, time.Now(), store.AppendOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	return l.published(out.Event.GetId())
}

// A server follows its channel on its own: meta watch --channel runs its
// --exec once per promotion of that channel, in order, with the promoted
// version in $META_EVENT_VERSION, here an abra app upgrade by a stand-in
// abra. A release, another channel's promotion and an event a follower's
// credentials try to forge on the channel's subject run nothing.
func TestAFollowerUpgradesOnPromotion(t *testing.T) {
	l := newChannelLog(t)
	l.release("nextcloud", "1.0.0+29.0.0")

	bin := t.TempDir()
	runs := filepath.Join(t.TempDir(), "runs")
	abra := "#!/bin/sh\n" + `echo "abra $* | $META_CHANNEL $META_RECIPE $META_EVENT_KIND $(jq -r .version)" >> ` + runs + "\n"
	if _, err := os.Stat("/usr/bin/jq"); err != nil {
		// No jq: the event on stdin is read by sed instead.
		abra = "#!/bin/sh\n" + `echo "abra $* | $META_CHANNEL $META_RECIPE $META_EVENT_KIND $(sed 's/.*"version":"\([^"]*\)".*/\1/')" >> ` + runs + "\n"
	}
	if err := os.WriteFile(filepath.Join(bin, "abra"), []byte(abra), 0o755); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, l.hub.flags(), "--channel", "nextcloud/stable", "--name", "cloud-example-com",
		"--exec", `PATH=`+bin+`:$PATH abra app upgrade -n cloud.example.com "$META_EVENT_VERSION"`)
	waitFollower(t, l.hub, "cloud-example-com")

	l.promote("nextcloud/stable", "1.0.0+29.0.0")
	l.release("nextcloud", "1.1.0+29.0.1")
	l.promote("nextcloud/staging", "1.1.0+29.0.1")
	forged := forgePromotion(t, l.hub, "nextcloud/stable", "6.6.6+0.0.0")
	l.promote("nextcloud/stable", "1.1.0+29.0.1")
	l.promote("nextcloud/staging", "1.0.0+29.0.0")

	want := []string{
		"abra app upgrade -n cloud.example.com 1.0.0+29.0.0 | nextcloud/stable nextcloud promote 1.0.0+29.0.0",
		"abra app upgrade -n cloud.example.com 1.1.0+29.0.1 | nextcloud/stable nextcloud promote 1.1.0+29.0.1",
	}
	read := func() []string {
		data, _ := os.ReadFile(runs)
		if len(data) == 0 {
			return nil
		}
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
	waitUntil(t, "two upgrades", func() bool { return len(read()) >= 2 })
	time.Sleep(time.Second) // long enough for a run too many to show
	if got := read(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("abra ran\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	w.stop(t)
	if strings.Contains(w.stderr.String(), forged) {
		t.Fatalf("the watcher heard of the forged event:\n%s", w.stderr)
	}
}

// forgePromotion has a follower's credentials publish a promotion of
// channel on its subject: the server refuses it, saying so, and the
// stream holds no such event. It returns the forged event's id.
func forgePromotion(t *testing.T, hub *natsHub, channel, version string) string {
	t.Helper()
	ref, _ := projects.ParseChannelRef(channel)
	a := ref.Address()
	ev := &metav1.Event{
		Id: "01JFORGEDPROMOTIONFORGEDPR", Kind: metav1.Kind_KIND_PROMOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
		Recipe: ref.Recipe, Version: version, Address: &metav1.Address{Project: a.Project, Env: a.Env, App: a.App},
		Body:  &metav1.Event_Promotion{Promotion: &metav1.Promotion{Channel: ref.Channel}},
		Actor: &metav1.Actor{Name: "Mallory"}, Time: timestamppb.Now(),
	}
	msg, err := notify.Message(ev, "file:///forged", false)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := notify.PromotionFilter(ref); msg.Subject != want {
		t.Fatalf("the forged message goes to %s, not the channel's %s", msg.Subject, want)
	}
	opt, err := nats.NkeyOptionFromSeed(hub.follower())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var said []string
	nc, err := nats.Connect(hub.url, opt, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		defer mu.Unlock()
		said = append(said, err.Error())
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err == nil {
		t.Fatal("a follower published a promotion through JetStream")
	}
	waitUntil(t, "the server to say it refused", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(said, "\n"), `Permissions Violation for Publish to "`+msg.Subject+`"`)
	})
	hnc := hub.conn(filepath.Join(hub.data, "hub.nk"))
	hjs, _ := jetstream.New(hnc)
	s, err := hjs.Stream(context.Background(), notify.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(context.Background(), msg.Subject); err == nil {
		// Something is there: it must be no forged event.
		info, _ := s.Info(context.Background())
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			if m, err := s.GetMsg(context.Background(), seq); err == nil && m.Header.Get("ce-id") == ev.GetId() {
				t.Fatal("the forged promotion is on the stream")
			}
		}
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatal(err)
	}
	return ev.GetId()
}

// Without --exec, meta watch --channel prints the channel's promotions as
// watch prints events, and only those.
func TestWatchChannelPrintsPromotions(t *testing.T) {
	l := newChannelLog(t)
	l.release("nextcloud", "1.0.0+29.0.0")
	w := startWatch(t, l.hub.flags(), "--channel", "nextcloud/stable", "--name", "printer", "--json")
	waitFollower(t, l.hub, "printer")
	l.promote("nextcloud/staging", "1.0.0+29.0.0")
	l.release("nextcloud", "1.1.0+29.0.1")
	first := l.promote("nextcloud/stable", "1.0.0+29.0.0")
	second := l.promote("nextcloud/stable", "1.1.0+29.0.1")
	var got []map[string]any
	for range 2 {
		select {
		case line := <-w.lines:
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("watch printed %q: %v", line, err)
			}
			got = append(got, v)
		case <-time.After(30 * time.Second):
			t.Fatal("no promotion reached the watcher")
		}
	}
	if got[0]["id"] != first || got[1]["id"] != second || got[1]["kind"] != "promote" || got[1]["channel"] != "stable" || got[1]["version"] != "1.1.0+29.0.1" {
		t.Fatalf("watch printed %v", got)
	}
	w.stop(t)
}
