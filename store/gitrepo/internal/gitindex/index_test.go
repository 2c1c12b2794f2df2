package gitindex

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// addFile writes a new file, stores its blob with git and records it with
// Add, as meta's commit path does.
func addFile(t *testing.T, dir, name string) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(name))
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(name), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "hash-object", "-w", name)
	fi, err := os.Lstat(full)
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{Path: name, Hash: plumbing.ComputeHash(plumbing.BlobObject, []byte(name)), Stat: StatOf(fi)}
	if err := Add(filepath.Join(dir, ".git", "index"), e); err != nil {
		t.Fatalf("add %s: %v", name, err)
	}
}

func setThresholds(t *testing.T, above, maxSplit int) {
	oldAbove, oldMax := splitAbove, maxSplitEntries
	splitAbove, maxSplitEntries = above, maxSplit
	t.Cleanup(func() { splitAbove, maxSplitEntries = oldAbove, oldMax })
}

// repo makes a repository with n committed files.
func repo(t *testing.T, n int) string {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	for i := 0; i < n; i++ {
		name := filepath.Join("base", string(rune('a'+i%26))+strings.Repeat("x", i/26))
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "top"), []byte("top"), 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "base")
	return dir
}

// staged lists what git sees as staged relative to HEAD, as "A path".
func staged(t *testing.T, dir string) string {
	return git(t, dir, "diff", "--cached", "--name-status")
}

func TestAddGrowsIntoASplitIndexGitReads(t *testing.T) {
	setThresholds(t, 20, 5)
	dir := repo(t, 10)
	var want []string
	for i := 0; i < 40; i++ {
		name := "new/" + string(rune('a'+i%26)) + strings.Repeat("n", i/26)
		addFile(t, dir, name)
		want = append(want, "A\t"+name)
		// git agrees at every step: the new files are staged, nothing
		// else changed, the index is valid.
		if got := git(t, dir, "ls-files", "--stage", name); got == "" {
			t.Fatalf("step %d: git does not see %s", i, name)
		}
	}
	if got := staged(t, dir); got != strings.Join(sorted(want), "\n") {
		t.Fatalf("staged:\n%s", got)
	}
	if st := git(t, dir, "status", "--porcelain", "--untracked-files=all"); strings.Contains(st, "??") || strings.Contains(st, " M") {
		t.Fatalf("status:\n%s", st)
	}
	shared, _ := filepath.Glob(filepath.Join(dir, ".git", "sharedindex.*"))
	if len(shared) != 1 {
		t.Fatalf("shared index files: %v (old ones must be removed)", shared)
	}
	paths, err := Paths(filepath.Join(dir, ".git", "index"))
	if err != nil || len(paths) != 10+1+40 {
		t.Fatalf("Paths = %d, %v", len(paths), err)
	}
	// git can go on using the index it finds.
	git(t, dir, "commit", "-q", "-m", "more")
	if st := git(t, dir, "status", "--porcelain"); st != "" {
		t.Fatalf("status after commit:\n%s", st)
	}
}

