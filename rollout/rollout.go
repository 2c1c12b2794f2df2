// Package rollout runs a channel's plan (rollout/plan) through meta exec
// (opsync.Runner), wave by wave, and stops at the first app that did not
// end up running the channel's release the way Swarm says it should: a
// failed deploy, one Swarm rolled back or paused, one still pending, one
// that drifted. The apps after it are left untouched. A stopped rollout
// keeps its state in the clone (state.go) and its batch open, so that the
// fix and the resume join the same batch.
//
// Every wave is planned afresh from the log as it then stands: another
// operator may have upgraded, locked or broken an app meanwhile, and the
// plan's one rule says what to do with it. Only the channel's release is
// fixed when the rollout starts: a promotion meanwhile stops it.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/opsync"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Errors callers branch on.
var (
	// ErrStopped: the rollout stopped at an app (Summary.Stopped says
	// which and why); `meta rollout --resume` goes on.
	ErrStopped = errors.New("rollout stopped")
	// ErrNoRollout: no stopped rollout in this clone to resume.
	ErrNoRollout = errors.New("no stopped rollout in this clone")
	// ErrOtherChannel: the resume names another channel than the stopped
	// rollout's.
	ErrOtherChannel = errors.New("the stopped rollout is of another channel")
	// ErrChannelMoved: the channel was promoted since the rollout began;
	// it is the log not being as expected (store.ErrUnexpected).
	ErrChannelMoved = fmt.Errorf("the channel moved: %w", store.ErrUnexpected)
	// ErrNoRelease: the channel has no release to roll out.
	ErrNoRelease = errors.New("the channel has no release")
	// ErrStillBlocked: the app a rollout stopped at is still blocked, so a
	// resume would not retry it; deal with it or skip it.
	ErrStillBlocked = errors.New("the app the rollout stopped at is still blocked")
)

// Results an app may have in a Summary.
const (
	Upgraded   = "upgraded"    // the rollout upgraded it
	Downgraded = "downgraded"  // the rollout rolled it back to the channel's (older) release
	UpToDate   = "up-to-date"  // it ran the channel's release already
	Blocked    = "blocked"     // plan.Blocked: skipped, with why
	Stopped    = "stopped"     // the rollout stopped here, with why
	NotReached = "not-reached" // to do, after the stop
	Skipped    = "skipped"     // a resume left it out (--skip)
	// A dry run's apps to change have the plan's action as their result:
	// plan.Upgrade or plan.Rollback.
)

