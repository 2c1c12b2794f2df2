package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// stallProxy forwards TCP to a NATS server, and can stall: hold every
// byte either way without closing anything, as a partition or a paused
// process does.
type stallProxy struct {
	ln      net.Listener
	to      string
	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
}

func newStallProxy(t testing.TB, to string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, to: strings.TrimPrefix(to, "nats://")}
	p.cond = sync.NewCond(&p.mu)
	t.Cleanup(func() { ln.Close(); p.unstall() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.to)
			if err != nil {
				c.Close()
				continue
			}
			go p.pipe(c, up)
			go p.pipe(up, c)
		}
	}()
	return p
}

func (p *stallProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *stallProxy) pipe(from, to net.Conn) {
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		p.mu.Lock()
		for p.stalled {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) stall() { p.mu.Lock(); p.stalled = true; p.mu.Unlock() }
func (p *stallProxy) unstall() {
	p.mu.Lock()
	p.stalled = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// heldEndpoint takes every event, but holds hub 0's POST of one event
// until told to answer it.
type heldEndpoint struct {
	mu       sync.Mutex
	got      map[string][]string // path (which hub) -> ids taken
	holdID   string
	held     chan struct{} // closed when the held POST arrived
	released chan struct{}
}

func (e *heldEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("webhook-id")
	e.mu.Lock()
	hold := r.URL.Path == "/h0" && id == e.holdID
	e.mu.Unlock()
	if hold {
		close(e.held)
		<-e.released
	}
	e.mu.Lock()
	e.got[r.URL.Path] = append(e.got[r.URL.Path], id)
	e.mu.Unlock()
}

func (e *heldEndpoint) taken(path string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got[path])
}

// The hub delivering the webhooks stalls (its NATS connection hangs, or
// the process pauses) in the middle of a POST; the other takes the lease,
// delivers, and saves the cursor further on. When the first wakes and its
// POST returns, its cursor write must be refused (fenced by the revision
// it read), not put over the newer one: a cursor moved back makes the
// next hub to read it deliver again what was delivered, more than the one
// event that was in flight.
func TestTwoHubsAStalledDelivererCannotMoveTheCursorBack(t *testing.T) {
	srvNATS := notifytest.Server(t)
	url := srvNATS.ClientURL()
	proxy := newStallProxy(t, url)
	log := newRemoteLog(t)
	op := log.clone(t)
	secret := newSecret(t)
	ep := &heldEndpoint{got: map[string][]string{}, held: make(chan struct{}), released: make(chan struct{})}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	defer close(ep.released)
	var logs logLines
	hubs := make([]*Hub, 2)
	stops := make([]func(), 2)
	for i, natsURL := range []string{proxy.url(), url} {
		cfg := Config{Store: log.clone(t), NATSURL: natsURL, HTTPListen: "127.0.0.1:0", Poll: 100 * time.Millisecond,
			Webhooks: []Webhook{{Name: "dash", URL: fmt.Sprintf("%s/h%d", srv.URL, i), Secret: secret}}, leaseTTL: time.Second,
			Logf: func(f string, a ...any) { logs.logf("hub %d: "+f, append([]any{i}, a...)...) }}
		hubs[i], stops[i] = runHub(t, cfg)
		if i == 0 {
			waitFor(t, "hub 0 to serve", func() bool { return len(logs.with("hub 0: serving the log")) == 1 })
		}
	}
	defer stops[1]()
	defer func() {
		if t.Failed() {
			t.Logf("hubs:\n%s", strings.Join(logs.with(""), "\n"))
		}
	}()
	waitFor(t, "both hubs to serve", func() bool { return len(logs.with("serving the log")) == 2 })
	if !hubs[0].delivering() {
		t.Fatal("hub 0 does not deliver")
	}
	e1 := appendEv(t, op, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	waitFor(t, "hub 0 to deliver the first", func() bool { return slices.Contains(ep.taken("/h0"), e1) })

	// The next event is held in hub 0's POST while hub 0 stalls.
	id := make(chan string, 1)
	ep.mu.Lock()
	go func() {
		id <- appendEv(t, op, metav1.Kind_KIND_UPGRADE, "a.example.com", "1.1.0")
	}()
	ep.holdID = <-id
	ep.mu.Unlock()
	e2 := ep.holdID
	<-ep.held
	proxy.stall()
	e3 := appendEv(t, op, metav1.Kind_KIND_NOTE, "a.example.com", "")
	waitFor(t, "hub 1 to take over and deliver", func() bool { return slices.Contains(ep.taken("/h1"), e3) })
	cursorAt := func() cursor {
		e, err := hubs[1].kv.Get(context.Background(), cursorKey("dash"))
		if err != nil {
			t.Fatal(err)
		}
		var c cursor
		json.Unmarshal(e.Value(), &c)
		return c
	}
	tip := log.clone(t).RemoteTip()
	waitFor(t, "hub 1 to save its cursor", func() bool { return cursorAt().Commit == tip })

	// Hub 0 wakes, and its held POST returns.
	proxy.unstall()
	ep.released <- struct{}{}
	waitFor(t, "hub 0's held POST", func() bool { return slices.Contains(ep.taken("/h0"), e2) })
	time.Sleep(time.Second) // long enough for its cursor write
	if c := cursorAt(); c.Commit != tip {
		t.Errorf("the cursor was moved back to %+v (hub 1 had saved %s): the stalled hub's write was not fenced", c, tip)
	}
	// Whoever reads the cursor next delivers from there: nothing but e2
	// (in flight when hub 0 stalled) may come twice.
	all := append(ep.taken("/h0"), ep.taken("/h1")...)
	for _, ev := range []string{e1, e3} {
		if n := strings.Count(strings.Join(all, " "), ev); n != 1 {
			t.Errorf("%s delivered %d times", ev, n)
		}
	}
}
