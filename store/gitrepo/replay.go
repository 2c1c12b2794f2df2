package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrConflict means a local commit and the remote changed the same file.
// meta's records never conflict; only files people edit by hand can.
var ErrConflict = errors.New("local and remote changes collide")

// ReplayOptions say what a replay leaves out.
type ReplayOptions struct {
	// Keep, when set, says whether to replay one change of a commit; a
	// commit left with nothing to change is not replayed.
	Keep func(commit Hash, ch FileChange) bool
	// SetAside, when set, is told of a commit that conflicts with the new
	// base, which the replay then leaves out and goes on; without it the
	// conflict ends the replay. It is told once the replay is made, and an
	// error from it fails the replay.
	SetAside func(commit Hash, conflict error) error
}

// Keep is called with the repository locked: it must not call the Repo.

// Replay makes new commits on top of onto that each change what one of
// commits changed relative to its first parent, with the same author,
// committer and message, and returns the last (onto itself for none). It
// moves no ref. A change whose file on the new base is no longer what the
// commit started from is an ErrConflict; a commit whose every change the
// new base already has is not replayed.
func (r *Repo) Replay(ctx context.Context, onto Hash, commits []Hash, opts ReplayOptions) (Hash, error) {
	tip, aside, err := r.replay(ctx, onto, commits, opts)
	if err != nil {
		return ZeroHash, err
	}
	for _, a := range aside {
		if err := opts.SetAside(a.commit, a.conflict); err != nil {
			return ZeroHash, err
		}
	}
	return tip, nil
}

type setAside struct {
	commit   Hash
	conflict error
}

func (r *Repo) replay(ctx context.Context, onto Hash, commits []Hash, opts ReplayOptions) (Hash, []setAside, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var aside []setAside
	w := r.newWriter()
	tip := onto
	for _, h := range commits {
		if err := ctx.Err(); err != nil {
			return ZeroHash, nil, err
		}
		c, err := r.obj.commit(h)
		if err != nil {
			return ZeroHash, nil, err
		}
		parent := ZeroHash
		if len(c.ParentHashes) > 0 {
			parent = c.ParentHashes[0]
		}
		changes, err := r.diffCommits(parent, h)
		if err != nil {
			return ZeroHash, nil, err
		}
		base, err := r.treeOf(tip)
		if err != nil {
			return ZeroHash, nil, err
		}
		tree, conflict, err := r.applyChanges(w, base, h, changes, opts.Keep)
		if err != nil {
			return ZeroHash, nil, err
		}
		if conflict != nil {
			if opts.SetAside == nil {
				return ZeroHash, nil, conflict
			}
			aside = append(aside, setAside{h, conflict})
			continue
		}
		if tree == base && !tip.IsZero() {
			continue // nothing left to change
		}
		next := &object.Commit{Author: c.Author, Committer: c.Committer, Message: c.Message, TreeHash: tree, ParentHashes: []Hash{tip}}
		if tip.IsZero() {
			next.ParentHashes = nil
		}
		if tip, err = w.commit(next); err != nil {
			return ZeroHash, nil, err
		}
	}
	if err := w.sync(r.gitDir); err != nil {
		return ZeroHash, nil, err
	}
	return tip, aside, nil
}

// applyChanges applies the changes of commit h that keep keeps to the
// tree base, or says which one conflicts.
func (r *Repo) applyChanges(w *writer, base, h Hash, changes []FileChange, keep func(Hash, FileChange) bool) (Hash, error, error) {
	tree := base
	// Deletions first, as in Build.
	ordered := make([]FileChange, 0, len(changes))
	for _, ch := range changes {
		if ch.To.IsZero() {
			ordered = append(ordered, ch)
		}
	}
	for _, ch := range changes {
		if !ch.To.IsZero() {
			ordered = append(ordered, ch)
		}
	}
	for _, ch := range ordered {
		if keep != nil && !keep(h, ch) {
			continue
		}
		have, err := r.blobIn(tree, ch.Path)
		if err != nil {
			return ZeroHash, nil, err
		}
		if have == ch.To {
			continue // already so
		}
		if have != ch.From {
			return ZeroHash, fmt.Errorf("%w: your commit %s changes %s, which the remote changed too", ErrConflict, h.String()[:12], ch.Path), nil
		}
		var e *object.TreeEntry
		if !ch.To.IsZero() {
			e = &object.TreeEntry{Mode: ch.mode, Hash: ch.To}
		}
		if tree, err = w.set(tree, strings.Split(ch.Path, "/"), e, true); err != nil {
			return ZeroHash, nil, fmt.Errorf("replay %s: %w", h, err)
		}
	}
	return tree, nil, nil
}

// Info reads one commit's id, parents, author, time and subject.
func (r *Repo) Info(h Hash) (CommitInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.obj.commit(h)
	if err != nil {
		return CommitInfo{}, err
	}
	subject, _, _ := strings.Cut(c.Message, "\n")
	return CommitInfo{ID: h, Parents: c.ParentHashes, Author: c.Author.Name + " <" + c.Author.Email + ">", When: c.Author.When.UTC(), Subject: subject}, nil
}

// Edit is one change of a commit Build makes: the file at Path becomes
// Data, or the blob Blob already in the repository, or is removed when
// both are empty.
type Edit struct {
	Path string
	Blob Hash
	Data []byte
}

// Build makes a commit on parent that applies edits, with sig as author
// and committer, and returns it; it moves no ref. It is how meta puts
// files back as history has them, which are all objects already.
func (r *Repo) Build(parent Hash, edits []Edit, msg string, sig Signature) (Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tree, err := r.treeOf(parent)
	if err != nil {
		return ZeroHash, err
	}
	w := r.newWriter()
	// Deletions first: a file that goes from where a directory is to be
	// written (a link over a month, say) must not take that directory
	// with it.
	ordered := make([]Edit, 0, len(edits))
	for _, e := range edits {
		if e.Data == nil && e.Blob.IsZero() {
			ordered = append(ordered, e)
		}
	}
	for _, e := range edits {
		if e.Data != nil || !e.Blob.IsZero() {
			ordered = append(ordered, e)
		}
	}
	for _, e := range ordered {
		if e.Data != nil {
			if e.Blob, err = w.blob(e.Data); err != nil {
				return ZeroHash, err
			}
		}
		var entry *object.TreeEntry
		if !e.Blob.IsZero() {
			entry = &object.TreeEntry{Mode: filemode.Regular, Hash: e.Blob}
		}
		if tree, err = w.set(tree, strings.Split(e.Path, "/"), entry, true); err != nil {
			return ZeroHash, fmt.Errorf("build: %s: %w", e.Path, err)
		}
	}
	who := object.Signature{Name: sig.Name, Email: sig.Email, When: sig.When}
	c := &object.Commit{Author: who, Committer: who, Message: msg, TreeHash: tree}
	if !parent.IsZero() {
		c.ParentHashes = []Hash{parent}
	}
	h, err := w.commit(c)
	if err != nil {
		return ZeroHash, err
	}
	if err := w.sync(r.gitDir); err != nil {
		return ZeroHash, err
	}
	return h, nil
}
