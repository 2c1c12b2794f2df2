// Package plan says, for every app that follows a channel, what it would
// take to bring it to the channel's release: nothing (up-to-date), an
// upgrade or a rollback with the exact abra command line, or nothing yet
// and why (blocked); and groups the apps to change into waves, by env
// order and server.
//
// A plan is a pure function of what the log says (the channels, the apps'
// heads, meta.yaml's servers) and the time: every machine with the same
// log plans the same. Make is that function; FromStore reads its input.
package plan

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

// Actions an app's plan may have.
const (
	// UpToDate: the app runs the channel's release, as the log says and,
	// where it was observed, as Swarm says.
	UpToDate = "up-to-date"
	// Upgrade: the channel is at a newer release than the app runs.
	Upgrade = "upgrade"
	// Rollback: the channel was moved back to an older release.
	Rollback = "rollback"
	// Blocked: the app lags, and something must be dealt with first
	// (Blocked lists what).
	Blocked = "blocked"
)

// Why an app is blocked, as App.Blocked says it: each starts with one of
// these words, then says more.
const (
	BlockNoRelease = "no-release"      // the channel has no release yet
	BlockForked    = "channel-forked"  // two promotions without seeing each other
	BlockAppForked = "app-forked"      // the app's log has two heads
	BlockRecipe    = "recipe-mismatch" // the app runs another recipe
	BlockLocked    = "locked"          // another operator's lease
	BlockFailed    = "failed"          // the last deploy failed, was rolled back or paused, or is pending
	BlockDrift     = "drift"           // Swarm does not run what the log says
	BlockState     = "not-deployed"    // new, undeployed or unknown
	BlockChaos     = "chaos"           // a chaos deploy runs
	BlockVersion   = "version"         // a version that is no recipe version
	BlockAhead     = "ahead"           // the app runs a newer release than the channel ever had
)

// Options say what to plan and how to group it.
type Options struct {
	// Channel, when set, plans only the apps following it.
	Channel *projects.ChannelRef
	// EnvOrder are env names in the order their waves go; envs it does
	// not name go after, by name.
	EnvOrder []string
	// WaveSize splits each env's server's apps into waves of at most this
	// many; 0 keeps them whole.
	WaveSize int
	// Operator is who plans: their own lease blocks nothing.
	Operator string
	// Now evaluates leases.
	Now time.Time
	// Retry names apps (project/env/domain) whose failed last deploy
	// blocks nothing: a resumed rollout tries again the app it stopped
	// at, once the operator has dealt with it.
	Retry []string
}

// Plan is what it takes to bring every following app to its channel's
// release. Its JSON keys are part of meta's interface (`meta plan
// --json`, the hub's /v1/plan): add keys, never rename or remove them.
type Plan struct {
	Channels []Channel `json:"channels"`
	Apps     []App     `json:"apps"`
	Waves    []Wave    `json:"waves"`
	Counts   Counts    `json:"counts"`
}

// Channel is one channel the plan brings apps to.
type Channel struct {
	Channel string `json:"channel"` // recipe/channel
	Version string `json:"version"`
	Forked  bool   `json:"forked"`
	// Followers counts the apps following it.
	Followers int `json:"followers"`
}

// App is one following app's plan.
type App struct {
	Domain  string `json:"domain"`
	Project string `json:"project"`
	Env     string `json:"env"`
	// Server is the abra server the app runs on: where it was last
	// observed, else the one meta.yaml places its env on, else the env.
	Server  string `json:"server"`
	Channel string `json:"channel"` // recipe/channel
	// ChannelVersion is the channel's release; LogVersion what the log
	// says runs; ObservedVersion what Swarm was last seen running ("" if
	// never observed).
	ChannelVersion  string `json:"channel_version"`
	LogVersion      string `json:"log_version"`
	ObservedVersion string `json:"observed_version"`
	State           string `json:"state"`
	Drift           string `json:"drift"`
	Action          string `json:"action"`
	// Command is the abra command line of an upgrade or rollback.
	Command []string `json:"command"`
	// Blocked says why a lagging app cannot be moved yet, one reason each
	// (see the Block words).
	Blocked []string `json:"blocked"`
	// Wave is the app's wave, from 1; 0 when it has nothing to do.
	Wave int `json:"wave"`
}

