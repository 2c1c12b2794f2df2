package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

// watcher is a running `meta watch --json`, its events arriving on lines.
type watcher struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *notifytest.SyncBuffer
	exited chan struct{} // closed once the process ended, err set
	err    error
}

// natsHub is a meta serve whose embedded NATS, as always, lets in only
// those with its credentials; it syncs only when nudged (or started), so a
// test that sees an event there knows the nudge worked.
type natsHub struct {
	t        *testing.T
	dir      string
	data     string // its NATS data and credential files
	natsPort int
	url      string
	args     []string // more flags of meta serve
	// httpPort is where it serves HTTP: picked at the first start, the
	// same at every start after it.
	httpPort int
	cmd      *exec.Cmd
	out      *notifytest.SyncBuffer // what it wrote, stdout and stderr
}

// newHub picks the ports and data directory of a hub on dir's log; start
// starts it.
func newHub(t *testing.T, dir string) *natsHub {
	t.Helper()
	port := notifytest.FreePort(t)
	return &natsHub{t: t, dir: dir, data: filepath.Join(t.TempDir(), "nats"), natsPort: port, url: fmt.Sprintf("nats://127.0.0.1:%d", port)}
}

// startHub starts a hub on dir's log and waits until it serves.
func startHub(t *testing.T, dir string) *natsHub {
	t.Helper()
	h := newHub(t, dir)
	h.start()
	return h
}

func (h *natsHub) start() {
	h.t.Helper()
	if h.httpPort == 0 {
		h.httpPort = notifytest.FreePort(h.t)
	}
	h.cmd, h.out = startMeta(h.t, "meta serve", h.httpPort, append([]string{"--dir", h.dir, "serve", "--data", h.data,
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", h.natsPort), "--listen", fmt.Sprintf("127.0.0.1:%d", h.httpPort), "--poll", "1h"}, h.args...)...)
}

// stop stops the hub (SIGTERM) and waits until it is gone.
func (h *natsHub) stop() {
	h.t.Helper()
	h.cmd.Process.Signal(syscall.SIGTERM)
	if err := h.cmd.Wait(); err != nil {
		h.t.Fatalf("serve: %v\n%s", err, h.out)
	}
}

// follower is the followers' credentials file the hub wrote.
func (h *natsHub) follower() string { return filepath.Join(h.data, "follower.nk") }

// flags are the flags that reach the hub's NATS as a follower.
func (h *natsHub) flags() []string { return []string{"--nats", h.url, "--nats-nkey", h.follower()} }

// conn connects to the hub's NATS with the credentials in file.
func (h *natsHub) conn(file string) *nats.Conn {
	h.t.Helper()
	opt, err := nats.NkeyOptionFromSeed(file)
	if err != nil {
		h.t.Fatal(err)
	}
	nc, err := nats.Connect(h.url, opt)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	return nc
}

// startWatch starts meta watch with the NATS flags nats (a hub's flags(),
// or --nats URL) and args.
func startWatch(t *testing.T, nats []string, args ...string) *watcher {
	t.Helper()
	cmd := exec.Command("meta", append(append(append([]string{}, nats...), "watch"), args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{cmd: cmd, lines: make(chan string, 100), stderr: &notifytest.SyncBuffer{}}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("meta watch %s, stderr:\n%s", strings.Join(args, " "), w.stderr)
		}
	})
	w.exited = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
		w.err = cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		for range w.lines {
		}
		<-w.exited
	})
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
	<-w.exited
	if w.err != nil {
		t.Fatalf("watch did not stop cleanly: %v", w.err)
	}
	for line := range w.lines {
		t.Fatalf("watch printed %q after being stopped", line)
	}
}

