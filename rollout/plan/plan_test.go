package plan

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// app is a head deployed at version, following nextcloud/stable.
func app(domain, env, version string, change ...func(*fold.Head)) *fold.Head {
	h := &fold.Head{Domain: domain, Project: "coop", Env: env, State: fold.StateDeployed, Version: version, Recipe: "nextcloud",
		Follows: &fold.Follow{Recipe: "nextcloud", Channel: "stable"}}
	for _, c := range change {
		c(h)
	}
	return h
}

// recorded are the releases of nextcloud the log holds.
var recorded = map[string]map[string]bool{"nextcloud": {"2.0.0": true, "2.1.0": true, "2.2.0": true}}

// withReleases is in with the recorded releases.
func withReleases(in Input) Input {
	in.Releases = recorded
	return in
}

func channel(version string, forked bool, history ...string) *fold.Channel {
	c := &fold.Channel{Recipe: "nextcloud", Channel: "stable", Version: version, Forked: forked}
	for _, v := range append(history, version) {
		c.History = append(c.History, fold.Promotion{Ref: fold.Ref{Version: v}})
	}
	if forked {
		c.Forks = []fold.Promotion{{Ref: fold.Ref{Version: "2.0.0", Operator: "Alice"}}, {Ref: fold.Ref{Version: version, Operator: "Bob"}}}
	}
	return c
}

func TestEveryState(t *testing.T) {
	for _, tc := range []struct {
		name    string
		head    *fold.Head
		channel *fold.Channel
		action  string
		blocked string // the start of the first reason
		command string
	}{
		{"up to date", app("a.example.org", "prod", "2.1.0"), channel("2.1.0", false), UpToDate, "", ""},
		{"lagging", app("a.example.org", "prod", "2.0.0"), channel("2.1.0", false), Upgrade, "", "abra app upgrade --no-input a.example.org 2.1.0"},
		{"channel moved back", app("a.example.org", "prod", "2.1.0"), channel("2.0.0", false, "2.0.0", "2.1.0"), Rollback, "", "abra app rollback --no-input a.example.org 2.0.0"},
		// A hotfix by hand, newer than anything the channel had: no
		// downgrade is offered.
		{"app ahead of its channel", app("a.example.org", "prod", "2.2.0"), channel("2.1.0", false), Blocked, BlockAhead, ""},
		// A hand-made promotion to a release nobody recorded moves no app.
		{"channel at an unrecorded release", app("a.example.org", "prod", "2.0.0"), channel("9.9.9", false), Blocked, BlockNoRelease + ": nextcloud/stable is at 9.9.9, which is no recorded release", ""},
		{"app forked at the channel's release", app("a.example.org", "prod", "2.1.0", func(h *fold.Head) { h.Forked, h.Heads = true, make([]fold.Ref, 2) }), channel("2.1.0", false), Blocked, BlockAppForked, ""},
		{"other recipe at the channel's version", app("a.example.org", "prod", "2.1.0", func(h *fold.Head) { h.Recipe = "matrix-synapse" }), channel("2.1.0", false), Blocked, BlockRecipe, ""},
		{"channel never promoted", app("a.example.org", "prod", "2.0.0"), nil, Blocked, BlockNoRelease, ""},
		{"channel forked", app("a.example.org", "prod", "2.0.0"), channel("2.1.0", true), Blocked, BlockForked, ""},
		{"drifted", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) { h.Drift, h.DriftDetail = fold.DriftDegraded, "app runs 0 of 1 tasks" }), channel("2.1.0", false), Blocked, BlockDrift + ": app runs 0 of 1", ""},
		{"drifted at the channel's release", app("a.example.org", "prod", "2.1.0", func(h *fold.Head) { h.Drift = fold.DriftDown }), channel("2.1.0", false), Blocked, BlockDrift, ""},
		{"locked by another", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) {
			h.Lock = &fold.Lock{Holder: "Bob", Reason: "postgres", Expires: now.Add(time.Hour)}
		}), channel("2.1.0", false), Blocked, BlockLocked + ": Bob holds a lock", ""},
		{"locked by the planner", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) {
			h.Lock = &fold.Lock{Holder: "Alice", Expires: now.Add(time.Hour)}
		}), channel("2.1.0", false), Upgrade, "", "abra app upgrade --no-input a.example.org 2.1.0"},
		{"a lock expired", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) {
			h.Lock = &fold.Lock{Holder: "Bob", Expires: now.Add(-time.Minute)}
		}), channel("2.1.0", false), Upgrade, "", "abra app upgrade --no-input a.example.org 2.1.0"},
		{"app forked", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) { h.Forked, h.Heads = true, make([]fold.Ref, 2) }), channel("2.1.0", false), Blocked, BlockAppForked, ""},
		{"last deploy failed", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) {
			h.State, h.LastFailure = fold.StateRolledBack, &fold.Ref{Kind: "upgrade", Version: "2.1.0", Operator: "Bob", Detail: "rollback completed"}
		}), channel("2.1.0", false), Blocked, BlockFailed + ": the last deploy is rolled-back (upgrade 2.1.0 by Bob: rollback completed)", ""},
		{"pending", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) { h.State = fold.StatePending }), channel("2.1.0", false), Blocked, BlockFailed, ""},
		{"other recipe", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) { h.Recipe = "matrix-synapse" }), channel("2.1.0", false), Blocked, BlockRecipe, ""},
		{"undeployed", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) { h.State = fold.StateUndeployed }), channel("2.1.0", false), Blocked, BlockState, ""},
		{"new", app("a.example.org", "prod", "", func(h *fold.Head) { h.State = fold.StateNew }), channel("2.1.0", false), Blocked, BlockState, ""},
		{"chaos", app("a.example.org", "prod", "2.0.0", func(h *fold.Head) { h.ChaosVersion = "eb96de94+U" }), channel("2.1.0", false), Blocked, BlockChaos, ""},
		{"a version no recipe has", app("a.example.org", "prod", "latest"), channel("2.1.0", false), Blocked, BlockVersion, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var chans []*fold.Channel
			if tc.channel != nil {
				chans = append(chans, tc.channel)
			}
			p := Make(withReleases(Input{Heads: []*fold.Head{tc.head}, Channels: chans}), Options{Operator: "Alice", Now: now})
			if len(p.Apps) != 1 {
				t.Fatalf("%d apps planned", len(p.Apps))
			}
			a := p.Apps[0]
			if a.Action != tc.action {
				t.Fatalf("action %s (%v), want %s", a.Action, a.Blocked, tc.action)
			}
			if tc.blocked != "" && (len(a.Blocked) == 0 || !strings.HasPrefix(a.Blocked[0], tc.blocked)) {
				t.Fatalf("blocked %q, want one starting %q", a.Blocked, tc.blocked)
			}
			if got := strings.Join(a.Command, " "); got != tc.command {
				t.Fatalf("command %q, want %q", got, tc.command)
			}
			if (a.Wave != 0) != (tc.command != "") {
				t.Fatalf("wave %d for action %s", a.Wave, a.Action)
			}
		})
	}
}

