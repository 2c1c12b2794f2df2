package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

// As README's "A NATS cluster and two hubs" tells a collective to run it:
// three real nats-server processes with the README's users, two `meta
// serve --nats-replicas 3` processes on their own clones of one remote,
// and a follower with the follower's key. One hub is killed (SIGKILL),
// then a NATS server is, and started again: the follower gets every event
// once, in order, and the stream is on three servers.
func TestServeTwoHubsOnACluster(t *testing.T) {
	hubSeed, hubKey := seedFile(t, "hub.nk")
	followerSeed, followerKey := seedFile(t, "follower.nk")
	hubOpt, err := nats.NkeyOptionFromSeed(hubSeed)
	if err != nil {
		t.Fatal(err)
	}
	// The README's block, but for its jetstream line: the harness gives
	// each server its own store directory.
	users := strings.TrimPrefix(natsServerConfig(hubKey, followerKey), "jetstream: {}\n")
	c := notifytest.NewCluster(t, 3, users, hubOpt)
	url := c.URL()
	asFollower := []string{"--nats", url, "--nats-nkey", followerSeed}

	remote := filepath.Join(t.TempDir(), "remote.git")
	gitOut(t, filepath.Dir(remote), "init", "-q", "--bare", "-b", "main", remote)
	clone := func(name string) string {
		dir := filepath.Join(t.TempDir(), name)
		if _, err := meta(t, "", "init", dir, "--remote", remote, "--project", "coop", "--env", "prod"); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	op := clone("op")
	var hubs []*exec.Cmd
	for i := range 2 {
		dir := clone(fmt.Sprintf("hub%d", i))
		port := notifytest.FreePort(t)
		serve, _ := startMeta(t, fmt.Sprintf("meta serve %d", i), port, "--dir", dir, "--nats", url, "--nats-nkey", hubSeed, "serve",
			"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--poll", "1s", "--nats-replicas", "3")
		hubs = append(hubs, serve)
	}
	w := startWatch(t, asFollower, "--json", "--name", "cluster", "--from-start")
	var want []string
	appendNote := func(msg string) {
		t.Helper()
		id, _, err := metaFull(t, op, append(asFollower, "append", "note", "a.example.com", "-m", msg)...)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		want = append(want, strings.TrimSpace(id))
	}
	for i := range 3 {
		appendNote(fmt.Sprintf("both hubs up, %d", i))
	}
	hubs[0].Process.Signal(syscall.SIGKILL)
	for i := range 3 {
		appendNote(fmt.Sprintf("one hub, %d", i))
	}
	c.Kill(0)
	for i := range 2 {
		appendNote(fmt.Sprintf("one hub, two servers, %d", i))
	}
	c.Restart(0)
	appendNote("three servers again")
	for i, id := range want {
		if got := w.next(t); got != id {
			t.Fatalf("event %d: the follower got %s, want %s (all: %v)", i, got, id, want)
		}
	}
	select {
	case line := <-w.lines:
		t.Fatalf("the follower got more than the %d events: %s", len(want), line)
	case <-time.After(1500 * time.Millisecond):
	}
	if info := notifytest.StreamInfo(t, url, notify.StreamName, hubOpt); info.Config.Replicas != 3 || info.State.Msgs != uint64(len(want)) {
		t.Fatalf("the stream has %d replicas and %d messages, want 3 and %d", info.Config.Replicas, info.State.Msgs, len(want))
	}
}
