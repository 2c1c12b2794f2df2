// Package gitrepo commits files to a git repository the way meta needs: one
// small change at a time, without scanning the working tree, safe against
// concurrent writers, and leaving a repository the git CLI sees as clean.
//
// It builds the blobs, the changed trees and the commit itself (go-git's
// object storage writes them), moves the branch with git's lock-file protocol
// as a compare-and-swap, and records the new files in the index.
package gitrepo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"git.coopcloud.tech/coop-cloud/meta/store/gitindex"
)

// ErrNotRepository means the directory is not the top of a git work tree.
var ErrNotRepository = errors.New("not a git repository")

// ErrRaced means the branch moved between reading it and updating it;
// callers rebuild their commit on the new tip and try again.
var ErrRaced = errors.New("branch moved during commit")

// ErrDetached means HEAD names a commit, not a branch, so there is no branch
// for meta to add its commit to.
var ErrDetached = errors.New("HEAD is detached")

// DefaultBranch is the branch a new repository starts on.
const DefaultBranch = "main"

// Repo is a non-bare git repository. Its methods are safe for concurrent use
// within one process; between processes the ref lock arbitrates.
type Repo struct {
	root   string
	gitDir string
	mu     sync.Mutex
	st     *filesystem.Storage
}

// Open opens the repository whose work tree is root. root must hold a .git
// directory; meta does not support linked work trees or gitdir files.
func Open(root string) (*Repo, error) {
	gitDir := filepath.Join(root, ".git")
	fi, err := os.Stat(filepath.Join(gitDir, "HEAD"))
	if err != nil || fi.IsDir() {
		return nil, fmt.Errorf("%w: %s has no .git/HEAD", ErrNotRepository, root)
	}
	st := filesystem.NewStorageWithOptions(osfs.New(gitDir), cache.NewObjectLRUDefault(), filesystem.Options{})
	return &Repo{root: root, gitDir: gitDir, st: st}, nil
}

// Init creates an empty repository at root whose HEAD names branch.
func Init(root, branch string) (*Repo, error) {
	gitDir := filepath.Join(root, ".git")
	if _, err := os.Stat(gitDir); err == nil {
		return nil, fmt.Errorf("init %s: a git repository exists already", root)
	}
	for _, d := range []string{"objects/info", "objects/pack", "refs/heads", "refs/tags", "info"} {
		if err := os.MkdirAll(filepath.Join(gitDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("init %s: %w", root, err)
		}
	}
	files := map[string]string{
		"HEAD":        "ref: refs/heads/" + branch + "\n",
		"config":      "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n",
		"description": "Unnamed repository; edit this file 'description' to name the repository.\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(gitDir, name), []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("init %s: %w", root, err)
		}
	}
	return Open(root)
}

// Root is the work tree's directory.
func (r *Repo) Root() string { return r.root }

// GitDir is the repository's .git directory.
func (r *Repo) GitDir() string { return r.gitDir }

// Signature is who made a commit and when.
type Signature struct {
	Name  string
	Email string
	When  time.Time
}

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
// means the branch moved but a later step failed: the commit stands. parent is the tip the caller
// read (the zero hash for a branch with no commits); when the branch has
// moved since, Commit returns ErrRaced and the caller tries again on the new
// tip.
func (r *Repo) Commit(parent plumbing.Hash, files []File, msg string, sig Signature) (plumbing.Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	branch, err := r.branch()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	var base plumbing.Hash
	if !parent.IsZero() {
		c, err := object.GetCommit(r.st, parent)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read commit %s: %w", parent, err)
		}
		base = c.TreeHash
	}
	w := newWriter(r.st)
	tree := base
	for _, f := range files {
		blob, err := w.blob(f.Data)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		tree, err = w.set(tree, strings.Split(f.Path, "/"), &object.TreeEntry{Mode: filemode.Regular, Hash: blob}, f.Replace)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("add %s: %w", f.Path, err)
		}
	}
	c := &object.Commit{
		Author:    object.Signature{Name: sig.Name, Email: sig.Email, When: sig.When},
		Committer: object.Signature{Name: sig.Name, Email: sig.Email, When: sig.When},
		Message:   msg,
		TreeHash:  tree,
	}
	if !parent.IsZero() {
		c.ParentHashes = []plumbing.Hash{parent}
	}
	commit, err := w.commit(c)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.sync(r.gitDir); err != nil {
		return plumbing.ZeroHash, err
	}
	subject, _, _ := strings.Cut(msg, "\n")
	if moved, err := r.updateRef(branch, parent, commit, sig, "commit: "+subject); err != nil {
		if moved {
			return commit, err
		}
		return plumbing.ZeroHash, err
	}
	if err := r.stage(files); err != nil {
		return commit, fmt.Errorf("commit %s made, but the git index was not updated (`git reset` repairs it): %w", commit, err)
	}
	return commit, nil
}

// stage records committed files in the index so `git status` stays clean.
func (r *Repo) stage(files []File) error {
	entries := make([]gitindex.Entry, 0, len(files))
	for _, f := range files {
		fi, err := os.Lstat(filepath.Join(r.root, filepath.FromSlash(f.Path)))
		if err != nil {
			return err
		}
		entries = append(entries, gitindex.Entry{Path: f.Path, Hash: blobHash(f.Data), Stat: gitindex.StatOf(fi)})
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

// indexLockWait bounds how long a commit waits for another process's
// index.lock.
const indexLockWait = 3 * time.Second

func blobHash(data []byte) [20]byte {
	return plumbing.ComputeHash(plumbing.BlobObject, data)
}
