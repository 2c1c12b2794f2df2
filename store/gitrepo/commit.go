package gitrepo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo/internal/gitindex"
)

// File is a file to commit: its path relative to the work tree (slash
// separated) and its content, which must already be in the work tree.
type File struct {
	Path string
	Data []byte
	// Replace allows the commit to replace a committed file at Path; meta
	// replaces env files and meta.yaml, never records.
	Replace bool
}

// Commit adds files to the tip of the current branch as one commit with the
// given message, author and committer, and returns the commit's id. Nothing
// else in the work tree or the index changes. A non-zero id with an error
// means the branch moved but a later step failed: the commit stands. parent
// is the tip the caller read (the zero hash for a branch with no commits);
// when the branch has moved since, Commit returns ErrRaced and the caller
// tries again on the new tip. It is a Chain of one.
func (r *Repo) Commit(parent Hash, files []File, msg string, sig Signature) (Hash, error) {
	c := r.NewChain(parent)
	if _, err := c.Commit(files, msg, sig); err != nil {
		return ZeroHash, err
	}
	return c.Finish()
}

// Chain is commits made one on another and put on the current branch
// together: what a group of appends costs is then one sync of the objects,
// one move of the branch and one index update, not one of each a commit.
// Each commit's objects are written as it is made, so reads at Tip see it
// at once; until Finish nothing names them, and a chain never finished
// leaves the branch where it was (its loose objects are garbage git's gc
// removes).
type Chain struct {
	r      *Repo
	w      *writer
	parent Hash
	tip    Hash
	files  []File
	steps  []refStep
}

// refStep is one line of a reflog: the ref moving from old to new.
type refStep struct {
	old, new Hash
	sig      Signature
	msg      string
}

// NewChain starts a chain of commits on parent, the tip the caller read.
func (r *Repo) NewChain(parent Hash) *Chain {
	return &Chain{r: r, w: r.newWriter(), parent: parent, tip: parent}
}

// Tip is the chain's last commit, or its parent before the first.
func (c *Chain) Tip() Hash { return c.tip }

// Commit adds files to the chain's tip as one commit (as Repo.Commit does)
// and returns its id; the branch does not move until Finish.
func (c *Chain) Commit(files []File, msg string, sig Signature) (Hash, error) {
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	tree, err := r.treeOf(c.tip)
	if err != nil {
		return ZeroHash, err
	}
	for _, f := range files {
		blob, err := c.w.blob(f.Data)
		if err != nil {
			return ZeroHash, err
		}
		tree, err = c.w.set(tree, strings.Split(f.Path, "/"), &object.TreeEntry{Mode: filemode.Regular, Hash: blob}, f.Replace)
		if err != nil {
			return ZeroHash, fmt.Errorf("add %s: %w", f.Path, err)
		}
	}
	commit := &object.Commit{
		Author:    object.Signature{Name: sig.Name, Email: sig.Email, When: sig.When},
		Committer: object.Signature{Name: sig.Name, Email: sig.Email, When: sig.When},
		Message:   msg,
		TreeHash:  tree,
	}
	if !c.tip.IsZero() {
		commit.ParentHashes = []Hash{c.tip}
	}
	id, err := c.w.commit(commit)
	if err != nil {
		return ZeroHash, err
	}
	subject, _, _ := strings.Cut(msg, "\n")
	c.steps = append(c.steps, refStep{old: c.tip, new: id, sig: sig, msg: "commit: " + subject})
	c.files = append(c.files, files...)
	c.tip = id
	return id, nil
}

// Finish makes the chain's objects durable, moves the branch from the
// chain's parent to its tip (ErrRaced, and nothing moved, when it no
// longer holds the parent) and records the files in the index; the files
// must be in the work tree by then. It returns the tip: a non-zero one
// with an error means the branch moved but a later step failed, and the
// commits stand. A chain without commits finishes at once.
func (c *Chain) Finish() (Hash, error) {
	if len(c.steps) == 0 {
		return ZeroHash, nil
	}
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	branch, err := r.branch()
	if err != nil {
		return ZeroHash, err
	}
	if err := c.w.sync(r.gitDir); err != nil {
		return ZeroHash, err
	}
	if moved, err := r.moveRef(branch, c.parent, c.tip, c.steps); err != nil {
		if moved {
			return c.tip, err
		}
		return ZeroHash, err
	}
	if len(c.w.displaced) > 0 {
		// The index may not hold a file where a directory now is.
		if err := gitindex.Remove(filepath.Join(r.gitDir, "index"), c.w.displaced...); err != nil {
			return c.tip, fmt.Errorf("commit %s made, but the git index was not updated (`git reset` repairs it): %w", c.tip, err)
		}
	}
	if err := r.stage(c.files); err != nil {
		return c.tip, fmt.Errorf("commit %s made, but the git index was not updated (`git reset` repairs it): %w", c.tip, err)
	}
	return c.tip, nil
}

// MoveBranch moves the current branch from old to new (a compare-and-swap,
// ErrRaced when it no longer holds old), with a reflog line saying why.
func (r *Repo) MoveBranch(old, new Hash, sig Signature, why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	branch, err := r.branch()
	if err != nil {
		return err
	}
	_, err = r.updateRef(branch, old, new, sig, why)
	return err
}

// stage records committed files in the index so `git status` stays clean.
func (r *Repo) stage(files []File) error {
	entries := make([]gitindex.Entry, 0, len(files))
	for _, f := range files {
		fi, err := os.Lstat(filepath.Join(r.root, filepath.FromSlash(f.Path)))
		if err != nil {
			return err
		}
		entries = append(entries, gitindex.Entry{Path: f.Path, Hash: BlobID(f.Data), Mode: gitMode(fi), Stat: gitindex.StatOf(fi)})
	}
	// Git holds index.lock for milliseconds; wait for it rather than leave
	// a committed file out of the index.
	deadline := time.Now().Add(indexLockWait)
	for {
		err := gitindex.Add(filepath.Join(r.gitDir, "index"), entries...)
		if !errors.Is(err, gitindex.ErrLocked) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gitMode is the mode git records for a file in the work tree, as git
// with core.fileMode: a symbolic link, or the owner's execute bit.
func gitMode(fi os.FileInfo) uint32 {
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return 0o120000
	case fi.Mode()&0o100 != 0:
		return 0o100755
	}
	return 0o100644
}

// indexLockWait bounds how long a commit waits for another process's
// index.lock.
const indexLockWait = 3 * time.Second
