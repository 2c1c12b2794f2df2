package hub

// The hub on a real Docker Engine in Swarm mode (swarm/swarmtest): each
// test deploys stacks of its own, and the hub, told of the Engine by
// meta.yaml, must record what Swarm does with each within seconds, and
// publish it.

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/swarm/swarmtest"
)

// engineHub is a hub watching a real Engine, with what it published.
type engineHub struct {
	t    *testing.T
	s    *store.Store
	h    *Hub
	logs *logLines
	mu   sync.Mutex
	got  map[string]time.Time // event id -> when a follower got it
}

// startEngineHub runs a hub on a new log whose meta.yaml names dockerHost
// as server s1's docker_host (env prod), and follows its NATS as a
// follower does.
func startEngineHub(t *testing.T, dockerHost string, window time.Duration) *engineHub {
	t.Helper()
	return startEngineHubWith(t, dockerHost, 2*time.Second, window)
}

// startEngineHubWith is startEngineHub with the hub's observe interval.
func startEngineHubWith(t *testing.T, dockerHost string, interval, window time.Duration) *engineHub {
	t.Helper()
	s := newLog(t)
	cfg, err := os.ReadFile(filepath.Join(s.Root(), "meta.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), "version: 1\n", "version: 3\n", 1)
	text = strings.Replace(text, "version: 2\n", "version: 3\n", 1)
	text += fmt.Sprintf("servers:\n  s1: {env: prod, docker_host: '%s'}\n", dockerHost)
	if err := os.WriteFile(filepath.Join(s.Root(), "meta.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", s.Root(), "commit", "-qam", "s1's Engine").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if s, err = store.Open(s.Root()); err != nil {
		t.Fatal(err)
	}
	if len(s.Config().Engines()) != 1 {
		t.Fatalf("meta.yaml names no Engine:\n%s", text)
	}
	e := &engineHub{t: t, s: s, logs: &logLines{}, got: map[string]time.Time{}}
	e.h, err = New(context.Background(), Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour,
		Engines: s.Config().Engines(), Actor: alice, ObserveInterval: interval, ObserveWindow: window, Logf: e.logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := connectAs(t, e.h, e.h.FollowerSeed())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("meta.events.>", func(m *nats.Msg) {
		e.mu.Lock()
		e.got[m.Header.Get("ce-id")] = time.Now()
		e.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	})
	return e
}

// app is a new app of the log's, deployed at version as far as the log
// says, and its stack's name.
func (e *engineHub) app(t *testing.T, version string) (domain, stack string) {
	domain = strings.ReplaceAll(swarmtest.StackName(t), "_", "-") + ".example"
	appendEv(t, e.s, metav1.Kind_KIND_DEPLOY, domain, version)
	return domain, abra.StackName(domain, nil)
}

// published is an observation of domain, as the log holds it.
type published struct {
	id  string
	obs *metav1.Observation
	at  time.Time // when a follower got it
}

// observed are domain's observations that followers got, oldest first.
func (e *engineHub) observed(t *testing.T, domain string) []published {
	t.Helper()
	events, err := e.s.Log(domain, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []published
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		if o := ev.GetObservation(); o != nil {
			if at, ok := e.got[ev.GetId()]; ok {
				out = append(out, published{ev.GetId(), o, at})
			}
		}
	}
	return out
}

// waitObserved waits up to within for a published observation of domain
// that ok accepts, and returns it.
func (e *engineHub) waitObserved(t *testing.T, domain string, within time.Duration, what string, ok func(*metav1.Observation) bool) published {
	t.Helper()
	var found published
	swarmtest.Eventually(t, within, func() (bool, string) {
		all := e.observed(t, domain)
		for i := len(all) - 1; i >= 0; i-- {
			if ok(all[i].obs) {
				found = all[i]
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s; observations %v", what, all)
	})
	return found
}

func appService(o *metav1.Observation) *metav1.ServiceStatus {
	for _, s := range o.GetServices() {
		if strings.HasSuffix(s.GetName(), "_app") {
			return s
		}
	}
	return nil
}

func runs(o *metav1.Observation, version string, running, desired uint32) bool {
	a := appService(o)
	return !o.GetMissing() && o.GetVersion() == version && a != nil && a.GetRunning() == running && a.GetDesired() == desired && o.GetServer() == "s1" && o.GetSource() == "serve"
}

const healthyUpdate = "parallelism: 1\nmonitor: 5s\nfailure_action: rollback\norder: start-first"

func TestHubOnARealEngine(t *testing.T) {
	sw := swarmtest.Engine(t)
	image := sw.Image(t)
	e := startEngineHub(t, sw.Host.DockerHost, 15*time.Second)
	const soon = 20 * time.Second

	t.Run("healthy deploy", func(t *testing.T) {
		t.Parallel()
		domain, stack := e.app(t, "1.0.0")
		sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0", Healthcheck: true, Others: []string{"db"}}.Compose(stack, image))
		got := e.waitObserved(t, domain, soon, "1.0.0 running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 1, 1) })
		if len(got.obs.GetServices()) != 2 || got.obs.GetServices()[1].GetName() != stack+"_db" || got.obs.GetServices()[1].GetRunning() != 1 {
			t.Fatalf("services %v; want app and db, running", got.obs.GetServices())
		}
	})

	t.Run("upgrade rolled back by Swarm", func(t *testing.T) {
		t.Parallel()
		domain, stack := e.app(t, "1.0.0")
		app := swarmtest.App{Version: "1.0.0", Healthcheck: true, UpdateConfig: healthyUpdate}
		sw.Deploy(t, stack, app.Compose(stack, image))
		e.waitObserved(t, domain, soon, "1.0.0 running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 1, 1) })
		appendEv(t, e.s, metav1.Kind_KIND_UPGRADE, domain, "1.1.0")
		app.Version, app.Env = "1.1.0", map[string]string{"CRASH_AFTER": "2s"}
		sw.Deploy(t, stack, app.Compose(stack, image))
		got := e.waitObserved(t, domain, 60*time.Second, "rollback_completed", func(o *metav1.Observation) bool { return o.GetUpdateState() == "rollback_completed" })
		if got.obs.GetVersion() != "1.0.0" || appService(got.obs).GetUpdateState() != "rollback_completed" {
			t.Fatalf("recorded %v; want 1.0.0 back, rollback_completed", got.obs)
		}
		h, err := e.s.Head(domain)
		if err != nil {
			t.Fatal(err)
		}
		if h.Drift == "" {
			t.Errorf("head %s %s: no drift after Swarm rolled the upgrade back", h.State, h.Version)
		}
	})

	t.Run("failure_action pause", func(t *testing.T) {
		t.Parallel()
		domain, stack := e.app(t, "1.0.0")
		app := swarmtest.App{Version: "1.0.0", Healthcheck: true, UpdateConfig: "parallelism: 1\nmonitor: 5s\nfailure_action: pause\norder: start-first"}
		sw.Deploy(t, stack, app.Compose(stack, image))
		e.waitObserved(t, domain, soon, "1.0.0 running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 1, 1) })
		appendEv(t, e.s, metav1.Kind_KIND_UPGRADE, domain, "1.1.0")
		app.Version, app.Env = "1.1.0", map[string]string{"CRASH_AFTER": "2s"}
		sw.Deploy(t, stack, app.Compose(stack, image))
		got := e.waitObserved(t, domain, 60*time.Second, "paused", func(o *metav1.Observation) bool { return o.GetUpdateState() == "paused" })
		if got.obs.GetVersion() != "1.1.0" || appService(got.obs).GetUpdateState() != "paused" {
			t.Fatalf("recorded %v; want 1.1.0, paused", got.obs)
		}
	})

	t.Run("version label by hand", func(t *testing.T) {
		t.Parallel()
		domain, stack := e.app(t, "1.0.0")
		sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0"}.Compose(stack, image))
		e.waitObserved(t, domain, soon, "1.0.0 running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 1, 1) })
		changed := time.Now()
		sw.LabelAdd(t, stack+"_app", "coop-cloud."+stack+".version", "1.0.1-by-hand")
		got := e.waitObserved(t, domain, soon, "the label", func(o *metav1.Observation) bool { return runs(o, "1.0.1-by-hand", 1, 1) })
		t.Logf("a label changed by hand recorded and published %s later", got.at.Sub(changed).Round(time.Millisecond))
		h, err := e.s.Head(domain)
		if err != nil {
			t.Fatal(err)
		}
		if h.Drift != "unrecorded-version" {
			t.Errorf("drift %q, want unrecorded-version", h.Drift)
		}
	})

	t.Run("scale to 0", func(t *testing.T) {
		t.Parallel()
		domain, stack := e.app(t, "1.0.0")
		sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0"}.Compose(stack, image))
		e.waitObserved(t, domain, soon, "1.0.0 running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 1, 1) })
		sw.Scale(t, stack+"_app", 0)
		e.waitObserved(t, domain, soon, "none running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 0, 0) })
	})

	t.Run("crash loop after a healthy deploy", func(t *testing.T) {
		t.Parallel()
		domain, stack := e.app(t, "1.0.0")
		// The task crashes after its update monitor passed: Swarm completes
		// the update, then restarts the task every few seconds.
		sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0", Env: map[string]string{"CRASH_AFTER": "4s"}, UpdateConfig: "monitor: 1s"}.Compose(stack, image))
		got := e.waitObserved(t, domain, 40*time.Second, "the crash", func(o *metav1.Observation) bool {
			a := appService(o)
			return a != nil && a.GetRunning() == 0 && a.GetLastError() != ""
		})
		before := len(e.observed(t, domain))
		time.Sleep(20 * time.Second) // two more crashes at least
		if after := len(e.observed(t, domain)); after > before+1 {
			t.Errorf("%d observations in 20 s of a crash loop after the first crash (%q); want at most 1", after-before, appService(got.obs).GetLastError())
		}
	})

	t.Run("removed stack", func(t *testing.T) {
		t.Parallel()
		domain, stack := e.app(t, "1.0.0")
		sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0"}.Compose(stack, image))
		e.waitObserved(t, domain, soon, "1.0.0 running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 1, 1) })
		sw.Remove(t, stack)
		got := e.waitObserved(t, domain, soon, "missing", func(o *metav1.Observation) bool { return o.GetMissing() })
		if len(got.obs.GetServices()) != 0 || got.obs.GetServer() != "s1" {
			t.Fatalf("recorded %v; want the stack missing on s1", got.obs)
		}
	})
}

// proxy stands between the hub and the Engine's unix socket, so that a
// test can cut the hub off and let it back.
type proxy struct {
	path, to string
	l        net.Listener
	mu       sync.Mutex
	down     bool
	conns    map[net.Conn]bool
}

func newProxy(t *testing.T, to string) *proxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "hubproxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &proxy{path: filepath.Join(dir, "docker.sock"), to: to, conns: map[net.Conn]bool{}}
	if p.l, err = net.Listen("unix", p.path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.l.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("unix", p.to)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

// cut closes every connection and refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// The hub loses the Engine, says so once, and when it is back catches up
// on what changed meanwhile.
func TestHubLosesARealEngineAndCatchesUp(t *testing.T) {
	sw := swarmtest.Engine(t)
	sock, ok := strings.CutPrefix(sw.Host.DockerHost, "unix://")
	if !ok {
		t.Skipf("the proxy stands before unix:// Engines, not %s", sw.Host.DockerHost)
	}
	image := sw.Image(t)
	p := newProxy(t, sock)
	e := startEngineHub(t, "unix://"+p.path, 15*time.Second)
	domain, stack := e.app(t, "1.0.0")
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0"}.Compose(stack, image))
	e.waitObserved(t, domain, 20*time.Second, "1.0.0 running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 1, 1) })

	p.cut()
	swarmtest.Eventually(t, 10*time.Second, func() (bool, string) {
		return len(e.logs.with("lost the Docker Engine of server s1")) == 1, fmt.Sprintf("%q", e.logs.with(""))
	})
	sw.LabelAdd(t, stack+"_app", "coop-cloud."+stack+".version", "1.0.1-while-cut")
	time.Sleep(3 * time.Second) // a few dials refused
	p.restore()
	e.waitObserved(t, domain, 40*time.Second, "the change made while cut", func(o *metav1.Observation) bool { return runs(o, "1.0.1-while-cut", 1, 1) })
	if lost, back := e.logs.with("lost the Docker Engine"), e.logs.with("is back"); len(lost) != 1 || len(back) != 1 {
		t.Fatalf("said %q and %q; want one line each", lost, back)
	}
	if st := e.h.Stats(); st.Lost != 1 || st.Regained != 1 {
		t.Fatalf("stats %+v; want lost 1, back 1", st)
	}
}

// TestRollbackLatency measures, on the real Engine, the time from Swarm's
// rollback_completed (as the test sees it, polling the Engine every 50
// ms) to the hub's observation of it reaching a NATS follower, over
// $META_BENCH_ROLLBACKS rollbacks (bench/observe.sh; skipped without),
// four at a time, with the hub's default interval and window.
func TestRollbackLatency(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("META_BENCH_ROLLBACKS"))
	if n <= 0 {
		t.Skip("set META_BENCH_ROLLBACKS (bench/observe.sh) to measure")
	}
	sw := swarmtest.Engine(t)
	image := sw.Image(t)
	e := startEngineHubWith(t, sw.Host.DockerHost, DefaultObserveInterval, DefaultObserveWindow)
	eng := sw.Dial(t)
	var mu sync.Mutex
	var took []time.Duration
	work := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				t.Run(fmt.Sprintf("rollback %d", i), func(t *testing.T) {
					domain, stack := e.app(t, "1.0.0")
					app := swarmtest.App{Version: "1.0.0", Healthcheck: true, UpdateConfig: healthyUpdate}
					sw.Deploy(t, stack, app.Compose(stack, image))
					e.waitObserved(t, domain, 30*time.Second, "1.0.0 running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 1, 1) })
					appendEv(t, e.s, metav1.Kind_KIND_UPGRADE, domain, "1.1.0")
					app.Version, app.Env = "1.1.0", map[string]string{"CRASH_AFTER": "2s"}
					sw.Deploy(t, stack, app.Compose(stack, image))
					var completed time.Time
					swarmtest.Eventually(t, 90*time.Second, func() (bool, string) {
						for {
							st, err := eng.Look(context.Background(), stack)
							if err != nil {
								return false, err.Error()
							}
							if a := st.App(); a != nil && a.UpdateState == "rollback_completed" {
								completed = time.Now()
								return true, ""
							}
							time.Sleep(50 * time.Millisecond)
							if time.Since(st.At) > 5*time.Second {
								return false, "no rollback_completed yet"
							}
						}
					})
					got := e.waitObserved(t, domain, 60*time.Second, "rollback_completed", func(o *metav1.Observation) bool { return o.GetUpdateState() == "rollback_completed" })
					mu.Lock()
					took = append(took, got.at.Sub(completed))
					mu.Unlock()
					t.Logf("rollback_completed to NATS: %s", got.at.Sub(completed).Round(time.Millisecond))
				})
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	slices.Sort(took)
	if len(took) == 0 {
		t.Fatal("no rollback measured")
	}
	pct := func(p float64) time.Duration { return took[min(len(took)-1, int(p*float64(len(took))))] }
	t.Logf("RESULT rollback_completed to committed and on NATS over %d rollbacks: p50 %s, p99 %s, min %s, max %s",
		len(took), pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}

// abra deploys, and only then does the log hear of the new app: the
// hub, looking at every stack only once an hour here, observes it as
// soon as the deploy reaches its clone, not at the next full look.
func TestHubObservesANewAppOnARealEngineWhenItsDeployArrives(t *testing.T) {
	sw := swarmtest.Engine(t)
	image := sw.Image(t)
	e := startEngineHubWith(t, sw.Host.DockerHost, time.Hour, 15*time.Second)
	domain := strings.ReplaceAll(swarmtest.StackName(t), "_", "-") + ".example"
	stack := abra.StackName(domain, nil)
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0"}.Compose(stack, image))
	eng := sw.Dial(t)
	swarmtest.Eventually(t, 60*time.Second, func() (bool, string) {
		st, err := eng.Look(context.Background(), stack)
		if err != nil {
			return false, err.Error()
		}
		if a := st.App(); a == nil || a.Running != 1 {
			return false, "the app's task not running yet"
		}
		return true, ""
	})
	time.Sleep(time.Second) // the stack's events have reached the hub, and been set aside
	recorded := time.Now()
	appendEv(t, e.s, metav1.Kind_KIND_DEPLOY, domain, "1.0.0")
	e.h.Wake() // as meta append's nudge does
	got := e.waitObserved(t, domain, 10*time.Second, "1.0.0 running", func(o *metav1.Observation) bool { return runs(o, "1.0.0", 1, 1) })
	t.Logf("a new app observed and published %s after its deploy was recorded", got.at.Sub(recorded).Round(time.Millisecond))
}