// A durable follower receives every announced event once: stopped, it
// misses nothing; restarted under its name, it repeats nothing.
func TestWatchResumesWithoutMissingOrRepeating(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	hub := startHub(t, dir)
	url := hub.flags()
	appendN := func(n int) []string {
		var ids []string
		for i := 0; i < n; i++ {
			id, err := meta(t, dir, append(url, "append", "note", "a.example.com", "-m", "hello")...)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, strings.TrimSpace(id))
		}
		return ids
	}
	w := startWatch(t, url, "--json", "--name", "ci", "a.example.com")
	waitFollower(t, hub, "ci")
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

	// --exec: a new follower told to start from the first event gets every
	// one; the command gets the event on stdin and in its environment.
	got := filepath.Join(t.TempDir(), "got")
	e := startWatch(t, url, "--name", "hook", "--from-start", "--exec", `read -r line; echo "$META_EVENT_ID $META_EVENT_KIND $META_EVENT_DOMAIN ${#line}" >> `+got)
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
	hub := startHub(t, dir)
	w := startWatch(t, hub.flags(), "--json", "--name", "dash", "--from-start")
	for _, id := range want {
		if got := w.next(t); got != id {
			t.Fatalf("got %s, want %s", got, id)
		}
	}
	// Appended with the hub's NATS named: the append nudges the hub, which
	// publishes the event from git, once.
	id, err := meta(t, dir, append(hub.flags(), "append", "note", "a.example.com", "-m", "live")...)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.next(t); got != strings.TrimSpace(id) {
		t.Fatalf("live event: got %s", got)
	}
	w.stop(t)
	hub.stop()
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
	hub := newHub(t, dir)
	hub.data = data
	url := hub.flags()
	appendOne := func(app string, args ...string) string {
		out, errOut, err := metaFull(t, dir, append(args, "append", "note", app)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		return strings.TrimSpace(out)
	}
	hub.start()
	w := startWatch(t, url, "--json", "--name", "dash", "--from-start")
	var want []string
	want = append(want, appendOne("a.example.com", url...))
	if got := w.next(t); got != want[0] {
		t.Fatalf("got %s", got)
	}
	w.stop(t)
	// Missed while the follower was away, NATS up.
	want = append(want, appendOne("a.example.com", url...), appendOne("b.example.com", url...))
	hub.stop()
	// Appended while NATS is down: only git has them.
	want = append(want, appendOne("a.example.com", url...), appendOne("b.example.com"))
	hub.start()
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
	hub.stop()
}

// startMeta starts `meta args...` in the background (startProcess): a
// process that listens on port, a meta serve's --listen.
func startMeta(t *testing.T, name string, port int, args ...string) (*exec.Cmd, *notifytest.SyncBuffer) {
	t.Helper()
	cmd := exec.Command("meta", args...)
	return cmd, startProcess(t, name, port, cmd)
}

// startProcess starts cmd in the background and waits until it listens on
// port. It is killed when the test ends; its output (stdout and stderr),
// returned, is logged as name's if the test failed.
func startProcess(t *testing.T, name string, port int, cmd *exec.Cmd) *notifytest.SyncBuffer {
	t.Helper()
	out := &notifytest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", name, out)
		}
	})
	waitPort(t, port)
	return out
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

// followerJS is JetStream on the hub's NATS with the followers'
// credentials, closed when the test ends.
func followerJS(t *testing.T, hub *natsHub) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(hub.conn(hub.follower())) // conn closes it at the end
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitFollower waits until the follower named name has its durable
// consumer on the server: from then on it gets every event announced, even
// one it started too late to see otherwise (a new name starts with the
// events announced after it).
func waitFollower(t *testing.T, hub *natsHub, name string) {
	t.Helper()
	js := followerJS(t, hub)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.Consumer(ctx, notify.StreamName, name)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower %s has no consumer: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAcked waits until the follower named name has acknowledged every
// event it was given. A watcher prints an event before it acknowledges it,
// so a hub stopped the moment the line appears may lose the
// acknowledgement, and the event then comes again only once the
// consumer's AckWait (a minute) is over, holding back the next: at least
// once, as documented, but not what a test of the next event is about.
func waitAcked(t *testing.T, hub *natsHub, name string) {
	t.Helper()
	js := followerJS(t, hub)
	waitUntil(t, "follower "+name+" to acknowledge what it got", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, notify.StreamName, name)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumAckPending == 0
	})
}