// Ref is how the app is named: project/env/domain.
func (a App) Ref() string { return projects.Ref(a.Project, a.Env, a.Domain) }

// Wave is apps of one env and server changed together.
type Wave struct {
	Number int      `json:"number"`
	Env    string   `json:"env"`
	Server string   `json:"server"`
	Apps   []string `json:"apps"` // project/env/domain
}

// Counts are how many apps have each action.
type Counts struct {
	UpToDate int `json:"up_to_date"`
	Upgrade  int `json:"upgrade"`
	Rollback int `json:"rollback"`
	Blocked  int `json:"blocked"`
}

// Input is what a plan is made from.
type Input struct {
	Heads    []*fold.Head
	Channels []*fold.Channel
	Config   config.Config
	// Releases are the recorded releases, by recipe and version: a
	// channel at a version not among them (a hand-made promotion) moves
	// no app.
	Releases map[string]map[string]bool
}

// FromStore reads the plan's input from the log as it stands.
func FromStore(s *store.Store) (Input, error) {
	in, err := ChannelsFrom(s, "")
	if err != nil {
		return Input{}, err
	}
	if in.Heads, err = s.List(); err != nil {
		return Input{}, err
	}
	return in, nil
}

// ChannelsFrom is FromStore without the heads: recipe's channels (every
// recipe's for "") and their releases, for StatusOf.
func ChannelsFrom(s *store.Store, recipe string) (Input, error) {
	channels, err := s.Channels(recipe)
	if err != nil {
		return Input{}, err
	}
	in := Input{Channels: channels, Config: s.Config(), Releases: map[string]map[string]bool{}}
	for _, c := range channels {
		if in.Releases[c.Recipe] != nil {
			continue
		}
		rels, err := s.Releases(c.Recipe)
		if err != nil {
			return Input{}, err
		}
		in.Releases[c.Recipe] = map[string]bool{}
		for _, r := range rels {
			in.Releases[c.Recipe][r.Version] = true
		}
	}
	return in, nil
}

// Make plans every app of in that follows a channel (only o.Channel's when
// set), sorted by wave, then env, server and domain.
func Make(in Input, o Options) *Plan {
	channels := map[string]*fold.Channel{}
	for _, c := range in.Channels {
		channels[c.Recipe+"/"+c.Channel] = c
	}
	p := &Plan{Channels: []Channel{}, Apps: []App{}, Waves: []Wave{}}
	followers := map[string]int{}
	for _, h := range in.Heads {
		f := h.Follows
		if f == nil || h.State == fold.StateRemoved || h.State == fold.StateMoved {
			continue // a removed or moved app runs nothing here
		}
		ref := f.Recipe + "/" + f.Channel
		if o.Channel != nil && ref != o.Channel.String() {
			continue
		}
		followers[ref]++
		p.Apps = append(p.Apps, planApp(h, channels[ref], ref, in, o))
	}
	if o.Channel != nil {
		followers[o.Channel.String()] += 0
	}
	for ref, n := range followers {
		c := Channel{Channel: ref, Followers: n}
		if ch := channels[ref]; ch != nil {
			c.Version, c.Forked = ch.Version, ch.Forked
		}
		p.Channels = append(p.Channels, c)
	}
	sort.Slice(p.Channels, func(i, j int) bool { return p.Channels[i].Channel < p.Channels[j].Channel })
	p.Waves = waves(p.Apps, o)
	sort.SliceStable(p.Apps, func(i, j int) bool {
		a, b := p.Apps[i], p.Apps[j]
		if (a.Wave == 0) != (b.Wave == 0) {
			return a.Wave != 0 // the waves first, in order
		}
		if a.Wave != b.Wave {
			return a.Wave < b.Wave
		}
		return less(a, b, o.EnvOrder)
	})
	for _, a := range p.Apps {
		switch a.Action {
		case UpToDate:
			p.Counts.UpToDate++
		case Upgrade:
			p.Counts.Upgrade++
		case Rollback:
			p.Counts.Rollback++
		case Blocked:
			p.Counts.Blocked++
		}
	}
	return p
}

