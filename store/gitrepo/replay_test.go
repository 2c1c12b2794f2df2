package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// changeFile commits path with content, replacing what is there.
func changeFile(t *testing.T, r *Repo, path, content string) Hash {
	t.Helper()
	full := filepath.Join(r.Root(), filepath.FromSlash(path))
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tip, _ := r.Head()
	h, err := r.Commit(tip, []File{{Path: path, Data: []byte(content), Replace: true}}, "change "+path+"\n", Signature{Name: "Alice", Email: "alice@example.com", When: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newRepo(t *testing.T) *Repo {
	t.Helper()
	r, err := Init(t.TempDir(), "main")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// A replay carries each commit's changes onto the new base; Keep leaves
// changes out (a commit left with none is not replayed), SetAside takes a
// commit that collides out of the replay instead of failing it, and a
// commit the base already has is not replayed twice.
func TestReplayKeepsSetsAsideAndSkips(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	base := commitFile(t, r, "shared.txt", "v1")
	c1 := commitFile(t, r, "a.txt", "a")         // kept
	c2 := changeFile(t, r, "shared.txt", "mine") // collides
	c3 := commitFile(t, r, "drop.txt", "x")      // left out by Keep
	c4 := commitFile(t, r, "b.txt", "b")         // already on the base
	// The other side: shared.txt changed, b.txt added the same.
	sig := Signature{Name: "Bob", Email: "bob@example.com", When: time.Now()}
	onto, err := r.Build(base, []Edit{{Path: "shared.txt", Data: []byte("theirs")}, {Path: "b.txt", Data: []byte("b")}}, "theirs\n", sig)
	if err != nil {
		t.Fatal(err)
	}
	var aside []Hash
	tip, err := r.Replay(ctx, onto, []Hash{c1, c2, c3, c4}, ReplayOptions{
		Keep: func(c Hash, ch FileChange) bool { return ch.Path != "drop.txt" },
		SetAside: func(c Hash, conflict error) error {
			if !errors.Is(conflict, ErrConflict) || !strings.Contains(conflict.Error(), "shared.txt") {
				t.Errorf("conflict = %v", conflict)
			}
			aside = append(aside, c)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(aside) != 1 || aside[0] != c2 {
		t.Fatalf("set aside %v, want %s", aside, c2)
	}
	commits, _ := r.Commits(ctx, onto, tip)
	if len(commits) != 1 {
		t.Fatalf("replayed %d commits, want only a.txt's", len(commits))
	}
	for path, want := range map[string]string{"a.txt": "a", "shared.txt": "theirs", "b.txt": "b", "drop.txt": ""} {
		data, _ := r.FileAt(tip, path)
		if string(data) != want {
			t.Errorf("%s = %q, want %q", path, data, want)
		}
	}
	// Without SetAside, the collision fails the replay.
	if _, err := r.Replay(ctx, onto, []Hash{c2}, ReplayOptions{}); !errors.Is(err, ErrConflict) {
		t.Fatalf("replay without SetAside: %v", err)
	}
}

// Build makes a commit of edits (new data, an existing blob, a removal)
// without moving any ref; KeepRef keeps a commit reachable under
// refs/meta/, Refs lists it, DropRef lets it go.
func TestBuildAndKeptRefs(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	tip := commitFile(t, r, "a.txt", "a")
	blob, _ := r.BlobAt(tip, "a.txt")
	sig := Signature{Name: "Alice", Email: "alice@example.com", When: time.Now()}
	c, err := r.Build(tip, []Edit{{Path: "dir/b.txt", Data: []byte("b")}, {Path: "copy.txt", Blob: blob}, {Path: "a.txt"}}, "edit\n", sig)
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := r.Head(); head != tip {
		t.Fatal("Build moved the branch")
	}
	for path, want := range map[string]string{"dir/b.txt": "b", "copy.txt": "a", "a.txt": ""} {
		if data, _ := r.FileAt(c, path); string(data) != want {
			t.Errorf("%s = %q, want %q", path, data, want)
		}
	}
	if err := r.KeepRef("refs/heads/x", c, sig, "no"); err == nil {
		t.Fatal("KeepRef outside refs/meta/")
	}
	if err := r.KeepRef("refs/meta/aside/"+c.String(), c, sig, "kept"); err != nil {
		t.Fatal(err)
	}
	refs, err := r.Refs(ctx, "refs/meta/aside/")
	if err != nil || len(refs) != 1 || refs["refs/meta/aside/"+c.String()] != c {
		t.Fatalf("refs = %v, %v", refs, err)
	}
	git(t, r.Root(), "pack-refs", "--all") // packed refs count too
	if refs, _ := r.Refs(ctx, "refs/meta/aside/"); len(refs) != 1 {
		t.Fatalf("packed refs = %v", refs)
	}
	if err := r.DropRef(ctx, "refs/meta/aside/"+c.String()); err != nil {
		t.Fatal(err)
	}
	if refs, _ := r.Refs(ctx, "refs/meta/aside/"); len(refs) != 0 {
		t.Fatalf("refs after drop = %v", refs)
	}
}

// Walk visits every commit parents first with what it changed, and
// Introduced finds the commit that wrote a given blob at a path.
func TestWalkAndIntroduced(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	first := commitFile(t, r, "p.txt", "one")
	commitFile(t, r, "q.txt", "q")
	second := changeFile(t, r, "p.txt", "two")
	var seen []string
	err := r.Walk(ctx, ZeroHash, second, func(info CommitInfo, changes []Change) error {
		for _, ch := range changes {
			seen = append(seen, info.Subject+":"+ch.Path)
		}
		if info.Author != "Alice <alice@example.com>" {
			t.Errorf("author %q", info.Author)
		}
		return nil
	})
	if err != nil || strings.Join(seen, " ") != "add p.txt:p.txt add q.txt:q.txt change p.txt:p.txt" {
		t.Fatalf("walk = %v, %v", seen, err)
	}
	for want, content := range map[Hash]string{first: "one", second: "two"} {
		info, err := r.Introduced(ctx, second, "p.txt", BlobID([]byte(content)))
		if err != nil || info.ID != want {
			t.Errorf("introduced %q = %s, %v; want %s", content, info.ID, err, want)
		}
	}
	if info, _ := r.Introduced(ctx, second, "p.txt", BlobID([]byte("never"))); !info.ID.IsZero() {
		t.Errorf("introduced a blob nobody wrote: %s", info.ID)
	}
	// A path with a space and a tab is walked as git has it.
	odd := "dir with space/t\tab.txt"
	os.MkdirAll(filepath.Join(r.Root(), "dir with space"), 0o755)
	c := commitFile(t, r, odd, "odd")
	var paths []string
	r.Walk(ctx, second, c, func(_ CommitInfo, changes []Change) error {
		for _, ch := range changes {
			paths = append(paths, ch.Path)
		}
		return nil
	})
	if len(paths) != 1 || paths[0] != odd {
		t.Fatalf("paths = %q", paths)
	}
}
