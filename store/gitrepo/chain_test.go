package gitrepo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A chain's commits are readable as they are made, and reach the branch,
// the reflog and the index only when it is finished: as many commits as
// made, each with its own author, one after another.
func TestChainPutsItsCommitsOnTheBranchTogether(t *testing.T) {
	dir := t.TempDir()
	r, err := Init(dir, DefaultBranch)
	if err != nil {
		t.Fatal(err)
	}
	base := commitFile(t, r, "meta.yaml", "version: 1\n")
	c := r.NewChain(base)
	// More objects than syncFSAbove, so the file system is synced at once.
	const n = 12
	var made []Hash
	for i := range n {
		p := fmt.Sprintf("projects/a/prod/app%d.example.com/2026-12/%d.pb", i%3, i)
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := c.Commit([]File{{Path: p, Data: []byte(p)}}, "add "+p+"\n", Signature{Name: fmt.Sprintf("op%d", i), Email: "op@example.com", When: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if c.Tip() != h {
			t.Fatalf("tip = %s, want the commit just made %s", c.Tip(), h)
		}
		if data, err := r.FileAt(h, p); err != nil || string(data) != p {
			t.Fatalf("read at the chain's tip before it is finished = %q, %v", data, err)
		}
		if tip, _ := r.Head(); tip != base {
			t.Fatalf("the branch moved to %s before the chain was finished", tip)
		}
		made = append(made, h)
	}
	tip, err := c.Finish()
	if err != nil || tip != made[n-1] {
		t.Fatalf("finish = %s, %v; want %s", tip, err, made[n-1])
	}
	assertClean(t, dir)
	if got := git(t, dir, "rev-list", "--count", base.String()+"..HEAD"); got != fmt.Sprint(n) {
		t.Fatalf("commits on the branch = %s, want %d", got, n)
	}
	if got := git(t, dir, "log", "--reverse", "--format=%an", base.String()+"..HEAD"); got != strings.TrimSpace(fmt.Sprintf("op0\nop1\nop2\nop3\nop4\nop5\nop6\nop7\nop8\nop9\nop10\nop11")) {
		t.Fatalf("authors = %q", got)
	}
	// One reflog line a commit, as if each had been committed on its own.
	lines := strings.Split(git(t, dir, "reflog", "--format=%H %gs", DefaultBranch), "\n")
	if len(lines) != n+1 || !strings.HasPrefix(lines[0], made[n-1].String()+" commit: add projects/a/prod/app2") {
		t.Fatalf("reflog = %q", lines)
	}
}

// A chain whose parent is no longer the tip moves nothing; one never
// finished leaves the branch, the index and the work tree as they were.
func TestChainNotFinishedOrRacedChangesNothing(t *testing.T) {
	dir := t.TempDir()
	r, err := Init(dir, DefaultBranch)
	if err != nil {
		t.Fatal(err)
	}
	base := commitFile(t, r, "a", "a")
	abandoned := r.NewChain(base)
	if _, err := abandoned.Commit([]File{{Path: "x", Data: []byte("x")}}, "x\n", Signature{Name: "A", When: time.Now()}); err != nil {
		t.Fatal(err)
	}
	raced := r.NewChain(base)
	if _, err := raced.Commit([]File{{Path: "y", Data: []byte("y")}}, "y\n", Signature{Name: "A", When: time.Now()}); err != nil {
		t.Fatal(err)
	}
	moved := commitFile(t, r, "b", "b")
	if tip, err := raced.Finish(); !errors.Is(err, ErrRaced) || !tip.IsZero() {
		t.Fatalf("finish on a moved branch = %s, %v; want ErrRaced", tip, err)
	}
	if tip, _ := r.Head(); tip != moved {
		t.Fatalf("tip = %s, want %s", tip, moved)
	}
	assertClean(t, dir)
	if empty, err := r.NewChain(moved).Finish(); err != nil || !empty.IsZero() {
		t.Fatalf("an empty chain finishes as %s, %v", empty, err)
	}
}
