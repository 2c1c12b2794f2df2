package hub

// The hub looks at an app's stack as soon as the app's events reach its
// clone: a brand-new app whose stack the Engine named before its deploy
// was in the log, and a deploy recorded as pending that Swarm has already
// finished. The observe interval is an hour in these tests: only the
// events' own path can make them pass.

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

// sharedHub is a hub on one clone of a log on a bare remote, observing
// server s1 (env prod) through fake, with another clone, an operator's,
// that appends and pushes; the hub polls once an hour and looks at every
// stack once an hour, so only nudges and the Engine's events make it act.
type sharedHub struct {
	h     *Hub
	s     *store.Store // the hub's clone
	other *store.Store // the operator's
	fake  *fakeSwarm
	logs  *logLines
}

func startSharedHub(t *testing.T, fake *fakeSwarm, setup func(other *store.Store)) *sharedHub {
	t.Helper()
	remote := filepath.Join(t.TempDir(), "log.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", remote).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	join := func() *store.Store {
		s, err := store.Join(context.Background(), filepath.Join(t.TempDir(), "clone"), store.JoinOptions{URL: remote,
			InitOptions: store.InitOptions{Project: "coop", Env: "prod", Operator: store.Signature{Name: "Alice", When: time.Now()}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	sh := &sharedHub{other: join(), fake: fake, logs: &logLines{}}
	if setup != nil {
		setup(sh.other)
	}
	sh.s = join()
	var err error
	sh.h, err = New(context.Background(), Config{Store: sh.s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour,
		Engines: []config.Engine{engine("s1", "prod")}, Actor: alice, ObserveInterval: time.Hour, ObserveWindow: 400 * time.Millisecond, Logf: sh.logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	sh.h.dial = fake.dial
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	})
	waitFor(t, "the hub to reach the Engine", func() bool { return sh.h.observer.health().EnginesReachable == 1 })
	return sh
}

// push appends ev in the operator's clone, checks it reached the remote,
// and nudges the hub as meta append does.
func (sh *sharedHub) push(t *testing.T, ev *metav1.Event) string {
	t.Helper()
	out, err := sh.other.Append(context.Background(), ev, alice, time.Now(), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Pushed {
		t.Fatalf("the append was not pushed: %v", out.Warnings)
	}
	sh.nudge(t)
	return out.Event.GetId()
}

func (sh *sharedHub) nudge(t *testing.T) {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(sh.h.FollowerSeed())
	if err != nil {
		t.Fatal(err)
	}
	if err := notify.Nudge(context.Background(), notify.Options{URL: sh.h.NATSURL(), ConnectTimeout: 5 * time.Second, NATSOptions: []nats.Option{opt}}); err != nil {
		t.Fatal(err)
	}
}

// prompt is how soon after its deploy reaches the remote a new app's
// stack must be observed: a sync, a look and a commit, well under the
// hour the interval is.
const prompt = 3 * time.Second

// The Engine names a new stack before its app is in the log (abra
// deploys, then meta exec records it): the hub remembers the stack, and
// once the deploy comes through a sync it observes the app at once.
func TestHubObservesANewAppWhenItsDeployArrives(t *testing.T) {
	fake := newFakeSwarm("ssh://root@s1.example.org")
	sh := startSharedHub(t, fake, nil)
	fake.set(appStack(t, "b.example.com", "1.0.0")) // the stream names b_example_com
	waitFor(t, "the hub to hear of the stack", func() bool { return sh.h.observer.knowsStranger("b_example_com") })
	if _, err := sh.s.Head("b.example.com"); err == nil {
		t.Fatal("the hub's clone has b before its deploy was pushed")
	}

	started := time.Now()
	sh.push(t, &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1.0.0", Address: &metav1.Address{App: "b.example.com"}})
	waitFor(t, "b's observation", func() bool {
		h, err := sh.s.Head("b.example.com") // none until the sync
		return err == nil && h.Observed != nil
	})
	took := time.Since(started)
	t.Logf("a new app observed %s after its deploy was pushed", took.Round(time.Millisecond))
	if took > prompt {
		t.Errorf("the new app was observed %s after its deploy was pushed, want within %s", took, prompt)
	}
	if o := observations(t, sh.s, "b.example.com")[0]; o.GetVersion() != "1.0.0" || o.GetServer() != "s1" || o.GetMissing() {
		t.Fatalf("recorded %v; want 1.0.0 on s1", o)
	}
	if sh.h.observer.knowsStranger("b_example_com") {
		t.Error("the stack is still remembered as no app's once its app appeared")
	}

	// The hub's own observation comes back through its publishing: it is
	// not looked at again, and nothing more is recorded.
	looks := fake.lookCount()
	settle(300 * time.Millisecond)
	if n := len(observations(t, sh.s, "b.example.com")); n != 1 {
		t.Fatalf("%d observations; want 1", n)
	}
	if extra := fake.lookCount() - looks; extra != 0 {
		t.Errorf("%d looks at the Engine after the observation was committed; want none", extra)
	}
}

// A note or a lock of an app is news of the log, not of Swarm, but the
// app is looked at anyway (one look): what runs is recorded only when it
// changed, so a look that finds nothing new writes nothing.
func TestHubLooksOnceAtAnAppPerSync(t *testing.T) {
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(appStack(t, "a.example.com", "1.0.0"))
	sh := startSharedHub(t, fake, func(other *store.Store) {
		appendEv(t, other, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	})
	waitFor(t, "the catch-up's observation", func() bool { return len(observations(t, sh.s, "a.example.com")) == 1 })
	settle(300 * time.Millisecond)
	looks := fake.lookCount()
	// Three notes in one sync: one look. They are appended offline and
	// pushed together, so that the hub's own poll cannot take them in
	// two syncs.
	for range 3 {
		if _, err := sh.other.Append(context.Background(), &metav1.Event{Kind: metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Message: "hello", Address: &metav1.Address{App: "a.example.com"}}, alice, time.Now(), store.AppendOptions{Offline: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sh.other.Sync(context.Background(), store.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	sh.nudge(t)
	waitFor(t, "the hub to publish the notes", func() bool { return len(streamIDs(t, sh.h)) == 5 })
	settle(300 * time.Millisecond)
	// One look for the sync, not one per event: three would be per event.
	// A look the observer has due anyway (smoothing's recheck, on a busy
	// machine) may land in the same window, so up to two.
	if got := fake.lookCount() - looks; got < 1 || got > 2 {
		t.Errorf("%d looks at the Engine for one sync of three events of one app; want 1 (2 with a recheck due anyway)", got)
	}
	if n := len(observations(t, sh.s, "a.example.com")); n != 1 {
		t.Errorf("%d observations; want still 1 (nothing changed)", n)
	}
}

// meta exec was interrupted after abra deployed: it records the upgrade
// as pending, and pushes. Swarm has finished it already, and says nothing
// more; the hub settles it as soon as it syncs.
func TestHubSettlesAPendingDeployWhenItArrives(t *testing.T) {
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(appStack(t, "a.example.com", "1.0.0"))
	sh := startSharedHub(t, fake, func(other *store.Store) {
		appendEv(t, other, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	})
	waitFor(t, "the catch-up's observation", func() bool { return len(observations(t, sh.s, "a.example.com")) == 1 })
	// abra upgrades; Swarm completes the update; the hub records what runs.
	fake.set(appStack(t, "a.example.com", "1.1.0"))
	waitFor(t, "1.1.0 observed", func() bool { return len(observations(t, sh.s, "a.example.com")) == 2 })
	settle(300 * time.Millisecond)

	started := time.Now()
	pending := sh.push(t, &metav1.Event{Kind: metav1.Kind_KIND_UPGRADE, Outcome: metav1.Outcome_OUTCOME_PENDING, Version: "1.1.0", Address: &metav1.Address{App: "a.example.com"}})
	waitFor(t, "the settling observation", func() bool { return len(observations(t, sh.s, "a.example.com")) == 3 })
	took := time.Since(started)
	t.Logf("a pending deploy settled %s after it was pushed", took.Round(time.Millisecond))
	if took > prompt {
		t.Errorf("the pending deploy was settled %s after it was pushed, want within %s", took, prompt)
	}
	o := observations(t, sh.s, "a.example.com")[2]
	if o.GetSettles() != pending || o.GetSettledOutcome() != metav1.Outcome_OUTCOME_SUCCEEDED {
		t.Fatalf("recorded %v; want it to settle %s as succeeded", o, pending)
	}
	h, err := sh.s.Head("a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if h.Pending != nil || h.Version != "1.1.0" {
		t.Fatalf("head %s %s, pending %v; want 1.1.0 and nothing pending", h.State, h.Version, h.Pending)
	}
}

// What the observer remembers of stacks that are no app's is bounded: a
// stack named longer than the window ago is forgotten, and never more
// than maxStrangers are kept, however many the Engine names.
func TestObserverForgetsStrangers(t *testing.T) {
	o := newObserver(Config{Store: newLog(t), Actor: alice, Engines: []config.Engine{engine("s1", "prod")}, ObserveInterval: time.Hour, ObserveWindow: time.Second}, nil, func() {})
	w := o.watches[0]
	now := time.Now()
	for i := range maxStrangers + 10 {
		o.remember(w, stackName(i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(w.strangers); n != maxStrangers {
		t.Fatalf("%d strangers kept, want %d", n, maxStrangers)
	}
	if _, ok := w.strangers[stackName(0)]; ok {
		t.Error("the oldest stranger was kept over the cap")
	}
	if _, ok := w.strangers[stackName(maxStrangers+9)]; !ok {
		t.Error("the newest stranger was dropped")
	}
	o.forget(w, now.Add(time.Second+time.Duration(maxStrangers)*time.Millisecond))
	if n := len(w.strangers); n != 10 {
		t.Fatalf("%d strangers after the window, want the 10 named within it", n)
	}
}

func stackName(i int) string { return fmt.Sprintf("stack_%d", i) }

// knowsStranger says the observer remembers stack as no app's.
func (o *observer) knowsStranger(stack string) bool {
	for _, w := range o.watches {
		w.mu.Lock()
		_, ok := w.strangers[stack]
		w.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// A stack the Engine named while it was no app's is looked at once its
// app appears in the log, on whatever news of the env wakes the watch
// (here another app's note): the stack's own events are long gone.
func TestObserverLooksAtAStrangerOnceItIsAnApp(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(appStack(t, "a.example.com", "1.0.0"))
	o, _, _ := startObserverEvery(t, time.Hour, s, map[string]*fakeSwarm{"s1": fake}, engine("s1", "prod"))
	waitFor(t, "a's observation", func() bool { return len(observations(t, s, "a.example.com")) == 1 })
	fake.set(appStack(t, "b.example.com", "2.0.0"))
	waitFor(t, "the observer to hear of b's stack", func() bool { return o.knowsStranger("b_example_com") })
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "b.example.com", "2.0.0") // not told
	note := appendEv(t, s, metav1.Kind_KIND_NOTE, "a.example.com", "")
	ev, err := s.Event(note)
	if err != nil {
		t.Fatal(err)
	}
	o.newEvents([]*metav1.Event{ev})
	waitFor(t, "b's observation", func() bool { return len(observations(t, s, "b.example.com")) == 1 })
	if o.knowsStranger("b_example_com") {
		t.Error("b's stack is still remembered as no app's")
	}
}