// Config is one rollout: what to roll out, how, and through what.
type Config struct {
	// Store is the log; Runner runs abra with the log around it, as `meta
	// exec` does (its Store must be Store; its Actor is who rolls out).
	Store  *store.Store
	Runner *opsync.Runner
	// Abra is the abra executable: it replaces the plan's "abra".
	Abra string
	// Channel is what to roll out. For a resume it may be left zero; when
	// set it must be the stopped rollout's.
	Channel projects.ChannelRef
	// EnvOrder, WaveSize: as plan.Options. A resume keeps the stopped
	// rollout's.
	EnvOrder []string
	WaveSize int
	// Pause between waves (not before the first).
	Pause time.Duration
	// DryRun plans and returns the waves and commands; it runs nothing,
	// writes nothing, opens no batch.
	DryRun bool
	// Skip names apps (a domain or project/env/domain) a resume leaves out.
	Skip []string
	// Progress is told what the rollout does, a line at a time; nil says
	// nothing.
	Progress func(line string)
	// Sleep waits d or until ctx ends; a context-aware time.Sleep when nil
	// (tests give their own).
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Summary is what a rollout did. Its JSON keys are part of meta's
// interface (`meta rollout --json`): add keys, never rename or remove them.
type Summary struct {
	Channel string `json:"channel"` // recipe/channel
	Version string `json:"version"`
	DryRun  bool   `json:"dry_run"`
	Resumed bool   `json:"resumed"`
	// Done: every app is at the channel's release, blocked or skipped.
	Done    bool   `json:"done"`
	BatchID string `json:"batch_id"`
	// Waves are the waves run, in order (a dry run's: the plan's).
	Waves []plan.Wave `json:"waves"`
	// Apps is every app following the channel, with what happened to it.
	Apps   []App  `json:"apps"`
	Counts Counts `json:"counts"`
	// Stopped says where and why the rollout stopped, nil when it did not.
	Stopped *Stop `json:"stopped"`
}

// App is what the rollout did with one app.
type App struct {
	App     string `json:"app"` // project/env/domain
	Domain  string `json:"domain"`
	Project string `json:"project"`
	Env     string `json:"env"`
	Server  string `json:"server"`
	Wave    int    `json:"wave"`
	Result  string `json:"result"`
	// From is the version the log said it ran before, To the channel's.
	From string `json:"from"`
	To   string `json:"to"`
	// Command is the abra command line run (or, for a dry run, to run).
	Command []string `json:"command"`
	// Reason says why it stopped the rollout; Blocked why it is blocked.
	Reason  string   `json:"reason"`
	Blocked []string `json:"blocked"`
}

// Counts are how many apps have each result.
type Counts struct {
	Upgraded   int `json:"upgraded"`
	Downgraded int `json:"downgraded"`
	UpToDate   int `json:"up_to_date"`
	Blocked    int `json:"blocked"`
	Stopped    int `json:"stopped"`
	NotReached int `json:"not_reached"`
	Skipped    int `json:"skipped"`
	// Planned counts a dry run's apps to change.
	Planned int `json:"planned"`
}

// Stop is where a rollout stopped and how to go on.
type Stop struct {
	// App is the app it stopped at, "" when it stopped between apps.
	App    string `json:"app"`
	Domain string `json:"domain"`
	Reason string `json:"reason"`
	// Resume is the command that goes on; Skip the one that goes on
	// without App ("" when there is no app to skip).
	Resume string `json:"resume"`
	Skip   string `json:"skip"`
}

// Run rolls cfg.Channel's release out. A stopped rollout returns its
// Summary with an error wrapping ErrStopped (or ErrChannelMoved); an error
// with a nil Summary means nothing was run.
//
// A rollout stopped earlier in this clone is abandoned: its state is
// replaced by this one's, and when its batch is still open this rollout
// continues it (and ends it when done).
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if !cfg.DryRun {
		if err := cfg.pull(ctx); err != nil {
			return nil, err
		}
	}
	p, version, err := cfg.plan(cfg.Channel, cfg.EnvOrder, cfg.WaveSize, nil)
	if err != nil {
		return nil, err
	}
	if version == "" {
		return nil, fmt.Errorf("%w: %s (meta channel promote %s VERSION --to %s)", ErrNoRelease, cfg.Channel, cfg.Channel.Recipe, cfg.Channel.Channel)
	}
	if cfg.DryRun {
		return dryRun(cfg.Channel, version, p), nil
	}
	prev, err := Pending(cfg.Store)
	if err != nil {
		return nil, err
	}
	st := &State{
		Channel: cfg.Channel.String(), Version: version, Started: cfg.now().UTC(),
		Operator: record.Operator(cfg.Runner.Actor.GetName(), cfg.Runner.Actor.GetEmail()),
		EnvOrder: cfg.EnvOrder, WaveSize: cfg.WaveSize, Pause: cfg.Pause,
		Done: []Moved{}, Skipped: []string{}, Ran: []plan.Wave{},
	}
	if prev != nil {
		cfg.say("abandoning the rollout of %s to %s stopped at %s (%s)", prev.Channel, prev.Version, orText(prev.StoppedAt, "a wave's start"), prev.Reason)
	}
	if err := cfg.joinBatch(st, prev); err != nil {
		return nil, err
	}
	return cfg.drive(ctx, st, nil, false)
}

