package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrConflict means a local commit and the remote changed the same file.
// meta's records never conflict; only files people edit by hand can.
var ErrConflict = errors.New("local and remote changes collide")

// FileChange is one file that differs between two trees; a zero From or To
// means the file is absent on that side.
type FileChange struct {
	Path     string
	From, To plumbing.Hash
	Mode     filemode.FileMode // the mode on the To side
}

// Diff lists the files that differ between the trees of commits a and b
// (a may be zero: everything in b), skipping unchanged subtrees.
func (r *Repo) Diff(a, b plumbing.Hash) ([]FileChange, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.diffCommits(a, b)
}

func (r *Repo) diffCommits(a, b plumbing.Hash) ([]FileChange, error) {
	ta, err := r.treeOf(a)
	if err != nil {
		return nil, err
	}
	tb, err := r.treeOf(b)
	if err != nil {
		return nil, err
	}
	var out []FileChange
	err = r.diffModes(ta, tb, "", func(p string, from, to plumbing.Hash, mode filemode.FileMode) error {
		out = append(out, FileChange{Path: p, From: from, To: to, Mode: mode})
		return nil
	})
	return out, err
}

func (r *Repo) treeOf(commit plumbing.Hash) (plumbing.Hash, error) {
	if commit.IsZero() {
		return plumbing.ZeroHash, nil
	}
	c, err := object.GetCommit(r.st, commit)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read commit %s: %w", commit, err)
	}
	return c.TreeHash, nil
}

// Replay makes new commits on top of onto that each change what one of
// commits changed relative to its first parent, with the same author,
// committer and message, and returns the last (onto itself for none). It
// moves no ref. A change whose file on the new base is no longer what the
// commit started from is an ErrConflict.
func (r *Repo) Replay(ctx context.Context, onto plumbing.Hash, commits []plumbing.Hash) (plumbing.Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := newWriter(r.st)
	tip := onto
	for _, h := range commits {
		if err := ctx.Err(); err != nil {
			return plumbing.ZeroHash, err
		}
		c, err := object.GetCommit(r.st, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read commit %s: %w", h, err)
		}
		parent := plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			parent = c.ParentHashes[0]
		}
		changes, err := r.diffCommits(parent, h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		tree, err := r.treeOf(tip)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		for _, ch := range changes {
			have, err := r.blobIn(tree, ch.Path)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if have != ch.From && have != ch.To {
				return plumbing.ZeroHash, fmt.Errorf("%w: your commit %s changes %s, which the remote changed too; integrate it with git by hand", ErrConflict, h.String()[:12], ch.Path)
			}
			var e *object.TreeEntry
			if !ch.To.IsZero() {
				e = &object.TreeEntry{Mode: ch.Mode, Hash: ch.To}
			}
			if tree, err = w.set(tree, strings.Split(ch.Path, "/"), e, true); err != nil {
				return plumbing.ZeroHash, fmt.Errorf("replay %s: %w", h, err)
			}
		}
		next := &object.Commit{Author: c.Author, Committer: c.Committer, Message: c.Message, TreeHash: tree, ParentHashes: []plumbing.Hash{tip}}
		if tip.IsZero() {
			next.ParentHashes = nil
		}
		if tip, err = w.commit(next); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	if err := w.sync(r.gitDir); err != nil {
		return plumbing.ZeroHash, err
	}
	return tip, nil
}

// blobIn is the blob at path in tree, zero when there is none.
func (r *Repo) blobIn(tree plumbing.Hash, path string) (plumbing.Hash, error) {
	dir, name := "", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		dir, name = path[:i], path[i+1:]
	}
	sub, err := r.subtree(tree, dir)
	if err != nil || sub.IsZero() {
		return plumbing.ZeroHash, err
	}
	t, err := object.GetTree(r.st, sub)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	for _, e := range t.Entries {
		if e.Name == name && e.Mode != filemode.Dir {
			return e.Hash, nil
		}
	}
	return plumbing.ZeroHash, nil
}

// MoveBranch moves the current branch from old to new (a compare-and-swap,
// ErrRaced when it no longer holds old), with a reflog line saying why.
func (r *Repo) MoveBranch(old, new plumbing.Hash, sig Signature, why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	branch, err := r.branch()
	if err != nil {
		return err
	}
	_, err = r.updateRef(branch, old, new, sig, why)
	return err
}

// FileAt returns the content of path in commit; nil with no error when the
// commit does not hold it.
func (r *Repo) FileAt(commit plumbing.Hash, path string) ([]byte, error) {
	r.mu.Lock()
	tree, err := r.treeOf(commit)
	var blob plumbing.Hash
	if err == nil && !tree.IsZero() {
		blob, err = r.blobIn(tree, path)
	}
	r.mu.Unlock()
	if err != nil || blob.IsZero() {
		return nil, err
	}
	return r.ReadBlob(blob)
}
