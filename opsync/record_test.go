package opsync

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

const (
	succeeded = metav1.Outcome_OUTCOME_SUCCEEDED
	failed    = metav1.Outcome_OUTCOME_FAILED
	aborted   = metav1.Outcome_OUTCOME_ABORTED
)

func secret(name, version string) *metav1.Event_Secret {
	return &metav1.Event_Secret{Secret: &metav1.Secret{Name: name, Version: version}}
}

// The secret value the tests insert; it must appear in no git object.
const secretValue = "hunter2-sw0rdfish"

// Every state-changing abra command is recorded as what it did: its kind,
// its outcome by abra's exit code (0 succeeded, non-zero failed, killed by
// a signal aborted), the version abra wrote into the env file (the chaos
// version with --chaos), the recipe, and the command line as typed, secret
// values redacted. Each event is a commit of its own, pushed. Every case
// starts from the app deployed at 1.0.0 on s1.example.com, which the log
// places in env s1.example.com of the default project (no servers: map).
func TestRunRecordsWhatEachCommandDid(t *testing.T) {
	tests := []struct {
		name   string
		first  [][]string        // commands run (and recorded) before
		orders map[string]string // what the stand-in abra is told
		setup  func(w *world)
		args   []string
		code   int
		// want are the events recorded, oldest first, without what the
		// store stamps; command is the line recorded.
		want    []*metav1.Event
		command []string
		warns   string
	}{
		{name: "deploy records the version abra wrote", orders: map[string]string{"version": "1.1.0"},
			args: []string{"app", "deploy", domain},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_DEPLOY, Outcome: succeeded, Version: "1.1.0"}}},
		{name: "deploy by its alias", orders: map[string]string{"version": "1.1.0"},
			args: []string{"app", "d", domain},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_DEPLOY, Outcome: succeeded, Version: "1.1.0"}}},
		{name: "upgrade to the version asked", args: []string{"app", "upgrade", domain, "2.0.0"},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_UPGRADE, Outcome: succeeded, Version: "2.0.0"}}},
		{name: "upgrade to the latest, which abra wrote", orders: map[string]string{"version": "2.1.0"},
			args: []string{"app", "upgrade", domain},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_UPGRADE, Outcome: succeeded, Version: "2.1.0"}}},
		{name: "rollback", args: []string{"app", "rollback", domain, "0.9.0"},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_ROLLBACK, Outcome: succeeded, Version: "0.9.0",
				Body: &metav1.Event_Rollback{Rollback: &metav1.Rollback{TargetVersion: "0.9.0", FromVersion: "1.0.0"}}}}},
		{name: "chaos deploy records the chaos version", orders: map[string]string{"chaos": "eb96de94+U"},
			args: []string{"app", "deploy", "--chaos", domain},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_DEPLOY, Outcome: succeeded, ChaosVersion: "eb96de94+U"}}},
		{name: "failed upgrade records the version tried", orders: map[string]string{"exit": "3"},
			args: []string{"app", "upgrade", domain, "3.0.0"}, code: 3,
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_UPGRADE, Outcome: failed, Version: "3.0.0", Message: "abra exited 3"}}},
		{name: "deploy killed by a signal is aborted", orders: map[string]string{"signal": "KILL"},
			args: []string{"app", "deploy", domain}, code: 128 + 9,
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_DEPLOY, Outcome: aborted, Message: "abra exited 137"}}},
		{name: "deploy with no version anywhere is a note",
			setup: func(w *world) {
				write(w.t, filepath.Join(w.abraDir, "servers", s1, domain+".env"), "TYPE="+recipe+"\nDOMAIN="+domain+"\n", 0o644)
			},
			args:  []string{"app", "deploy", domain},
			want:  []*metav1.Event{{Kind: metav1.Kind_KIND_NOTE, Outcome: succeeded, Message: "abra app deploy succeeded; version unknown"}},
			warns: "abra did not write the deployed version"},
		{name: "undeploy", args: []string{"app", "undeploy", domain},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_UNDEPLOY, Outcome: succeeded}}},
		{name: "restore of a snapshot", args: []string{"app", "restore", domain, "app", "--snapshot", "4a5b6c"},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_RESTORE, Outcome: succeeded,
				Body: &metav1.Event_Restore{Restore: &metav1.Restore{Snapshot: "4a5b6c"}}}}},
		{name: "volume remove", args: []string{"app", "volume", "remove", domain, "data"},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_VOLUME_REMOVE, Outcome: succeeded,
				Body: &metav1.Event_Volume{Volume: &metav1.Volume{Name: "data"}}}}},
		{name: "volume remove chosen in abra's prompt", args: []string{"app", "volume", "rm", domain},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_VOLUME_REMOVE, Outcome: succeeded,
				Body: &metav1.Event_Volume{Volume: &metav1.Volume{Name: "(chosen in abra)"}}}}},
		{name: "secret generate", args: []string{"app", "secret", "generate", domain, "db_password", "v2"},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_SECRET_GENERATE, Outcome: succeeded, Body: secret("db_password", "v2")}}},
		{name: "secret generate --all: one event per secret of the env file", args: []string{"app", "secret", "generate", domain, "--all"},
			want: []*metav1.Event{
				{Kind: metav1.Kind_KIND_SECRET_GENERATE, Outcome: succeeded, Body: secret("db_password", "v1")},
				{Kind: metav1.Kind_KIND_SECRET_GENERATE, Outcome: succeeded, Body: secret("smtp_password", "v2")},
			}},
		{name: "secret insert: the value is redacted", args: []string{"app", "secret", "insert", domain, "smtp_password", "v3", secretValue},
			want:    []*metav1.Event{{Kind: metav1.Kind_KIND_SECRET_INSERT, Outcome: succeeded, Body: secret("smtp_password", "v3")}},
			command: []string{"abra", "app", "secret", "insert", domain, "smtp_password", "v3", record.Redacted}},
		{name: "failed secret insert: the value is redacted", orders: map[string]string{"exit": "1"},
			args: []string{"app", "s", "i", domain, "smtp_password", "v3", secretValue}, code: 1,
			want:    []*metav1.Event{{Kind: metav1.Kind_KIND_SECRET_INSERT, Outcome: failed, Message: "abra exited 1", Body: secret("smtp_password", "v3")}},
			command: []string{"abra", "app", "s", "i", domain, "smtp_password", "v3", record.Redacted}},
		{name: "secret remove", args: []string{"app", "secret", "rm", domain, "db_password"},
			want: []*metav1.Event{{Kind: metav1.Kind_KIND_SECRET_REMOVE, Outcome: succeeded, Body: secret("db_password", "")}}},
		{name: "secret remove --all: one event per secret the log knows",
			first: [][]string{{"app", "secret", "generate", domain, "--all"}},
			args:  []string{"app", "secret", "remove", domain, "--all"},
			want: []*metav1.Event{
				{Kind: metav1.Kind_KIND_SECRET_REMOVE, Outcome: succeeded, Body: secret("db_password", "")},
				{Kind: metav1.Kind_KIND_SECRET_REMOVE, Outcome: succeeded, Body: secret("smtp_password", "")},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			w.envFile(s1, domain, "1.0.0")
			seed := w.mustRun(0, "app", "deploy", domain)
			for _, args := range tt.first {
				w.mustRun(0, args...)
			}
			for k, v := range tt.orders {
				w.order(k, v)
			}
			if tt.setup != nil {
				tt.setup(w)
			}
			commits := git(t, w.log.Root(), "rev-list", "--count", "main")

			res, err := w.run(Options{}, tt.args...)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Code != tt.code {
				t.Fatalf("Code = %d, want abra's %d", res.Code, tt.code)
			}
			if len(res.Recorded) != len(tt.want) {
				t.Fatalf("recorded %d events, want %d: %v", len(res.Recorded), len(tt.want), res.Recorded)
			}
			command := tt.command
			if command == nil {
				command = append([]string{"abra"}, tt.args...)
			}
			logged := w.events()[:len(tt.want)] // newest first
			for i, want := range tt.want {
				got := res.Recorded[i]
				if stored := logged[len(tt.want)-1-i]; !proto.Equal(stored, got) {
					t.Errorf("event %d: the log holds\n%s\nRun reported\n%s", i, prototext.Format(stored), prototext.Format(got))
				}
				if where(got) != "coop/"+s1+"/"+domain {
					t.Errorf("event %d recorded under %s", i, where(got))
				}
				if got.GetRecipe() != recipe {
					t.Errorf("event %d: recipe %q, want %q", i, got.GetRecipe(), recipe)
				}
				if !equal(got.GetCommand(), command) {
					t.Errorf("event %d: command %q, want %q", i, got.GetCommand(), command)
				}
				if got.GetActor().GetName() != alice.GetName() {
					t.Errorf("event %d: operator %q", i, got.GetActor().GetName())
				}
				// A deploy says the stack abra deployed it as; nothing else
				// does.
				if stack := map[bool]string{true: "app_example_com"}[record.IsDeployKind(got.GetKind())]; got.GetStack() != stack {
					t.Errorf("event %d: stack %q, want %q", i, got.GetStack(), stack)
				}
				if got.GetBrokeLock() != "" {
					t.Errorf("event %d broke lock %s", i, got.GetBrokeLock())
				}
				if bare := unstamped(got); !proto.Equal(bare, want) {
					t.Errorf("event %d:\n got %s\nwant %s", i, prototext.Format(bare), prototext.Format(want))
				}
			}
			// The first event follows the seed deploy's; the others follow
			// each other.
			if tt.first == nil {
				if p := res.Recorded[0].GetParents(); !equal(p, []string{seed.Recorded[0].GetId()}) {
					t.Errorf("parents %v, want the seed deploy %s", p, seed.Recorded[0].GetId())
				}
			}
			for i := 1; i < len(res.Recorded); i++ {
				if p := res.Recorded[i].GetParents(); !equal(p, []string{res.Recorded[i-1].GetId()}) {
					t.Errorf("event %d: parents %v, want [%s]", i, p, res.Recorded[i-1].GetId())
				}
			}
			if n, _ := strconv.Atoi(commits); git(t, w.log.Root(), "rev-list", "--count", "main") != strconv.Itoa(n+len(tt.want)) {
				t.Errorf("not one commit per event: %s", git(t, w.log.Root(), "log", "--format=%s", "-5"))
			}
			if w.tip(w.log.Root()) != w.tip(w.remote) {
				t.Error("the events were not pushed")
			}
			if warned := strings.Join(w.warned(), "\n"); tt.warns != "" && !strings.Contains(warned, tt.warns) || tt.warns == "" && warned != "" {
				t.Errorf("warnings %q, want %q", warned, tt.warns)
			}
			if strings.Contains(strings.Join(tt.args, " "), secretValue) {
				assertNowhere(t, secretValue, "smtp_password", w.log.Root(), w.remote)
			}
		})
	}
}

