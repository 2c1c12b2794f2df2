package gitrepo

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// BenchmarkCheckConnected checks commits new to a repository, as a first
// fetch of a long log does: its bytes per operation should not grow with
// the number of commits much beyond what git prints of them, as the check
// streams (a million commits held a gigabyte before).
//
//	go test -run - -bench CheckConnected -benchmem ./store/gitrepo/
func BenchmarkCheckConnected(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("commits=%d", n), func(b *testing.B) {
			root := b.TempDir()
			h := newCommits(b, root, n)
			r, err := Open(root)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := r.checkConnected(context.Background(), h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// newCommits makes n commits in a new repository at root, each adding a
// file two directories down and made on the one before by git
// fast-import, on a ref that is then deleted: every commit is new to the
// repository's refs, as fetched ones are. It returns the last.
func newCommits(t testing.TB, root string, n int) Hash {
	t.Helper()
	if out, err := exec.Command("git", "init", "-q", root).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "commit refs/heads/new\ncommitter A <a@example.com> %d +0000\ndata 2\nc\n", 1700000000+i)
		data := fmt.Sprintf("event %d\n", i)
		fmt.Fprintf(&in, "M 100644 inline projects/p/e/app%d.example.com/%08d.pb\ndata %d\n%s\n", i%50, i, len(data), data)
	}
	in.WriteString("done\n")
	cmd := exec.Command("git", "fast-import", "--quiet", "--done")
	cmd.Dir, cmd.Stdin = root, &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v: %s", err, out)
	}
	tip, err := exec.Command("git", "-C", root, "rev-parse", "refs/heads/new").Output()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", root, "update-ref", "-d", "refs/heads/new").CombinedOutput(); err != nil {
		t.Fatalf("update-ref: %v: %s", err, out)
	}
	return NewHash(strings.TrimSpace(string(tip)))
}
