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
	Path   string
	From   plumbing.Hash
	To     plumbing.Hash
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
