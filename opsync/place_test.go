package opsync

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// An app new to the log goes where meta.yaml's servers: maps the server
// its env file is under: "env" in the default project, "project/env", or,
// for a server the map does not name, the env named like the server; the
// result says where, and why. An app the log knows stays where it is,
// whatever the map says later.
func TestNewAppIsPlacedWhereServersMapsItsServer(t *testing.T) {
	tests := []struct {
		name    string
		servers map[string]string
		want    string
		said    string
	}{
		{"env", map[string]string{s1: "staging"}, "coop/staging",
			"new app app.example.com in project coop, env staging (from servers: in meta.yaml for abra server s1.example.com)"},
		{"project and env", map[string]string{s1: "other/edge"}, "other/edge",
			"new app app.example.com in project other, env edge (from servers: in meta.yaml for abra server s1.example.com)"},
		{"not in the map", map[string]string{s2: "staging"}, "coop/" + s1,
			"new app app.example.com in project coop, env s1.example.com (project from meta.yaml, env from abra server s1.example.com)"},
		{"no map", nil, "coop/" + s1,
			"new app app.example.com in project coop, env s1.example.com (project from meta.yaml, env from abra server s1.example.com)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tt.servers)
			w.envFile(s1, domain, "1.0.0")
			res := w.mustRun(0, "app", "deploy", domain)
			if got := where(res.Recorded[0]); got != tt.want+"/"+domain {
				t.Fatalf("the new app went to %s, want %s", got, tt.want)
			}
			if len(res.NewApps) != 1 || res.NewApps[0].String() != tt.said {
				t.Errorf("NewApps = %v, want [%s]", res.NewApps, tt.said)
			}
			setServers(t, join(t, w.remote, "bob").Root(), map[string]string{s1: "elsewhere"})
			res = w.mustRun(0, "app", "upgrade", domain, "2.0.0")
			if got := where(res.Recorded[0]); got != tt.want+"/"+domain {
				t.Fatalf("after the map changed, the app's event went to %s, want %s where it lives", got, tt.want)
			}
			if len(res.NewApps) != 0 {
				t.Errorf("an app the log knows is new again: %v", res.NewApps)
			}
		})
	}
}

// A command that fails (or is killed) on an app the log has no events of,
// typically a typo'd domain, records nothing: abra's exit code passes
// through, nothing is committed here or pushed, the log lists what it
// listed, and meta says why. The same command on an app the log knows is
// recorded as failed (TestRunRecordsWhatEachCommandDid).
func TestFailedCommandOnAnAppTheLogDoesNotKnowRecordsNothing(t *testing.T) {
	const typo = "nosuch.example.com"
	tests := []struct {
		name    string
		orders  map[string]string
		args    []string
		code    int
		envFile bool   // abra has an env file for it
		env     string // meta.yaml's default env
		opts    Options
	}{
		{name: "deploy of a typo", orders: map[string]string{"exit": "1"}, args: []string{"app", "deploy", typo}, code: 1, env: "prod"},
		{name: "deploy of a typo, no default env", orders: map[string]string{"exit": "1"}, args: []string{"app", "deploy", typo}, code: 1},
		{name: "deploy of a typo, killed", orders: map[string]string{"signal": "KILL"}, args: []string{"app", "deploy", typo}, code: 128 + 9},
		{name: "failed deploy of an app abra has", orders: map[string]string{"exit": "2"}, args: []string{"app", "deploy", typo, "1.1.0"}, code: 2, envFile: true},
		{name: "failed new --secrets", orders: map[string]string{"exit": "1"}, args: []string{"app", "new", recipe, "-s", s1, "-D", typo, "--secrets"}, code: 1},
		{name: "failed secret insert", orders: map[string]string{"exit": "1"}, args: []string{"app", "secret", "insert", typo, "db_password", "v2", "x"}, code: 1},
		{name: "failed move", orders: map[string]string{"exit": "1"}, args: []string{"app", "move", typo, s2}, code: 1, envFile: true},
		{name: "without sync", orders: map[string]string{"exit": "1"}, args: []string{"app", "undeploy", typo}, code: 1, opts: Options{NoSync: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorldEnv(t, tt.env, nil)
			w.envFile(s1, domain, "1.0.0")
			w.mustRun(0, "app", "deploy", domain)
			if tt.envFile {
				w.envFile(s1, typo, "1.0.0")
			}
			listed := heads(t, w)
			tip, remote := w.tip(w.log.Root()), w.tip(w.remote)
			for k, v := range tt.orders {
				w.order(k, v)
			}
			res, err := w.run(tt.opts, tt.args...)
			if err != nil || res.Code != tt.code {
				t.Fatalf("Run = %+v, %v; want abra's code %d and no error", res, err, tt.code)
			}
			if len(res.Recorded) != 0 || len(res.NewApps) != 0 {
				t.Errorf("recorded %v, new apps %v", res.Recorded, res.NewApps)
			}
			if w.tip(w.log.Root()) != tip || w.tip(w.remote) != remote {
				t.Error("something was committed")
			}
			if got := heads(t, w); got != listed {
				t.Errorf("the log lists\n%s\nnow, and listed\n%s", got, listed)
			}
			want := fmt.Sprintf("abra exited %d, and the log has no events of %s: nothing recorded", tt.code, typo)
			if warned := strings.Join(w.warned(), "\n"); warned != want {
				t.Errorf("warned %q, want %q", warned, want)
			}
		})
	}
}