// Git itself splits indexes and records changes to shared entries in the
// link extension's bitmaps; meta applies them.
func TestAddAppliesGitsSplitIndexChanges(t *testing.T) {
	setThresholds(t, 1000, 1000)
	dir := repo(t, 30)
	git(t, dir, "update-index", "--split-index")
	// Replace a shared entry (modify and stage it), delete another; git
	// also refreshes the stat data of the rest, replacing those too.
	os.WriteFile(filepath.Join(dir, "top"), []byte("changed"), 0o644)
	git(t, dir, "add", "top")
	git(t, dir, "rm", "-q", "--cached", "base/c")
	before := git(t, dir, "status", "--porcelain")
	ix, err := read(filepath.Join(dir, ".git", "index"))
	if err != nil || ix.shared == nil || len(ix.replaced) == 0 || len(ix.deleted) != 1 {
		t.Fatalf("git's split index: %+v, %v", ix, err)
	}
	addFile(t, dir, "new/file")
	after := git(t, dir, "status", "--porcelain")
	if strings.Join(sorted(strings.Split(after, "\n")), "\n") != strings.Join(sorted(append(strings.Split(before, "\n"), "A  new/file")), "\n") {
		t.Fatalf("status changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := git(t, dir, "diff", "--cached", "--name-status"); got != "D\tbase/c\nA\tnew/file\nM\ttop" {
		t.Fatalf("staged:\n%s", got)
	}
}

func TestAddReadsEveryIndexVersion(t *testing.T) {
	for _, v := range []string{"2", "3", "4"} {
		t.Run("v"+v, func(t *testing.T) {
			dir := repo(t, 40)
			git(t, dir, "update-index", "--index-version", v)
			if v == "3" {
				os.WriteFile(filepath.Join(dir, "later"), []byte("l"), 0o644)
				git(t, dir, "add", "-N", "later")
			}
			before := staged(t, dir)
			addFile(t, dir, "base/new")
			if got := staged(t, dir); got != strings.TrimSpace(before+"\nA\tbase/new") && got != "A\tbase/new\n"+before {
				t.Fatalf("staged:\n%s\nwas:\n%s", got, before)
			}
		})
	}
}

func TestAddRefusesWhatItCannotRewrite(t *testing.T) {
	dir := repo(t, 3)
	lock := filepath.Join(dir, ".git", "index.lock")
	os.WriteFile(lock, nil, 0o644)
	if err := Add(filepath.Join(dir, ".git", "index")); err == nil || !strings.Contains(err.Error(), "index.lock exists") {
		t.Fatalf("locked index: %v", err)
	}
	os.Remove(lock)
	os.WriteFile(filepath.Join(dir, ".git", "index"), []byte("DIRC garbage that is long enough to have a checksum"), 0o644)
	if err := Add(filepath.Join(dir, ".git", "index")); err == nil {
		t.Fatal("corrupt index accepted")
	}
}

func TestEWAH(t *testing.T) {
	// bit size 200; one marker: no run, 2 literal words; bits 3 and 64+1.
	b := []byte{0, 0, 0, 200, 0, 0, 0, 3}
	word := func(v uint64) {
		for i := 7; i >= 0; i-- {
			b = append(b, byte(v>>(8*i)))
		}
	}
	word(2 << 33)
	word(1 << 3)
	word(1 << 1)
	b = append(b, 0, 0, 0, 0)
	bits, rest, err := ewahBits(b)
	if err != nil || len(rest) != 0 || len(bits) != 2 || bits[0] != 3 || bits[1] != 65 {
		t.Fatalf("bits %v rest %v err %v", bits, rest, err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// Paths lists the paths in the index at indexPath, in index order, each
// once, as meta would resolve them.
func Paths(indexPath string) ([]string, error) {
	ix, err := read(indexPath)
	if err != nil {
		return nil, err
	}
	es, err := resolve(indexPath, ix)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(es))
	for i, e := range es {
		if i == 0 || es[i-1].path != e.path {
			out = append(out, e.path)
		}
	}
	return out, nil
}

// Adding a path the index already holds in its shared part replaces the
// entry: git and resolve both see it once, also after a re-split.
func TestAddReplacesSharedEntries(t *testing.T) {
	setThresholds(t, 5, 2)
	dir := repo(t, 10)
	indexPath := filepath.Join(dir, ".git", "index")
	addFile(t, dir, "new/a") // converts to split: new/a lands in the shared index
	addFile(t, dir, "new/a") // again, as an interrupted append's repair does
	once := func(when string, total int) {
		t.Helper()
		ix, err := read(indexPath)
		if err != nil {
			t.Fatal(err)
		}
		all, err := resolve(indexPath, ix)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range all {
			if e.path == "new/a" {
				n++
			}
		}
		if n != 1 || len(all) != total {
			t.Fatalf("%s: new/a %d times among %d entries", when, n, len(all))
		}
		if got := git(t, dir, "ls-files", "--stage", "new/a"); strings.Count(got, "\n") != 0 {
			t.Fatalf("%s: git lists new/a more than once:\n%s", when, got)
		}
	}
	once("split", 12)
	addFile(t, dir, "new/b")
	addFile(t, dir, "new/c") // past maxSplitEntries: a new shared index
	addFile(t, dir, "new/a")
	once("after a re-split", 14)
	git(t, dir, "update-index", "--no-split-index")
	if st := git(t, dir, "status", "--porcelain"); strings.Contains(st, "??") {
		t.Fatalf("status:\n%s", st)
	}
}
