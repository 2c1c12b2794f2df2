package hub

// The hub's observer: one goroutine per Docker Engine that meta.yaml's
// servers: map names a docker_host for. Each catches up on every stack of
// its server's apps, then follows the Engine's event stream (and looks at
// everything again every interval), recording an observation whenever what
// runs changes. The store drops an observation the app's last one already
// says (SameAs); the observer checks that first itself, so a look that
// sees nothing new costs no pull, no lock and no commit.
//
// The hub tells the observer which apps got events in its clone
// (newEvents): a deploy comes to the log after abra made its stack, so
// the stack's events may have come and gone while it was no app's yet,
// and a deploy recorded as pending may have been finished by Swarm
// already. Each watch of such an app's env looks at its stack at once.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

// Defaults of the observer's Config fields.
const (
	DefaultObserveInterval = 10 * time.Second
	DefaultObserveWindow   = 30 * time.Second
)

// The observer's pace, not configurable: the first change the event
// stream reports is looked at at once, those within coalesce after it are
// one look when that time is up; a lost Engine is dialled
// again after backoffMin, doubling up to backoffMax; an observation the
// store refused is not tried again, unchanged, for retryFailed.
const (
	coalesce    = 200 * time.Millisecond
	backoffMin  = time.Second
	backoffMax  = 30 * time.Second
	retryFailed = time.Minute
	// maxLooks bounds the looks smoothing keeps per service, however
	// chatty the event stream.
	maxLooks = 256
	// maxStrangers bounds the stacks a watch remembers that are no app's
	// (watch.strangers), however many the Engine runs.
	maxStrangers = 256
)

// observer watches the Engines and records what they run.
type observer struct {
	store    *store.Store
	actor    *metav1.Actor
	interval time.Duration
	window   time.Duration
	dial     func(context.Context, swarm.Host) (swarm.Engine, error)
	logf     func(format string, args ...any)
	// recorded is called after an observation was committed: the hub
	// publishes it at once.
	recorded func()
	// backoff is the first reconnect's wait (backoffMin; less in tests).
	backoff time.Duration

	watches []*watch
	// envs are the watches of each project/env, first by server name: the
	// first speaks for a stack none of them runs.
	envs map[string][]*watch

	// writeMu makes the observer's appends one at a time.
	writeMu sync.Mutex
	// failed remembers, per app, the last observation the store refused.
	failedMu sync.Mutex
	failed   map[string]failedObservation

	observations, lost, regained atomic.Int64
}

type failedObservation struct {
	obs *metav1.Observation
	at  time.Time
	err string
}

// watch is one Engine and what the observer knows of it.
type watch struct {
	cfg config.Engine
	// mu guards eng and seen, which the watches of the same env read.
	mu  sync.Mutex
	eng swarm.Engine // nil while lost
	// seen are the stacks the last look found running there.
	seen map[string]bool
	// looks feed smoothing: per stack, per service, oldest first. Only
	// the watch's own goroutine touches them, and due.
	looks map[string]map[string][]look
	// due are stacks to look at again, and when (smooth's again).
	due map[string]time.Time
	// strangers are stacks the event stream named that were no app of
	// the log's, and when: looked at when such an app appears, forgotten
	// after the window (or beyond maxStrangers). Guarded by mu.
	strangers map[string]time.Time
	// news are the domains of apps that got events since the watch last
	// looked (newEvents), guarded by newsMu; told wakes the watch.
	newsMu sync.Mutex
	news   map[string]bool
	told   chan struct{}
}

func newObserver(cfg Config, dial func(context.Context, swarm.Host) (swarm.Engine, error), recorded func()) *observer {
	o := &observer{store: cfg.Store, actor: cfg.Actor, interval: cfg.ObserveInterval, window: cfg.ObserveWindow,
		dial: dial, logf: cfg.Logf, recorded: recorded, backoff: backoffMin,
		envs: map[string][]*watch{}, failed: map[string]failedObservation{}}
	for _, e := range cfg.Engines {
		w := &watch{cfg: e, seen: map[string]bool{}, looks: map[string]map[string][]look{}, due: map[string]time.Time{},
			strangers: map[string]time.Time{}, news: map[string]bool{}, told: make(chan struct{}, 1)}
		o.watches = append(o.watches, w)
		k := e.Project + "/" + e.Env
		o.envs[k] = append(o.envs[k], w)
	}
	return o
}

