package hub

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// remoteLog is a log on a bare remote, and clones of it: an operator's
// that appends and pushes, one per hub.
type remoteLog struct{ remote string }

func newRemoteLog(t testing.TB) *remoteLog {
	t.Helper()
	remote := filepath.Join(t.TempDir(), "log.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", remote).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return &remoteLog{remote: remote}
}

func (l *remoteLog) clone(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Join(context.Background(), filepath.Join(t.TempDir(), "clone"), store.JoinOptions{URL: l.remote,
		InitOptions: store.InitOptions{Project: "coop", Env: "prod", Operator: store.Signature{Name: "Alice", When: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// received is what a follower got, in order, and when.
type received struct {
	mu  sync.Mutex
	ids []string
	at  map[string]time.Time
}

func (r *received) add(ev *metav1.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, ev.GetId())
	if _, ok := r.at[ev.GetId()]; !ok {
		r.at[ev.GetId()] = time.Now()
	}
	return nil
}

func (r *received) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// streamMsgs is how many messages the events stream keeps.
func streamMsgs(t *testing.T, url string) uint64 {
	t.Helper()
	return notifytest.StreamInfo(t, url, notify.StreamName).State.Msgs
}

// streamLeader is the index of the node that leads the events stream.
func streamLeader(t *testing.T, url string) int {
	t.Helper()
	leader := notifytest.StreamInfo(t, url, notify.StreamName).Cluster.Leader
	var i int
	if _, err := fmt.Sscanf(leader, "n%d", &i); err != nil {
		t.Fatalf("stream leader %q: %v", leader, err)
	}
	return i
}

// twoHubs is two hubs of one log, each on a clone of its own, delivering
// webhooks to one endpoint, and an operator's clone (op) that appends.
type twoHubs struct {
	op    *store.Store
	ep    *endpoint
	logs  *logLines // every hub's lines, "hub <i>: " first
	hubs  [2]*Hub
	stops [2]func() // each stops its hub, once: the test's end stops the rest
}

// startTwoHubs starts two hubs on the NATS at url; with sets what the
// test's Config differs in. The hubs' lines are logged if the test fails.
func startTwoHubs(t *testing.T, url string, with func(*Config)) *twoHubs {
	t.Helper()
	log := newRemoteLog(t)
	secret := newSecret(t)
	key, _ := ParseSecret(secret)
	two := &twoHubs{op: log.clone(t), ep: &endpoint{t: t, key: key}, logs: &logLines{}}
	srv := httptest.NewServer(two.ep)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hubs:\n%s", strings.Join(two.logs.with(""), "\n"))
		}
	})
	for i := range two.hubs {
		cfg := Config{Store: log.clone(t), NATSURL: url, HTTPListen: "127.0.0.1:0",
			Webhooks: []Webhook{{Name: "dash", URL: srv.URL, Secret: secret}},
			Logf:     func(f string, a ...any) { two.logs.logf("hub %d: "+f, append([]any{i}, a...)...) }}
		with(&cfg)
		h, stop := runHub(t, cfg)
		two.hubs[i], two.stops[i] = h, sync.OnceFunc(stop)
		t.Cleanup(two.stops[i])
	}
	return two
}

// percentile of sorted durations, p in [0,100].
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}

