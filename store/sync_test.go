package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
)

var ctx = context.Background()

// bareRemote makes an empty bare repository, as a forge would hold.
func bareRemote(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log.git")
	git(t, filepath.Dir(dir), "init", "-q", "--bare", "-b", "main", dir)
	return dir
}

func join(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Join(ctx, filepath.Join(t.TempDir(), "clone"), JoinOptions{URL: url, InitOptions: InitOptions{Project: "coop", Env: "prod", Operator: Signature{Name: "Alice", When: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func note(domain string) *metav1.Event {
	return &metav1.Event{Kind: metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Message: "a note", Address: &metav1.Address{App: domain}}
}

func upgrade(domain, version string) *metav1.Event {
	return &metav1.Event{Kind: metav1.Kind_KIND_UPGRADE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: version, Address: &metav1.Address{App: domain}}
}

func TestJoinStartsThenClonesALog(t *testing.T) {
	remote := bareRemote(t)
	first := join(t, remote) // empty remote: starts the log and pushes it
	if got := git(t, remote, "log", "--format=%s", "main"); got != "meta: start operator log" {
		t.Fatalf("remote holds %q", got)
	}
	out := mustAppend(t, first, deploy("a.example.com", "1.0.0"))
	if !out.Pushed {
		t.Fatalf("not pushed: %v", out.Warnings)
	}
	second := join(t, remote) // a log there: clone it
	if warning, err := second.Refresh(ctx, false); warning != "" || err != nil {
		t.Fatalf("a fresh clone's first read warns: %q, %v", warning, err)
	}
	h, err := second.Head("a.example.com")
	if err != nil || h.Version != "1.0.0" {
		t.Fatalf("second clone: %+v, %v", h, err)
	}
	// The first appends again; a forced read on the second brings it in.
	mustAppend(t, first, upgrade("a.example.com", "1.1.0"))
	if warning, err := second.Refresh(ctx, true); err != nil || warning != "" {
		t.Fatalf("refresh: %q, %v", warning, err)
	}
	if h, _ := second.Head("a.example.com"); h.Version != "1.1.0" {
		t.Fatalf("after refresh: %+v", h)
	}
	assertClean(t, second.Root())
	if _, err := Join(ctx, first.Root(), JoinOptions{URL: remote}); !errors.Is(err, ErrExists) {
		t.Fatalf("join into a non-empty directory: %v", err)
	}
}

// Appends before a read: within the cooldown a read does not fetch;
// forced, it does.
func TestReadsFetchAtMostOncePerCooldown(t *testing.T) {
	remote := bareRemote(t)
	a, b := join(t, remote), join(t, remote)
	mustAppend(t, a, deploy("a.example.com", "1.0.0"))
	b.Refresh(ctx, true)
	mustAppend(t, a, upgrade("a.example.com", "2.0.0"))
	b.Refresh(ctx, false) // within the cooldown: no fetch
	if h, _ := b.Head("a.example.com"); h.Version != "1.0.0" {
		t.Fatalf("fetched within the cooldown: %s", h.Version)
	}
	b.Refresh(ctx, true)
	if h, _ := b.Head("a.example.com"); h.Version != "2.0.0" {
		t.Fatalf("forced refresh did not fetch: %s", h.Version)
	}
}

// Offline appends on two clones, then sync: both events everywhere,
// history linear, the fork reported identically on both.
func TestOfflineAppendsSyncIntoAFork(t *testing.T) {
	remote := bareRemote(t)
	a := join(t, remote)
	mustAppend(t, a, deploy("a.example.com", "1.0.0"))
	b := join(t, remote)
	ea := offlineAppend(t, a, upgrade("a.example.com", "1.1.0"))
	eb := offlineAppend(t, b, upgrade("a.example.com", "1.2.0"))
	want := fmt.Sprint([]string{ea.Event.GetId(), eb.Event.GetId()})
	for _, s := range []*Store{a, b} {
		if u, _ := s.Unpushed(ctx, "a.example.com"); len(u) != 1 {
			t.Fatalf("unpushed = %v", u)
		}
	}
	untouched := plantOthers(t, a.Root())
	for _, s := range []*Store{a, b, a} {
		if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var heads []string
	for _, s := range []*Store{a, b} {
		h, err := s.Head("a.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if !h.Forked || h.Events != 3 {
			t.Fatalf("head = %+v", h)
		}
		if got := fmt.Sprint(h.HeadIDs()); got != want {
			t.Fatalf("heads %s, want %s", got, want)
		}
		heads = append(heads, fmt.Sprint(h.HeadIDs(), h.Version))
		if merges := git(t, s.Root(), "rev-list", "--merges", "--count", "HEAD"); merges != "0" {
			t.Fatalf("%s merge commits: history must stay linear", merges)
		}
		if u, _ := s.Unpushed(ctx, ""); len(u) != 0 {
			t.Fatalf("unpushed after sync: %v", u)
		}
		if s == b {
			assertClean(t, s.Root())
		}
	}
	untouched()
	if heads[0] != heads[1] {
		t.Fatalf("clones disagree: %s vs %s", heads[0], heads[1])
	}
}

func TestUnreachableRemote(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	untouched := plantOthers(t, s.Root())
	defer untouched()
	os.RemoveAll(remote)
	before := git(t, s.Root(), "rev-parse", "HEAD")
	_, err := s.Append(ctx, upgrade("a.example.com", "2.0.0"), alice, time.Now(), AppendOptions{})
	if !errors.Is(err, ErrSync) || !strings.Contains(err.Error(), "--offline") {
		t.Fatalf("append with the remote gone: %v", err)
	}
	if git(t, s.Root(), "rev-parse", "HEAD") != before {
		t.Fatal("a refused append committed")
	}
	warning, err := s.Refresh(ctx, true)
	if err != nil || !strings.Contains(warning, "last synced") {
		t.Fatalf("refresh: %q, %v", warning, err)
	}
	// Within the cooldown the next read does not try again, but still says
	// the view may be stale.
	if warning, err := s.Refresh(ctx, false); err != nil || !strings.Contains(warning, "the last fetch from the remote failed") {
		t.Fatalf("read within the cooldown: %q, %v", warning, err)
	}
	out, err := s.Append(ctx, upgrade("a.example.com", "2.0.0"), alice, time.Now(), AppendOptions{Offline: true})
	if err != nil || out.Pushed {
		t.Fatalf("offline append: %+v, %v", out, err)
	}
	if u, _ := s.Unpushed(ctx, ""); len(u) != 1 || u[0].EventID != out.Event.GetId() {
		t.Fatalf("unpushed = %+v", u)
	}
}

func TestExpect(t *testing.T) {
	remote := bareRemote(t)
	a, b := join(t, remote), join(t, remote)
	first := mustAppend(t, a, deploy("a.example.com", "1.0.0"))
	mustAppend(t, b, upgrade("a.example.com", "1.1.0")) // b fetched a's deploy first
	// a still thinks 1.0.0 runs; the fetch before its append shows 1.1.0.
	before := git(t, a.Root(), "rev-parse", "HEAD")
	_, err := a.Append(ctx, upgrade("a.example.com", "2.0.0"), alice, time.Now(), AppendOptions{Expect: "1.0.0"})
	if !errors.Is(err, ErrUnexpected) || !strings.Contains(err.Error(), "you expected 1.0.0, the log says deployed 1.1.0") {
		t.Fatalf("err = %v", err)
	}
	if _, err := a.Append(ctx, upgrade("a.example.com", "2.0.0"), alice, time.Now(), AppendOptions{Expect: first.Event.GetId()}); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("stale event id accepted: %v", err)
	}
	// The fetch integrated b's event, so HEAD moved, but nothing of a's.
	if tip, subject := git(t, a.Root(), "rev-parse", "HEAD"), git(t, a.Root(), "log", "-1", "--format=%s"); tip == before || !strings.Contains(subject, "1.1.0") {
		t.Fatalf("tip after refused appends: %s %q", tip, subject)
	}
	if h, _ := a.Head("a.example.com"); h.Events != 2 {
		t.Fatalf("refused appends wrote events: %d", h.Events)
	}
	if _, err := a.Append(ctx, upgrade("a.example.com", "2.0.0"), alice, time.Now(), AppendOptions{Expect: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
}

// A remote that lost commits this clone saw (a force-push) gets them back
// on top of its new tip, as the same record files; one whose new commits
// change records is taken in, and the change quarantined.
func TestRewrittenRemoteIsMended(t *testing.T) {
	t.Run("lost commits", func(t *testing.T) {
		remote := bareRemote(t)
		a := join(t, remote)
		mustAppend(t, a, deploy("a.example.com", "1.0.0"))
		lost := mustAppend(t, a, upgrade("a.example.com", "1.1.0"))
		untouched := plantOthers(t, a.Root())
		defer untouched()
		git(t, remote, "update-ref", "refs/heads/main", "main~1") // someone force-pushed
		mustAppend(t, a, note("a.example.com"))
		if got := strings.Join(a.Notes(), "\n"); !strings.Contains(got, "the remote lost 1 event ") || !strings.Contains(got, lost.Event.GetId()) {
			t.Fatalf("notes = %q", got)
		}
		if !strings.Contains(git(t, remote, "ls-tree", "-r", "--name-only", "main"), lost.Path) {
			t.Fatal("the lost event is not back on the remote")
		}
		if h, _ := a.Head("a.example.com"); h.Version != "1.1.0" || h.Events != 3 {
			t.Fatalf("head = %+v", h)
		}
	})
	t.Run("changed records", func(t *testing.T) {
		remote := bareRemote(t)
		a, b := join(t, remote), join(t, remote)
		out := mustAppend(t, a, deploy("a.example.com", "1.0.0"))
		b.Sync(ctx, SyncOptions{})
		os.WriteFile(filepath.Join(b.Root(), out.Path), []byte("tampered"), 0o644)
		git(t, b.Root(), "commit", "-qam", "tamper")
		tamper := git(t, b.Root(), "rev-parse", "HEAD")
		git(t, b.Root(), "push", "-q", "origin", "main")
		untouched := plantOthers(t, a.Root())
		mustAppend(t, a, upgrade("a.example.com", "1.1.0"))
		untouched()
		if h, err := a.Head("a.example.com"); err != nil || h.Version != "1.1.0" || h.Events != 2 {
			t.Fatalf("head = %+v, %v", h, err)
		}
		q, _ := a.Quarantine(ctx, false)
		if len(q) != 1 || q[0].Commit != tamper || q[0].Problems[0].Path != out.Path || q[0].Problems[0].What != integrity.Modified {
			t.Fatalf("quarantine = %+v", q)
		}
	})
}

func mustAppendErr(t *testing.T, s *Store, want error, says string) {
	t.Helper()
	before := git(t, s.Root(), "rev-parse", "HEAD")
	_, err := s.Append(ctx, upgrade("a.example.com", "9.9.9"), alice, time.Now(), AppendOptions{})
	if !errors.Is(err, want) || !strings.Contains(err.Error(), says) {
		t.Fatalf("err = %v, want %v saying %q", err, want, says)
	}
	if git(t, s.Root(), "rev-parse", "HEAD") != before {
		t.Fatal("a refused append changed the branch")
	}
}

// Files meta does not manage are never committed, reset or lost, in any
// state, and a remote change to one the operator edited is refused.
func TestSyncLeavesOtherFilesAlone(t *testing.T) {
	remote := bareRemote(t)
	a, b := join(t, remote), join(t, remote)
	// b's operator keeps notes in the repo, committed with git.
	os.WriteFile(filepath.Join(b.Root(), "NOTES"), []byte("v1\n"), 0o644)
	git(t, b.Root(), "add", "NOTES")
	git(t, b.Root(), "commit", "-qm", "notes")
	git(t, b.Root(), "push", "-q", "origin", "main")
	// a has work of its own in every state.
	os.WriteFile(filepath.Join(a.Root(), "untracked.txt"), []byte("u"), 0o644)
	os.WriteFile(filepath.Join(a.Root(), "staged.txt"), []byte("s"), 0o644)
	git(t, a.Root(), "add", "staged.txt")
	cfg, _ := os.ReadFile(filepath.Join(a.Root(), config.File))
	os.WriteFile(filepath.Join(a.Root(), config.File), append(cfg, "# mine\n"...), 0o644)
	before := git(t, a.Root(), "status", "--porcelain")

	mustAppend(t, a, deploy("a.example.com", "1.0.0")) // integrates b's NOTES
	if got, _ := os.ReadFile(filepath.Join(a.Root(), "NOTES")); string(got) != "v1\n" {
		t.Fatalf("NOTES not brought in: %q", got)
	}
	if after := git(t, a.Root(), "status", "--porcelain"); after != before {
		t.Fatalf("status changed:\n%s\nwas:\n%s", after, before)
	}
	if got := git(t, remote, "show", "main:meta.yaml"); strings.Contains(got, "# mine") {
		t.Fatal("the operator's uncommitted meta.yaml was pushed")
	}
	// a edits NOTES by hand; b changes it too: a's sync refuses, keeps a's.
	os.WriteFile(filepath.Join(a.Root(), "NOTES"), []byte("a's edit\n"), 0o644)
	b.Sync(ctx, SyncOptions{})
	os.WriteFile(filepath.Join(b.Root(), "NOTES"), []byte("v2\n"), 0o644)
	git(t, b.Root(), "commit", "-qam", "notes v2")
	git(t, b.Root(), "push", "-q", "origin", "main")
	if _, err := a.Sync(ctx, SyncOptions{}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "NOTES") {
		t.Fatalf("sync over a local edit: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(a.Root(), "NOTES")); string(got) != "a's edit\n" {
		t.Fatalf("a's edit lost: %q", got)
	}
}

// Since lists exactly the events a commit range added, each app's in fold
// order, even when a parent's clock ran late.
func TestSince(t *testing.T) {
	s := newLog(t)
	first := mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	events, tip, _, err := s.Since(ctx, "")
	if err != nil || len(events) != 1 || events[0].GetId() != first.Event.GetId() {
		t.Fatalf("since the beginning: %v, %v", events, err)
	}
	// b's parent is appended with a clock an hour fast; its child is still
	// listed after it.
	late := mustAppendAt(t, s, deploy("b.example.com", "1.0.0"), time.Now().Add(time.Hour))
	child := mustAppend(t, s, upgrade("b.example.com", "2.0.0"))
	other := mustAppend(t, s, upgrade("a.example.com", "1.1.0"))
	events, tip2, _, err := s.Since(ctx, tip)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, ev := range events {
		pos[ev.GetId()] = i
	}
	for _, e := range []*Appended{late, child, other} {
		if _, ok := pos[e.Event.GetId()]; !ok || len(events) != 3 {
			t.Fatalf("events %v, want exactly the three appended since", pos)
		}
	}
	if pos[late.Event.GetId()] > pos[child.Event.GetId()] {
		t.Fatalf("child before its parent: %v", pos)
	}
	if again, _, _, _ := s.Since(ctx, tip2); len(again) != 0 {
		t.Fatalf("nothing new, yet %d events", len(again))
	}
}

func mustAppendAt(t testing.TB, s *Store, ev *metav1.Event, at time.Time) *Appended {
	t.Helper()
	out, err := s.Append(context.Background(), ev, alice, at, AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Two operators start a log on one empty remote at once: Bob's push lands
// while Alice's join is between starting hers and pushing it. Alice's
// join takes Bob's log instead, with nothing of hers set aside or left
// over.
func TestJoinThatLosesTheRaceToStartJoinsTheWinner(t *testing.T) {
	remote := filepath.Join(t.TempDir(), "log.git")
	git(t, filepath.Dir(remote), "init", "-q", "--bare", remote) // a plain one
	var bob *Store
	joinStarted = func() {
		joinStarted = func() {}
		var err error
		bob, err = Join(ctx, filepath.Join(t.TempDir(), "bob"), JoinOptions{URL: remote, InitOptions: InitOptions{Project: "coop", Env: "prod", Operator: Signature{Name: "Bob", When: time.Now()}}})
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, bob, deploy("a.example.com", "1.0.0"))
	}
	t.Cleanup(func() { joinStarted = func() {} })
	dir := filepath.Join(t.TempDir(), "alice")
	alice, err := Join(ctx, dir, JoinOptions{URL: remote, InitOptions: InitOptions{Project: "coop", Env: "prod", Operator: Signature{Name: "Alice", When: time.Now()}}})
	if err != nil {
		t.Fatalf("the join that lost the race: %v", err)
	}
	if bob == nil {
		t.Fatal("the race was not run")
	}
	h, err := alice.Head("a.example.com")
	if err != nil || h.Version != "1.0.0" {
		t.Fatalf("alice's head %+v, %v: not bob's log", h, err)
	}
	if a, b := git(t, dir, "rev-parse", "HEAD"), git(t, bob.Root(), "rev-parse", "HEAD"); a != b {
		t.Fatalf("alice at %s, bob at %s", a, b)
	}
	if refs := git(t, dir, "for-each-ref", "refs/meta/"); refs != "" {
		t.Fatalf("left over: %s", refs)
	}
	if _, err := os.Stat(joinStaging(dir)); !os.IsNotExist(err) {
		t.Fatalf("staging left: %v", err)
	}
}