// run watches every Engine until ctx ends.
func (o *observer) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range o.watches {
		wg.Add(1)
		go func() { defer wg.Done(); o.keep(ctx, w) }()
	}
	wg.Wait()
}

// where names the Engine in messages.
func (w *watch) where() string {
	return fmt.Sprintf("the Docker Engine of server %s at %s", w.cfg.Server, w.cfg.DockerHost)
}

// keep stays connected to w's Engine: dial, catch up, follow; when the
// Engine is lost, say so once, and dial again with backoff until it is
// back.
func (o *observer) keep(ctx context.Context, w *watch) {
	wait, down := o.backoff, false
	for ctx.Err() == nil {
		eng, err := o.dial(ctx, swarm.Host{DockerHost: w.cfg.DockerHost, CertPath: w.cfg.DockerCertPath})
		if err == nil {
			err = o.follow(ctx, w, eng, func() {
				if down {
					o.regained.Add(1)
					o.logf("%s is back", w.where())
				}
				down, wait = false, o.backoff
			})
			w.set(nil)
			eng.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if !down {
			down = true
			o.lost.Add(1)
			o.logf("lost %s: %v; retrying", w.where(), err)
		}
		// Jitter: a wait between three quarters of the step and the step,
		// so that hubs that lost an Engine together do not all come back at
		// once.
		d := wait - time.Duration(rand.Int64N(int64(wait/4)+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		wait = min(2*wait, backoffMax)
	}
}

// set makes eng the watch's Engine (nil: lost).
func (w *watch) set(eng swarm.Engine) {
	w.mu.Lock()
	w.eng = eng
	w.mu.Unlock()
}

// follow catches up on every stack, calls up, and then looks at each stack
// the Engine's events say changed, and at everything every interval, until
// ctx ends or the Engine is lost.
func (o *observer) follow(ctx context.Context, w *watch, eng swarm.Engine, up func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The stream first, so that no change between the catch-up and it is
	// missed.
	changes, errs := eng.Changes(ctx)
	if err := o.lookAll(ctx, w, eng); err != nil {
		return err
	}
	w.set(eng)
	up()
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	changed := map[string]bool{}
	var burst <-chan time.Time
	// change looks at a stack that changed, or that the log has news of:
	// the first at once; those that follow within coalesce of it are one
	// look each after.
	change := func(name string) error {
		if burst != nil {
			changed[name] = true // looked at when the burst's time is up
			return nil
		}
		burst = time.After(coalesce)
		return o.lookStack(ctx, w, eng, name)
	}
	recheck := time.NewTimer(time.Hour)
	defer recheck.Stop()
	for {
		o.schedule(w, recheck)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			if err == nil {
				err = errors.New("the event stream ended")
			}
			return err
		case name, ok := <-changes:
			if !ok {
				changes = nil // errs says why
				continue
			}
			if err := change(name); err != nil {
				return err
			}
		case <-w.told:
			for _, name := range o.pickUp(w) {
				if err := change(name); err != nil {
					return err
				}
			}
		case <-burst:
			burst = nil
			if len(changed) > 0 {
				burst = time.After(coalesce)
			}
			for name := range changed {
				delete(changed, name)
				if err := o.lookStack(ctx, w, eng, name); err != nil {
					return err
				}
			}
		case <-recheck.C:
			now := time.Now()
			for name, at := range w.due {
				if !at.After(now) {
					delete(w.due, name)
					if err := o.lookStack(ctx, w, eng, name); err != nil {
						return err
					}
				}
			}
		case <-tick.C:
			if err := o.lookAll(ctx, w, eng); err != nil {
				return err
			}
		}
	}
}

// schedule sets t to fire when the first of w's due stacks is.
func (o *observer) schedule(w *watch, t *time.Timer) {
	var first time.Time
	for _, at := range w.due {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	t.Stop()
	if !first.IsZero() {
		t.Reset(max(time.Until(first), 0))
	}
}

// lookAll looks at every stack of w's apps, in one look at the Engine.
func (o *observer) lookAll(ctx context.Context, w *watch, eng swarm.Engine) error {
	// Every app is looked at below, those with news too: news that comes
	// from now on is the log's after this read of it.
	w.takeNews()
	stacks, err := eng.Stacks(ctx)
	if err != nil {
		return err
	}
	at := time.Now()
	w.mu.Lock()
	w.seen = map[string]bool{}
	for name, st := range stacks {
		if !st.Missing() {
			w.seen[name] = true
		}
	}
	w.mu.Unlock()
	apps, err := o.apps(w)
	if err != nil {
		o.logf("observe: %v", err)
		return nil // the log's trouble, not the Engine's
	}
	w.mu.Lock()
	for _, a := range apps {
		delete(w.strangers, a.stack)
	}
	w.mu.Unlock()
	o.forget(w, at)
	for _, a := range apps {
		st := stacks[a.stack]
		if st == nil {
			st = &swarm.Stack{Name: a.stack, At: at}
		}
		o.record(ctx, w, a.head, st)
	}
	return nil
}

// lookStack looks at one stack, if it is one of w's apps'.
func (o *observer) lookStack(ctx context.Context, w *watch, eng swarm.Engine, name string) error {
	apps, err := o.apps(w)
	if err != nil {
		o.logf("observe: %v", err)
		return nil
	}
	var heads []*fold.Head
	for _, a := range apps {
		if a.stack == name {
			heads = append(heads, a.head)
		}
	}
	if len(heads) == 0 {
		// Not an app of the log's, yet: its deploy is on its way to the
		// log, most likely.
		o.remember(w, name, time.Now())
		return nil
	}
	st, err := eng.Look(ctx, name)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.seen[name] = !st.Missing()
	w.mu.Unlock()
	for _, h := range heads {
		o.record(ctx, w, h, st)
	}
	return nil
}

// app is an app of the log's that an Engine may run, and its stack.
type app struct {
	head  *fold.Head
	stack string
}

// apps are the apps the log places on w's project and env, read again at
// every look so that apps new to the log are watched too: the one answer
// to which stacks a watch looks at.
func (o *observer) apps(w *watch) ([]app, error) {
	heads, err := o.store.List()
	if err != nil {
		return nil, err
	}
	var out []app
	for _, h := range heads {
		if w.holds(h.Project, h.Env) {
			out = append(out, app{head: h, stack: stackOf(h)})
		}
	}
	return out, nil
}

// holds says an app of project and env is one of w's.
func (w *watch) holds(project, env string) bool {
	return env == w.cfg.Env && (w.cfg.Project == "" || project == w.cfg.Project)
}

// newEvents tells the watches of each event's app that the hub's clone
// has news of it; each looks at the app's stack soon (pickUp). An
// observation is no news to them: it says what a look saw, and the
// hub's own come back here once committed.
func (o *observer) newEvents(events []*metav1.Event) {
	for _, ev := range events {
		if ev.GetKind() == metav1.Kind_KIND_OBSERVE || record.Address(ev).IsRecipe() {
			continue // a recipe's log runs nowhere
		}
		a := ev.GetAddress()
		for _, w := range o.watches {
			if w.holds(a.GetProject(), a.GetEnv()) {
				w.tell(a.GetApp())
			}
		}
	}
}

// tell adds domain to w's news and wakes w; news that comes before w
// looks is one look.
func (w *watch) tell(domain string) {
	w.newsMu.Lock()
	w.news[domain] = true
	w.newsMu.Unlock()
	select {
	case w.told <- struct{}{}:
	default:
	}
}

// takeNews empties w's news and returns what it held.
func (w *watch) takeNews() map[string]bool {
	w.newsMu.Lock()
	defer w.newsMu.Unlock()
	news := w.news
	w.news = map[string]bool{}
	return news
}

// pickUp are the stacks to look at for w's news: those of the apps that
// got events, and those the Engine named before they were an app's, now
// that they are.
func (o *observer) pickUp(w *watch) []string {
	news := w.takeNews()
	apps, err := o.apps(w)
	if err != nil {
		o.logf("observe: %v", err)
		return nil
	}
	var out []string
	picked := map[string]bool{}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range apps {
		_, stranger := w.strangers[a.stack]
		if (news[a.head.Domain] || stranger) && !picked[a.stack] {
			picked[a.stack] = true
			out = append(out, a.stack)
		}
		delete(w.strangers, a.stack)
	}
	return out
}

// remember notes that the Engine named stack at, and that it is no app's.
// Beyond maxStrangers the one named longest ago is forgotten.
func (o *observer) remember(w *watch, stack string, at time.Time) {
	o.forget(w, at)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.strangers[stack]; !ok && len(w.strangers) >= maxStrangers {
		oldest := ""
		for name, t := range w.strangers {
			if oldest == "" || t.Before(w.strangers[oldest]) {
				oldest = name
			}
		}
		delete(w.strangers, oldest)
	}
	w.strangers[stack] = at
}

// forget drops the stacks named more than the window before now: a stack
// whose app is not in the log by then is looked at only at the next
// full look.
func (o *observer) forget(w *watch, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, at := range w.strangers {
		if now.Sub(at) > o.window {
			delete(w.strangers, name)
		}
	}
}

// stackOf is the app's stack: the one its last deploy or observation
// named (fold.Head.Stack, STACK_NAME included), else the one abra makes of
// its domain.
func stackOf(h *fold.Head) string {
	if h.Stack != "" {
		return h.Stack
	}
	return abra.StackName(h.Domain, nil)
}

// deployed says the log has the app running, or on its way to.
func deployed(h *fold.Head) bool {
	switch h.State {
	case fold.StateUndeployed, fold.StateRemoved, fold.StateMoved, fold.StateNew, fold.StateUnknown:
		return false
	}
	return true
}

// record records what st says of h's app, unless the app's last
// observation says it already or a quiet rule says nothing is news.
func (o *observer) record(ctx context.Context, w *watch, h *fold.Head, st *swarm.Stack) {
	seen, hold := st, false
	if st.Missing() {
		delete(w.looks, st.Name)
		delete(w.due, st.Name)
		if !deployed(h) && (h.Observed == nil || h.Observed.Missing) {
			return // not there, and the log never said otherwise
		}
		if !o.missingEverywhere(ctx, w, st.Name) {
			return
		}
	} else {
		var again time.Time
		seen, hold, again = o.smoothed(w, st)
		if !again.IsZero() {
			w.due[st.Name] = again
		}
	}
	obs := seen.Observation("serve")
	obs.Server = w.cfg.Server
	if st.Missing() && len(o.envs[w.cfg.Project+"/"+w.cfg.Env]) > 1 {
		obs.Server = "" // on none of the env's servers
	}
	// Swarm's verdict on a pending deploy is read off what runs, not the
	// smoothed counts; the store asks it about the deploy pending when it
	// writes.
	verdict := func(want string) (metav1.Outcome, bool) {
		v, ok := st.Settled(want, swarm.FollowGrace)
		return v.Outcome, ok
	}
	settles := false
	if p := h.Pending; p != nil {
		_, settles = verdict(p.Running())
	}
	if hold && !settles {
		return
	}
	if !settles && h.Observed.SameAs(obs) || o.refusedBefore(h.Domain, obs) {
		return
	}
	o.writeMu.Lock()
	out, err := o.store.ObserveSettling(ctx, h.Domain, obs, verdict, o.actor, time.Now(), store.AppendOptions{})
	o.writeMu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			o.refused(h.Domain, obs, err)
		}
		return
	}
	if out != nil {
		o.observations.Add(1)
		o.recorded()
	}
}

// missingEverywhere says a stack w does not run is run by no Engine of
// w's env either, as each says now; an Engine lost, or one that fails to
// answer, leaves it unknown. Of several Engines of one env only the first
// asks, so that one observation, not one per server, says it is gone.
func (o *observer) missingEverywhere(ctx context.Context, w *watch, stack string) bool {
	env := o.envs[w.cfg.Project+"/"+w.cfg.Env]
	if len(env) == 1 {
		return true
	}
	if env[0] != w {
		return false
	}
	for _, other := range env[1:] {
		other.mu.Lock()
		eng, there := other.eng, other.seen[stack]
		other.mu.Unlock()
		if eng == nil || there {
			return false
		}
		st, err := eng.Look(ctx, stack)
		if err != nil || !st.Missing() {
			return false
		}
	}
	return true
}

// smoothed is st as the hub records it: every service's running count
// smoothed over the window (smooth), hold when one of them is only
// starting, and when to look again.
func (o *observer) smoothed(w *watch, st *swarm.Stack) (out *swarm.Stack, hold bool, again time.Time) {
	byService := w.looks[st.Name]
	if byService == nil {
		byService = map[string][]look{}
		w.looks[st.Name] = byService
	}
	cp := *st
	cp.Services = append([]swarm.ServiceState(nil), st.Services...)
	kept := map[string][]look{}
	for i := range cp.Services {
		s := &cp.Services[i]
		looks := append(byService[s.Name], look{at: st.At, running: s.Running, desired: s.Desired, starting: s.Starting, failedAt: s.LastErrorAt})
		// Enough history to tell a start that lasted beyond the window.
		for len(looks) > 1 && (looks[0].at.Before(st.At.Add(-2*o.window)) || len(looks) > maxLooks) {
			looks = looks[1:]
		}
		kept[s.Name] = looks
		running, h, a := smooth(looks, o.window)
		s.Running = running
		hold = hold || h
		if !a.IsZero() && (again.IsZero() || a.Before(again)) {
			again = a
		}
	}
	w.looks[st.Name] = kept // services gone from the stack are forgotten
	return &cp, hold, again
}

// refusedBefore says the store refused this very observation of domain
// less than retryFailed ago: the observer does not try it in a loop.
func (o *observer) refusedBefore(domain string, obs *metav1.Observation) bool {
	o.failedMu.Lock()
	defer o.failedMu.Unlock()
	f, ok := o.failed[domain]
	return ok && time.Since(f.at) < retryFailed && sameObservation(f.obs, obs)
}

// refused remembers that the store refused obs, and says so once per
// reason.
func (o *observer) refused(domain string, obs *metav1.Observation, err error) {
	o.failedMu.Lock()
	f, ok := o.failed[domain]
	o.failed[domain] = failedObservation{obs: obs, at: time.Now(), err: err.Error()}
	o.failedMu.Unlock()
	if !ok || f.err != err.Error() {
		o.logf("observe %s: %v", domain, err)
	}
}

// sameObservation compares two observations the way the log does.
func sameObservation(a, b *metav1.Observation) bool {
	return record.ObservedViewOf(a).Same(record.ObservedViewOf(b))
}

// observerHealth is /healthz of a hub that observes Engines.
type observerHealth struct {
	OK               bool  `json:"ok"`
	Engines          int   `json:"engines"`
	EnginesReachable int   `json:"engines_reachable"`
	Observations     int64 `json:"observations"`
}

func (o *observer) health() observerHealth {
	out := observerHealth{OK: true, Engines: len(o.watches), Observations: o.observations.Load()}
	for _, w := range o.watches {
		w.mu.Lock()
		if w.eng != nil {
			out.EnginesReachable++
		}
		w.mu.Unlock()
	}
	return out
}

// engineList says which Engines the hub observes, for its first line:
// "the Docker Engines of 2 servers: s1 (ssh://root@s1), s2 (tcp://s2:2376)".
func engineList(engines []config.Engine) string {
	names := make([]string, len(engines))
	for i, e := range engines {
		names[i] = e.Server + " (" + e.DockerHost + ")"
	}
	return "the Docker Engines of " + record.Count(len(engines), "server") + ": " + strings.Join(names, ", ")
}
