package opsync

import (
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// `abra app new --secrets` records the new app and one secret-generate per
// SECRET_*_VERSION line of the env file abra wrote, each its own commit,
// each the parent of the next, under the env meta.yaml's servers: maps the
// new env file's server to; the domain comes from -D or, when abra asked
// for it, from the env file abra created.
func TestNewWithSecretsRecordsTheAppAndEachSecret(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ask  string // the domain typed into abra's prompt
	}{
		{name: "--secrets", args: []string{"app", "new", recipe, "-s", s1, "-D", domain, "--secrets"}},
		{name: "aliases and short flags", args: []string{"app", "n", "-S", "-s", s1, recipe, "-D", domain}},
		{name: "flags with values", args: []string{"app", "new", recipe, "--server=" + s1, "--domain=" + domain, "--secrets"}},
		{name: "domain asked by abra", args: []string{"app", "new", recipe, "-s", s1, "--secrets"}, ask: domain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, map[string]string{s1: "staging"})
			w.envFile(s2, "other.example.com", "1.0.0") // another app: not new
			w.order("domain", tt.ask)
			res := w.mustRun(0, tt.args...)
			want := []*metav1.Event{
				{Kind: metav1.Kind_KIND_NEW, Outcome: succeeded, Version: "4.0.0+v1.93.0"},
				{Kind: metav1.Kind_KIND_SECRET_GENERATE, Outcome: succeeded, Body: secret("db_password", "v1")},
				{Kind: metav1.Kind_KIND_SECRET_GENERATE, Outcome: succeeded, Body: secret("smtp_password", "v2")},
			}
			if len(res.Recorded) != len(want) {
				t.Fatalf("recorded %d events, want %d", len(res.Recorded), len(want))
			}
			// The last three commits, oldest first, each hold one record.
			ids := strings.Fields(git(t, w.log.Root(), "log", "-3", "--reverse", "--format=%(trailers:key=Meta-Event,valueonly)"))
			for i, ev := range res.Recorded {
				if bare := unstamped(ev); !proto.Equal(bare, want[i]) {
					t.Errorf("event %d:\n got %s\nwant %s", i, prototext.Format(bare), prototext.Format(want[i]))
				}
				if where(ev) != "coop/staging/"+domain || ev.GetRecipe() != recipe || !equal(ev.GetCommand(), append([]string{"abra"}, tt.args...)) {
					t.Errorf("event %d: %s, recipe %q, command %q", i, where(ev), ev.GetRecipe(), ev.GetCommand())
				}
				if i >= len(ids) || ids[i] != ev.GetId() {
					t.Errorf("event %d is not the commit %d of the last three: %v", i, i, ids)
				}
				files := git(t, w.log.Root(), "show", "--name-only", "--format=", "main~"+strconv.Itoa(2-i))
				if strings.Count(files, "\n") != 0 || !strings.Contains(files, ev.GetId()) {
					t.Errorf("event %d's commit holds %q", i, files)
				}
				var parents []string
				if i > 0 {
					parents = []string{res.Recorded[i-1].GetId()}
				}
				if !equal(ev.GetParents(), parents) {
					t.Errorf("event %d: parents %v, want %v", i, ev.GetParents(), parents)
				}
			}
			h := w.head(domain)
			if h.State != "new" || h.Env != "staging" || len(h.Secrets) != 2 || h.Recipe != recipe {
				t.Fatalf("head %+v", h)
			}
			if w.tip(w.remote) != w.tip(w.log.Root()) {
				t.Fatal("not pushed")
			}
		})
	}
}

// A failed `app new --secrets` is recorded as a failed new, and nothing
// more: no secret was generated.
func TestFailedNewWithSecretsRecordsOnlyTheFailure(t *testing.T) {
	w := newWorld(t, nil)
	w.order("exit", "2")
	res := w.mustRun(2, "app", "new", recipe, "-s", s1, "-D", domain, "--secrets")
	if len(res.Recorded) != 1 {
		t.Fatalf("recorded %d events", len(res.Recorded))
	}
	ev := res.Recorded[0]
	if ev.GetKind() != metav1.Kind_KIND_NEW || ev.GetOutcome() != failed || ev.GetMessage() != "abra exited 2" {
		t.Fatalf("recorded %s", prototext.Format(ev))
	}
}

// A failed `abra app new RECIPE [VERSION] --secrets` records the version
// it asked for, never the recipe's name (the version came from the first
// argument, which for new is the recipe, until abra.Command.VersionArg).
func TestFailedNewDoesNotRecordTheRecipeAsItsVersion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no version asked", []string{"app", "new", recipe, "-s", s1, "-D", domain, "--secrets"}, ""},
		{"a version asked", []string{"app", "new", recipe, "4.1.0+v1.94.0", "-s", s1, "-D", domain, "--secrets"}, "4.1.0+v1.94.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			w.order("exit", "2")
			res := w.mustRun(2, tt.args...)
			if got := res.Recorded[0].GetVersion(); got != tt.want {
				t.Fatalf("the failed new records version %q, want %q", got, tt.want)
			}
		})
	}
}

// A failed `abra app new --secrets -s SERVER`, whose env file abra did not
// write, is placed where servers: maps SERVER, with or without a default
// env in meta.yaml (the server used to come from the env file only, so the
// event went to the default env, or was not recorded without one).
func TestFailedNewIsPlacedByItsServerFlag(t *testing.T) {
	for name, env := range map[string]string{"default env prod": "prod", "no default env": ""} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorldEnv(t, env, map[string]string{s1: "staging"})
			w.order("exit", "2")
			res, err := w.run(Options{}, "app", "new", recipe, "-s", s1, "-D", domain, "--secrets")
			if err != nil || res.Code != 2 || len(res.Recorded) != 1 {
				t.Fatalf("Run = %+v, %v; want code 2 and the failure recorded", res, err)
			}
			if got := where(res.Recorded[0]); got != "coop/staging/"+domain {
				t.Fatalf("the failed new went to %s, want coop/staging/%s", got, domain)
			}
		})
	}
}
