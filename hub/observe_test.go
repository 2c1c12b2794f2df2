package hub

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

// logLines collects what the observer says.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) with(part string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, part) {
			out = append(out, s)
		}
	}
	return out
}

// observations are the app's observations in the log, oldest first.
func observations(t *testing.T, s *store.Store, domain string) []*metav1.Observation {
	t.Helper()
	events, err := s.Log(domain, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []*metav1.Observation
	for i := len(events) - 1; i >= 0; i-- {
		if o := events[i].GetObservation(); o != nil {
			out = append(out, o)
		}
	}
	return out
}

func engine(server, env string) config.Engine {
	return config.Engine{Server: server, Project: "coop", Env: env, DockerHost: "ssh://root@" + server + ".example.org"}
}

// startObserver runs an observer of engines, each reached through the
// fake of its server, until the test ends.
func startObserver(t *testing.T, s *store.Store, fakes map[string]*fakeSwarm, engines ...config.Engine) (*observer, *logLines, *int) {
	t.Helper()
	return startObserverEvery(t, 150*time.Millisecond, s, fakes, engines...)
}

// startObserverEvery is startObserver looking at every stack every
// interval.
func startObserverEvery(t *testing.T, interval time.Duration, s *store.Store, fakes map[string]*fakeSwarm, engines ...config.Engine) (*observer, *logLines, *int) {
	t.Helper()
	logs := &logLines{}
	var mu sync.Mutex
	nudges := 0
	dial := func(ctx context.Context, h swarm.Host) (swarm.Engine, error) {
		for _, e := range engines {
			if e.DockerHost == h.DockerHost {
				return fakes[e.Server].dial(ctx, h)
			}
		}
		return nil, fmt.Errorf("no fake for %s", h.DockerHost)
	}
	o := newObserver(Config{Store: s, Actor: alice, Engines: engines, ObserveInterval: interval, ObserveWindow: 400 * time.Millisecond, Logf: logs.logf},
		dial, func() { mu.Lock(); nudges++; mu.Unlock() })
	o.backoff = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the observer did not stop within 5s of its context's end")
		}
	})
	return o, logs, &nudges
}

func settle(d time.Duration) { time.Sleep(d) }

// The hub catches up on start, records a change once, and records nothing
// while nothing changes, however often it looks.
func TestObserverRecordsEachChangeOnce(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(appStack(t, "a.example.com", "1.0.0"))
	o, _, nudges := startObserver(t, s, map[string]*fakeSwarm{"s1": fake}, engine("s1", "prod"))

	waitFor(t, "the catch-up's observation", func() bool { return len(observations(t, s, "a.example.com")) == 1 })
	got := observations(t, s, "a.example.com")[0]
	if got.GetVersion() != "1.0.0" || got.GetServer() != "s1" || got.GetSource() != "serve" || len(got.GetServices()) != 2 || got.GetMissing() ||
		got.GetServices()[0].GetName() != "a_example_com_app" || got.GetServices()[0].GetRunning() != 1 || got.GetServices()[0].GetDesired() != 1 {
		t.Fatalf("catch-up recorded %v", got)
	}
	// Looks every interval and on every event, and nothing new.
	for range 3 {
		fake.set(appStack(t, "a.example.com", "1.0.0"))
		settle(100 * time.Millisecond)
	}
	if n := len(observations(t, s, "a.example.com")); n != 1 {
		t.Fatalf("%d observations of an unchanged stack, want 1", n)
	}
	// A hand-made label change: one observation, at once.
	started := time.Now()
	fake.set(appStack(t, "a.example.com", "1.0.1"))
	waitFor(t, "the new version's observation", func() bool { return len(observations(t, s, "a.example.com")) == 2 })
	if took := time.Since(started); took > 2*time.Second {
		t.Errorf("the change took %s to be recorded", took)
	}
	settle(400 * time.Millisecond)
	all := observations(t, s, "a.example.com")
	if len(all) != 2 || all[1].GetVersion() != "1.0.1" {
		t.Fatalf("observations %v; want 1.0.0 then 1.0.1, once each", all)
	}
	if o.observations.Load() != 2 || *nudges != 2 {
		t.Fatalf("counted %d observations, nudged %d times; want 2 and 2", o.observations.Load(), *nudges)
	}
}

