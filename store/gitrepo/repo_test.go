package gitrepo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// git runs the git CLI in dir and returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commitFile writes a file into the work tree and commits it on the tip.
func commitFile(t *testing.T, r *Repo, path, content string) plumbing.Hash {
	t.Helper()
	full := filepath.Join(r.Root(), filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tip, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.Commit(tip, []File{{Path: path, Data: []byte(content)}}, "add "+path+"\n\nMeta-Test: yes\n", Signature{Name: "Alice", Email: "alice@example.com", When: time.Now()})
	if err != nil {
		t.Fatalf("commit %s: %v", path, err)
	}
	return h
}

func assertClean(t *testing.T, dir string) {
	t.Helper()
	if st := git(t, dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Fatalf("git status not clean:\n%s", st)
	}
	git(t, dir, "fsck", "--strict", "--no-progress")
}

func TestCommitLeavesCleanRepository(t *testing.T) {
	dir := t.TempDir()
	r, err := Init(dir, DefaultBranch)
	if err != nil {
		t.Fatal(err)
	}
	commitFile(t, r, "meta.yaml", "version: 1\n")
	for _, p := range []string{"projects/a/prod/x.example.com/2026-11/1.pb", "projects/a/prod/x.example.com/2026-11/2.pb", "projects/a/prod/y.example.com/2026-10/1.pb", "projects/a-b/prod/z.example.com/2026-11/1.pb", "projects/a.b/prod/z.example.com/2026-11/1.pb"} {
		commitFile(t, r, p, "content of "+p)
	}
	assertClean(t, dir)
	if got := git(t, dir, "rev-list", "--count", "HEAD"); got != "6" {
		t.Fatalf("commits = %s, want 6", got)
	}
	if got := git(t, dir, "log", "-1", "--format=%an <%ae>%n%B"); !strings.Contains(got, "Alice <alice@example.com>") || !strings.Contains(got, "Meta-Test: yes") {
		t.Fatalf("last commit reads %q", got)
	}
	if got := git(t, dir, "show", "HEAD:projects/a.b/prod/z.example.com/2026-11/1.pb"); got != "content of projects/a.b/prod/z.example.com/2026-11/1.pb" {
		t.Fatalf("committed content = %q", got)
	}
	if got := git(t, dir, "reflog", "-1", "--format=%gs"); !strings.HasPrefix(got, "commit: add projects/a.b") {
		t.Fatalf("reflog = %q", got)
	}
}

func TestCommitKeepsOtherChangesUntouched(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(dir, "README"), []byte("one\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes"), []byte("n\n"), 0o644)
	git(t, dir, "add", "README", "notes")
	git(t, dir, "commit", "-q", "-m", "start")
	// The operator's own work in progress: staged, modified, untracked.
	os.WriteFile(filepath.Join(dir, "README"), []byte("two\n"), 0o644)
	git(t, dir, "add", "README")
	os.WriteFile(filepath.Join(dir, "notes"), []byte("changed\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "scratch"), []byte("s\n"), 0o644)
	before := git(t, dir, "status", "--porcelain")

	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	commitFile(t, r, "projects/p/e/a.example.com/2026-11/X.pb", "event")

	if after := git(t, dir, "status", "--porcelain"); after != before {
		t.Fatalf("status changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := git(t, dir, "show", "--name-only", "--format=", "HEAD"); got != "projects/p/e/a.example.com/2026-11/X.pb" {
		t.Fatalf("commit touched %q", got)
	}
	if got := git(t, dir, "show", "HEAD:README"); got != "one" {
		t.Fatalf("staged README leaked into the commit: %q", got)
	}
	git(t, dir, "fsck", "--strict", "--no-progress")
}

func TestCommitReadsEveryIndexVersion(t *testing.T) {
	for _, version := range []string{"2", "3", "4"} {
		t.Run("v"+version, func(t *testing.T) {
			dir := t.TempDir()
			git(t, dir, "init", "-q", "-b", "main")
			for _, name := range []string{"a", "dir/b", "dir/c-long-name-for-prefix-compression", "dir/d", "e"} {
				os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
				os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644)
			}
			git(t, dir, "add", ".")
			git(t, dir, "commit", "-q", "-m", "start")
			git(t, dir, "update-index", "--index-version", version)
			if version == "3" {
				// An intent-to-add entry needs the extended flags of v3.
				os.WriteFile(filepath.Join(dir, "later"), []byte("l"), 0o644)
				git(t, dir, "add", "-N", "later")
			}
			before := git(t, dir, "status", "--porcelain")
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			commitFile(t, r, "dir/new", "new")
			if after := git(t, dir, "status", "--porcelain"); after != before {
				t.Fatalf("status changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			git(t, dir, "fsck", "--strict", "--no-progress")
		})
	}
}

func TestCommitOnStaleTipRaces(t *testing.T) {
	dir := t.TempDir()
	r, err := Init(dir, DefaultBranch)
	if err != nil {
		t.Fatal(err)
	}
	first := commitFile(t, r, "a", "a")
	commitFile(t, r, "b", "b")
	os.WriteFile(filepath.Join(dir, "c"), []byte("c"), 0o644)
	_, err = r.Commit(first, []File{{Path: "c", Data: []byte("c")}}, "c", Signature{Name: "A", When: time.Now()})
	if !errors.Is(err, ErrRaced) {
		t.Fatalf("err = %v, want ErrRaced", err)
	}
	// Nothing of the failed attempt shows: c is untracked, not staged.
	if st := git(t, dir, "status", "--porcelain"); st != "?? c" {
		t.Fatalf("status = %q", st)
	}
}

func TestConcurrentCommitsNeverLoseOne(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, DefaultBranch); err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		// Separate Repo values act like separate processes: only the ref
		// lock keeps them apart.
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				p := filepath.Join("f", string(rune('a'+w)), string(rune('a'+i)))
				os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
				os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644)
				for {
					tip, err := r.Head()
					if err != nil {
						t.Error(err)
						return
					}
					_, err = r.Commit(tip, []File{{Path: p, Data: []byte(p)}}, p, Signature{Name: "A", When: time.Now()})
					if errors.Is(err, ErrRaced) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
			}
		}(w)
	}
	wg.Wait()
	if got := git(t, dir, "ls-tree", "-r", "--name-only", "HEAD"); len(strings.Fields(got)) != writers*each {
		t.Fatalf("HEAD has %d files, want %d", len(strings.Fields(got)), writers*each)
	}
	assertClean(t, dir)
}

