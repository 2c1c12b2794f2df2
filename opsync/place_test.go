package opsync

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// An app new to the log goes where meta.yaml's servers: maps the server
// its env file is under: "env" in the default project, "project/env", or,
// for a server the map does not name, the env named like the server. An
// app the log knows stays where it is, whatever the map says later.
func TestNewAppIsPlacedWhereServersMapsItsServer(t *testing.T) {
	tests := []struct {
		name    string
		servers map[string]string
		want    string
	}{
		{"env", map[string]string{s1: "staging"}, "coop/staging"},
		{"project and env", map[string]string{s1: "other/edge"}, "other/edge"},
		{"not in the map", map[string]string{s2: "staging"}, "coop/" + s1},
		{"no map", nil, "coop/" + s1},
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
			setServers(t, join(t, w.remote, "bob").Root(), map[string]string{s1: "elsewhere"})
			res = w.mustRun(0, "app", "upgrade", domain, "2.0.0")
			if got := where(res.Recorded[0]); got != tt.want+"/"+domain {
				t.Fatalf("after the map changed, the app's event went to %s, want %s where it lives", got, tt.want)
			}
		})
	}
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
			if got := w.log.Config().Servers[s1]; got != "prod" {
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
