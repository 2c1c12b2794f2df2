package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrConflict means a local commit and the remote changed the same file.
// meta's records never conflict; only files people edit by hand can.
var ErrConflict = errors.New("local and remote changes collide")

// Replay makes new commits on top of onto that each change what one of
// commits changed relative to its first parent, with the same author,
// committer and message, and returns the last (onto itself for none). It
// moves no ref. A change whose file on the new base is no longer what the
// commit started from is an ErrConflict.
func (r *Repo) Replay(ctx context.Context, onto Hash, commits []Hash) (Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.newWriter()
	tip := onto
	for _, h := range commits {
		if err := ctx.Err(); err != nil {
			return ZeroHash, err
		}
		c, err := r.obj.commit(h)
		if err != nil {
			return ZeroHash, err
		}
		parent := ZeroHash
		if len(c.ParentHashes) > 0 {
			parent = c.ParentHashes[0]
		}
		changes, err := r.diffCommits(parent, h)
		if err != nil {
			return ZeroHash, err
		}
		tree, err := r.treeOf(tip)
		if err != nil {
			return ZeroHash, err
		}
		for _, ch := range changes {
			have, err := r.blobIn(tree, ch.Path)
			if err != nil {
				return ZeroHash, err
			}
			if have != ch.From && have != ch.To {
				return ZeroHash, fmt.Errorf("%w: your commit %s changes %s, which the remote changed too; integrate it with git by hand", ErrConflict, h.String()[:12], ch.Path)
			}
			var e *object.TreeEntry
			if !ch.To.IsZero() {
				e = &object.TreeEntry{Mode: ch.mode, Hash: ch.To}
			}
			if tree, err = w.set(tree, strings.Split(ch.Path, "/"), e, true); err != nil {
				return ZeroHash, fmt.Errorf("replay %s: %w", h, err)
			}
		}
		next := &object.Commit{Author: c.Author, Committer: c.Committer, Message: c.Message, TreeHash: tree, ParentHashes: []Hash{tip}}
		if tip.IsZero() {
			next.ParentHashes = nil
		}
		if tip, err = w.commit(next); err != nil {
			return ZeroHash, err
		}
	}
	if err := w.sync(r.gitDir); err != nil {
		return ZeroHash, err
	}
	return tip, nil
}