// Apps deployed after the hub started are watched too.
func TestObserverPicksUpNewApps(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(appStack(t, "a.example.com", "1.0.0"))
	startObserver(t, s, map[string]*fakeSwarm{"s1": fake}, engine("s1", "prod"))
	waitFor(t, "a's observation", func() bool { return len(observations(t, s, "a.example.com")) == 1 })
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "b.example.com", "2.0.0")
	fake.set(appStack(t, "b.example.com", "2.0.0"))
	waitFor(t, "b's observation", func() bool { return len(observations(t, s, "b.example.com")) == 1 })
}

// A lost Engine is said once, dialled again with growing waits, and
// caught up on when back: what changed meanwhile is recorded.
func TestObserverLosesTheEngineAndCatchesUp(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(appStack(t, "a.example.com", "1.0.0"))
	o, logs, _ := startObserver(t, s, map[string]*fakeSwarm{"s1": fake}, engine("s1", "prod"))
	waitFor(t, "the first observation", func() bool { return len(observations(t, s, "a.example.com")) == 1 })

	fake.cut()
	fake.mu.Lock()
	fake.stacks["a_example_com"] = appStack(t, "a.example.com", "1.1.0") // changed while cut: no event reaches the hub
	fake.mu.Unlock()
	waitFor(t, "five failed dials", func() bool { return len(fake.dialTimes()) >= 6 })
	lost := logs.with("lost the Docker Engine of server s1 at ssh://root@s1.example.org: ")
	if len(lost) != 1 || !strings.HasSuffix(lost[0], "; retrying") {
		t.Fatalf("said %q; want one line on the loss", lost)
	}
	dials := fake.dialTimes()[1:]
	for i := 2; i < len(dials); i++ {
		if gap, before := dials[i].Sub(dials[i-1]), dials[i-1].Sub(dials[i-2]); gap < before*5/4 {
			t.Errorf("dial %d came %s after the one before, which came %s after its own: want a backoff that doubles", i, gap, before)
		}
	}
	fake.restore()
	waitFor(t, "the catch-up after the Engine came back", func() bool { return len(observations(t, s, "a.example.com")) == 2 })
	if v := observations(t, s, "a.example.com")[1].GetVersion(); v != "1.1.0" {
		t.Fatalf("caught up on %s, want 1.1.0", v)
	}
	if back := logs.with("is back"); len(back) != 1 || back[0] != "the Docker Engine of server s1 at ssh://root@s1.example.org is back" {
		t.Fatalf("said %q; want one line when it is back", back)
	}
	if o.lost.Load() != 1 || o.regained.Load() != 1 {
		t.Fatalf("lost %d, regained %d; want 1 and 1", o.lost.Load(), o.regained.Load())
	}
}

// An Engine unreachable from the start is said once too, and watched
// once it answers.
func TestObserverStartsWithoutTheEngine(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.cut()
	fake.set(appStack(t, "a.example.com", "1.0.0"))
	_, logs, _ := startObserver(t, s, map[string]*fakeSwarm{"s1": fake}, engine("s1", "prod"))
	waitFor(t, "three dials", func() bool { return len(fake.dialTimes()) >= 3 })
	fake.restore()
	waitFor(t, "the observation", func() bool { return len(observations(t, s, "a.example.com")) == 1 })
	if n := len(logs.with("lost the Docker Engine")); n != 1 {
		t.Fatalf("%d lines on the loss, want 1", n)
	}
}