// unstamped is ev without what the store stamps and what the test checks
// on its own (the env a deploy ran with: envcheck_test.go).
func unstamped(ev *metav1.Event) *metav1.Event {
	ev = proto.Clone(ev).(*metav1.Event)
	ev.Format, ev.Id, ev.Time, ev.Actor, ev.Parents, ev.Address = 0, "", nil, nil, nil, nil
	ev.Command, ev.Recipe, ev.EnvDigest, ev.LocalEnv, ev.Stack = nil, "", "", false, ""
	return ev
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// assertNowhere checks that no git object of the repositories, and no file
// under them (meta's cache and journal included), holds value, while they
// do hold control, so the search is known to see the records.
func assertNowhere(t *testing.T, value, control string, repos ...string) {
	t.Helper()
	var all bytes.Buffer
	for _, dir := range repos {
		cmd := exec.Command("git", "cat-file", "--batch-all-objects", "--batch")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), gitEnv...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git cat-file in %s: %v", dir, err)
		}
		all.Write(out)
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(value)) {
					t.Errorf("%s holds the secret value", p)
				}
			}
			return nil
		})
	}
	if bytes.Contains(all.Bytes(), []byte(value)) {
		t.Errorf("a git object holds the secret value %q", value)
	}
	if !bytes.Contains(all.Bytes(), []byte(control)) {
		t.Fatalf("the git objects do not hold %q: the search saw no records", control)
	}
}

