package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Repositories meta cannot write without corrupting them are refused, at
// init, adopt, join and open alike, and nothing is written to them.
func TestRefusesRepositoriesItDoesNotUnderstand(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, dir string)
		says string
	}{
		{"sha256 objects", func(t *testing.T, dir string) {
			git(t, dir, "init", "-q", "--object-format=sha256", "-b", "main")
		}, "sha256"},
		{"reftable refs", func(t *testing.T, dir string) {
			git(t, dir, "init", "-q", "-b", "main")
			git(t, dir, "config", "core.repositoryformatversion", "1")
			git(t, dir, "config", "extensions.refStorage", "reftable")
		}, "refstorage"},
		{"an unknown extension", func(t *testing.T, dir string) {
			git(t, dir, "init", "-q", "-b", "main")
			git(t, dir, "config", "core.repositoryformatversion", "1")
			git(t, dir, "config", "extensions.frobnicate", "true")
		}, "frobnicate"},
		{"a format version from the future", func(t *testing.T, dir string) {
			git(t, dir, "init", "-q", "-b", "main")
			git(t, dir, "config", "core.repositoryformatversion", "7")
		}, "repositoryformatversion"},
		{"a format version without a value", func(t *testing.T, dir string) {
			git(t, dir, "init", "-q", "-b", "main")
			appendConfig(t, dir, "[core]\n\trepositoryformatversion\n")
		}, "repositoryformatversion"},
		{"an extension in a subsection", func(t *testing.T, dir string) {
			git(t, dir, "init", "-q", "-b", "main")
			git(t, dir, "config", "core.repositoryformatversion", "1")
			appendConfig(t, dir, "[extensions \"x\"]\n\ty = z\n")
		}, "extensions"},
		{"a partial clone", func(t *testing.T, dir string) {
			src := t.TempDir()
			git(t, src, "init", "-q", "-b", "main")
			os.WriteFile(filepath.Join(src, "README"), []byte("ops\n"), 0o644)
			git(t, src, "add", "README")
			git(t, src, "commit", "-qm", "start")
			git(t, src, "config", "uploadpack.allowFilter", "true")
			git(t, filepath.Dir(dir), "clone", "-q", "--filter=blob:none", "file://"+src, dir)
		}, "partial clone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.make(t, dir)
			before := snapshot(t, dir)
			_, err := Init(dir, InitOptions{Project: "coop", Env: "prod", Operator: Signature{Name: "Alice", When: time.Now()}})
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.says) {
				t.Fatalf("init = %v, want a refusal naming %q", err, tt.says)
			}
			if after := snapshot(t, dir); after != before {
				t.Fatalf("init wrote to the repository it refused:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// A log whose repository someone converted after the fact is refused on
// open, naming what is wrong.
func TestOpenRefusesAConvertedLog(t *testing.T) {
	s := newLog(t)
	git(t, s.Root(), "config", "core.repositoryformatversion", "1")
	git(t, s.Root(), "config", "extensions.frobnicate", "true")
	if _, err := Open(s.Root()); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("open = %v", err)
	}
}

// Joining a remote in a format meta cannot write leaves nothing behind,
// whether the remote is empty (git clones it as SHA-1 and the first push
// fails) or holds commits (git clones it as it is).
func TestJoinRefusesASHA256Remote(t *testing.T) {
	for _, empty := range []bool{true, false} {
		t.Run(fmt.Sprintf("empty=%v", empty), func(t *testing.T) {
			remote := filepath.Join(t.TempDir(), "log.git")
			git(t, filepath.Dir(remote), "init", "-q", "--bare", "--object-format=sha256", remote)
			if !empty {
				work := t.TempDir()
				git(t, work, "init", "-q", "--object-format=sha256", "-b", "main")
				os.WriteFile(filepath.Join(work, "README"), []byte("ops\n"), 0o644)
				git(t, work, "add", "README")
				git(t, work, "commit", "-qm", "start")
				git(t, work, "push", "-q", remote, "main")
			}
			before := git(t, remote, "rev-list", "--all")
			dir := filepath.Join(t.TempDir(), "clone")
			_, err := Join(ctx, dir, JoinOptions{URL: remote, InitOptions: InitOptions{Project: "coop", Env: "prod", Operator: Signature{Name: "Alice", When: time.Now()}}})
			if err == nil || !strings.Contains(err.Error(), "sha256") || !errors.Is(err, ErrUnsupported) {
				t.Fatalf("join = %v", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("join left %s behind: %v", dir, err)
			}
			if got := git(t, remote, "rev-list", "--all"); got != before {
				t.Fatalf("join pushed to the remote it refused: %s", got)
			}
		})
	}
}

// appendConfig adds text to the repository's .git/config as a person would
// with an editor.
func appendConfig(t *testing.T, dir, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, ".git", "config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// A format version git reads as 0 or 1 is one meta reads too.
func TestAcceptsFormatVersionsAsGitReadsThem(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "config", "core.repositoryformatversion", "01")
	if _, err := Init(dir, InitOptions{Project: "coop", Env: "prod", Operator: Signature{Name: "Alice", When: time.Now()}}); err != nil {
		t.Fatalf("init: %v", err)
	}
}

// snapshot names every file under dir with a digest of its content, so
// that any write shows.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "%s:%x ", rel, sha256.Sum256(data))
		}
		return nil
	})
	return b.String()
}

// A linked work tree (or a --separate-git-dir checkout), whose .git is a
// file, is named as such, not taken for "no log", and never answered for
// by a log it lies inside (review F12).
func TestLinkedWorkTreesAreNamed(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	outside := filepath.Join(t.TempDir(), "wt")
	git(t, s.Root(), "worktree", "add", "-q", outside)
	inner := filepath.Join(s.Root(), "inner")
	git(t, s.Root(), "worktree", "add", "-q", inner)
	for _, dir := range []string{outside, inner, filepath.Join(inner, "projects")} {
		if root, err := Find(dir); err == nil || !strings.Contains(err.Error(), "linked work tree") {
			t.Errorf("Find(%s) = %q, %v; want a refusal naming the linked work tree", dir, root, err)
		}
	}
	if _, err := Open(outside); err == nil || !strings.Contains(err.Error(), "linked work tree") {
		t.Errorf("Open of a linked work tree: %v", err)
	}
	sep := filepath.Join(t.TempDir(), "sep")
	git(t, filepath.Dir(sep), "init", "-q", "-b", "main", "--separate-git-dir", filepath.Join(filepath.Dir(sep), "sep.git"), sep)
	_, err := Init(sep, InitOptions{Operator: Signature{Name: "Alice", When: time.Now()}})
	if err == nil || !strings.Contains(err.Error(), "linked work tree") || strings.Count(err.Error(), "init "+sep) > 1 {
		t.Errorf("Init over a --separate-git-dir checkout: %v", err)
	}
}
