package gitrepo

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Others tells a person's changes apart as git status does: staged or
// not, and new files they added with git add from untracked ones.
func TestOthersSaysWhatIsStaged(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	write := func(p, content string) {
		t.Helper()
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"meta.yaml", "plain.txt", "staged.txt", "partly.txt", "gone.txt", "removed.txt", "docs/notes.md", "projects/a/b/c.example.com/x.pb"} {
		write(p, "v1\n")
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "start")

	write("plain.txt", "v2\n")
	write("staged.txt", "v2\n")
	git(t, dir, "add", "staged.txt")
	write("partly.txt", "v2\n")
	git(t, dir, "add", "partly.txt")
	write("partly.txt", "v3\n")
	os.Remove(filepath.Join(dir, "gone.txt"))
	git(t, dir, "rm", "-q", "removed.txt")
	write("docs/notes.md", "v2\n")
	git(t, dir, "add", "docs/notes.md")
	write("new.txt", "x\n")
	git(t, dir, "add", "new.txt")
	write("newdir/inside.txt", "x\n")
	git(t, dir, "add", "newdir")
	write("stray.txt", "x\n")
	write("straydir/file.txt", "x\n")
	write("projects/a/b/c.example.com/y.pb", "not meta's business here\n")

	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := []string{
		"deleted (staged): removed.txt",
		"deleted: gone.txt",
		"modified (partly staged): partly.txt",
		"modified (staged): docs/notes.md",
		"modified (staged): staged.txt",
		"modified: plain.txt",
		"new (staged): new.txt",
		"new (staged): newdir/",
		"untracked: stray.txt",
		"untracked: straydir/",
	}
	if got := r.Others("projects"); !slices.Equal(got, want) {
		t.Errorf("Others =\n%q\nwant\n%q", got, want)
	}
	// and with nothing to say, nothing (the index is not read)
	git(t, dir, "reset", "-q", "--hard")
	git(t, dir, "clean", "-qfd")
	if got := r.Others("projects"); len(got) != 0 {
		t.Errorf("Others on a clean tree = %q", got)
	}
}

// A token in an https remote URL is git's to know: meta shows and
// announces the URL without it.
func TestShownURLDropsPasswords(t *testing.T) {
	for in, want := range map[string]string{
		"https://alice:ghp_SECRET@github.com/coop/log.git": "https://alice:***@github.com/coop/log.git",
		"https://oauth2:glpat-x@gitlab.example/log.git":    "https://oauth2:***@gitlab.example/log.git",
		"https://alice@github.com/coop/log.git":            "https://alice@github.com/coop/log.git",
		"ssh://git@host:2222/coop/log.git":                 "ssh://git@host:2222/coop/log.git",
		"git@github.com:coop/log.git":                      "git@github.com:coop/log.git",
		"/srv/git/log.git":                                 "/srv/git/log.git",
		"git://host/log.git":                               "git://host/log.git",
	} {
		if got := ShownURL(in); got != want {
			t.Errorf("ShownURL(%q) = %q, want %q", in, got, want)
		}
	}
}
