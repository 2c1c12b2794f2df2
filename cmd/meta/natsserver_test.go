package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"

	"git.coopcloud.tech/coop-cloud/meta/hub"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

// natsServerConfig is the authorization block README shows a collective
// for its own cluster: the hub's user may do anything, the followers'
// only what hub.FollowerPublish and hub.FollowerSubscribe list.
func natsServerConfig(hubKey, followerKey string) string {
	quote := func(subjects []string) string {
		q := make([]string, len(subjects))
		for i, s := range subjects {
			q[i] = fmt.Sprintf("%q", s)
		}
		return strings.Join(q, ", ")
	}
	return fmt.Sprintf(`jetstream: {}
authorization {
  users: [
    { nkey: %s }
    { nkey: %s, permissions: {
        publish: { allow: [%s] }
        subscribe: { allow: [%s] }
    } }
  ]
}
`, hubKey, followerKey, quote(hub.FollowerPublish()), quote(hub.FollowerSubscribe()))
}

// seedFile makes an nkey user and writes its seed to a file.
func seedFile(t *testing.T, name string) (file, public string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	public, _ = kp.PublicKey()
	file = filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return file, public
}

// End to end against the standalone nats-server binary, as a collective
// that outgrew the embedded one runs it, with the users README tells it
// to configure: a follower process, a meta append process nudging the hub
// (meta serve --nats, with the hub's key), and the hub bringing in an
// event appended without NATS. A follower's key cannot publish an event.
// bash .ci/run installs the pinned server.
func TestStandaloneNATSServer(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatalf("nats-server is not on PATH: go install github.com/nats-io/nats-server/v2@v2.15.2 (bash .ci/run does)")
	}
	hubSeed, hubKey := seedFile(t, "hub.nk")
	followerSeed, followerKey := seedFile(t, "follower.nk")
	conf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte(natsServerConfig(hubKey, followerKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	port := notifytest.FreePort(t)
	startProcess(t, "nats-server", port, exec.Command(bin, "-c", conf, "-sd", t.TempDir(), "-a", "127.0.0.1", "-p", fmt.Sprint(port)))
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	asFollower := []string{"--nats", url, "--nats-nkey", followerSeed}

	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	quiet, err := meta(t, dir, "append", "note", "matrix.example.com", "-m", "appended without NATS")
	if err != nil {
		t.Fatal(err)
	}
	httpPort := notifytest.FreePort(t)
	// Once it listens, the hub made the stream and buckets a follower uses.
	startMeta(t, "meta serve", httpPort, "--dir", dir, "--nats", url, "--nats-nkey", hubSeed, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort), "--poll", "1h")
	w := startWatch(t, asFollower, "--json", "--name", "standalone", "--from-start")
	if got := w.next(t); got != strings.TrimSpace(quiet) {
		t.Fatalf("got %s, want the event the hub brought in, %s", got, quiet)
	}
	live, errOut, err := metaFull(t, dir, append(asFollower, "append", "deploy", "matrix.example.com", "--version", "1.0.0")...)
	if err != nil || strings.Contains(errOut, "warning") {
		t.Fatalf("append: %v\n%s", err, errOut)
	}
	if got := w.next(t); got != strings.TrimSpace(live) {
		t.Fatalf("got %s, want %s", got, live)
	}
	w.stop(t)
	forgedPublishIsRefused(t, url, followerSeed, hubSeed)
}
