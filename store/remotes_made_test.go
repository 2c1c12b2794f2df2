package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Remotes made the way people make them: a plain `git init --bare` names
// master as its HEAD, a forge names main or master and may hold a README
// already, a repository may hold unrelated branches. Creating and joining
// a log work on each, the log's branch is recorded in meta.yaml, and every
// clone follows it.
func TestLogsLiveOnAnyRemotePeopleMake(t *testing.T) {
	tests := []struct {
		name   string
		make   func(t *testing.T, remote string)
		branch string // the log's branch
	}{
		// An empty remote does not say what its HEAD names (git
		// advertises no unborn HEAD here): the log starts on main, and
		// every clone finds it there although HEAD names master.
		{"a plain git init --bare", func(t *testing.T, remote string) {
			git(t, filepath.Dir(remote), "init", "-q", "--bare", remote)
		}, "main"},
		{"a plain remote where an older meta pushed main", func(t *testing.T, remote string) {
			git(t, filepath.Dir(remote), "init", "-q", "--bare", remote)
			work := t.TempDir()
			git(t, work, "init", "-q", "-b", "main")
			os.WriteFile(filepath.Join(work, "meta.yaml"), []byte("version: 1\nproject: coop\nenv: prod\n"), 0o644)
			git(t, work, "add", "meta.yaml")
			git(t, work, "commit", "-qm", "meta: start operator log")
			git(t, work, "push", "-q", remote, "main")
		}, "main"},
		{"a forge repository with a README on main", func(t *testing.T, remote string) {
			git(t, filepath.Dir(remote), "init", "-q", "--bare", "-b", "main", remote)
			work := t.TempDir()
			git(t, work, "init", "-q", "-b", "main")
			os.WriteFile(filepath.Join(work, "README.md"), []byte("# ops log\n"), 0o644)
			git(t, work, "add", "README.md")
			git(t, work, "commit", "-qm", "Initial commit")
			git(t, work, "push", "-q", remote, "main")
		}, "main"},
		{"a repository with an unrelated branch", func(t *testing.T, remote string) {
			git(t, filepath.Dir(remote), "init", "-q", "--bare", remote)
			work := t.TempDir()
			git(t, work, "init", "-q", "-b", "docs")
			os.WriteFile(filepath.Join(work, "notes"), []byte("notes\n"), 0o644)
			git(t, work, "add", "notes")
			git(t, work, "commit", "-qm", "notes")
			git(t, work, "push", "-q", remote, "docs")
		}, "main"},
		{"a log on a branch of its own", func(t *testing.T, remote string) {
			git(t, filepath.Dir(remote), "init", "-q", "--bare", "-b", "main", remote)
			work := t.TempDir()
			git(t, work, "init", "-q", "-b", "main")
			os.WriteFile(filepath.Join(work, "README.md"), []byte("# code\n"), 0o644)
			git(t, work, "add", "README.md")
			git(t, work, "commit", "-qm", "code")
			git(t, work, "push", "-q", remote, "main")
			git(t, work, "checkout", "-q", "--orphan", "ops")
			git(t, work, "rm", "-q", "-rf", ".")
			os.WriteFile(filepath.Join(work, "meta.yaml"), []byte("version: 1\nbranch: ops\nproject: coop\nenv: prod\n"), 0o644)
			git(t, work, "add", "meta.yaml")
			git(t, work, "commit", "-qm", "meta: start operator log")
			git(t, work, "push", "-q", remote, "ops")
		}, "ops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote := filepath.Join(t.TempDir(), "log.git")
			tt.make(t, remote)
			alice := join(t, remote)
			mustAppend(t, alice, deploy("a.example.com", "1.0.0"))
			bob := join(t, remote)
			if h, err := bob.Head("a.example.com"); err != nil || h.Version != "1.0.0" {
				t.Fatalf("bob's head: %+v, %v", h, err)
			}
			if out := mustAppend(t, bob, upgrade("a.example.com", "1.1.0")); !out.Pushed {
				t.Fatalf("bob's append was not pushed: %v", out.Warnings)
			}
			if _, err := alice.Sync(ctx, SyncOptions{}); err != nil {
				t.Fatalf("alice's sync: %v", err)
			}
			if h, _ := alice.Head("a.example.com"); h.Version != "1.1.0" {
				t.Fatalf("alice's head: %+v", h)
			}
			for _, s := range []*Store{alice, bob} {
				if b := git(t, s.Root(), "symbolic-ref", "--short", "HEAD"); b != tt.branch {
					t.Errorf("%s is on %s, want %s", s.Root(), b, tt.branch)
				}
				cfg := s.Config()
				if cfg.Branch != "" && cfg.Branch != tt.branch {
					t.Errorf("meta.yaml names branch %s, want %s", cfg.Branch, tt.branch)
				}
				assertClean(t, s.Root())
			}
			if got := git(t, remote, "log", "-1", "--format=%s", tt.branch); !strings.HasPrefix(got, "upgrade a.example.com") {
				t.Fatalf("the remote's %s ends with %q", tt.branch, got)
			}
		})
	}
}

// A clone that has another branch checked out than the log's is told which
// to check out, rather than written to on the wrong branch.
func TestTheLogsBranchIsFollowed(t *testing.T) {
	s := newLog(t)
	git(t, s.Root(), "checkout", "-q", "-b", "elsewhere")
	_, err := Open(s.Root())
	if err == nil || !strings.Contains(err.Error(), "git -C "+s.Root()+" checkout main") {
		t.Fatalf("open on another branch: %v", err)
	}
	_ = time.Now
}