// runMeta runs meta to its end and returns its output and exit code.
func runMeta(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "meta", args...)
	cmd.Env = append(os.Environ(), "META_OPERATOR=Watch <watch@example.com>")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("meta %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// watchLog makes a log for the watch tests, with a hub on it, and returns
// the hub and a function that appends a note for app, nudging the hub,
// and returns its id.
func watchLog(t *testing.T) (*natsHub, func(app string) string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	hub := startHub(t, dir)
	return hub, func(app string) string {
		t.Helper()
		out, errOut, err := metaFull(t, dir, append(hub.flags(), "append", "note", app, "-m", "hello")...)
		// A first event says where the new app went; nothing else.
		if err != nil || strings.TrimPrefix(errOut, "meta: new app "+app+" in project coop, env prod (from meta.yaml)\n") != "" {
			t.Fatalf("append: %v\n%s", err, errOut)
		}
		id := strings.TrimSpace(out)
		hub.waitPublished(id)
		return id
	}
}

// waitPublished waits until the hub published the event id: an append
// returns once the hub was told, and the hub publishes a moment later.
func (h *natsHub) waitPublished(id string) {
	h.t.Helper()
	nc := h.conn(filepath.Join(h.data, "hub.nk"))
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	waitUntil(h.t, "the hub to publish event "+id, func() bool {
		s, err := js.Stream(ctx, notify.StreamName)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil {
			return false
		}
		m, err := s.GetMsg(ctx, info.State.LastSeq)
		return err == nil && m.Header.Get("ce-id") == id
	})
}

// Bad input is refused (exit 2) before anything reaches NATS: a name NATS
// cannot take, an empty one, two starts, a start that is not a time, a
// retry policy that makes no sense.
func TestWatchRefusesBadInput(t *testing.T) {
	srv := notifytest.Server(t)
	url := srv.ClientURL()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an empty name", []string{"--name", ""}, "--name: invalid follower name: it is empty"},
		{"a space", []string{"--name", "a b"}, `invalid follower name "a b": ' ' is not allowed`},
		{"a dot", []string{"--name", "ci.prod"}, `"ci.prod": '.' is not allowed`},
		{"a wildcard", []string{"--name", "ci*"}, `'*' is not allowed`},
		{"a tail wildcard", []string{"--name", "ci>"}, `'>' is not allowed`},
		{"a slash", []string{"--name", "ci/prod"}, `'/' is not allowed`},
		{"a control character", []string{"--name", "ci\x1b[2J"}, `"ci\x1b[2J": '\x1b' is not allowed`},
		{"too long", []string{"--name", strings.Repeat("a", 256)}, "256 bytes long, at most 255"},
		{"two starts", []string{"--name", "x", "--from-start", "--since", "1h"}, "--from-start and --since both say where to start"},
		{"a since that is neither", []string{"--since", "yesterday"}, `--since "yesterday" is neither a time in RFC 3339`},
		{"a since not before now", []string{"--since", "-2h"}, "--since -2h: give how long ago"},
		{"a since in the future", []string{"--since", future}, "is in the future"},
		{"negative attempts", []string{"--max-attempts", "-1"}, "--max-attempts -1"},
		{"no backoff", []string{"--backoff", "0s"}, "--backoff 0s"},
		{"parked with exec", []string{"--parked", "--exec", "true"}, "--parked lists parked events; it takes no --exec"},
		{"parked with a filter", []string{"--parked", "a.example.com"}, "it takes no DOMAIN, SUBJECT or --channel"},
		{"a bad filter", []string{"not a domain!"}, "is neither a domain nor a subject"},
		{"a channel and a domain", []string{"--channel", "nextcloud/stable", "a.example.com"}, "--channel follows a channel's promotions; it takes no DOMAIN or SUBJECT"},
		{"a channel and a subject", []string{"--channel", "nextcloud/stable", "meta.events.>"}, "it takes no DOMAIN or SUBJECT"},
		{"a channel without its recipe", []string{"--channel", "stable"}, `--channel: invalid channel "stable": not recipe/channel`},
		{"an empty channel", []string{"--channel", ""}, `invalid channel "": not recipe/channel`},
		{"a channel with a dot", []string{"--channel", "next.cloud/stable"}, `invalid channel "next.cloud/stable": its recipe`},
		{"a channel with a wildcard", []string{"--channel", "nextcloud/*"}, `invalid channel "nextcloud/*": its name`},
		{"a channel with three parts", []string{"--channel", "nextcloud/stable/x"}, `invalid channel "nextcloud/stable/x"`},
		{"a channel with a control character", []string{"--channel", "nextcloud/st\x1b[2Jable"}, `invalid channel "nextcloud/st\x1b[2Jable"`},
		{"the releases log as a channel", []string{"--channel", "nextcloud/_releases"}, `invalid channel "nextcloud/_releases"`},
		{"parked with a channel", []string{"--parked", "--channel", "nextcloud/stable"}, "it takes no DOMAIN, SUBJECT or --channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runMeta(t, append([]string{"--nats", url, "watch"}, tt.args...)...)
			if code != 2 || out != "" || !strings.HasPrefix(errOut, "meta: error: ") || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and an error holding %q", code, out, errOut, tt.want)
			}
			if strings.ContainsRune(errOut, 0x1b) {
				t.Fatalf("stderr holds a raw escape: %q", errOut)
			}
		})
	}
	// Nothing reached NATS: no stream, no bucket.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for name := range js.StreamNames(context.Background()).Name() {
		t.Errorf("bad input made stream %s", name)
	}
}

