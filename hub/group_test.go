package hub

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// seedOptions are NATS options connecting to h with the seed file.
func seedOptions(t testing.TB, h *Hub, seed string) notify.Options {
	t.Helper()
	o := notify.Options{URL: h.NATSURL(), ConnectTimeout: time.Second}
	if seed != "" {
		opt, err := nats.NkeyOptionFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		o.NATSOptions = append(o.NATSOptions, opt)
	}
	return o
}

// operator is writer i of a burst.
func operator(i int) *metav1.Actor {
	return &metav1.Actor{Name: fmt.Sprintf("op%02d", i), Email: fmt.Sprintf("op%02d@example.com", i)}
}

// burst appends n events at once through hub.Append, writer i as
// operator(i) in clone i%len(clones), opened on its own as each `meta
// append` process does, and returns what each got.
func burst(t testing.TB, n int, clones []*store.Store, o notify.Options, start func(i int)) []*Handed {
	t.Helper()
	out := make([]*Handed, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if start != nil {
				start(i)
			}
			ev := &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
				Version: fmt.Sprintf("1.0.%d", i), Address: &metav1.Address{App: fmt.Sprintf("app%d.example.com", i%4)}}
			s, err := store.Open(clones[i%len(clones)].Root())
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			out[i], errs[i] = Append(context.Background(), s, o, ev, operator(i), time.Now(), store.AppendOptions{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	return out
}

// checkOnce checks that the remote's history holds each event of out
// exactly once, each in a commit of its own authored by its operator, with
// the message meta's own appends write.
func checkOnce(t *testing.T, remote string, out []*Handed) {
	t.Helper()
	files := strings.Fields(gitOut(t, remote, "ls-tree", "-r", "--name-only", "main", "projects"))
	commits := map[string]string{} // record path -> "author\tsubject" of the commit that added it
	for _, line := range strings.Split(gitOut(t, remote, "log", "--format=>%an <%ae>%x09%s", "--name-only", "--diff-filter=A", "main", "--", "projects"), "\n") {
		if strings.HasPrefix(line, ">") {
			commits[""] = line[1:]
			continue
		}
		if line = strings.TrimSpace(line); strings.HasSuffix(line, ".pb") {
			if _, twice := commits[line]; twice {
				t.Errorf("%s added twice", line)
			}
			commits[line] = commits[""]
		}
	}
	records := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".pb") {
			records++
		}
	}
	if records != len(out) {
		t.Errorf("the remote holds %d records, want %d", records, len(out))
	}
	perCommit := map[string]int{}
	for i, h := range out {
		p := h.Path
		who, ok := commits[p]
		if !ok {
			t.Errorf("writer %d: %s (%s) is not in the remote's history", i, h.Event.GetId(), p)
			continue
		}
		a := operator(i)
		if want := fmt.Sprintf("%s <%s>\tdeploy app%d.example.com 1.0.%d by %s", a.Name, a.Email, i%4, i, a.Name); who != want {
			t.Errorf("writer %d: commit %q, want %q", i, who, want)
		}
		perCommit[who]++
	}
	for who, n := range perCommit {
		if n != 1 {
			t.Errorf("%d records in the commit %q", n, who)
		}
	}
}

