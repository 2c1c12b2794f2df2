package gitrepo

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Entry is one name in a directory of a commit's tree: a file (its blob)
// or a directory (its tree).
type Entry struct {
	Name string
	ID   Hash
	Dir  bool
}

// ReadDir lists the directory dir ("" for the top) of commit's tree,
// sorted by name; nil when the commit has no such directory. Submodules
// and symlinks are left out: meta's logs hold neither.
func (r *Repo) ReadDir(commit Hash, dir string) ([]Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tree, err := r.treeOf(commit)
	if err != nil || tree.IsZero() {
		return nil, err
	}
	if tree, err = r.subtree(tree, dir); err != nil || tree.IsZero() {
		return nil, err
	}
	t, err := r.obj.tree(tree)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(t.Entries))
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Dir:
			out = append(out, Entry{Name: e.Name, ID: e.Hash, Dir: true})
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			out = append(out, Entry{Name: e.Name, ID: e.Hash})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// TreeID is the id of the directory dir in commit's tree: the same id
// means the same files with the same content. Zero when there is none.
func (r *Repo) TreeID(commit Hash, dir string) (Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tree, err := r.treeOf(commit)
	if err != nil || tree.IsZero() {
		return ZeroHash, err
	}
	return r.subtree(tree, dir)
}

// Has reports whether commit's tree holds a file at path.
func (r *Repo) Has(commit Hash, path string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	blob, err := r.blobAt(commit, path)
	return !blob.IsZero(), err
}

// FileAt returns the content of path in commit; nil with no error when the
// commit does not hold it.
func (r *Repo) FileAt(commit Hash, path string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	blob, err := r.blobAt(commit, path)
	if err != nil || blob.IsZero() {
		return nil, err
	}
	return r.obj.blob(blob)
}

// ReadBlob returns a blob's content.
func (r *Repo) ReadBlob(h Hash) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.obj.blob(h)
}

// Parent is the first parent of commit, zero for a root commit.
func (r *Repo) Parent(commit Hash) (Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.obj.commit(commit)
	if err != nil {
		return ZeroHash, err
	}
	if len(c.ParentHashes) == 0 {
		return ZeroHash, nil
	}
	return c.ParentHashes[0], nil
}

// treeOf is the root tree of commit, zero for no commit. The caller holds
// r.mu.
func (r *Repo) treeOf(commit Hash) (Hash, error) {
	if commit.IsZero() {
		return ZeroHash, nil
	}
	c, err := r.obj.commit(commit)
	if err != nil {
		return ZeroHash, err
	}
	return c.TreeHash, nil
}

// BlobAt is the blob at path in commit, zero when there is none.
func (r *Repo) BlobAt(commit Hash, path string) (Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobAt(commit, path)
}

// blobAt is the blob at path in commit, zero when there is none. The
// caller holds r.mu.
func (r *Repo) blobAt(commit Hash, path string) (Hash, error) {
	tree, err := r.treeOf(commit)
	if err != nil || tree.IsZero() {
		return ZeroHash, err
	}
	return r.blobIn(tree, path)
}

// blobIn is the blob at path in tree, zero when there is none.
func (r *Repo) blobIn(tree Hash, path string) (Hash, error) {
	dir, name := "", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		dir, name = path[:i], path[i+1:]
	}
	sub, err := r.subtree(tree, dir)
	if err != nil || sub.IsZero() {
		return ZeroHash, err
	}
	t, err := r.obj.tree(sub)
	if err != nil {
		return ZeroHash, err
	}
	for _, e := range t.Entries {
		if e.Name == name && e.Mode != filemode.Dir && e.Mode != filemode.Submodule {
			return e.Hash, nil // a submodule entry is no file: its hash is a commit's
		}
	}
	return ZeroHash, nil
}

// subtree is the id of the tree at dir inside tree, zero if there is none.
func (r *Repo) subtree(tree Hash, dir string) (Hash, error) {
	for _, name := range strings.Split(dir, "/") {
		if name == "" || name == "." {
			continue
		}
		t, err := r.obj.tree(tree)
		if err != nil {
			return ZeroHash, err
		}
		next := ZeroHash
		for _, e := range t.Entries {
			if e.Name == name && e.Mode == filemode.Dir {
				next = e.Hash
			}
		}
		if next.IsZero() {
			return next, nil
		}
		tree = next
	}
	return tree, nil
}