// A new name starts with the events announced after it, unless told
// --from-start or --since; a name that exists resumes where it stopped
// whatever it is told.
func TestWatchStartsAtNewEventsUnlessTold(t *testing.T) {
	hub, appendOne := watchLog(t)
	url := hub.flags()
	var all []string
	add := func() string {
		id := appendOne("a.example.com")
		all = append(all, id)
		return id
	}
	add()
	add()
	time.Sleep(50 * time.Millisecond)
	cut := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(50 * time.Millisecond)
	add()

	stoppedAt := map[string]int{} // how many of all each name had seen
	tests := []struct {
		name string
		args []string
		// first are the events the follower gets before a live one,
		// given all the events so far.
		first func(all []string) []string
	}{
		{"fresh", nil, func([]string) []string { return nil }},
		{"everything", []string{"--from-start"}, func(all []string) []string { return all }},
		{"an-hour", []string{"--since", "1h"}, func(all []string) []string { return all }},
		{"since-cut", []string{"--since", cut}, func(all []string) []string { return all[2:] }},
		// Existing names, told to start elsewhere: they resume.
		{"fresh", []string{"--from-start"}, func(all []string) []string { return all[stoppedAt["fresh"]:] }},
		{"everything", []string{"--since", "1h"}, func(all []string) []string { return all[stoppedAt["everything"]:] }},
		{"since-cut", nil, func(all []string) []string { return all[stoppedAt["since-cut"]:] }},
	}
	for _, tt := range tests {
		w := startWatch(t, url, append([]string{"--json", "--name", tt.name}, tt.args...)...)
		waitFollower(t, hub, tt.name)
		want := append(append([]string{}, tt.first(all)...), add())
		for i, id := range want {
			if got := w.next(t); got != id {
				t.Fatalf("%s %v: event %d is %s, want %s (of %v)", tt.name, tt.args, i, got, id, want)
			}
		}
		w.stop(t)
		stoppedAt[tt.name] = len(all)
	}
}

// One watcher at a time under a name: a second is refused (exit 3) naming
// it and saying what to do, while other names follow alongside. A watcher
// that stops lets go at once; one that is killed keeps the name no longer
// than notify.LeaseTTL, and the one after it gets what it missed.
func TestWatchNameHasOneWatcher(t *testing.T) {
	hub, appendOne := watchLog(t)
	url := hub.flags()
	first := startWatch(t, url, "--json", "--name", "ci")
	waitFollower(t, hub, "ci")
	refused := func() bool {
		t.Helper()
		_, errOut, code := runMeta(t, append(url, "watch", "--json", "--name", "ci")...)
		if code != 3 {
			return false
		}
		for _, want := range []string{`meta: error: follower name "ci" is in use by another meta watch (pid `, "one watcher per --name", "give this one a --name of its own", "within 10s"} {
			if !strings.Contains(errOut, want) {
				t.Fatalf("refusal %q does not say %q", errOut, want)
			}
		}
		return true
	}
	if !refused() {
		t.Fatal("a second watcher under ci was not refused")
	}
	other := startWatch(t, url, "--json", "--name", "other")
	waitFollower(t, hub, "other")
	id := appendOne("a.example.com")
	if got := first.next(t); got != id {
		t.Fatalf("ci got %s, want %s", got, id)
	}
	if got := other.next(t); got != id {
		t.Fatalf("other got %s, want %s", got, id)
	}
	other.stop(t)

	// Killed: the name stays held a while, then is free.
	first.cmd.Process.Kill()
	<-first.exited
	killed := time.Now()
	missed := appendOne("a.example.com")
	if !refused() {
		t.Fatal("the name was free at once after its watcher was killed: the hold did not outlive the process")
	}
	var next *watcher
	for next == nil {
		if time.Since(killed) > notify.LeaseTTL+5*time.Second {
			t.Fatalf("the name is still held %v after its watcher was killed", time.Since(killed))
		}
		time.Sleep(250 * time.Millisecond)
		w := startWatch(t, url, "--json", "--name", "ci")
		select {
		case <-w.exited:
			if w.cmd.ProcessState.ExitCode() != 3 {
				t.Fatalf("watch exited %d: %s", w.cmd.ProcessState.ExitCode(), w.stderr)
			}
		case <-time.After(1500 * time.Millisecond):
			next = w // still running: it holds the name
		}
	}
	t.Logf("the name was free %v after its watcher was killed", time.Since(killed).Round(100*time.Millisecond))
	if got := next.next(t); got != missed {
		t.Fatalf("the next watcher got %s, want %s, which it missed", got, missed)
	}

	// Stopped: the name is free at once.
	next.stop(t)
	again := startWatch(t, url, "--json", "--name", "ci")
	id = appendOne("a.example.com")
	if got := again.next(t); got != id {
		t.Fatalf("after a clean stop got %s, want %s", got, id)
	}
	again.stop(t)
}

