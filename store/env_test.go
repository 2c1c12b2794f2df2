package store

import (
	"path/filepath"
	"testing"
)

// git's repository variables in meta's environment (a git hook sets
// GIT_DIR, for one) do not send meta's git processes to another
// repository: the append is pushed from the log, and its sync works.
func TestGitEnvironmentDoesNotRedirectTheLog(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	other := filepath.Join(t.TempDir(), "other")
	git(t, filepath.Dir(other), "init", "-q", "-b", "main", other)
	t.Run("in a hook's environment", func(t *testing.T) {
		for _, v := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR"} {
			t.Setenv(v, filepath.Join(other, ".git"))
		}
		t.Setenv("GIT_CONFIG_PARAMETERS", "'remote.origin.url'='/nonexistent'")
		out := mustAppend(t, s, deploy("z.example.com", "1.0.0"))
		if !out.Pushed {
			t.Fatalf("not pushed: %v", out.Warnings)
		}
		if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
			t.Fatalf("sync: %v", err)
		}
	})
	if got := git(t, remote, "log", "-1", "--format=%s", "main"); got != "deploy z.example.com 1.0.0 by Alice" {
		t.Fatalf("the remote's tip is %q", got)
	}
}
