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
// tries again on the new tip.
func (r *Repo) Commit(parent Hash, files []File, msg string, sig Signature) (Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	branch, err := r.branch()
	if err != nil {
		return ZeroHash, err
	}
	tree, err := r.treeOf(parent)
	if err != nil {
		return ZeroHash, err
	}
	w := r.newWriter()
	for _, f := range files {
		blob, err := w.blob(f.Data)
		if err != nil {
			return ZeroHash, err
		}
		tree, err = w.set(tree, strings.Split(f.Path, "/"), &object.TreeEntry{Mode: filemode.Regular, Hash: blob}, f.Replace)
		if err != nil {
			return ZeroHash, fmt.Errorf("add %s: %w", f.Path, err)
		}
	}
	c := &object.Commit{
		Author:    object.Signature{Name: sig.Name, Email: sig.Email, When: sig.When},
		Committer: object.Signature{Name: sig.Name, Email: sig.Email, When: sig.When},
		Message:   msg,
		TreeHash:  tree,
	}
	if !parent.IsZero() {
		c.ParentHashes = []Hash{parent}
	}
	commit, err := w.commit(c)
	if err != nil {
		return ZeroHash, err
	}
	if err := w.sync(r.gitDir); err != nil {
		return ZeroHash, err
	}
	subject, _, _ := strings.Cut(msg, "\n")
	if moved, err := r.updateRef(branch, parent, commit, sig, "commit: "+subject); err != nil {
		if moved {
			return commit, err
		}
		return ZeroHash, err
	}
	if len(w.displaced) > 0 {
		// The index may not hold a file where a directory now is.
		if err := gitindex.Remove(filepath.Join(r.gitDir, "index"), w.displaced...); err != nil {
			return commit, fmt.Errorf("commit %s made, but the git index was not updated (`git reset` repairs it): %w", commit, err)
		}
	}
	if err := r.stage(files); err != nil {
		return commit, fmt.Errorf("commit %s made, but the git index was not updated (`git reset` repairs it): %w", commit, err)
	}
	return commit, nil
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
