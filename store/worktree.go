package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// worktree is the log's work tree, where meta puts the files it commits
// and brings in the files a sync integrates, so that what git's index says
// is true. Paths are slash-separated and relative to the root. Reads of
// the log come from git, not from here: the work tree is only a fast copy
// of what is committed (see read.go).
type worktree struct {
	fs afero.Fs
	// root is the work tree's directory, for what afero cannot do
	// faithfully (a symbolic link's target is written as git has it).
	root string
}

// checkoutable says git would check out a file at p (slash-separated):
// no name in it is empty, "." or "..", nor .git as a case-insensitive
// file system may read it (git's verify_path and is_hfs_dotgit). A path
// that is not is never written, linked or removed: it leads into the
// repository's own .git or out of the work tree.
func checkoutable(p string) bool {
	for _, name := range strings.Split(p, "/") {
		if name == "" || name == "." || name == ".." || isDotGit(name) {
			return false
		}
	}
	return true
}

// isDotGit says name is .git to git on any file system meta runs on: any
// case (macOS, Windows shares), and on HFS+ with the code points it
// ignores in names.
func isDotGit(name string) bool {
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 0x200c && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x206a && r <= 0x206f, r == 0xfeff:
			return -1
		}
		return r
	}, name)
	return strings.EqualFold(name, ".git")
}

// errUnsafe is a refusal to touch a path checkoutable refuses.
func errUnsafe(p string) error {
	return fmt.Errorf("%w: %q", ErrUnsafePath, p)
}

// create writes a new record, whole or not at all; an existing file is
// never replaced. The caller holds the log's lock.
func (w *worktree) create(p string, data []byte) error {
	if _, err := w.fs.Stat(p); err == nil {
		return fmt.Errorf("write %s: %w", p, fs.ErrExist)
	}
	return w.put(p, data, 0o644)
}

// put writes a file whole or not at all, with the given permissions.
// Records are not synced: a record's bytes are a git object, synced before
// its commit is reported, and reads use the work tree's copy only when its
// hash is that blob's, so a copy a crash damaged costs a read from git, not
// an event. Env files and meta.yaml, which people and sops read here, are.
func (w *worktree) put(p string, data []byte, perm os.FileMode) error {
	if !checkoutable(p) {
		return errUnsafe(p)
	}
	if err := w.dirs(p); err != nil {
		return err
	}
	if _, err := projects.ParseRecordPath(p); err == nil {
		return atomicfile.WriteUnsynced(w.fs, p, data, perm)
	}
	return atomicfile.Write(w.fs, p, data, perm)
}

// link makes p a symbolic link to target, replacing what is there, as git
// checks out a link a commit holds. meta never writes through one: every
// write replaces the link itself.
func (w *worktree) link(p, target string) error {
	if !checkoutable(p) {
		return errUnsafe(p)
	}
	if err := w.dirs(p); err != nil {
		return err
	}
	full := filepath.Join(w.root, filepath.FromSlash(p))
	if err := os.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("put %s in place: %w", p, err)
	}
	return os.Symlink(target, full)
}

// dirs makes the directories p lies in, as the commit being brought in
// has them: a file or a symbolic link where one of them goes is taken
// away first (a commit put it there; the commit meta writes has a
// directory), so that nothing is ever written through a link, outside the
// work tree. A directory where p itself goes, left empty by the deletions
// a sync brings first, goes too.
func (w *worktree) dirs(p string) error {
	parts := strings.Split(path.Dir(p), "/")
	for i := range parts {
		if parts[i] == "." {
			break
		}
		dir := filepath.Join(w.root, filepath.FromSlash(strings.Join(parts[:i+1], "/")))
		fi, err := os.Lstat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		case err != nil:
			return err
		case fi.IsDir():
		default:
			if err := os.Remove(dir); err != nil {
				return err
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
		}
	}
	full := filepath.Join(w.root, filepath.FromSlash(p))
	if fi, err := os.Lstat(full); err == nil && fi.IsDir() {
		if err := removeEmptyDirs(full); err != nil {
			return fmt.Errorf("put %s in place of the directory there: %w", p, err)
		}
	}
	return nil
}

