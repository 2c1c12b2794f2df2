package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// End to end against the standalone nats-server binary, as a collective
// that outgrew the embedded one runs it: a follower process, a meta append
// process, and a hub (meta serve --nats) bringing in an event appended
// without NATS. bash .ci/run installs the pinned server.
func TestStandaloneNATSServer(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatalf("nats-server is not on PATH: go install github.com/nats-io/nats-server/v2@v2.15.2 (bash .ci/run does)")
	}
	port := freePort(t)
	srv := exec.Command(bin, "-js", "-sd", t.TempDir(), "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	waitPort(t, port)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, url, "--json", "--name", "standalone", "--from-start")
	live, err := meta(t, dir, "--nats", url, "append", "deploy", "matrix.example.com", "--version", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if got := w.next(t); got != strings.TrimSpace(live) {
		t.Fatalf("got %s, want %s", got, live)
	}
	quiet, err := meta(t, dir, "append", "note", "matrix.example.com", "-m", "appended without NATS")
	if err != nil {
		t.Fatal(err)
	}
	hub := exec.Command("meta", "--dir", dir, "--nats", url, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--poll", "100ms")
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Process.Kill(); hub.Wait() })
	if got := w.next(t); got != strings.TrimSpace(quiet) {
		t.Fatalf("got %s, want the event the hub brought in, %s", got, quiet)
	}
	w.stop(t)
}