// planApp is the one rule of what an app's plan is.
func planApp(h *fold.Head, c *fold.Channel, ref string, in Input, o Options) App {
	a := App{
		Domain: h.Domain, Project: h.Project, Env: h.Env, Server: ServerOf(h, in.Config), Channel: ref,
		LogVersion: h.Running(), ObservedVersion: h.ObservedVersion, State: h.State, Drift: h.Drift,
		Command: []string{}, Blocked: []string{},
	}
	block := func(word, format string, args ...any) {
		a.Blocked = append(a.Blocked, word+": "+fmt.Sprintf(format, args...))
	}
	switch {
	case c == nil || c.Version == "":
		block(BlockNoRelease, "%s has no release yet (meta channel promote)", ref)
	case !in.Releases[c.Recipe][c.Version]:
		block(BlockNoRelease, "%s is at %s, which is no recorded release of %s (a promotion meta did not make?)", ref, c.Version, c.Recipe)
	}
	if len(a.Blocked) > 0 {
		a.Action = Blocked
		return a
	}
	a.ChannelVersion = c.Version
	// What must be settled before anyone can say the app is where its
	// channel is: forks, and a recipe that is not the channel's.
	if c.Forked {
		var vs []string
		for _, f := range c.Forks {
			vs = append(vs, f.Version+" by "+f.Operator)
		}
		block(BlockForked, "%s was promoted twice at once (%s): promote it again to settle", ref, strings.Join(vs, ", "))
	}
	if h.Recipe != "" && h.Recipe != h.Follows.Recipe {
		block(BlockRecipe, "the app runs recipe %s, not %s", h.Recipe, h.Follows.Recipe)
	}
	if h.Forked {
		block(BlockAppForked, "the app's log has %d heads: the next append by someone who has them all joins them", len(h.Heads))
	}
	if len(a.Blocked) == 0 && a.LogVersion == c.Version && h.State == fold.StateDeployed && h.Drift == "" {
		a.Action = UpToDate
		return a
	}
	if l := h.ActiveLock(o.Now); l != nil && l.Holder != o.Operator {
		block(BlockLocked, "%s holds a lock until %s: %s", l.Holder, l.Expires.UTC().Format(time.RFC3339), l.Reason)
	}
	switch h.State {
	case fold.StateDeployed:
	case fold.StateDeployFailed, fold.StateRolledBack, fold.StatePaused, fold.StatePending:
		if slices.Contains(o.Retry, a.Ref()) && h.State != fold.StatePending {
			break // tried again on purpose; a pending one must settle first
		}
		what := h.State
		if f := h.LastFailure; f != nil {
			what = fmt.Sprintf("%s (%s %s by %s", h.State, f.Kind, f.Running(), f.Operator)
			if f.Detail != "" {
				what += ": " + f.Detail
			}
			what += ")"
		}
		block(BlockFailed, "the last deploy is %s", what)
	default:
		block(BlockState, "the app is %s: deploy it first", h.State)
	}
	if h.Drift != "" {
		block(BlockDrift, "%s", orText(h.DriftDetail, h.Drift))
	}
	action := Upgrade
	if h.ChaosVersion != "" {
		block(BlockChaos, "a chaos deploy runs (%s): deploy a release by hand first", h.ChaosVersion)
	} else if a.LogVersion != "" && a.LogVersion != c.Version {
		switch cmp, err := abra.CompareVersions(a.LogVersion, c.Version); {
		case err != nil:
			block(BlockVersion, "%v", err)
		case cmp > 0 && !promotedFrom(c, a.LogVersion):
			// Newer than anything the channel had: a hotfix by hand, or
			// a channel not promoted yet. A downgrade can lose data:
			// only a channel moved back from that release asks for one.
			block(BlockAhead, "the app runs %s, newer than %s ever was: promote it, or roll back by hand", a.LogVersion, ref)
		case cmp > 0:
			action = Rollback
		}
	}
	if len(a.Blocked) > 0 {
		a.Action = Blocked
		return a
	}
	a.Action = action
	if action == Rollback {
		a.Command = abra.RollbackCommand(h.Domain, c.Version)
	} else {
		a.Command = abra.UpgradeCommand(h.Domain, c.Version)
	}
	return a
}

// promotedFrom says the channel was once at version.
func promotedFrom(c *fold.Channel, version string) bool {
	return slices.ContainsFunc(c.History, func(p fold.Promotion) bool { return p.Version == version })
}

