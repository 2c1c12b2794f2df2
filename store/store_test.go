package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// git runs the real git CLI in dir.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=git", "GIT_AUTHOR_EMAIL=git@example.com", "GIT_COMMITTER_NAME=git", "GIT_COMMITTER_EMAIL=git@example.com", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

var alice = &metav1.Actor{Name: "Alice", Email: "alice@example.com", Host: "laptop"}

func newLog(t testing.TB) *Store {
	t.Helper()
	s, err := Init(t.TempDir(), InitOptions{Project: "coop", Env: "prod", Operator: Signature{Name: "Alice", Email: "alice@example.com", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func deploy(domain, version string) *metav1.Event {
	return &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: version, Address: &metav1.Address{App: domain}}
}

func offlineAppend(t testing.TB, s *Store, ev *metav1.Event) *Appended {
	t.Helper()
	out, err := s.Append(context.Background(), ev, alice, time.Now(), AppendOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustAppend(t testing.TB, s *Store, ev *metav1.Event) *Appended {
	t.Helper()
	out, err := s.Append(context.Background(), ev, alice, time.Now(), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertClean checks what the git CLI sees: nothing to commit, nothing
// broken.
func assertClean(t testing.TB, dir string) {
	t.Helper()
	if st := git(t, dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Fatalf("git status not clean:\n%s", st)
	}
	git(t, dir, "fsck", "--strict", "--no-progress")
}

func TestAppendCommitsOneRecord(t *testing.T) {
	s := newLog(t)
	out := mustAppend(t, s, deploy("matrix.example.com", "4.0.0+v1.93.0"))
	assertClean(t, s.Root())
	if len(out.Warnings) != 0 {
		t.Fatalf("warnings: %v", out.Warnings)
	}
	if got := git(t, s.Root(), "show", "--name-only", "--format=", "HEAD"); got != out.Path {
		t.Fatalf("commit holds %q, want only %s", got, out.Path)
	}
	msg := git(t, s.Root(), "log", "-1", "--format=%B")
	for _, want := range []string{
		"deploy matrix.example.com 4.0.0+v1.93.0 by Alice\n",
		"Meta-Event: " + out.Event.GetId(),
		"Meta-Operator: Alice <alice@example.com>",
		"Meta-Outcome: succeeded",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message lacks %q:\n%s", want, msg)
		}
	}
	// git itself parses the trailers.
	if got := git(t, s.Root(), "log", "-1", "--format=%(trailers:key=Meta-Event,valueonly)"); got != out.Event.GetId() {
		t.Fatalf("git reads the Meta-Event trailer as %q", got)
	}
	if got := git(t, s.Root(), "log", "-1", "--format=%an <%ae>"); got != "Alice <alice@example.com>" {
		t.Fatalf("author = %q", got)
	}
	h, err := s.Head("matrix.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if h.State != "deployed" || h.Version != "4.0.0+v1.93.0" || h.Project != "coop" || h.Env != "prod" || h.DeployedBy != "Alice" {
		t.Fatalf("head = %+v", h)
	}
}

func TestAppendChainsParentsAndFindsAppByDomain(t *testing.T) {
	s := newLog(t)
	first := mustAppend(t, s, &metav1.Event{Kind: metav1.Kind_KIND_NEW, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Address: &metav1.Address{Project: "other", Env: "staging", App: "a.example.com"}})
	second := mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	if second.Event.GetAddress().GetProject() != "other" || second.Event.GetAddress().GetEnv() != "staging" {
		t.Fatalf("second event went to %v", second.Event.GetAddress())
	}
	if p := second.Event.GetParents(); len(p) != 1 || p[0] != first.Event.GetId() {
		t.Fatalf("parents = %v, want [%s]", p, first.Event.GetId())
	}
	rb := mustAppend(t, s, &metav1.Event{Kind: metav1.Kind_KIND_ROLLBACK, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "0.9.0", Address: &metav1.Address{App: "a.example.com"},
		Body: &metav1.Event_Rollback{Rollback: &metav1.Rollback{TargetVersion: "0.9.0"}}})
	if rb.Event.GetRollback().GetFromVersion() != "1.0.0" {
		t.Fatalf("rollback from %q, want 1.0.0", rb.Event.GetRollback().GetFromVersion())
	}
	events, err := s.Log("a.example.com", 0)
	if err != nil || len(events) != 3 || events[0].GetId() != rb.Event.GetId() {
		t.Fatalf("log = %v, %v", events, err)
	}
	if events, _ := s.Log("", 2); len(events) != 2 {
		t.Fatalf("log -n 2 gave %d", len(events))
	}
	heads, err := s.List()
	if err != nil || len(heads) != 1 || heads[0].Version != "0.9.0" {
		t.Fatalf("list = %v, %v", heads, err)
	}
	assertClean(t, s.Root())
}

// Every bad input is refused with an error that names it, and leaves the
// repository exactly as it was.
func TestAppendRefusesBadInputAndChangesNothing(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("taken.example.com", "1.0.0"))
	noDefaults, err := Init(t.TempDir(), InitOptions{Operator: Signature{Name: "A", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		s     *Store
		ev    *metav1.Event
		actor *metav1.Actor
		is    error
		says  string
	}{
		{"bad domain", s, deploy("Bad.Example.com", "1"), alice, projects.ErrInvalidName, "upper-case"},
		{"traversal", s, deploy("../../etc", "1"), alice, projects.ErrInvalidName, "invalid app"},
		{"bad project", s, &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1", Address: &metav1.Address{Project: "..", Env: "prod", App: "new.example.com"}}, alice, projects.ErrInvalidName, "invalid project"},
		{"no version", s, deploy("x.example.com", ""), alice, record.ErrInvalid, "needs a version"},
		{"no kind", s, &metav1.Event{Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Address: &metav1.Address{App: "x.example.com"}}, alice, record.ErrInvalid, "kind"},
		{"no operator", s, deploy("x.example.com", "1"), nil, record.ErrInvalid, "no operator"},
		{"moved app", s, &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1", Address: &metav1.Address{Env: "staging", App: "taken.example.com"}}, alice, ErrMoved, "coop/prod/taken.example.com"},
		{"no address for a first event", noDefaults, deploy("x.example.com", "1"), alice, ErrNeedAddress, "--project and --env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := git(t, tt.s.Root(), "rev-parse", "HEAD")
			_, err := tt.s.Append(context.Background(), tt.ev, tt.actor, time.Now(), AppendOptions{})
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tt.is, tt.says)
			}
			if after := git(t, tt.s.Root(), "rev-parse", "HEAD"); after != before {
				t.Fatal("a commit was made")
			}
			assertClean(t, tt.s.Root())
		})
	}
}

func TestReadErrors(t *testing.T) {
	s := newLog(t)
	if _, err := s.Head("nobody.example.com"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no events for nobody.example.com") {
		t.Fatalf("unknown domain: %v", err)
	}
	if _, err := s.Head("Nobody"); !errors.Is(err, projects.ErrInvalidName) {
		t.Fatalf("bad domain: %v", err)
	}
	// The same domain in two envs, as two operators could create it.
	mustAppend(t, s, deploy("twice.example.com", "1.0.0"))
	other := deploy("twice.example.com", "2.0.0")
	other.Address = &metav1.Address{Project: "coop", Env: "staging", App: "twice.example.com"}
	commitByHand(t, s, other)
	_, err := s.Head("twice.example.com")
	if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "coop/prod/twice.example.com and coop/staging/twice.example.com") {
		t.Fatalf("ambiguous: %v", err)
	}
}

// commitByHand writes ev's record and commits it with the git CLI, as
// another tool or another meta version could.
func commitByHand(t testing.TB, s *Store, ev *metav1.Event) string {
	t.Helper()
	path, data := recordBytes(t, ev)
	return commitBytes(t, s, path, data)
}

// recordBytes is ev's record, filled in (fillEvent), and its path.
func recordBytes(t testing.TB, ev *metav1.Event) (string, []byte) {
	t.Helper()
	full := fillEvent(ev)
	data, err := record.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	return record.Path(full), data
}

func fillEvent(ev *metav1.Event) *metav1.Event {
	full := newEvent(ev.GetAddress().GetApp(), ev.GetAddress().GetEnv(), time.Now())
	full.Address = ev.Address
	full.Kind, full.Version, full.Outcome = ev.Kind, ev.Version, ev.Outcome
	full.Parents = ev.Parents
	return full
}

func commitBytes(t testing.TB, s *Store, path string, data []byte) string {
	t.Helper()
	writeFile(t, s.Root(), path, data)
	git(t, s.Root(), "add", path)
	git(t, s.Root(), "commit", "-q", "-m", "by hand")
	return git(t, s.Root(), "rev-parse", "HEAD")
}

// writeFile writes data at path (slash-separated) in the work tree at dir,
// making its directories.
func writeFile(t testing.TB, dir, path string, data []byte) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(path))
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A meta killed between writing a record and committing it leaves a
// pending note; the next command removes the unreported record, or keeps
// and re-indexes a committed one.
func TestRecoverAfterCrash(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))

	// Killed before the commit: the record must not count.
	orphan := newEvent("a.example.com", "prod", time.Now())
	orphan.Version = "6.6.6"
	data, _ := record.Marshal(orphan)
	if err := s.work.create(record.Path(orphan), data); err != nil {
		t.Fatal(err)
	}
	if err := s.journal.noteCommit([]string{record.Path(orphan)}); err != nil {
		t.Fatal(err)
	}
	h, err := s.Head("a.example.com")
	if err != nil || h.Version != "1.0.0" || h.Events != 1 {
		t.Fatalf("head after crash = %+v, %v", h, err)
	}
	assertClean(t, s.Root())

	// Killed after the commit, before the index update.
	out := mustAppend(t, s, deploy("a.example.com", "2.0.0"))
	git(t, s.Root(), "rm", "-q", "--cached", out.Path)
	if err := s.journal.noteCommit([]string{out.Path}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, deploy("a.example.com", "3.0.0"))
	assertClean(t, s.Root())
	if h, _ := s.Head("a.example.com"); h.Version != "3.0.0" || h.Events != 3 {
		t.Fatalf("head = %+v", h)
	}
}

// The operator's own changes stay theirs: reported, never committed.
func TestAppendWarnsAboutOtherChanges(t *testing.T) {
	s := newLog(t)
	cfg := filepath.Join(s.Root(), config.File)
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(data, "# edited\n"...), 0o644)
	os.WriteFile(filepath.Join(s.Root(), "todo.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(s.Root(), ".gitignore"), []byte("ignored.txt\n"), 0o644)
	os.WriteFile(filepath.Join(s.Root(), "ignored.txt"), []byte("x"), 0o644)
	out := mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	got := strings.Join(out.Warnings, "; ")
	if got != "not committed by meta: modified: meta.yaml; not committed by meta: untracked: .gitignore; not committed by meta: untracked: todo.txt" {
		t.Fatalf("warnings = %q", got)
	}
	if st := git(t, s.Root(), "status", "--porcelain"); st != "M meta.yaml\n?? .gitignore\n?? todo.txt" { // git() trims the leading space
		t.Fatalf("status = %q", st)
	}
}

func TestInitAdoptsExistingRepository(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "trunk")
	os.WriteFile(filepath.Join(dir, "README"), []byte("ops notes\n"), 0o644)
	git(t, dir, "add", "README")
	git(t, dir, "commit", "-qm", "start")
	os.WriteFile(filepath.Join(dir, "README"), []byte("ops notes, edited\n"), 0o644)
	git(t, dir, "add", "README")
	s, err := Init(dir, InitOptions{Operator: Signature{Name: "Alice", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	if got := git(t, dir, "show", "--name-only", "--format=", "HEAD"); got != config.File {
		t.Fatalf("init committed %q", got)
	}
	if st := git(t, dir, "status", "--porcelain"); st != "M  README" {
		t.Fatalf("status = %q: the staged README must stay staged", st)
	}
	if _, err := Init(dir, InitOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second init = %v", err)
	}
	if root, err := Find(filepath.Join(dir, "projects")); err != nil || root != s.Root() {
		t.Fatalf("Find = %q, %v", root, err)
	}
	if _, err := Find(t.TempDir()); !errors.Is(err, ErrNotLog) {
		t.Fatalf("Find outside a log = %v", err)
	}
}

// Two operators append offline on their own clones; git itself (a merge
// made by git pull) joins their logs without a conflict and the head on
// both sides reports the fork.
func TestClonesMergeWithoutConflictAndReportForks(t *testing.T) {
	origin := newLog(t)
	mustAppend(t, origin, deploy("a.example.com", "1.0.0"))
	bare := filepath.Join(t.TempDir(), "log.git")
	git(t, origin.Root(), "clone", "-q", "--bare", origin.Root(), bare)
	var clones []*Store
	for i := 0; i < 2; i++ {
		dir := filepath.Join(t.TempDir(), "clone")
		git(t, filepath.Dir(dir), "clone", "-q", bare, dir)
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		clones = append(clones, s)
	}
	// Both offline: neither sees the other's event.
	alice := offlineAppend(t, clones[0], &metav1.Event{Kind: metav1.Kind_KIND_UPGRADE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1.1.0", Address: &metav1.Address{App: "a.example.com"}})
	time.Sleep(2 * time.Millisecond)
	bob := offlineAppend(t, clones[1], &metav1.Event{Kind: metav1.Kind_KIND_UPGRADE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1.2.0", Address: &metav1.Address{App: "a.example.com"}})
	git(t, clones[0].Root(), "push", "-q", "origin", "main")
	git(t, clones[1].Root(), "pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
	git(t, clones[1].Root(), "push", "-q", "origin", "main")
	git(t, clones[0].Root(), "pull", "-q", "--ff-only", "origin", "main")
	for _, c := range clones {
		h, err := c.Head("a.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if !h.Forked || len(h.Heads) != 2 || h.Heads[0].EventID != alice.Event.GetId() || h.Heads[1].EventID != bob.Event.GetId() || h.Version != "1.2.0" {
			t.Fatalf("head = %+v", h)
		}
		if v, err := c.Verify(ctx, nil); err != nil || len(v.Findings) != 0 {
			t.Fatalf("verify = %v, %v", v, err)
		}
		assertClean(t, c.Root())
	}
	// The next append, seeing both, joins the fork.
	joined := mustAppend(t, clones[0], &metav1.Event{Kind: metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Address: &metav1.Address{App: "a.example.com"}})
	if len(joined.Event.GetParents()) != 2 {
		t.Fatalf("parents = %v", joined.Event.GetParents())
	}
	if h, _ := clones[0].Head("a.example.com"); h.Forked {
		t.Fatal("still forked")
	}
}

// A merge that keeps only one side (git merge -s ours) drops the other
// side's records without any commit deleting them on its own; verify still
// sees the deletion, in the merge.
