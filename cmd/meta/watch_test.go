package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

// watcher is a running `meta watch --json`, its events arriving on lines.
type watcher struct {
	cmd   *exec.Cmd
	lines chan string
}

func startWatch(t *testing.T, url string, args ...string) *watcher {
	t.Helper()
	cmd := exec.Command("meta", append([]string{"--nats", url, "watch"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &watcher{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return w
}

// next is the id of the next event the watcher prints; the deadline only
// keeps a broken follower from hanging the test.
func (w *watcher) next(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-w.lines:
		if !ok {
			t.Fatal("watch exited")
		}
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("watch printed %q: %v", line, err)
		}
		return ev.ID
	case <-time.After(30 * time.Second):
		t.Fatal("no event reached the follower")
	}
	return ""
}

func (w *watcher) stop(t *testing.T) {
	t.Helper()
	w.cmd.Process.Signal(syscall.SIGTERM)
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("watch did not stop cleanly: %v", err)
	}
	for line := range w.lines {
		t.Fatalf("watch printed %q after being stopped", line)
	}
}

// A durable follower receives every announced event once: stopped, it
// misses nothing; restarted under its name, it repeats nothing.
func TestWatchResumesWithoutMissingOrRepeating(t *testing.T) {
	srv := notifytest.Server(t)
	url := srv.ClientURL()
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	appendN := func(n int) []string {
		var ids []string
		for i := 0; i < n; i++ {
			id, err := meta(t, dir, "--nats", url, "append", "note", "a.example.com", "-m", "hello")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, strings.TrimSpace(id))
		}
		return ids
	}
	w := startWatch(t, url, "--json", "--name", "ci", "a.example.com")
	first := appendN(3)
	for _, want := range first {
		if got := w.next(t); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	w.stop(t)
	missed := appendN(2)
	w = startWatch(t, url, "--json", "--name", "ci", "a.example.com")
	for _, want := range missed {
		if got := w.next(t); got != want {
			t.Fatalf("after restart got %s, want %s (nothing repeated, nothing missed)", got, want)
		}
	}
	w.stop(t)

	// --exec: a new follower starts from the first event; the command gets
	// the event on stdin and in its environment.
	got := filepath.Join(t.TempDir(), "got")
	e := startWatch(t, url, "--name", "hook", "--exec", `read -r line; echo "$META_EVENT_ID $META_EVENT_KIND $META_EVENT_DOMAIN ${#line}" >> `+got)
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(got)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) == 5 && lines[0] != "" {
			for i, want := range append(first, missed...) {
				f := strings.Fields(lines[i])
				if len(f) != 4 || f[0] != want || f[1] != "note" || f[2] != "a.example.com" || f[3] == "0" {
					t.Fatalf("exec line %d = %q", i, lines[i])
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec saw %d events: %q", len(lines), data)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.stop(t)
}

// The whole loop with real processes: events appended offline, before any
// hub ran, reach a follower once meta serve starts, with nothing to install.
func TestServeBringsOfflineEventsToFollowers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, app := range []string{"a.example.com", "b.example.com", "a.example.com"} {
		id, err := meta(t, dir, "append", "deploy", app, "--version", "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, strings.TrimSpace(id))
	}
	natsPort, httpPort := freePort(t), freePort(t)
	serve := exec.Command("meta", "--dir", dir, "serve", "--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort),
		"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort), "--poll", "100ms")
	serve.Stderr = os.Stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	w := startWatch(t, url, "--json", "--name", "dash")
	for _, id := range want {
		if got := w.next(t); got != id {
			t.Fatalf("got %s, want %s", got, id)
		}
	}
	// Appended with the hub's NATS named: straight to the follower, once.
	id, err := meta(t, dir, "--nats", url, "append", "note", "a.example.com", "-m", "live")
	if err != nil {
		t.Fatal(err)
	}
	if got := w.next(t); got != strings.TrimSpace(id) {
		t.Fatalf("live event: got %s", got)
	}
	w.stop(t)
	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve did not stop cleanly: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A follower stopped while events are appended, some with NATS up and some
// while the hub (and its NATS) is down, receives every one exactly once
// when both are back, each app's in fold order.
func TestFollowerCatchesUpAcrossANATSOutage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	data := filepath.Join(t.TempDir(), "nats")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	natsPort, httpPort := freePort(t), freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	startServe := func() *exec.Cmd {
		c := exec.Command("meta", "--dir", dir, "serve", "--data", data, "--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort),
			"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort), "--poll", "100ms")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	stopServe := func(c *exec.Cmd) {
		c.Process.Signal(syscall.SIGTERM)
		if err := c.Wait(); err != nil {
			t.Fatalf("serve: %v", err)
		}
	}
	appendOne := func(app string, args ...string) string {
		out, errOut, err := metaFull(t, dir, append(args, "append", "note", app)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		return strings.TrimSpace(out)
	}
	serve := startServe()
	w := startWatch(t, url, "--json", "--name", "dash")
	var want []string
	want = append(want, appendOne("a.example.com", "--nats", url))
	if got := w.next(t); got != want[0] {
		t.Fatalf("got %s", got)
	}
	w.stop(t)
	// Missed while the follower was away, NATS up.
	want = append(want, appendOne("a.example.com", "--nats", url), appendOne("b.example.com", "--nats", url))
	stopServe(serve)
	// Appended while NATS is down: only git has them.
	want = append(want, appendOne("a.example.com", "--nats", url), appendOne("b.example.com"))
	serve = startServe()
	w = startWatch(t, url, "--json", "--name", "dash")
	got := map[string]int{}
	var order []string
	for range want[1:] {
		id := w.next(t)
		got[id]++
		order = append(order, id)
	}
	for _, id := range want[1:] {
		if got[id] != 1 {
			t.Fatalf("event %s received %d times (order %v, want %v)", id, got[id], order, want[1:])
		}
	}
	// Each app's events in fold order: here, the order they were appended.
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	if pos[want[1]] > pos[want[3]] || pos[want[2]] > pos[want[4]] {
		t.Fatalf("order %v breaks an app's fold order", order)
	}
	w.stop(t)
	stopServe(serve)
}

// waitPort waits until something listens on port.
func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}