// A failing --exec is retried with a doubling backoff, the events behind
// it waiting; after --max-attempts the event is parked (reported, listed by
// --parked) and the next events run.
func TestWatchExecRetriesThenParks(t *testing.T) {
	hub, appendOne := watchLog(t)
	url := hub.flags()
	flaky, doomed, fine := appendOne("a.example.com"), appendOne("b.example.com"), appendOne("c.example.com")
	runs := filepath.Join(t.TempDir(), "runs")
	// flaky fails twice, then works; doomed always fails.
	script := `echo "$META_EVENT_ID $(date +%s%N)" >> ` + runs + `
case $META_EVENT_ID in
` + flaky + `) [ "$(grep -c ` + flaky + " " + runs + `)" -ge 3 ] ;;
` + doomed + `) echo "b.example.com is down" >&2; exit 7 ;;
esac`
	w := startWatch(t, url, "--name", "hook", "--from-start", "--max-attempts", "3", "--backoff", "200ms", "--exec", script)
	type run struct {
		id string
		at time.Time
	}
	readRuns := func() []run {
		data, _ := os.ReadFile(runs)
		var out []run
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			var ns int64
			fmt.Sscan(f[1], &ns)
			out = append(out, run{f[0], time.Unix(0, ns)})
		}
		return out
	}
	waitRuns := func(n int) []run {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for len(readRuns()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("--exec ran %d times, want %d: %v", len(readRuns()), n, readRuns())
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Second) // long enough for a run too many to show
		return readRuns()
	}
	got := waitRuns(7)
	want := []string{flaky, flaky, flaky, doomed, doomed, doomed, fine}
	if len(got) != len(want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
	for i := range want {
		if got[i].id != want[i] {
			t.Fatalf("run %d was %s, want %s (all: %v)", i, got[i].id, want[i], got)
		}
	}
	for _, i := range []int{1, 4} {
		if d := got[i].at.Sub(got[i-1].at); d < 200*time.Millisecond {
			t.Errorf("attempt 2 came %v after the first, want at least the 200ms backoff", d)
		}
		if d := got[i+1].at.Sub(got[i].at); d < 400*time.Millisecond {
			t.Errorf("attempt 3 came %v after the second, want at least 400ms (doubled)", d)
		}
	}
	// An event announced after the parking runs once, too.
	later := appendOne("c.example.com")
	if got := waitRuns(8); got[7].id != later {
		t.Fatalf("the event after the parked one: runs %v", got)
	}
	w.stop(t)

	stderr := w.stderr.String()
	for _, want := range []string{
		"meta: warning: event " + flaky + ": --exec failed: exit status 1 (attempt 1 of 3); again in 200ms\n",
		"meta: warning: event " + flaky + ": --exec failed: exit status 1 (attempt 2 of 3); again in 400ms\n",
		"meta: warning: event " + doomed + ": --exec failed: exit status 7 (attempt 2 of 3); again in 400ms\n",
		"meta: warning: event " + doomed + " parked after 3 attempts: --exec failed: exit status 7; later events go on (meta watch --name hook --parked lists it)\n",
		"b.example.com is down\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if n := strings.Count(stderr, "parked after"); n != 1 {
		t.Errorf("%d events parked, want 1:\n%s", n, stderr)
	}

	out, errOut, code := runMeta(t, append(url, "watch", "--name", "hook", "--parked", "--json")...)
	if code != 0 {
		t.Fatalf("--parked: exit %d: %s", code, errOut)
	}
	var parked []map[string]any
	if err := json.Unmarshal([]byte(out), &parked); err != nil {
		t.Fatalf("--parked --json printed %q: %v", out, err)
	}
	if len(parked) != 1 || parked[0]["event_id"] != doomed || parked[0]["follower"] != "hook" || parked[0]["domain"] != "b.example.com" ||
		parked[0]["kind"] != "note" || parked[0]["attempts"] != 3.0 || parked[0]["error"] != "--exec failed: exit status 7" || parked[0]["stream_sequence"] != 2.0 {
		t.Fatalf("--parked --json = %s", out)
	}
	if _, err := time.Parse(time.RFC3339, parked[0]["parked_at"].(string)); err != nil {
		t.Fatalf("parked_at: %v", err)
	}
	out, _, code = runMeta(t, append(url, "watch", "--name", "hook", "--parked")...)
	if code != 0 || !strings.Contains(out, doomed+"  b.example.com  note  3 attempts  --exec failed: exit status 7\n") {
		t.Fatalf("--parked: exit %d, %q", code, out)
	}
	// Another name parked nothing.
	if out, _, code := runMeta(t, append(url, "watch", "--name", "other", "--parked", "--json")...); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("--parked for another name: exit %d, %q", code, out)
	}
}

