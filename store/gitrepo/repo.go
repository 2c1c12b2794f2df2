// Package gitrepo is meta's one door to git: no other package reads or
// writes a repository's objects, refs, index or config.
//
// It commits files one small change at a time, without scanning the work
// tree, safe against concurrent writers, and leaves a repository the git CLI
// sees as clean: it builds the blobs, the changed trees and the commit
// (go-git encodes and writes them as loose objects), moves the branch with
// git's lock-file protocol as a compare-and-swap, and records the new files
// in the index. It reads objects itself while they are loose and through
// one `git cat-file --batch` process once they are packed, and it talks to
// remotes through the git binary. Before anything else it checks that the
// repository is in a format it fully understands (see format.go), so that
// it never writes what would corrupt one.
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
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"

	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// Errors callers branch on.
var (
	// ErrNotRepository: the directory is not the top of a git work tree.
	ErrNotRepository = errors.New("not a git repository")
	// ErrRaced: the branch moved between reading it and updating it;
	// callers rebuild their commit on the new tip and try again.
	ErrRaced = errors.New("branch moved during commit")
	// ErrStaleLock: a ref's lock file stayed past StaleLockGrace, most
	// likely left by a git that crashed; the error names the file.
	ErrStaleLock = errors.New("ref locked")
	// ErrDetached: HEAD names a commit, not a branch, so there is no
	// branch for meta to add its commit to.
	ErrDetached = errors.New("HEAD is detached")
)

// DefaultBranch is the branch a new repository starts on.
const DefaultBranch = "main"

// Hash is a git object id. meta reads and writes SHA-1 repositories only
// (Open refuses others), so it is go-git's 20-byte hash.
type Hash = plumbing.Hash

// ZeroHash is the id of nothing: no commit, no file.
var ZeroHash = plumbing.ZeroHash

// NewHash parses a hexadecimal object id.
func NewHash(s string) Hash { return plumbing.NewHash(s) }

// IsHash says whether s is a full hexadecimal object id.
func IsHash(s string) bool { return plumbing.IsHash(s) }

// BlobID is the id git gives a file with content data.
func BlobID(data []byte) Hash { return plumbing.ComputeHash(plumbing.BlobObject, data) }

// Repo is a non-bare git repository. Its methods are safe for concurrent use
// within one process; between processes the ref lock arbitrates.
type Repo struct {
	root   string
	gitDir string
	mu     sync.Mutex
	// st writes new objects; obj reads them (see objects.go for why
	// reading does not go through st).
	st  *filesystem.Storage
	obj *objects
	// signer signs the commits the repository writes; nil for none.
	signer signing.Signer
}

// Open opens the repository whose work tree is root. root must hold a .git
// directory; meta does not support linked work trees or gitdir files. A
// repository in a format meta does not fully understand is refused with
// ErrUnsupported before anything is read or written.
func Open(root string) (*Repo, error) {
	gitDir := filepath.Join(root, ".git")
	if err := checkGitDir(root); err != nil {
		return nil, err
	}
	fi, err := os.Stat(filepath.Join(gitDir, "HEAD"))
	if err != nil || fi.IsDir() {
		return nil, fmt.Errorf("%w: %s has no .git/HEAD", ErrNotRepository, root)
	}
	if err := checkFormat(gitDir); err != nil {
		return nil, fmt.Errorf("%s: %w", root, err)
	}
	fs := osfs.New(gitDir)
	st := filesystem.NewStorageWithOptions(fs, cache.NewObjectLRUDefault(), filesystem.Options{})
	return &Repo{root: root, gitDir: gitDir, st: st, obj: newObjects(root, dotgit.New(fs))}, nil
}

// ErrLinkedWorkTree means root's .git is a file: a linked work tree (git
// worktree add) or a checkout made with --separate-git-dir. meta keeps its
// journal, lock and cache in the .git directory of the one work tree it
// writes, so it works in the repository's main work tree only.
var ErrLinkedWorkTree = errors.New("a linked work tree")

// checkGitDir refuses a work tree whose .git is a file.
func checkGitDir(root string) error {
	fi, err := os.Lstat(filepath.Join(root, ".git"))
	if err == nil && !fi.IsDir() {
		target := "another directory"
		if data, err := os.ReadFile(filepath.Join(root, ".git")); err == nil {
			if dir, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir: "); ok {
				target = dir
			}
		}
		return fmt.Errorf("%s is %w (its .git is a file pointing at %s); meta works in a repository's main work tree only: run it there", root, ErrLinkedWorkTree, target)
	}
	return nil
}

// IsWorkTree says whether dir is the top of a git work tree, a linked one
// included; ErrLinkedWorkTree when it is a linked one.
func IsWorkTree(dir string) (bool, error) {
	if err := checkGitDir(dir); err != nil {
		return true, err
	}
	fi, err := os.Stat(filepath.Join(dir, ".git"))
	return err == nil && fi.IsDir(), nil
}

// Close stops the git process the repository may have started to read
// packed objects. The Repo stays usable: it starts another when needed.
func (r *Repo) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obj.close()
	return nil
}

// Init creates an empty repository at root whose HEAD names branch: SHA-1
// objects and files refs, git's repository format 0, whatever the user's
// init.defaultObjectFormat says.
func Init(root, branch string) (*Repo, error) {
	gitDir := filepath.Join(root, ".git")
	if err := checkGitDir(root); err != nil {
		return nil, err
	}
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