// Resume goes on with the rollout stopped in this clone: it retries the
// app it stopped at (unless cfg.Skip names it: then it is left out) and
// runs the rest. cfg's channel, when set, must be the stopped rollout's
// (ErrOtherChannel); a channel promoted since is refused (ErrChannelMoved:
// start a new rollout); a stopped-at app still blocked for anything but
// its failed deploy is refused (ErrStillBlocked).
func Resume(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Store == nil || cfg.Runner == nil {
		return nil, errors.New("rollout: no log or no runner")
	}
	st, err := Pending(cfg.Store)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("%w: `meta rollout RECIPE/CHANNEL` starts one", ErrNoRollout)
	}
	ref, err := projects.ParseChannelRef(st.Channel)
	if err != nil {
		return nil, fmt.Errorf("the stopped rollout: %w", err)
	}
	if cfg.Channel != (projects.ChannelRef{}) && cfg.Channel != ref {
		return nil, fmt.Errorf("%w: %s to %s is stopped, not %s; resume it with `meta rollout --resume`", ErrOtherChannel, st.Channel, st.Version, cfg.Channel)
	}
	cfg.Channel = ref
	if err := cfg.pull(ctx); err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for _, s := range st.Skipped {
		skip[s] = true
	}
	p, version, err := cfg.plan(ref, st.EnvOrder, st.WaveSize, nil)
	if err != nil {
		return nil, err
	}
	if version != st.Version {
		return nil, fmt.Errorf("%w: %s is at %s now, the stopped rollout brought it to %s; start a new rollout: meta rollout %s", ErrChannelMoved, ref, orText(version, "no release"), st.Version, ref)
	}
	for _, name := range cfg.Skip {
		a, ok := find(p.Apps, name)
		if !ok {
			return nil, fmt.Errorf("--skip %s: no app following %s is named so", name, ref)
		}
		skip[a.Ref()] = true
	}
	var retry []string
	if at := st.StoppedAt; at != "" && !skip[at] {
		retry = []string{at}
		rp, _, err := cfg.plan(ref, st.EnvOrder, st.WaveSize, retry)
		if err != nil {
			return nil, err
		}
		if a, ok := find(rp.Apps, at); ok && a.Action == plan.Blocked {
			return nil, fmt.Errorf("%w: %s: %s; deal with it first, or leave it out: meta rollout --resume --skip %s", ErrStillBlocked, at, strings.Join(a.Blocked, "; "), a.Domain)
		}
	}
	st.Skipped = st.Skipped[:0]
	for s := range skip {
		st.Skipped = append(st.Skipped, s)
	}
	slices.Sort(st.Skipped)
	st.StoppedAt, st.Reason = "", ""
	cfg.EnvOrder, cfg.WaveSize = st.EnvOrder, st.WaveSize
	if !cfg.pauseSet() {
		cfg.Pause = st.Pause
	}
	if err := cfg.joinBatch(st, st); err != nil {
		return nil, err
	}
	return cfg.drive(ctx, st, retry, true)
}

// pauseSet is whether the caller chose the pause; a resume otherwise
// keeps the stopped rollout's. Zero means "not chosen": a resume cannot
// drop a pause to none, only change it.
func (cfg *Config) pauseSet() bool { return cfg.Pause != 0 }

func (cfg *Config) check() error {
	if cfg.Store == nil || cfg.Runner == nil {
		return errors.New("rollout: no log or no runner")
	}
	if cfg.Channel.Recipe == "" || cfg.Channel.Channel == "" {
		return errors.New("rollout: no channel")
	}
	return nil
}

func (cfg *Config) now() time.Time {
	if cfg.Now != nil {
		return cfg.Now()
	}
	return time.Now()
}

func (cfg *Config) say(format string, args ...any) {
	if cfg.Progress != nil {
		cfg.Progress(fmt.Sprintf(format, args...))
	}
}