// The quiet rules: a missing stack is news only when the log says the app
// runs, or the last observation saw it running.
func TestObserverQuietRules(t *testing.T) {
	for _, tt := range []struct {
		name   string
		setup  func(t *testing.T, s *store.Store)
		record bool
	}{
		{"deployed and gone: down", func(t *testing.T, s *store.Store) {
			appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
		}, true},
		{"new, never deployed", func(t *testing.T, s *store.Store) {
			appendEv(t, s, metav1.Kind_KIND_NEW, "a.example.com", "1.0.0")
		}, false},
		{"undeployed, never observed", func(t *testing.T, s *store.Store) {
			appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
			appendEv(t, s, metav1.Kind_KIND_UNDEPLOY, "a.example.com", "")
		}, false},
		{"removed, last seen missing", func(t *testing.T, s *store.Store) {
			appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
			appendEv(t, s, metav1.Kind_KIND_REMOVE, "a.example.com", "")
			observe(t, s, "a.example.com", &metav1.Observation{Source: "serve", Missing: true})
		}, false},
		{"undeployed, last seen running", func(t *testing.T, s *store.Store) {
			appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
			observe(t, s, "a.example.com", appStack(t, "a.example.com", "1.0.0").Observation("serve"))
			appendEv(t, s, metav1.Kind_KIND_UNDEPLOY, "a.example.com", "")
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newLog(t)
			tt.setup(t, s)
			before := len(observations(t, s, "a.example.com"))
			fake := newFakeSwarm("ssh://root@s1.example.org")
			fake.set(appStack(t, "other.example.com", "1.0.0"))
			startObserver(t, s, map[string]*fakeSwarm{"s1": fake}, engine("s1", "prod"))
			if tt.record {
				waitFor(t, "the missing stack's observation", func() bool { return len(observations(t, s, "a.example.com")) == before+1 })
				if o := observations(t, s, "a.example.com")[before]; !o.GetMissing() || o.GetServer() != "s1" || len(o.GetServices()) != 0 {
					t.Fatalf("recorded %v, want the stack missing on s1", o)
				}
			}
			settle(500 * time.Millisecond) // three intervals
			want := before
			if tt.record {
				want++
			}
			if n := len(observations(t, s, "a.example.com")); n != want {
				t.Fatalf("%d observations, want %d", n, want)
			}
		})
	}
}