// ServerOf is the abra server the app runs on (App.Server): the one it was last
// observed on, else the only one meta.yaml places the app's env on, else
// the env's name (abra's own: an env is a server unless meta.yaml says
// otherwise).
func ServerOf(h *fold.Head, cfg config.Config) string {
	if h.Observed != nil && h.Observed.Server != "" {
		return h.Observed.Server
	}
	var names []string
	for name := range cfg.Servers {
		if p, e := cfg.PlaceServer(name); p == h.Project && e == h.Env {
			names = append(names, name)
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return h.Env
}

// rank is where env goes in order: its place there, else after them all.
func rank(env string, order []string) int {
	if i := slices.Index(order, env); i >= 0 {
		return i
	}
	return len(order)
}

// less orders apps by env (order first, then by name), server, project
// and domain.
func less(a, b App, order []string) bool {
	if ra, rb := rank(a.Env, order), rank(b.Env, order); ra != rb {
		return ra < rb
	}
	for _, pair := range [][2]string{{a.Env, b.Env}, {a.Server, b.Server}, {a.Project, b.Project}, {a.Domain, b.Domain}} {
		if pair[0] != pair[1] {
			return pair[0] < pair[1]
		}
	}
	return false
}

// waves groups the apps to change by env (in order) and server, each
// group cut into waves of at most o.WaveSize, and numbers the apps'
// waves.
func waves(apps []App, o Options) []Wave {
	var todo []int
	for i, a := range apps {
		if a.Action == Upgrade || a.Action == Rollback {
			todo = append(todo, i)
		}
	}
	sort.SliceStable(todo, func(i, j int) bool { return less(apps[todo[i]], apps[todo[j]], o.EnvOrder) })
	out := []Wave{}
	for _, i := range todo {
		a := &apps[i]
		if n := len(out); n == 0 || out[n-1].Env != a.Env || out[n-1].Server != a.Server || o.WaveSize > 0 && len(out[n-1].Apps) >= o.WaveSize {
			out = append(out, Wave{Number: n + 1, Env: a.Env, Server: a.Server, Apps: []string{}})
		}
		w := &out[len(out)-1]
		w.Apps = append(w.Apps, a.Ref())
		a.Wave = w.Number
	}
	return out
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// Status is how an app stands against the channel it follows, as `meta
// head` and `meta ls` show it.
type Status struct {
	Channel string `json:"channel"` // recipe/channel
	Version string `json:"version"` // the channel's release, "" for none
	// Lags says the app is not at the channel's release (or drifted
	// from it); Action and Blocked are its plan's.
	Lags    bool     `json:"lags"`
	Action  string   `json:"action"`
	Blocked []string `json:"blocked"`
}

// StatusOf is h's status against its channel among in's, nil when h
// follows none: the app's plan, the same rule as Make's.
func StatusOf(h *fold.Head, in Input, o Options) *Status {
	if h == nil || h.Follows == nil {
		return nil
	}
	ref := h.Follows.Recipe + "/" + h.Follows.Channel
	var c *fold.Channel
	for _, ch := range in.Channels {
		if ch.Recipe+"/"+ch.Channel == ref {
			c = ch
		}
	}
	a := planApp(h, c, ref, in, o)
	// Before a channel's first release there is nothing to lag behind.
	lags := a.Action != UpToDate && (c != nil && c.Version != "")
	return &Status{Channel: ref, Version: a.ChannelVersion, Lags: lags, Action: a.Action, Blocked: a.Blocked}
}

// Of plans from the log as it stands (FromStore, then Make). A channel
// named in o that has no log and no follower is store.ErrNotFound: a
// typo, most likely.
func Of(s *store.Store, o Options) (*Plan, error) {
	in, err := FromStore(s)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	p := Make(in, o)
	if o.Channel != nil && len(p.Apps) == 0 && !slices.ContainsFunc(in.Channels, func(c *fold.Channel) bool {
		return c.Recipe == o.Channel.Recipe && c.Channel == o.Channel.Channel
	}) {
		return nil, fmt.Errorf("plan: %w: no channel %s (no promotion, no app follows it)", store.ErrNotFound, o.Channel)
	}
	return p, nil
}
