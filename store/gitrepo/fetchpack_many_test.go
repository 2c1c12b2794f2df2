package gitrepo

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// A tree missing under a tip with thousands of new commits is named, as
// under one: diff-tree stops at it while rev-list is still writing the
// commits to it, and rev-list's broken pipe must not be the error told.
func TestCheckConnectedNamesAMissingTreeUnderManyCommits(t *testing.T) {
	root := t.TempDir()
	gitIn := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=A", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=A", "GIT_COMMITTER_EMAIL=a@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	base := newCommits(t, root, 3000).String()
	const bogus = "1234567890123456789012345678901234567890"
	tree := gitIn("040000 tree "+bogus+"\tprojects\n", "mktree", "--missing")
	tip := gitIn("", "commit-tree", "-p", base, "-m", "withheld", tree)
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	err = r.checkConnected(context.Background(), NewHash(tip))
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), bogus) {
		t.Fatalf("checkConnected = %v; want ErrIncomplete naming tree %s", err, bogus)
	}
}