func TestRemovedMovedAndUnfollowingAppsAreNotPlanned(t *testing.T) {
	heads := []*fold.Head{
		app("a.example.org", "prod", "2.0.0", func(h *fold.Head) { h.State = fold.StateRemoved }),
		app("b.example.org", "prod", "2.0.0", func(h *fold.Head) { h.State = fold.StateMoved }),
		app("c.example.org", "prod", "2.0.0", func(h *fold.Head) { h.Follows = nil }),
		app("d.example.org", "prod", "2.0.0", func(h *fold.Head) { h.Follows.Channel = "staging" }),
	}
	stable := projects.ChannelRef{Recipe: "nextcloud", Channel: "stable"}
	p := Make(withReleases(Input{Heads: heads, Channels: []*fold.Channel{channel("2.1.0", false)}}), Options{Channel: &stable, Now: now})
	if len(p.Apps) != 0 || len(p.Channels) != 1 || p.Channels[0].Followers != 0 {
		t.Fatalf("planned %+v, channels %+v", p.Apps, p.Channels)
	}
}

func TestWavesByEnvOrderServerAndSize(t *testing.T) {
	var heads []*fold.Head
	for _, a := range []struct{ domain, env, server string }{
		{"p1.example.org", "prod", "s1"}, {"p2.example.org", "prod", "s1"}, {"p3.example.org", "prod", "s1"},
		{"p4.example.org", "prod", "s2"}, {"t1.example.org", "test", ""}, {"s1.example.org", "staging", ""},
		{"x1.example.org", "another", ""},
	} {
		server := a.server
		heads = append(heads, app(a.domain, a.env, "2.0.0", func(h *fold.Head) {
			if server != "" {
				h.Observed = &fold.Observation{}
				h.Observed.Server = server
			}
		}))
	}
	heads = append(heads, app("u.example.org", "prod", "2.1.0")) // up to date: in no wave
	cfg := config.Config{Project: "coop", Servers: map[string]config.Server{"staging-box": {Env: "staging"}}}
	p := Make(withReleases(Input{Heads: heads, Channels: []*fold.Channel{channel("2.1.0", false)}, Config: cfg}),
		Options{EnvOrder: []string{"test", "staging", "prod"}, WaveSize: 2, Now: now})
	var got []string
	for _, w := range p.Waves {
		got = append(got, w.Env+"/"+w.Server+":"+strings.Join(w.Apps, ","))
	}
	want := []string{
		"test/test:coop/test/t1.example.org",
		"staging/staging-box:coop/staging/s1.example.org",
		"prod/s1:coop/prod/p1.example.org,coop/prod/p2.example.org",
		"prod/s1:coop/prod/p3.example.org",
		"prod/s2:coop/prod/p4.example.org",
		"another/another:coop/another/x1.example.org",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("waves\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p.Counts != (Counts{UpToDate: 1, Upgrade: 7}) {
		t.Fatalf("counts %+v", p.Counts)
	}
	// The apps come in wave order, the up-to-date one last.
	if p.Apps[0].Domain != "t1.example.org" || p.Apps[len(p.Apps)-1].Domain != "u.example.org" {
		t.Fatalf("apps in order %v ... %v", p.Apps[0].Domain, p.Apps[len(p.Apps)-1].Domain)
	}
}

// Every machine plans the same: the input's order does not matter.
func TestSamePlanWhateverTheOrder(t *testing.T) {
	var heads []*fold.Head
	for _, d := range []string{"a", "b", "c", "d", "e"} {
		heads = append(heads, app(d+".example.org", map[bool]string{true: "prod", false: "test"}[d < "c"], "2.0.0"))
	}
	one := Make(withReleases(Input{Heads: heads, Channels: []*fold.Channel{channel("2.1.0", false)}}), Options{WaveSize: 1, Now: now})
	slices.Reverse(heads)
	two := Make(withReleases(Input{Heads: heads, Channels: []*fold.Channel{channel("2.1.0", false)}}), Options{WaveSize: 1, Now: now})
	a, _ := json.Marshal(one)
	b, _ := json.Marshal(two)
	if string(a) != string(b) {
		t.Fatalf("plans differ:\n%s\n%s", a, b)
	}
	if strings.Contains(string(a), "null") {
		t.Fatalf("a list is null: %s", a)
	}
}

func TestRetryLiftsOnlyTheFailedBlock(t *testing.T) {
	failed := func(h *fold.Head) { h.State = fold.StateDeployFailed }
	heads := []*fold.Head{app("a.example.org", "prod", "2.0.0", failed), app("b.example.org", "prod", "2.0.0", failed),
		app("c.example.org", "prod", "2.0.0", failed, func(h *fold.Head) { h.Drift = fold.DriftDown })}
	p := Make(withReleases(Input{Heads: heads, Channels: []*fold.Channel{channel("2.1.0", false)}}),
		Options{Now: now, Retry: []string{"coop/prod/a.example.org", "coop/prod/c.example.org"}})
	got := map[string]string{}
	for _, a := range p.Apps {
		got[a.Domain] = a.Action
	}
	if got["a.example.org"] != Upgrade || got["b.example.org"] != Blocked || got["c.example.org"] != Blocked {
		t.Fatalf("actions %v", got)
	}
}

func TestStatusOf(t *testing.T) {
	chans := []*fold.Channel{channel("2.1.0", false)}
	if s := StatusOf(app("a.example.org", "prod", "2.1.0"), withReleases(Input{Channels: chans}), Options{Now: now}); s == nil || s.Lags || s.Action != UpToDate || s.Version != "2.1.0" || s.Channel != "nextcloud/stable" {
		t.Fatalf("up to date: %+v", s)
	}
	if s := StatusOf(app("a.example.org", "prod", "2.0.0"), withReleases(Input{Channels: chans}), Options{Now: now}); s == nil || !s.Lags || s.Action != Upgrade {
		t.Fatalf("lagging: %+v", s)
	}
	if s := StatusOf(app("a.example.org", "prod", "2.0.0", func(h *fold.Head) { h.Follows = nil }), withReleases(Input{Channels: chans}), Options{Now: now}); s != nil {
		t.Fatalf("not following: %+v", s)
	}
}
