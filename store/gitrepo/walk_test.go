package gitrepo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// A walk is diffed a chunk of commits at a time (one git process a chunk,
// so that git's memory does not grow with history): wherever the chunks
// split it, across a merge, an empty commit, a root, the walk sees the
// same commits in the same order with the same changes, all of history
// and limited to paths.
func TestWalkIsTheSameWhereverChunksSplitIt(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=A", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=A", "GIT_COMMITTER_EMAIL=a@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	write := func(path, data string) {
		t.Helper()
		os.MkdirAll(filepath.Join(dir, filepath.Dir(path)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, path), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run("init", "-q", "-b", "main")
	write("meta.yaml", "a")
	write("p/x/f", "1")
	run("add", "-A")
	run("commit", "-q", "-m", "root")
	run("checkout", "-q", "-b", "side")
	for i := range 3 {
		write(fmt.Sprintf("p/y/%d", i), "s")
		run("add", "-A")
		run("commit", "-q", "-m", fmt.Sprintf("side %d", i))
	}
	run("checkout", "-q", "main")
	write("meta.yaml", "b")
	run("commit", "-q", "-am", "main 1")
	run("merge", "-q", "--no-edit", "side")
	run("commit", "-q", "--allow-empty", "-m", "empty")
	write("p/x/f", "2")
	run("rm", "-q", "p/y/0")
	run("commit", "-q", "-am", "change and delete")
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tip, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		Commit  CommitInfo
		Changes []Change
	}
	walk := func(chunk int, paths []string) []seen {
		t.Helper()
		defer func(was int) { walkChunk = was }(walkChunk)
		walkChunk = chunk
		var got []seen
		if err := r.walk(context.Background(), ZeroHash, tip, paths, func(c CommitInfo, ch []Change) error {
			got = append(got, seen{c, ch})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, paths := range [][]string{nil, {"meta.yaml"}, {"meta.yaml", "p/y"}} {
		whole := walk(1000, paths)
		if paths == nil && len(whole) != 8 {
			t.Fatalf("walked %d commits, want all 8", len(whole))
		}
		merges := 0
		for _, s := range whole {
			if len(s.Commit.Parents) > 1 {
				merges++
			}
		}
		if paths == nil && merges != 1 {
			t.Fatalf("walked %d merges, want 1", merges)
		}
		for _, chunk := range []int{1, 2, 3} {
			if got := walk(chunk, paths); !reflect.DeepEqual(got, whole) {
				t.Errorf("paths %v, %d commits a chunk:\n%+v\nwant\n%+v", paths, chunk, got, whole)
			}
		}
	}
}