// 32 operators appending at once through one hub: each event reaches the
// remote once, in its own commit by its operator, in fewer pushes than
// events.
func TestGroupCommit(t *testing.T) {
	l := newRemoteLog(t)
	op := l.clone(t)
	h, stop := runHub(t, Config{Store: l.clone(t), NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	out := burst(t, 32, []*store.Store{op}, seedOptions(t, h, h.AppenderSeed()), nil)
	for i, r := range out {
		if !r.ViaHub {
			t.Errorf("writer %d appended directly: %v", i, r.HubErr)
		}
	}
	checkOnce(t, l.remote, out)
	if n := h.grouped.Load(); n != 32 {
		t.Errorf("the hub grouped %d appends, want 32", n)
	}
	// What the hub committed it publishes, as any event.
	waitFor(t, "the 32 events on the stream", func() bool { return len(streamIDs(t, h)) == 32 })
}

// A hub closed in the middle of a burst: the appends waiting for it fall
// back to the direct path, and every event lands exactly once, also after
// the hub's clone pushes what it had committed but not pushed.
func TestGroupCommitHubGoesAway(t *testing.T) {
	l := newRemoteLog(t)
	ops := []*store.Store{l.clone(t), l.clone(t)}
	hubClone := l.clone(t)
	h, stop := runHub(t, Config{Store: hubClone, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	o := seedOptions(t, h, h.AppenderSeed())
	// The second half of the writers starts as the hub records the first
	// appends, and the hub goes while they wait for it.
	second := make(chan struct{})
	go func() {
		waitFor(t, "the hub's first group", func() bool { return h.grouped.Load() > 0 })
		close(second)
		time.Sleep(10 * time.Millisecond)
		stop()
	}()
	out := burst(t, 32, ops, o, func(i int) {
		if i >= 16 {
			<-second
		}
	})
	via := 0
	for _, r := range out {
		if r.ViaHub {
			via++
		}
	}
	t.Logf("%d of 32 recorded by the hub, %d appended directly after it went", via, 32-via)
	if via == 0 || via == 32 {
		t.Errorf("%d of 32 through the hub: want some through it, the rest on the direct path", via)
	}
	// The hub's clone pushes what it committed and could not push; the
	// events the direct path recorded meanwhile are not recorded again.
	if _, err := hubClone.Sync(context.Background(), store.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, l.remote, out)
}

// Only the appenders' credentials may hand an append over: a follower's,
// or none, are refused by NATS, and the append goes the direct path; a
// request that is not an append, or names no operator, is refused by the
// hub.
func TestGroupCommitRefusesForgedRequests(t *testing.T) {
	l := newRemoteLog(t)
	op := l.clone(t)
	h, stop := runHub(t, Config{Store: l.clone(t), NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	ev := func() *metav1.Event {
		return &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1.0.0", Address: &metav1.Address{App: "a.example.com"}}
	}
	for _, tt := range []struct{ name, seed string }{
		{"follower", h.FollowerSeed()},
		{"no credentials", ""},
		{"a stranger's key", filepath.Join(t.TempDir(), "stranger.nk")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "a stranger's key" {
				if _, err := loadSeed(tt.seed); err != nil {
					t.Fatal(err)
				}
			}
			o := seedOptions(t, h, tt.seed)
			_, err := notify.RequestAppend(context.Background(), o, record.Handover{Event: []byte{}, ID: "x"})
			if !errors.Is(err, notify.ErrHubAppend) {
				t.Fatalf("request: %v, want ErrHubAppend", err)
			}
			r, err := Append(context.Background(), op, o, ev(), alice, time.Now(), store.AppendOptions{})
			if err != nil || r.ViaHub || r.HubErr == nil {
				t.Fatalf("append: via hub %v, hub error %v, error %v: want the direct path", r != nil && r.ViaHub, r.HubErr, err)
			}
		})
	}
	o := seedOptions(t, h, h.AppenderSeed())
	for _, tt := range []struct {
		name string
		req  record.Handover
	}{
		{"not an event", record.Handover{Event: []byte("not protobuf \xff\xff"), ID: "01JAAAAAAAAAAAAAAAAAAAAAAA"}},
		{"no operator", record.Handover{ID: "01JAAAAAAAAAAAAAAAAAAAAAAA"}},
		{"no id", record.Handover{Actor: []byte{0x0a, 0x01, 'x'}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := notify.RequestAppend(ctx, o, tt.req)
			if !errors.Is(err, notify.ErrHubAppend) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%v, want the hub's refusal", err)
			}
		})
	}
}

// gather takes what is queued; after a group of many it waits a share of
// the last write for as many again, and a lone writer's append never
// waits: whether it waited shows in whether it took appends that arrive
// after it began.
func TestGatherWaitsForTheWritersOfTheLastGroup(t *testing.T) {
	for _, c := range []struct {
		name     string
		queued   int // before gather
		late     int // arriving after delay
		delay    time.Duration
		lastN    int
		lastTook time.Duration
		want     int // the late ones gathered say gather waited
	}{
		{name: "a lone writer", queued: 0, late: 1, delay: 20 * time.Millisecond, lastN: 1, lastTook: time.Second, want: 1},
		{name: "the first group", queued: 3, late: 5, delay: 20 * time.Millisecond, lastN: 0, lastTook: 0, want: 4},
		{name: "all queued already", queued: 31, late: 5, delay: 20 * time.Millisecond, lastN: 32, lastTook: time.Second, want: 32},
		{name: "the rest come late", queued: 0, late: 31, delay: time.Millisecond, lastN: 32, lastTook: time.Second, want: 32},
		{name: "fewer come than before", queued: 0, late: 3, delay: time.Millisecond, lastN: 32, lastTook: 100 * time.Millisecond, want: 4},
		{name: "never more than maxGroup", queued: maxGroup + 10, lastN: maxGroup + 10, lastTook: time.Second, want: maxGroup},
	} {
		t.Run(c.name, func(t *testing.T) {
			queue := make(chan *pendingAppend, maxGroup+64)
			for range c.queued {
				queue <- &pendingAppend{}
			}
			go func() {
				time.Sleep(c.delay)
				for range c.late {
					queue <- &pendingAppend{}
				}
			}()
			got := gather(queue, []*pendingAppend{{}}, c.lastN, c.lastTook)
			if len(got) != c.want {
				t.Errorf("gathered %d, want %d", len(got), c.want)
			}
		})
	}
}
