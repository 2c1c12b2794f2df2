package store

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitIn runs git with input, for the plumbing a hostile pusher uses.
func gitIn(t testing.TB, dir, input string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(input)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=mallory", "GIT_AUTHOR_EMAIL=m@example.com", "GIT_COMMITTER_NAME=mallory", "GIT_COMMITTER_EMAIL=m@example.com", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// A commit whose tree holds a path git never checks out (into .git, out
// of the work tree through a "..", an empty or "." name), pushed by
// anyone who can push (a stranger, where signatures are required, is
// only quarantined), is never written: not the remote's hooks into
// .git/hooks, where the operator's next git commit would run them, nor a
// file or link outside the clone, nor over .git/config, which meta's
// next git process would obey. The sync may fail; the clone still reads,
// and its next sync goes on once the remote is mended.
func TestSyncNeverWritesIntoGitOrOutOfTheWorkTree(t *testing.T) {
	for _, tc := range []struct {
		name string
		// path is where the tree puts the file, mode its mode.
		path, mode string
	}{
		{"a hook", ".git/hooks/pre-commit", "100755"},
		{"git's config", ".git/config", "100644"},
		{"a hook below projects", "projects/../.git/hooks/post-checkout", "100755"},
		{"a link out of the work tree", "../victim", "120000"},
		{"a file out of the work tree", "../victim", "100644"},
		{"a file out of the work tree below projects", "projects/../../victim", "100644"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := bareRemote(t)
			s := join(t, remote)
			defer s.Close()
			victim := filepath.Join(filepath.Dir(s.Root()), "victim")
			if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			hook := filepath.Join(s.Root(), ".git", "hooks", filepath.Base(tc.path))
			cfgBefore, _ := os.ReadFile(filepath.Join(s.Root(), ".git", "config"))

			// The hostile commit, made in the remote with plumbing.
			blob := gitIn(t, remote, "#!/bin/sh\necho pwned\n", "hash-object", "-w", "--stdin")
			parts := strings.Split(tc.path, "/")
			entry := fmt.Sprintf("%s blob %s\t%s\n", tc.mode, blob, parts[len(parts)-1])
			for i := len(parts) - 2; i >= 0; i-- {
				sub := gitIn(t, remote, entry, "mktree")
				entry = fmt.Sprintf("040000 tree %s\t%s\n", sub, parts[i])
			}
			top := gitIn(t, remote, gitIn(t, remote, "", "ls-tree", "main")+"\n"+entry, "mktree")
			c := gitIn(t, remote, "", "commit-tree", top, "-p", "main", "-m", "innocent")
			good := gitIn(t, remote, "", "rev-parse", "main")
			gitIn(t, remote, "", "update-ref", "refs/heads/main", c)

			_, serr := s.Sync(ctx, SyncOptions{})
			if _, err := os.Lstat(hook); err == nil && tc.path != "../victim" {
				t.Fatalf("the sync (%v) wrote the remote's %s into the clone's .git", serr, tc.path)
			}
			if cfg, _ := os.ReadFile(filepath.Join(s.Root(), ".git", "config")); string(cfg) != string(cfgBefore) {
				t.Fatalf("the sync (%v) wrote over .git/config:\n%s", serr, cfg)
			}
			if fi, err := os.Lstat(victim); err != nil || fi.Mode()&os.ModeSymlink != 0 {
				t.Fatalf("the sync (%v) replaced a file outside the work tree: %v, %v", serr, fi, err)
			}
			if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
				t.Fatalf("the sync (%v) wrote outside the work tree: %q", serr, data)
			}
			if _, err := s.Status(ctx); err != nil {
				t.Fatalf("status after the sync (%v): %v", serr, err)
			}
			// The remote mended: the next sync goes through.
			gitIn(t, remote, "", "update-ref", "refs/heads/main", good)
			mustAppend(t, s, note("a.example.com"))
		})
	}
}

// checkoutable refuses what git's verify_path does on the file systems
// meta runs on.
func TestCheckoutable(t *testing.T) {
	for p, want := range map[string]bool{
		"meta.yaml":                        true,
		"projects/coop/prod/a.example.com": true,
		".gitignore":                       true,
		"docs/.github/x":                   true,
		"a/.git":                           false,
		".git/config":                      false,
		".GIT/hooks/pre-commit":            false,
		".Git/config":                      false,
		".g\u200cit/config":                false,
		"\ufeff.git/config":                false,
		"../x":                             false,
		"a/../../x":                        false,
		"a/./b":                            false,
		"a//b":                             false,
		"":                                 false,
	} {
		if got := checkoutable(p); got != want {
			t.Errorf("checkoutable(%q) = %v, want %v", p, got, want)
		}
	}
}