func (cfg *Config) sleep(ctx context.Context, d time.Duration) error {
	if cfg.Sleep != nil {
		return cfg.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pull brings the log up to date, as the Runner does before each command;
// not with the Runner's NoSync.
func (cfg *Config) pull(ctx context.Context) error {
	if cfg.Runner.Options.NoSync {
		return nil
	}
	if err := cfg.Store.Pull(ctx); err != nil {
		return fmt.Errorf("%w before the rollout's next wave: %w", opsync.ErrSyncBefore, err)
	}
	return nil
}

// plan plans ref's apps from the log as it stands, and says the channel's
// release ("" when it has none).
func (cfg *Config) plan(ref projects.ChannelRef, order []string, size int, retry []string) (*plan.Plan, string, error) {
	in, err := plan.FromStore(cfg.Store)
	if err != nil {
		return nil, "", fmt.Errorf("plan %s: %w", ref, err)
	}
	p := plan.Make(in, plan.Options{
		Channel: &ref, EnvOrder: order, WaveSize: size,
		// plan compares the lease's holder by name (see the report).
		Operator: cfg.Runner.Actor.GetName(),
		Now:      cfg.now(), Retry: retry,
	})
	version := ""
	for _, c := range p.Channels {
		if c.Channel == ref.String() {
			version = c.Version
		}
	}
	return p, version, nil
}

// joinBatch puts the rollout's events in a batch: the one open in the
// clone if any (ended by this rollout only if it is prev's own), else a
// new one of its own.
func (cfg *Config) joinBatch(st *State, prev *State) error {
	b, open, err := cfg.Store.OpenBatch()
	if err != nil {
		return err
	}
	if open {
		st.BatchID = b.ID
		st.OwnBatch = prev != nil && prev.OwnBatch && prev.BatchID == b.ID
		if st.OwnBatch {
			cfg.say("continuing batch %s (%s)", b.ID, b.Summary)
		} else {
			cfg.say("joining the open batch %s (%s); meta batch end closes it", b.ID, b.Summary)
		}
		return nil
	}
	b, err = cfg.Store.StartBatch(fmt.Sprintf("rollout %s to %s", st.Channel, st.Version), cfg.Runner.Actor, cfg.now())
	if err != nil {
		return err
	}
	st.BatchID, st.OwnBatch = b.ID, true
	return nil
}

// drive runs waves until every app is done, blocked or skipped, or one
// stops the rollout.
func (cfg *Config) drive(ctx context.Context, st *State, retry []string, resumed bool) (*Summary, error) {
	tried := map[string]bool{}
	ran := 0
	stop := func(p *plan.Plan, at, reason string, cause error) (*Summary, error) {
		st.StoppedAt, st.Reason = at, reason
		if err := saveState(cfg.Store, st); err != nil {
			return nil, err
		}
		sum := summarize(st, p, resumed)
		cfg.say("stopped: %s", sum.Stopped.Reason)
		return sum, cause
	}
	var last *plan.Plan
	moved := "" // why look found the channel moved
	// look pulls and plans the next wave from the log as it stands: the
	// waves left (skipped apps left out), or why the rollout stops.
	look := func() (*plan.Plan, []plan.Wave, error) {
		if err := cfg.pull(ctx); err != nil {
			return nil, nil, err
		}
		p, version, err := cfg.plan(cfg.Channel, cfg.EnvOrder, cfg.WaveSize, retry)
		if err != nil {
			return nil, nil, err
		}
		last = p
		if version != st.Version {
			moved = fmt.Sprintf("the channel moved to %s meanwhile", orText(version, "no release"))
			return p, nil, fmt.Errorf("%w: %s: the channel moved to %s meanwhile; start a new rollout: meta rollout %s", ErrChannelMoved, cfg.Channel, orText(version, "no release"), cfg.Channel)
		}
		skip := map[string]bool{}
		for _, s := range st.Skipped {
			skip[s] = true
		}
		var todo []plan.Wave
		for _, w := range p.Waves {
			left := w
			left.Apps = nil
			for _, ref := range w.Apps {
				if !skip[ref] {
					left.Apps = append(left.Apps, ref)
				}
			}
			if len(left.Apps) > 0 {
				todo = append(todo, left)
			}
		}
		return p, todo, nil
	}
	stopLooking := func(err error) (*Summary, error) {
		if moved != "" {
			return stop(last, "", moved, err)
		}
		return stop(last, "", err.Error(), fmt.Errorf("%w: %w", ErrStopped, err))
	}
	for {
		if err := ctx.Err(); err != nil {
			return stop(last, "", "interrupted before the next wave", fmt.Errorf("%w: %w", ErrStopped, err))
		}
		p, todo, err := look()
		if err != nil {
			return stopLooking(err)
		}
		if len(todo) > 0 && ran > 0 && cfg.Pause > 0 {
			// Paused only when there is a next wave, and that wave is
			// planned again after the pause: others may act meanwhile.
			cfg.say("pausing %s before wave %d/%d", cfg.Pause, st.Waves+1, st.Waves+len(todo))
			if err := cfg.sleep(ctx, cfg.Pause); err != nil {
				return stop(last, "", "interrupted during the pause", fmt.Errorf("%w: %w", ErrStopped, err))
			}
			if p, todo, err = look(); err != nil {
				return stopLooking(err)
			}
		}
		if len(todo) == 0 {
			return cfg.finish(st, p, resumed)
		}
		apps := map[string]plan.App{}
		for _, a := range p.Apps {
			apps[a.Ref()] = a
		}
		w := todo[0]
		number, total := st.Waves+1, st.Waves+len(todo)
		ran++
		st.Waves = number
		w.Number = number
		st.Ran = append(st.Ran, w)
		for _, ref := range w.Apps {
			a := apps[ref]
			if tried[ref] {
				// Done by the rollout and planned again: the plan and the
				// check below disagree, and going on would loop.
				return stop(p, ref, "the log does not show it at the channel's release after its upgrade", fmt.Errorf("%w at %s", ErrStopped, ref))
			}
			tried[ref] = true
			verb := "upgrading"
			if a.Action == plan.Rollback {
				verb = "rolling back"
			}
			cfg.say("wave %d/%d (%s on %s): %s %s to %s", number, total, w.Env, w.Server, verb, a.Domain, st.Version)
			argv := append([]string{cfg.Abra}, a.Command[1:]...)
			res, runErr := cfg.Runner.Run(ctx, argv)
			if reason := cfg.judge(a, st.Version, res, runErr); reason != "" {
				return stop(p, ref, reason, fmt.Errorf("%w at %s: %s", ErrStopped, a.Domain, reason))
			}
			st.Done = append(st.Done, Moved{App: ref, Action: a.Action, From: a.LogVersion, Wave: number})
			if err := saveState(cfg.Store, st); err != nil {
				return nil, err
			}
			cfg.say("%s: %s", a.Domain, result(a.Action))
		}
	}
}

// judge says why the app's upgrade or rollback did not bring it to
// version, "" when it did: abra exited 0 and the log now says the app is
// deployed at version, without drift.
func (cfg *Config) judge(a plan.App, version string, res *opsync.Result, runErr error) string {
	if res == nil {
		return fmt.Sprintf("abra did not run: %v", runErr)
	}
	if runErr != nil {
		return fmt.Sprintf("abra exited %d, and %v", res.Code, runErr)
	}
	h, err := cfg.Store.Head(a.Ref())
	if err != nil {
		return fmt.Sprintf("abra exited %d, and its head could not be read: %v", res.Code, err)
	}
	detail := ""
	if f := h.LastFailure; f != nil && f.Detail != "" {
		detail = ": " + f.Detail
	}
	switch {
	case res.Code != 0:
		return fmt.Sprintf("abra exited %d (the log says %s)", res.Code, h.State)
	case h.State == fold.StateRolledBack:
		return fmt.Sprintf("rolled back by Swarm%s (it runs %s)", detail, orText(h.Running(), "nothing"))
	case h.State == fold.StatePaused:
		return fmt.Sprintf("paused by Swarm%s", detail)
	case h.State == fold.StatePending:
		return fmt.Sprintf("pending: Swarm had not settled the update (`meta observe %s --docker` settles it)", a.Domain)
	case h.State != fold.StateDeployed:
		return fmt.Sprintf("the log says it is %s", h.State)
	case h.Running() != version:
		return fmt.Sprintf("the log says it runs %s, not %s", orText(h.Running(), "nothing"), version)
	case h.Drift != "":
		return fmt.Sprintf("drifted: %s", orText(h.DriftDetail, h.Drift))
	}
	return ""
}

// finish ends a rollout that has nothing left to do: its batch, when its
// own, and its state.
func (cfg *Config) finish(st *State, p *plan.Plan, resumed bool) (*Summary, error) {
	if st.OwnBatch {
		if b, open, err := cfg.Store.OpenBatch(); err != nil {
			return nil, err
		} else if open && b.ID == st.BatchID {
			if _, err := cfg.Store.EndBatch(); err != nil {
				return nil, err
			}
		}
	}
	if err := clearState(cfg.Store); err != nil {
		return nil, err
	}
	sum := summarize(st, p, resumed)
	sum.Done = true
	return sum, nil
}

func result(action string) string {
	if action == plan.Rollback {
		return Downgraded
	}
	return Upgraded
}

// summarize says what happened to every app following the channel, by the
// rollout's state and the last plan.
func summarize(st *State, p *plan.Plan, resumed bool) *Summary {
	sum := &Summary{Channel: st.Channel, Version: st.Version, Resumed: resumed, BatchID: st.BatchID, Waves: st.Ran, Apps: []App{}}
	done := map[string]Moved{}
	for _, m := range st.Done {
		done[m.App] = m
	}
	skipped := map[string]bool{}
	for _, s := range st.Skipped {
		skipped[s] = true
	}
	seen := map[string]bool{}
	if p != nil {
		for _, a := range p.Apps {
			ref := a.Ref()
			seen[ref] = true
			out := App{App: ref, Domain: a.Domain, Project: a.Project, Env: a.Env, Server: a.Server, Wave: a.Wave, From: a.LogVersion, To: st.Version, Command: a.Command, Blocked: []string{}}
			switch m, ok := done[ref]; {
			case ok:
				out.Result, out.From, out.Wave = result(m.Action), m.From, m.Wave
				out.Command = []string{}
			case ref == st.StoppedAt:
				out.Result, out.Reason = Stopped, st.Reason
				out.Wave = st.Waves
			case skipped[ref]:
				out.Result = Skipped
			case a.Action == plan.UpToDate:
				out.Result = UpToDate
			case a.Action == plan.Blocked:
				out.Result, out.Blocked = Blocked, a.Blocked
			default:
				out.Result = NotReached
			}
			sum.Apps = append(sum.Apps, out)
		}
	}
	for _, m := range st.Done {
		if !seen[m.App] { // no longer following, or gone since
			project, env, domain := splitRef(m.App)
			sum.Apps = append(sum.Apps, App{App: m.App, Domain: domain, Project: project, Env: env, Wave: m.Wave, Result: result(m.Action), From: m.From, To: st.Version, Command: []string{}, Blocked: []string{}})
		}
	}
	sum.Counts = count(sum.Apps)
	if st.StoppedAt != "" || st.Reason != "" {
		_, _, domain := splitRef(st.StoppedAt)
		s := &Stop{App: st.StoppedAt, Domain: domain, Reason: st.Reason, Resume: "meta rollout --resume"}
		if domain != "" {
			s.Skip = "meta rollout --resume --skip " + domain
			s.Reason = domain + ": " + st.Reason
		}
		if strings.HasPrefix(st.Reason, "the channel moved") {
			s.Resume = "meta rollout " + st.Channel
		}
		sum.Stopped = s
	}
	return sum
}

func dryRun(ref projects.ChannelRef, version string, p *plan.Plan) *Summary {
	sum := &Summary{Channel: ref.String(), Version: version, DryRun: true, Waves: p.Waves, Apps: []App{}}
	for _, a := range p.Apps {
		out := App{App: a.Ref(), Domain: a.Domain, Project: a.Project, Env: a.Env, Server: a.Server, Wave: a.Wave, Result: a.Action, From: a.LogVersion, To: version, Command: a.Command, Blocked: a.Blocked}
		sum.Apps = append(sum.Apps, out)
	}
	sum.Counts = count(sum.Apps)
	return sum
}

func count(apps []App) Counts {
	var c Counts
	for _, a := range apps {
		switch a.Result {
		case Upgraded:
			c.Upgraded++
		case Downgraded:
			c.Downgraded++
		case UpToDate:
			c.UpToDate++
		case Blocked:
			c.Blocked++
		case Stopped:
			c.Stopped++
		case NotReached:
			c.NotReached++
		case Skipped:
			c.Skipped++
		case plan.Upgrade, plan.Rollback:
			c.Planned++
		}
	}
	return c
}

// find is the app name names: its domain or project/env/domain.
func find(apps []plan.App, name string) (plan.App, bool) {
	for _, a := range apps {
		if a.Ref() == name || a.Domain == name {
			return a, true
		}
	}
	return plan.App{}, false
}

func splitRef(ref string) (project, env, domain string) {
	parts := strings.Split(ref, "/")
	if len(parts) == 3 {
		return parts[0], parts[1], parts[2]
	}
	return "", "", ref
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
