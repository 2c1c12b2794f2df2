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

// removedApp leaves domain in the log as removed, its env file gone: an app
// a new `abra app new` may create again.
func removedApp(w *world) {
	w.envFile(s1, domain, "1.0.0")
	w.mustRun(0, "app", "deploy", domain)
	w.mustRun(0, "app", "remove", domain)
}

// A failed `app new --secrets` of an app the log knows (here created again
// after a remove) is recorded as a failed new, and nothing more: no secret
// was generated. Of an app the log does not know, nothing is recorded
// (TestFailedCommandOnAnAppTheLogDoesNotKnowRecordsNothing).
func TestFailedNewWithSecretsRecordsOnlyTheFailure(t *testing.T) {
	w := newWorld(t, nil)
	removedApp(w)
	w.order("exit", "2")
	res := w.mustRun(2, "app", "new", recipe, "-s", s1, "-D", domain, "--secrets")
	if len(res.Recorded) != 1 {
		t.Fatalf("recorded %d events", len(res.Recorded))
	}
	ev := res.Recorded[0]
	if ev.GetKind() != metav1.Kind_KIND_NEW || ev.GetOutcome() != failed || ev.GetMessage() != "abra exited 2" {
		t.Fatalf("recorded %s", prototext.Format(ev))
	}
	if where(ev) != "coop/"+s1+"/"+domain {
		t.Fatalf("the failed new went to %s, not where the app lives", where(ev))
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
			removedApp(w)
			w.order("exit", "2")
			res := w.mustRun(2, tt.args...)
			if len(res.Recorded) != 1 {
				t.Fatalf("recorded %d events", len(res.Recorded))
			}
			if got := res.Recorded[0].GetVersion(); got != tt.want {
				t.Fatalf("the failed new records version %q, want %q", got, tt.want)
			}
		})
	}
}