// removeEmptyDirs removes dir and the directories in it when nothing else
// is left in them (git keeps no directories: the deletions a sync brought
// first leave them empty); a file left in one is refused, named.
func removeEmptyDirs(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.Type()&os.ModeType != os.ModeDir {
			return fmt.Errorf("%s is in the way, and not the log's: move it out of the way, then sync", p)
		}
		if err := removeEmptyDirs(p); err != nil {
			return err
		}
	}
	return os.Remove(dir)
}

// clearTemps removes what writes of paths left when a meta was killed half
// way through them. The caller holds the log's lock, so no write of them
// is under way.
func (w *worktree) clearTemps(paths []string) error {
	for _, p := range paths {
		if err := atomicfile.RemoveTemps(w.fs, p); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes a file and what a killed write of it left; a missing
// file is fine.
func (w *worktree) remove(p string) error {
	if !checkoutable(p) || !w.inside(p) {
		return nil // below a link or a file: nothing of the work tree's to remove
	}
	return atomicfile.Discard(w.fs, p)
}

// inside says every directory p lies in is a directory of the work tree,
// not a link to somewhere else.
func (w *worktree) inside(p string) bool {
	parts := strings.Split(path.Dir(p), "/")
	for i := range parts {
		if parts[i] == "." {
			break
		}
		fi, err := os.Lstat(filepath.Join(w.root, filepath.FromSlash(strings.Join(parts[:i+1], "/"))))
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// read returns a file's content as git hashes it: a symbolic link's is
// the path it names, never what it points to (a link committed over a
// record is that commit's content, and comparing what it points to with
// the committed blob would call the checkout an uncommitted change).
func (w *worktree) read(p string) ([]byte, error) {
	if ls, ok := w.fs.(afero.Lstater); ok {
		if fi, _, err := ls.LstatIfPossible(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			if lr, ok := w.fs.(afero.LinkReader); ok {
				target, err := lr.ReadlinkIfPossible(p)
				return []byte(target), err
			}
		}
	}
	return afero.ReadFile(w.fs, p)
}

// blob is the id git would give the file at p, zero when there is none
// (nothing there, a directory, or a path below a link).
func (w *worktree) blob(p string) (gitrepo.Hash, error) {
	if !w.inside(p) {
		return gitrepo.ZeroHash, nil
	}
	if fi, err := os.Lstat(filepath.Join(w.root, filepath.FromSlash(p))); err == nil && fi.IsDir() {
		return gitrepo.ZeroHash, nil
	}
	data, err := w.read(p)
	if errors.Is(err, os.ErrNotExist) {
		return gitrepo.ZeroHash, nil
	}
	if err != nil {
		return gitrepo.ZeroHash, err
	}
	return gitrepo.BlobID(data), nil
}

// copyOf reads p as a fast copy of a blob the caller checks by hashing: a
// link is followed (what it points to is used only if its hash is the
// blob's), which spares the lstat read pays on every record of a cold read.
func (w *worktree) copyOf(p string) ([]byte, error) { return afero.ReadFile(w.fs, p) }

// exists says whether p is a file in the work tree.
func (w *worktree) exists(p string) bool {
	fi, err := w.fs.Stat(p)
	return err == nil && !fi.IsDir()
}

// records lists the record files under the app's directory in the work
// tree, for verify's comparison with what is committed.
func (w *worktree) records(a projects.Address) []string {
	var out []string
	for _, month := range w.names(a.Dir()) {
		dir := a.Dir() + "/" + month + "/"
		for _, name := range w.names(dir) {
			if fi, err := w.fs.Stat(dir + name); err == nil && fi.IsDir() {
				continue // what git checks out for a submodule entry
			}
			if path.Ext(name) == projects.RecordExt {
				out = append(out, dir+name)
			}
		}
	}
	return out
}

// apps lists the app directories in the work tree.
func (w *worktree) apps() []projects.Address {
	var out []projects.Address
	for _, project := range w.names(projects.Root) {
		for _, env := range w.names(path.Join(projects.Root, project)) {
			for _, app := range w.names(path.Join(projects.Root, project, env)) {
				out = append(out, projects.Address{Project: project, Env: env, App: app})
			}
		}
	}
	return out
}

// names lists the entries of dir that are not hidden (temporary files
// start with a dot); a missing directory has none.
func (w *worktree) names(dir string) []string {
	d, err := w.fs.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	out := names[:0]
	for _, n := range names {
		if n != "" && n[0] != '.' {
			out = append(out, n)
		}
	}
	return out
}