// FileChange is one file that differs between two trees; a zero From or To
// means the file is absent on that side.
type FileChange struct {
	Path     string
	From, To Hash
	mode     filemode.FileMode // on the To side
	fromMode filemode.FileMode // on the From side
}

// IsFile says the To side is a regular or executable file, which a sync
// may write into the work tree (not a symlink or submodule, which meta's
// logs never hold; git checkout restores them).
func (c FileChange) IsFile() bool {
	return c.mode == filemode.Regular || c.mode == filemode.Executable || c.mode == filemode.Deprecated
}

// IsSymlink says the To side is a symbolic link: its blob is the path it
// names.
func (c FileChange) IsSymlink() bool { return c.mode == filemode.Symlink }

// IsExecutable says the To side is an executable file.
func (c FileChange) IsExecutable() bool { return c.mode == filemode.Executable }

// Diff lists the files that differ between the trees of commits a and b
// (a may be zero: everything in b), skipping unchanged subtrees.
func (r *Repo) Diff(a, b Hash) ([]FileChange, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.diffCommits(a, b)
}

func (r *Repo) diffCommits(a, b Hash) ([]FileChange, error) {
	ta, err := r.treeOf(a)
	if err != nil {
		return nil, err
	}
	tb, err := r.treeOf(b)
	if err != nil {
		return nil, err
	}
	var out []FileChange
	err = r.diffTrees(ta, tb, "", func(c FileChange) error {
		out = append(out, c)
		return nil
	})
	return out, err
}

// diffTrees reports every file that differs between trees a and b (either
// may be zero), with its path under prefix and its modes; submodule
// entries are no files, and left out.
func (r *Repo) diffTrees(a, b Hash, prefix string, fn func(FileChange) error) error {
	return r.diffEntries(a, b, prefix, false, fn)
}

// diffEntries is diffTrees, with submodule entries reported too when
// submodules is set (the walk of history names them).
func (r *Repo) diffEntries(a, b Hash, prefix string, submodules bool, fn func(FileChange) error) error {
	if a == b {
		return nil
	}
	ea, err := r.entries(a, submodules)
	if err != nil {
		return err
	}
	eb, err := r.entries(b, submodules)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for n := range ea {
		names[n] = true
	}
	for n := range eb {
		names[n] = true
	}
	for n := range names {
		x, inA := ea[n]
		y, inB := eb[n]
		p := path.Join(prefix, n)
		xDir, yDir := inA && x.Mode == filemode.Dir, inB && y.Mode == filemode.Dir
		var xh, yh Hash
		if inA {
			xh = x.Hash
		}
		if inB {
			yh = y.Hash
		}
		switch {
		case xh == yh && xDir == yDir && (!inA || !inB || x.Mode == y.Mode):
		case xDir && yDir:
			err = r.diffEntries(xh, yh, p, submodules, fn)
		case xDir || yDir:
			// A file became a directory or the other way round: report
			// the file side as a change and walk the directory side.
			fileFrom, fileTo, dirFrom, dirTo := xh, yh, ZeroHash, ZeroHash
			if xDir {
				fileFrom, dirFrom = ZeroHash, xh
			} else {
				fileTo, dirTo = ZeroHash, yh
			}
			if !fileFrom.IsZero() || !fileTo.IsZero() {
				err = fn(FileChange{Path: p, From: fileFrom, To: fileTo, mode: y.Mode, fromMode: x.Mode})
			}
			if err == nil {
				err = r.diffEntries(dirFrom, dirTo, p, submodules, fn)
			}
		default:
			err = fn(FileChange{Path: p, From: xh, To: yh, mode: y.Mode, fromMode: x.Mode})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Repo) entries(tree Hash, submodules bool) (map[string]object.TreeEntry, error) {
	out := map[string]object.TreeEntry{}
	if tree.IsZero() {
		return out, nil
	}
	t, err := r.obj.tree(tree)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", tree, err)
	}
	for _, e := range t.Entries {
		if e.Mode == filemode.Submodule && !submodules {
			continue
		}
		out[e.Name] = e
	}
	return out, nil
}