// NATS away, at the start or later, is one line when it goes and one when
// it is back, however long it stays away; the follower then carries on.
func TestWatchReportsANATSOutageOnce(t *testing.T) {
	// The hub (and so its NATS) goes away and comes back; it has run once,
	// so that its follower credentials exist before the watcher starts.
	hub, appendOne := watchLog(t)
	hub.stop()
	url := hub.url
	w := startWatch(t, hub.flags(), "--json", "--name", "dash")
	time.Sleep(3 * time.Second) // NATS not up yet: three tries at least
	hub.start()
	waitFollower(t, hub, "dash")
	id := appendOne("a.example.com")
	if got := w.next(t); got != id {
		t.Fatalf("got %s, want %s", got, id)
	}
	waitAcked(t, hub, "dash")
	hub.stop()
	time.Sleep(3 * time.Second)
	hub.start()
	waitFollower(t, hub, "dash")
	id = appendOne("a.example.com")
	if got := w.next(t); got != id {
		t.Fatalf("after the outage got %s, want %s", got, id)
	}
	w.stop(t)
	down := "meta: warning: NATS at " + url + " is unreachable; retrying\n"
	back := "meta: warning: NATS at " + url + " is reachable again\n"
	if got, want := w.stderr.String(), down+back+down+back; got != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", got, want)
	}
}

// A watcher without the hub's credentials is refused by the server and
// says so (exit 1), instead of waiting for a NATS that is there; an nkey
// file that is not one is bad input (exit 2).
func TestWatchWithoutCredentials(t *testing.T) {
	hub, _ := watchLog(t)
	out, errOut, code := runMeta(t, "--nats", hub.url, "watch", "--name", "intruder")
	if code != 1 || out != "" || !strings.Contains(errOut, "meta: error: NATS at "+hub.url+" refused this follower: nats: Authorization Violation") ||
		!strings.Contains(errOut, "--nats-nkey FILE") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	notSeed := filepath.Join(t.TempDir(), "follower.nk")
	os.WriteFile(notSeed, []byte("SUNOTASEED\n"), 0o600)
	out, errOut, code = runMeta(t, "--nats", hub.url, "--nats-nkey", notSeed, "watch", "--name", "intruder")
	if code != 2 || out != "" || !strings.Contains(errOut, "meta: error: --nats-nkey "+notSeed+": ") {
		t.Fatalf("a bad nkey file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
