package gitrepo

import (
	"fmt"
	"io"
	"path"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Change is one file under a directory that differs between a commit and
// one of its parents. From is the blob in the parent, To the blob in the
// commit; the zero hash means the file is absent there.
type Change struct {
	Commit plumbing.Hash
	Parent plumbing.Hash // zero for a root commit
	Path   string
	From   plumbing.Hash
	To     plumbing.Hash
}

// WalkChanges calls visit for every file under dir that any commit
// reachable from the branch tip adds, modifies or deletes relative to each of
// its parents, and onCommit once per commit. Subtrees that did not change
// are skipped by id, so the cost follows the size of the changes, not of the
// trees.
func (r *Repo) WalkChanges(dir string, onCommit func(), visit func(Change) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tip, err := r.Head()
	if err != nil || tip.IsZero() {
		return err
	}
	seen := map[plumbing.Hash]bool{tip: true}
	queue := []plumbing.Hash{tip}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		c, err := object.GetCommit(r.st, h)
		if err != nil {
			return fmt.Errorf("read commit %s: %w", h, err)
		}
		if onCommit != nil {
			onCommit()
		}
		to, err := r.subtree(c.TreeHash, dir)
		if err != nil {
			return fmt.Errorf("commit %s: %w", h, err)
		}
		parents := c.ParentHashes
		if len(parents) == 0 {
			parents = []plumbing.Hash{plumbing.ZeroHash}
		}
		for _, parent := range parents {
			from := plumbing.ZeroHash
			if !parent.IsZero() {
				pc, err := object.GetCommit(r.st, parent)
				if err != nil {
					return fmt.Errorf("read commit %s (parent of %s): %w", parent, h, err)
				}
				if from, err = r.subtree(pc.TreeHash, dir); err != nil {
					return fmt.Errorf("commit %s: %w", parent, err)
				}
				if !seen[parent] {
					seen[parent] = true
					queue = append(queue, parent)
				}
			}
			err := r.diff(from, to, dir, func(file string, a, b plumbing.Hash) error {
				return visit(Change{Commit: h, Parent: parent, Path: file, From: a, To: b})
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// subtree is the id of the tree at dir inside tree, zero if there is none.
func (r *Repo) subtree(tree plumbing.Hash, dir string) (plumbing.Hash, error) {
	for _, name := range splitDir(dir) {
		t, err := object.GetTree(r.st, tree)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", tree, err)
		}
		next := plumbing.ZeroHash
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

func splitDir(dir string) []string {
	var out []string
	for dir != "" && dir != "." {
		d, f := path.Split(dir)
		out = append([]string{f}, out...)
		dir = path.Clean(d)
		if d == "" {
			break
		}
	}
	return out
}

// diff reports every file that differs between trees a and b (either may
// be zero), with its path under prefix.
func (r *Repo) diff(a, b plumbing.Hash, prefix string, fn func(path string, from, to plumbing.Hash) error) error {
	return r.diffModes(a, b, prefix, func(p string, from, to plumbing.Hash, _ filemode.FileMode) error { return fn(p, from, to) })
}

// diffModes is diff that also says each file's mode on the b side.
func (r *Repo) diffModes(a, b plumbing.Hash, prefix string, fn func(path string, from, to plumbing.Hash, mode filemode.FileMode) error) error {
	if a == b {
		return nil
	}
	ea, err := r.entries(a)
	if err != nil {
		return err
	}
	eb, err := r.entries(b)
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
		var xh, yh plumbing.Hash
		if inA {
			xh = x.Hash
		}
		if inB {
			yh = y.Hash
		}
		switch {
		case xh == yh && xDir == yDir:
		case xDir && yDir:
			err = r.diffModes(xh, yh, p, fn)
		case xDir || yDir:
			// A file became a directory or the other way round: report
			// the file side as a change and walk the directory side.
			fileFrom, fileTo, dirFrom, dirTo := xh, yh, plumbing.ZeroHash, plumbing.ZeroHash
			if xDir {
				fileFrom, dirFrom = plumbing.ZeroHash, xh
			} else {
				fileTo, dirTo = plumbing.ZeroHash, yh
			}
			if !fileFrom.IsZero() || !fileTo.IsZero() {
				err = fn(p, fileFrom, fileTo, y.Mode)
			}
			if err == nil {
				err = r.diffModes(dirFrom, dirTo, p, fn)
			}
		default:
			err = fn(p, xh, yh, y.Mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Repo) entries(tree plumbing.Hash) (map[string]object.TreeEntry, error) {
	out := map[string]object.TreeEntry{}
	if tree.IsZero() {
		return out, nil
	}
	t, err := object.GetTree(r.st, tree)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", tree, err)
	}
	for _, e := range t.Entries {
		if e.Mode == filemode.Submodule {
			continue
		}
		out[e.Name] = e
	}
	return out, nil
}

// ReadBlob returns a blob's content.
func (r *Repo) ReadBlob(h plumbing.Hash) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := object.GetBlob(r.st, h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// Files calls fn for every file under dir in commit's tree.
func (r *Repo) Files(commit plumbing.Hash, dir string, fn func(path string, blob plumbing.Hash)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := object.GetCommit(r.st, commit)
	if err != nil {
		return fmt.Errorf("read commit %s: %w", commit, err)
	}
	tree, err := r.subtree(c.TreeHash, dir)
	if err != nil {
		return err
	}
	return r.diff(plumbing.ZeroHash, tree, dir, func(p string, _, to plumbing.Hash) error {
		fn(p, to)
		return nil
	})
}
