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

// sh runs a shell command line in dir, with git's identity set.
func sh(t *testing.T, dir, line string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
}

// WalkLinear gives exactly what Walk (one `git log`) gives, for every kind
// of change a hand commit can make: the in-process walk answers the same
// for the commits between two of a clone's own, or the log's rules would
// judge them differently depending on how many there were.
func TestWalkLinearGivesWhatWalkGives(t *testing.T) {
	r := newRepo(t)
	dir := r.Root()
	base := commitFile(t, r, "projects/p/e/a.example.com/2026-12/A.pb", "a")
	commitFile(t, r, "projects/p/e/a.example.com/2026-12/B.pb", "b")
	first := commitFile(t, r, "projects/p/e/a.example.com/2026-12/C.pb", "c")
	git(t, dir, "reset", "-q", "--hard")
	steps := []string{
		"echo changed > projects/p/e/a.example.com/2026-12/A.pb && git commit -qam modify",
		"git rm -q projects/p/e/a.example.com/2026-12/B.pb && git commit -qm 'a subject\nover two lines\n\nand a body'",
		"chmod +x projects/p/e/a.example.com/2026-12/C.pb && git commit -qam 'mode only   '",
		"ln -s C.pb projects/p/e/a.example.com/2026-12/L.pb && git add -A && git commit -qm link",
		"git update-index --add --cacheinfo 160000,1234567890123456789012345678901234567890,projects/p/e/x.pb && git commit -qm 'gitlink added'",
		"git rm -q --cached projects/p/e/a.example.com/2026-12/C.pb && git update-index --add --cacheinfo 160000,1234567890123456789012345678901234567890,projects/p/e/a.example.com/2026-12/C.pb && git commit -qm 'gitlink over a file'",
		"git rm -rq --cached projects/p/e/a.example.com/2026-12 && rm -rf projects/p/e/a.example.com/2026-12 && mkdir -p projects/p/e/a.example.com && echo f > projects/p/e/a.example.com/2026-12 && git add -A && git commit -qm 'a file over a directory'",
		"echo top > NOTES.md && git add NOTES.md && git commit -qm '\n\nleading blank lines'",
	}
	for _, step := range steps {
		sh(t, dir, step)
	}
	tip, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	collect := func(walk func(func(CommitInfo, []Change) error) error) []string {
		var out []string
		if err := walk(func(info CommitInfo, changes []Change) error {
			out = append(out, fmt.Sprintf("%s %v %q %q %d", info.ID, info.Parents, info.Author, info.Subject, info.When.Unix()))
			for _, ch := range changes {
				out = append(out, fmt.Sprintf("  %+v", ch))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, from := range []Hash{first, base} {
		want := collect(func(v func(CommitInfo, []Change) error) error { return r.Walk(context.Background(), from, tip, v) })
		var ok bool
		got := collect(func(v func(CommitInfo, []Change) error) error {
			var err error
			ok, err = r.WalkLinear(from, tip, v)
			return err
		})
		if !ok {
			t.Fatalf("from %s: not walked in-process", from)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("from %s: WalkLinear gives\n%v\nWalk gives\n%v", from, got, want)
		}
	}
	// Not linear: from is no ancestor, or a merge is on the way.
	if ok, _ := r.WalkLinear(tip, first, func(CommitInfo, []Change) error { return nil }); ok {
		t.Fatal("walked backwards")
	}
	git(t, dir, "checkout", "-q", "-b", "side", "HEAD~1")
	os.WriteFile(filepath.Join(dir, "side.txt"), []byte("s"), 0o644)
	sh(t, dir, "git add side.txt && git commit -qm side && git checkout -q main && git merge -q --no-edit side")
	merged, _ := r.Head()
	if ok, _ := r.WalkLinear(first, merged, func(CommitInfo, []Change) error { return nil }); ok {
		t.Fatal("walked through a merge")
	}
	if !r.LinearAncestor(first, tip) || r.LinearAncestor(tip, first) || r.LinearAncestor(first, merged) {
		t.Fatal("LinearAncestor is wrong")
	}
}

// Linear and LinearMergeBase answer what Commits and MergeBase answer,
// for two operators' appends on one tip.
func TestLinearAnswersWhatGitAnswers(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	dir := r.Root()
	commitFile(t, r, "a.txt", "a")
	base := commitFile(t, r, "b.txt", "b")
	git(t, dir, "reset", "-q", "--hard")
	sh(t, dir, "git checkout -q -b x && echo 1 > x1 && git add x1 && git commit -qm x1 && echo 2 > x2 && git add x2 && git commit -qm x2")
	sh(t, dir, "git checkout -q -b y "+base.String()+" && echo 1 > y1 && git add y1 && git commit -qm y1")
	x, y := NewHash(git(t, dir, "rev-parse", "x")), NewHash(git(t, dir, "rev-parse", "y"))
	got, ok := r.LinearMergeBase(x, y)
	want, err := r.MergeBase(ctx, x, y)
	if err != nil || !ok || got != want || got != base {
		t.Fatalf("LinearMergeBase = %s, %v; MergeBase = %s, %v; want %s", got, ok, want, err, base)
	}
	mine, ok := r.Linear(base, x)
	gitMine, err := r.Commits(ctx, y, x)
	if err != nil || !ok || !reflect.DeepEqual(mine, gitMine) || len(mine) != 2 {
		t.Fatalf("Linear = %v, %v; Commits = %v, %v", mine, ok, gitMine, err)
	}
	if _, ok := r.Linear(x, y); ok {
		t.Fatal("Linear across branches")
	}
	sh(t, dir, "git checkout -q --orphan z && git commit -q --allow-empty -m z")
	z := NewHash(git(t, dir, "rev-parse", "z"))
	if _, ok := r.LinearMergeBase(x, z); ok {
		t.Fatal("a merge base of unrelated histories")
	}
}

// A subject ending in a form feed keeps it, as git's does; a message in
// another encoding than UTF-8, which git re-encodes, is left to git.
func TestWalkLinearSubjectsAreGits(t *testing.T) {
	r := newRepo(t)
	dir := r.Root()
	first := commitFile(t, r, "a.txt", "a")
	git(t, dir, "reset", "-q", "--hard")
	sh(t, dir, `echo b > b && git add b && printf 'bad\014 \n\nbody\n' > m && git commit -qF m`)
	tip, _ := r.Head()
	var want, got []string
	r.Walk(context.Background(), first, tip, func(info CommitInfo, _ []Change) error { want = append(want, info.Subject); return nil })
	ok, err := r.WalkLinear(first, tip, func(info CommitInfo, _ []Change) error { got = append(got, info.Subject); return nil })
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("WalkLinear subjects %q (%v, %v), git's %q", got, ok, err, want)
	}
	sh(t, dir, `echo c > c && git add c && printf 'caf\351\n' > m && git -c i18n.commitEncoding=ISO-8859-1 commit -qF m`)
	latin, _ := r.Head()
	if ok, _ := r.WalkLinear(tip, latin, func(CommitInfo, []Change) error { return nil }); ok {
		t.Fatal("a Latin-1 message read in-process")
	}
}