// A push git refuses says all git said: with a lock file left in the
// remote, its name, which the last lines alone cut off (review F13).
func TestPushErrorCarriesAllGitSaid(t *testing.T) {
	remote := filepath.Join(t.TempDir(), "r.git")
	git(t, filepath.Dir(remote), "init", "-q", "--bare", "-b", "main", remote)
	dir := t.TempDir()
	r, err := Init(dir, DefaultBranch)
	if err != nil {
		t.Fatal(err)
	}
	git(t, dir, "remote", "add", Remote, remote)
	commitFile(t, r, "a", "a")
	if err := r.Push(context.Background()); err != nil {
		t.Fatal(err)
	}
	commitFile(t, r, "b", "b")
	os.WriteFile(filepath.Join(remote, "refs", "heads", "main.lock"), nil, 0o644)
	err = r.Push(context.Background())
	if err == nil || !strings.Contains(err.Error(), "main.lock") {
		t.Fatalf("push past a stale lock: %v", err)
	}
}

// A branch lock another git holds for a moment is waited for; one left by
// a crashed git is named, with the command that removes it, and nothing
// moves (it was taken for a race, retried at once and reported as one).
func TestBranchLockIsWaitedForThenNamed(t *testing.T) {
	for _, tc := range []struct {
		name string
		held time.Duration // how long the lock stays; 0: for good
	}{
		{"held a moment", 300 * time.Millisecond},
		{"left by a crash", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := Init(dir, DefaultBranch)
			if err != nil {
				t.Fatal(err)
			}
			first := commitFile(t, r, "a", "a")
			lock := filepath.Join(dir, ".git", "refs", "heads", DefaultBranch+".lock")
			if err := os.WriteFile(lock, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.held > 0 {
				time.AfterFunc(tc.held, func() { os.Remove(lock) })
			}
			os.WriteFile(filepath.Join(dir, "b"), []byte("b"), 0o644)
			_, err = r.Commit(first, []File{{Path: "b", Data: []byte("b")}}, "b", Signature{Name: "A", When: time.Now()})
			if tc.held > 0 {
				if err != nil {
					t.Fatalf("commit while a git held the lock a moment: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrStaleLock) || errors.Is(err, ErrRaced) || !strings.Contains(err.Error(), "rm "+lock) {
				t.Fatalf("err = %v, want ErrStaleLock naming `rm %s`", err, lock)
			}
			if tip := git(t, dir, "rev-parse", "HEAD"); tip != first.String() {
				t.Fatalf("the branch moved to %s", tip)
			}
		})
	}
}