// Two hubs of one log (each its own clone) against a real three-server
// NATS cluster, the stream and buckets on three replicas. A burst of
// events is appended while the server leading the stream is killed
// (SIGKILL) and started again: a follower gets every event exactly once,
// in order, and so does a webhook endpoint, though both hubs run; the
// stream keeps each event once. The follower's latency (append to
// receipt) is logged, overall and while the node is down; bench/cluster.sh
// prints it.
func TestClusterTwoHubsNodeKill(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster of real nats-server processes: not in -short")
	}
	// SIGKILL, a lost machine, unless META_CLUSTER_SIGNAL=TERM asks for a
	// planned restart (bench/cluster.sh measures both).
	sig := syscall.SIGKILL
	if os.Getenv("META_CLUSTER_SIGNAL") == "TERM" {
		sig = syscall.SIGTERM
	}
	c := notifytest.NewCluster(t, 3, "")
	two := startTwoHubs(t, c.URL(), func(cfg *Config) {
		cfg.NATSReplicas, cfg.Poll, cfg.leaseTTL = 3, 2*time.Second, 3*time.Second
	})
	op, ep, logs := two.op, two.ep, two.logs

	ctx, cancel := context.WithCancel(context.Background())
	rec := &received{at: map[string]time.Time{}}
	followed := make(chan error, 1)
	go func() {
		followed <- notify.Follow(ctx, notify.FollowOptions{Options: notify.Options{URL: c.URL(), ConnectTimeout: 2 * time.Second},
			Name: "cluster", FromStart: true}, rec.add)
	}()
	defer func() {
		cancel()
		if err := <-followed; err != nil {
			t.Errorf("follow: %v", err)
		}
	}()
	// meta append's nudge, on a connection that rides out the kill.
	nudger, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nudger.Close()

	const n, killAt, restartAt = 60, 20, 40
	var want []string
	appended := map[string]time.Time{}
	var killed int
	var killStart, killEnd time.Time
	for i := range n {
		switch i {
		case killAt:
			killed = streamLeader(t, c.URL())
			killStart = time.Now()
			c.Stop(killed, sig)
			t.Logf("stopped n%d, the stream's leader, with %s", killed, sig)
		case restartAt:
			c.Restart(killed)
			killEnd = time.Now()
			t.Logf("restarted n%d", killed)
		}
		id := appendEv(t, op, metav1.Kind_KIND_NOTE, "a.example.com", "")
		appended[id] = time.Now()
		want = append(want, id)
		nudger.Publish(notify.SyncSubject, nil)
		time.Sleep(100 * time.Millisecond)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(rec.got()) < n || len(ep.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: the follower got %d events, the endpoint %d, of %d", len(rec.got()), len(ep.got()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // long enough for a repeat to show
	if got := rec.got(); !slices.Equal(got, want) {
		t.Errorf("the follower got %d events (%v), want %d once each in order (%v)", len(got), got, n, want)
	}
	if msgs := streamMsgs(t, c.URL()); msgs != n {
		t.Errorf("the stream keeps %d messages, want %d: both hubs published, it must keep each event once", msgs, n)
	}
	if got := ep.got(); !slices.Equal(got, want) {
		t.Errorf("the endpoint got %d events (%v), want %d once each in order (%v)", len(got), got, n, want)
	}
	var all, during []time.Duration
	rec.mu.Lock()
	for i, id := range want {
		d := rec.at[id].Sub(appended[id])
		if os.Getenv("DBG") != "" {
			t.Logf("%d %s", i, d)
		}
		all = append(all, d)
		if i >= killAt && i < restartAt {
			during = append(during, d)
		}
	}
	rec.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	sort.Slice(during, func(i, j int) bool { return during[i] < during[j] })
	line := fmt.Sprintf("cluster: %d events, node n%d (stream leader) down %s (%s): follower latency p50 %s p99 %s overall; p50 %s p99 %s max %s while down",
		n, killed, killEnd.Sub(killStart).Round(time.Millisecond), sig,
		percentile(all, 50).Round(time.Millisecond), percentile(all, 99).Round(time.Millisecond),
		percentile(during, 50).Round(time.Millisecond), percentile(during, 99).Round(time.Millisecond), during[len(during)-1].Round(time.Millisecond))
	t.Log(line)
	if os.Getenv("DBG") != "" {
		t.Logf("hubs:\n%s", strings.Join(logs.with(""), "\n"))
	}
	if out := os.Getenv("META_CLUSTER_BENCH_OUT"); out != "" {
		os.WriteFile(out, []byte(line+"\n"), 0o644)
	}
}

// crash stops h as a hub that dies does (SIGKILL, a lost machine): its
// connections go first, so it can neither renew nor let go of the
// webhooks lease, nor save a cursor.
func crash(h *Hub, stop func()) {
	h.pub.Close()
	h.nc.Close()
	stop()
}

// Two hubs: the one delivering the webhooks dies while the endpoint is
// failing its event; the other takes over once the lease lapses and
// delivers that event and the rest, each once.
func TestWebhookTakeoverWhenHubDies(t *testing.T) {
	two := startTwoHubs(t, notifytest.Server(t).ClientURL(), func(cfg *Config) {
		cfg.Poll, cfg.leaseTTL = 100*time.Millisecond, time.Second
	})
	op, ep, logs, hubs := two.op, two.ep, two.logs, two.hubs
	// Run has taken the lease, or not, once it says it serves.
	waitFor(t, "both hubs to serve", func() bool { return len(logs.with("serving the log")) == 2 })
	if !hubs[0].delivering() || hubs[1].delivering() {
		t.Fatalf("hub 0 delivering %v, hub 1 %v: want the first one started only", hubs[0].delivering(), hubs[1].delivering())
	}
	want := []string{appendEv(t, op, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")}
	waitFor(t, "the first delivery", func() bool { return len(ep.got()) >= 1 })
	ep.mu.Lock()
	ep.script = slices.Repeat([]int{503}, 1000) // down until told otherwise
	ep.mu.Unlock()
	want = append(want, appendEv(t, op, metav1.Kind_KIND_UPGRADE, "a.example.com", "1.1.0"))
	waitFor(t, "hub 0 failing the second event", func() bool { ep.mu.Lock(); defer ep.mu.Unlock(); return ep.tries >= 3 })
	crash(hubs[0], two.stops[0])
	want = append(want, appendEv(t, op, metav1.Kind_KIND_NOTE, "a.example.com", ""))
	ep.mu.Lock()
	ep.script = nil
	ep.mu.Unlock()
	waitFor(t, "hub 1 to deliver the rest", func() bool { return len(ep.got()) >= 3 })
	time.Sleep(500 * time.Millisecond) // long enough for a repeat to show
	if got := ep.got(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v once each", got, want)
	}
	if len(logs.with("hub 1: webhooks: this hub delivers them now")) != 1 {
		t.Errorf("hub 1 did not say it took over")
	}
}

// A hub on an external NATS server rides out the server's restart: it
// publishes what comes after (its publishing connection once gave up at
// the first loss, for good, which on a cluster meant a hub whose server
// was lost never published again).
func TestHubRidesOutNATSRestart(t *testing.T) {
	srv := notifytest.NewOutage(t)
	srv.Start()
	s := newLog(t)
	_, stop := runHub(t, Config{Store: s, NATSURL: srv.URL(), HTTPListen: "127.0.0.1:0", Poll: 100 * time.Millisecond})
	defer stop()
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	waitFor(t, "the first event on the stream", func() bool { return streamMsgs(t, srv.URL()) == 1 })
	srv.Stop()
	srv.Start()
	appendEv(t, s, metav1.Kind_KIND_NOTE, "a.example.com", "")
	waitFor(t, "the second event on the stream", func() bool { return streamMsgs(t, srv.URL()) == 2 })
}