// heads is what the log lists, one app a line.
func heads(t *testing.T, w *world) string {
	t.Helper()
	hs, err := w.log.List()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "%s/%s/%s %s %s\n", h.Project, h.Env, h.Domain, h.State, h.Version)
	}
	return b.String()
}

// The bug this refactor fixed: an app new to the log is placed by
// meta.yaml as the write's own pull leaves it, not as this clone read it
// before. Bob changes servers: with plain git commit and git push, before
// Alice runs abra (the pull before abra brings it) or while abra runs
// (only the pull at the start of the write brings it); either way Alice's
// new app goes where the new map says.
func TestNewAppIsPlacedByTheMapThePullBrought(t *testing.T) {
	for _, when := range []string{"before abra", "while abra runs"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, map[string]string{s1: "prod"})
			if got := w.log.Config().Servers[s1]; got.Env != "prod" || got.Project != "" {
				t.Fatalf("Alice's clone maps %s to %q", s1, got)
			}
			w.envFile(s1, domain, "1.0.0")
			bobs := join(t, w.remote, "bob")
			changed := withServers(t, bobs.Root(), map[string]string{s1: "staging"})
			if when == "before abra" {
				setServers(t, bobs.Root(), map[string]string{s1: "staging"})
			} else {
				write(t, filepath.Join(w.ctl, "meta.yaml"), changed, 0o644)
				var hook strings.Builder
				hook.WriteString("#!/bin/sh\nset -e\n")
				for _, kv := range gitEnv {
					fmt.Fprintf(&hook, "export %s\n", kv)
				}
				fmt.Fprintf(&hook, "cd '%s'\ncp '%s' meta.yaml\ngit commit -qam 'servers: %s is staging now'\ngit push -q origin main\nrm '%s'\n",
					bobs.Root(), filepath.Join(w.ctl, "meta.yaml"), s1, filepath.Join(w.ctl, "during"))
				w.order("during", hook.String())
			}

			res := w.mustRun(0, "app", "deploy", domain)
			if !strings.Contains(git(t, w.remote, "show", "main:meta.yaml"), s1+": staging") {
				t.Fatal("Bob's change did not reach the remote")
			}
			if got := where(res.Recorded[0]); got != "coop/staging/"+domain {
				t.Fatalf("the new app went to %s, want coop/staging/%s as the new map says", got, domain)
			}
			if got := git(t, w.log.Root(), "log", "-2", "--format=%s"); !strings.HasPrefix(got, "deploy "+domain+" 1.0.0 by Alice\nservers: ") && when == "while abra runs" {
				t.Fatalf("the deploy is not on top of Bob's change:\n%s", got)
			}
			if w.tip(w.remote) != w.tip(w.log.Root()) {
				t.Fatal("not pushed")
			}
		})
	}
}

// `abra app remove` deletes the env file, and the remove event still
// carries the recipe it named and is placed by its server: the env files
// are read before abra runs (they used to be read after, when they were
// gone, so the event had no recipe, went to the default env, or was not
// recorded at all without one).
func TestRemoveRecordsWhatTheDeletedEnvFileSaid(t *testing.T) {
	tests := []struct {
		name  string
		env   string // meta.yaml's default env
		known bool   // the app has events before
	}{
		{"app in the log", "prod", true},
		{"app new to the log", "prod", false},
		{"app new to the log, no default env", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorldEnv(t, tt.env, map[string]string{s1: "staging"})
			w.envFile(s1, domain, "1.0.0")
			if tt.known {
				w.mustRun(0, "app", "deploy", domain)
			}
			res, err := w.run(Options{}, "app", "remove", domain)
			if err != nil || res.Code != 0 || len(res.Recorded) != 1 {
				t.Fatalf("Run = %+v, %v; want code 0 and the remove recorded", res, err)
			}
			ev := res.Recorded[0]
			if where(ev) != "coop/staging/"+domain {
				t.Errorf("the remove went to %s, want coop/staging/%s", where(ev), domain)
			}
			if ev.GetRecipe() != recipe {
				t.Errorf("the remove records recipe %q, want %q", ev.GetRecipe(), recipe)
			}
			if h := w.head(domain); h.State != "removed" {
				t.Errorf("head %s", h.State)
			}
		})
	}
}