// A command that changes nothing (here `app ps`, and `app new` without
// --secrets) is not recorded, but runs, passes abra's exit code through,
// and reads stdin as abra would; neither is a command that is not an app
// command.
func TestRunDoesNotRecordReadOnlyCommands(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code string
	}{
		{"ps", []string{"app", "ps", domain}, ""},
		{"logs failing", []string{"app", "logs", domain}, "5"},
		{"new without secrets", []string{"app", "new", recipe, "-s", s1, "-D", "other.example.com"}, ""},
		{"not an app command", []string{"server", "ls"}, "7"},
		{"secret ls", []string{"app", "secret", "ls", domain}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			w.envFile(s1, domain, "1.0.0")
			w.order("exit", tt.code)
			w.stdin = "yes\n"
			before := w.tip(w.log.Root())
			res, err := w.run(Options{}, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := strconv.Atoi(tt.code); res.Code != want || len(res.Recorded) != 0 {
				t.Fatalf("result %+v, want code %d and nothing recorded", res, want)
			}
			if !w.ran() || !strings.Contains(w.stdout.String(), "abra read: yes") {
				t.Fatalf("abra did not run with the operator's stdin: %q", w.stdout.String())
			}
			if w.tip(w.log.Root()) != before || w.tip(w.remote) != before {
				t.Fatal("a read-only command committed")
			}
		})
	}
}