func observe(t *testing.T, s *store.Store, domain string, o *metav1.Observation) {
	t.Helper()
	if _, err := s.Observe(context.Background(), domain, o, alice, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Several servers of one env: an app is observed from the one that runs
// it, and missing only when every one was asked and none runs it.
func TestObserverSeveralEnginesOfOneEnv(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	s1, s2 := newFakeSwarm("ssh://root@s1.example.org"), newFakeSwarm("ssh://root@s2.example.org")
	s2.set(appStack(t, "a.example.com", "1.0.0"))
	startObserver(t, s, map[string]*fakeSwarm{"s1": s1, "s2": s2}, engine("s1", "prod"), engine("s2", "prod"))
	waitFor(t, "the observation from s2", func() bool { return len(observations(t, s, "a.example.com")) == 1 })
	settle(500 * time.Millisecond)
	if all := observations(t, s, "a.example.com"); len(all) != 1 || all[0].GetServer() != "s2" || all[0].GetMissing() {
		t.Fatalf("observations %v; want one, from s2, none missing from s1", all)
	}

	// s2 lost, and the stack gone from it meanwhile: unknown, not missing.
	s2.cut()
	s2.mu.Lock()
	delete(s2.stacks, "a_example_com")
	s2.mu.Unlock()
	settle(500 * time.Millisecond)
	if n := len(observations(t, s, "a.example.com")); n != 1 {
		t.Fatalf("%d observations while s2 was lost; want none new", n)
	}
	s2.restore()
	waitFor(t, "the stack missing everywhere", func() bool { return len(observations(t, s, "a.example.com")) == 2 })
	settle(500 * time.Millisecond)
	all := observations(t, s, "a.example.com")
	if len(all) != 2 || !all[1].GetMissing() || all[1].GetServer() != "" {
		t.Fatalf("observations %v; want the stack missing once, on no server", all)
	}
}

// A crash loop writes one observation, not one per crash.
func TestObserverCrashLoop(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(appStack(t, "a.example.com", "1.0.0"))
	startObserver(t, s, map[string]*fakeSwarm{"s1": fake}, engine("s1", "prod"))
	waitFor(t, "the healthy observation", func() bool { return len(observations(t, s, "a.example.com")) == 1 })
	// As Swarm restarts a crashing task: down for its restart delay (an
	// event, then a look, while it is down), then up for a moment.
	var down *swarm.Stack
	for range 6 {
		down = captured(t, "crash_loop", "a.example.com", "1.0.0")
		fake.set(down)
		settle(250 * time.Millisecond)
		up := captured(t, "crash_loop_up", "a.example.com", "1.0.0")
		up.Services[0].LastErrorAt = down.Services[0].LastErrorAt // the same crash
		fake.set(up)
		settle(100 * time.Millisecond)
	}
	fake.set(down)
	settle(300 * time.Millisecond)
	all := observations(t, s, "a.example.com")
	if len(all) != 2 {
		t.Fatalf("%d observations of a crash loop, want 2 (healthy, then down): %v", len(all), all)
	}
	if app := all[1].GetServices()[0]; app.GetRunning() != 0 || app.GetLastError() != "task: non-zero exit (1)" {
		t.Fatalf("recorded %v; want 0 running with the task's error", app)
	}
}

// Observations reach the log from New and Run, and the hub publishes
// them at once.
func TestHubObservesAndPublishes(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(appStack(t, "a.example.com", "1.0.0"))
	cfg := Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour,
		Engines: []config.Engine{engine("s1", "prod")}, Actor: alice, ObserveInterval: 100 * time.Millisecond}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.dial = fake.dial
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	waitFor(t, "the observation on NATS", func() bool { return len(streamIDs(t, h)) == 2 })
	started := time.Now()
	fake.set(captured(t, "crash_loop", "a.example.com", "1.0.0"))
	waitFor(t, "the drop on NATS", func() bool { return len(streamIDs(t, h)) == 3 })
	t.Logf("recorded and published in %s", time.Since(started))
	var health map[string]any
	if code := get(t, "http://"+h.HTTPAddr()+"/healthz", &health); code != 200 || health["ok"] != true || health["engines"] != 1.0 || health["engines_reachable"] != 1.0 || health["observations"] != 2.0 {
		t.Fatalf("healthz: %d %v", code, health)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.Observed != 2 || st.Engines != 1 || st.Published != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewRefusesEnginesWithoutActor(t *testing.T) {
	_, err := New(context.Background(), Config{Store: newLog(t), Engines: []config.Engine{engine("s1", "prod")}, HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("New observed Engines with nobody to record as")
	}
}

// A deploy left pending (meta exec interrupted) is settled by the first
// look that sees Swarm finish it, even when what runs looks as before.
func TestObserverSettlesAPendingDeploy(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	rolledBack := captured(t, "rollback_completed", "a.example.com", "1.0.0")
	observe(t, s, "a.example.com", rolledBack.Observation("serve"))
	out, err := s.Append(context.Background(), &metav1.Event{Kind: metav1.Kind_KIND_UPGRADE, Outcome: metav1.Outcome_OUTCOME_PENDING, Version: "1.1.0", Address: &metav1.Address{App: "a.example.com"}}, alice, time.Now(), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pending := out.Event.GetId()
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(rolledBack)
	startObserver(t, s, map[string]*fakeSwarm{"s1": fake}, engine("s1", "prod"))
	waitFor(t, "the settling observation", func() bool { return len(observations(t, s, "a.example.com")) == 2 })
	o := observations(t, s, "a.example.com")[1]
	if o.GetSettles() != pending || o.GetSettledOutcome() != metav1.Outcome_OUTCOME_ROLLED_BACK || o.GetServer() != "s1" {
		t.Fatalf("recorded %v; want it to settle %s as rolled back", o, pending)
	}
	h, err := s.Head("a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if h.Pending != nil || h.Version != "1.0.0" {
		t.Fatalf("head %s %s, pending %v; want 1.0.0 and nothing pending", h.State, h.Version, h.Pending)
	}
	settle(500 * time.Millisecond)
	if n := len(observations(t, s, "a.example.com")); n != 2 {
		t.Fatalf("%d observations; want the settlement once", n)
	}
}
