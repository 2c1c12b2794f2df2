package fold

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/fold.golden")

// goldenLogs are logs that between them take every rule of the fold:
// deploys that fail and succeed, a Swarm rollback behind a passing deploy,
// chaos, secrets, env changes, locks, moves, forks and a kind from a newer
// meta.
func goldenLogs() map[string][]*metav1.Event {
	deploy, upgrade, rollback := metav1.Kind_KIND_DEPLOY, metav1.Kind_KIND_UPGRADE, metav1.Kind_KIND_ROLLBACK
	with := func(e *metav1.Event, f func(*metav1.Event)) *metav1.Event { f(e); return e }
	env := func(n int, digest string, parents ...int) *metav1.Event {
		return with(ev(n, metav1.Kind_KIND_ENV, ok, "", parents...), func(e *metav1.Event) {
			e.EnvDigest = digest
			e.Body = &metav1.Event_Env{Env: &metav1.EnvChange{Added: []string{"SMTP_HOST"}, Reason: "set"}}
		})
	}
	return map[string][]*metav1.Event{
		"deploys": {
			ev(1, metav1.Kind_KIND_NEW, ok, ""),
			with(ev(2, deploy, ok, "1.0.0", 1), func(e *metav1.Event) { e.Recipe = "matrix-synapse"; e.EnvDigest = "sha256:aa" }),
			ev(3, upgrade, failed, "1.1.0", 2),
			ev(4, upgrade, ok, "1.1.0", 3),
			with(ev(5, rollback, ok, "1.0.0", 4), func(e *metav1.Event) {
				e.Body = &metav1.Event_Rollback{Rollback: &metav1.Rollback{TargetVersion: "1.0.0", FromVersion: "1.1.0"}}
			}),
			secret(ev(6, metav1.Kind_KIND_SECRET_GENERATE, ok, "", 5), "db_password", "v1"),
			secret(ev(7, metav1.Kind_KIND_SECRET_INSERT, ok, "", 6), "smtp", "v2"),
			secret(ev(8, metav1.Kind_KIND_SECRET_REMOVE, ok, "", 7), "smtp", ""),
			env(9, "sha256:bb", 8),
			ev(10, metav1.Kind_KIND_NOTE, ok, "", 9),
			ev(11, metav1.Kind(99), ok, "", 10),
		},
		"swarm rolled back": {
			ev(1, deploy, ok, "1.0.0"),
			ev(2, upgrade, ok, "1.1.0", 1),
			observe(3, "1.1.0", "updating", 2),
			observe(4, "1.0.0", "rollback_completed", 3),
		},
		"chaos and drift": {
			with(ev(1, deploy, ok, "", 0), func(e *metav1.Event) { e.Parents = nil; e.ChaosVersion = "eb96de94+U" }),
			with(observe(2, "1.0.0", "", 1), func(e *metav1.Event) {
				e.GetObservation().Chaos, e.GetObservation().ChaosVersion = true, "eb96de94+U"
			}),
			observe(3, "6.6.6", "", 2),
			ev(4, metav1.Kind_KIND_UNDEPLOY, ok, "", 3),
			observe(5, "6.6.6", "", 4),
		},
		"locks": {
			ev(1, deploy, ok, "1.0.0"),
			lockEv(2, "alice", time.Hour, 1),
			lockEv(3, "bob", time.Hour, 2),
			unlockEv(4, "alice", 2, 3),
			lockEv(5, "bob", 30*time.Minute, 4),
		},
		"moved": {
			ev(1, deploy, ok, "1.0.0"),
			with(ev(2, metav1.Kind_KIND_MOVE, ok, "1.0.0", 1), func(e *metav1.Event) {
				e.Body = &metav1.Event_Move{Move: &metav1.Move{FromServer: "a", ToServer: "b", FromEnv: "prod", ToEnv: "staging"}}
			}),
		},
		"forked": {
			ev(1, deploy, ok, "1.0.0"),
			ev(2, upgrade, ok, "1.1.0", 1),
			ev(3, upgrade, ok, "1.2.0", 1),
			ev(4, metav1.Kind_KIND_REMOVE, ok, "", 2),
		},
	}
}

// TestFoldGolden pins what the fold makes of the golden logs. Memoised
// heads are reused as long as fold.Version is the same, so a change of the
// fold's output must come with a new Version: this test fails when it does
// not, and -update rewrites the file once it does.
func TestFoldGolden(t *testing.T) {
	logs := goldenLogs()
	var b strings.Builder
	fmt.Fprintf(&b, "fold version %d\n", Version)
	for _, name := range sortedKeys(logs) {
		// Every prefix, so that rules a later event overrides show too.
		for n := 1; n <= len(logs[name]); n++ {
			h, err := json.MarshalIndent(Fold(logs[name][:n]), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "\n== %s, %d events\n%s\n", name, n, h)
		}
	}
	got := []byte(b.String())
	file := filepath.Join("testdata", "fold.golden")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (go test ./store/fold -run Golden -update writes it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	wantVersion, _, _ := bytes.Cut(want, []byte("\n"))
	if string(wantVersion) == fmt.Sprintf("fold version %d", Version) {
		t.Fatalf("the fold's output changed but fold.Version is still %d: bump it, or every clone keeps serving heads folded by the old rules from its cache; then run go test ./store/fold -run Golden -update\n%s", Version, diffLines(string(want), string(got)))
	}
	t.Fatalf("fold.Version is now %d: run go test ./store/fold -run Golden -update to record its output\n%s", Version, diffLines(string(want), string(got)))
}

func sortedKeys(m map[string][]*metav1.Event) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// diffLines shows the first lines that differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}
