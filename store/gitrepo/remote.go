package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gitconfig "github.com/go-git/go-git/v5/config"
)

// ErrRejected means the remote refused a push that may go through later:
// it has commits the local branch does not (fetch, integrate, push again),
// or its branch is locked by another push.
var ErrRejected = errors.New("push rejected")

// ErrUnreachable means the remote could not be reached or read.
var ErrUnreachable = errors.New("remote unreachable")

// Remote is the remote meta syncs with.
const Remote = "origin"

// RemoteURL is the URL of the remote, or "" when none is set. It reads
// .git/config itself: every command asks, and a git process per question
// would cost more than the rest of a read.
func (r *Repo) RemoteURL(ctx context.Context) string {
	data, err := os.ReadFile(filepath.Join(r.gitDir, "config"))
	if err != nil {
		return ""
	}
	cfg := gitconfig.NewConfig()
	if cfg.Unmarshal(data) != nil {
		return ""
	}
	if rc, ok := cfg.Remotes[Remote]; ok && len(rc.URLs) > 0 {
		return rc.URLs[0]
	}
	return ""
}

// ShownURL is a remote URL as meta shows or announces it: without the
// password or token an https URL may carry (https://user:TOKEN@host/...),
// which belongs in git's config only, never on a terminal, in status JSON
// or in what followers receive. URLs without one (ssh, scp-like, paths)
// are unchanged.
func ShownURL(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || u.User == nil || u.Scheme == "" {
		return remote
	}
	if _, has := u.User.Password(); !has {
		return remote
	}
	u.User = url.UserPassword(u.User.Username(), "REDACTED")
	return strings.Replace(u.String(), "REDACTED", "***", 1)
}

// trackingRef is where the remote's copy of branch is kept.
func trackingRef(branch string) string {
	return "refs/remotes/" + Remote + "/" + strings.TrimPrefix(branch, "refs/heads/")
}

// RemoteTip is the last fetched tip of the remote's copy of the current
// branch; zero if none was fetched.
func (r *Repo) RemoteTip() (Hash, error) {
	branch, err := r.branch()
	if err != nil {
		return ZeroHash, err
	}
	return r.readRef(trackingRef(branch))
}

// Fetch brings the remote's copy of the current branch up to date and
// returns its tip (zero when the remote has no such branch yet). Errors
// wrap ErrUnreachable, or ErrIncomplete when the remote sent commits
// without all they hold; either way the remote-tracking ref stays where it
// was.
func (r *Repo) Fetch(ctx context.Context) (Hash, error) {
	branch, err := r.branch()
	if err != nil {
		return ZeroHash, err
	}
	short := strings.TrimPrefix(branch, "refs/heads/")
	if err := r.breakStaleTrackingLock(branch); err != nil {
		return ZeroHash, err
	}
	if r.RemoteURL(ctx) != "" {
		url, err := r.fetchURL(ctx)
		if err != nil {
			return ZeroHash, err
		}
		if nativeTransport(r.root, url) {
			return r.fetchPack(ctx, branch, url) // see fetchpack.go for why
		}
	}
	// Forced, so a rewritten remote is seen as it is; callers compare with
	// the tip they saw before and refuse what lost commits.
	spec := "+" + branch + ":" + trackingRef(branch)
	if _, err := r.git(ctx, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", Remote, spec); err != nil {
		var ge *GitError
		if errors.As(err, &ge) && strings.Contains(ge.Stderr, "couldn't find remote ref") {
			return ZeroHash, nil // an empty remote
		}
		return ZeroHash, fmt.Errorf("%w: fetch %s from %s: %w", ErrUnreachable, short, Remote, err)
	}
	return r.readRef(trackingRef(branch))
}

// Push sends the current branch to the remote. It returns ErrRejected when
// the remote has moved on; the remote never loses a commit to it.
func (r *Repo) Push(ctx context.Context) error {
	branch, err := r.branch()
	if err != nil {
		return err
	}
	_, err = r.git(ctx, "push", "--quiet", "--porcelain", Remote, branch+":"+branch)
	if err != nil {
		var ge *GitError
		if errors.As(err, &ge) && strings.Contains(ge.Stderr, "hash algorithm") {
			return fmt.Errorf("%w: the remote keeps sha256 objects, the one format git has besides SHA-1, and meta writes SHA-1 objects only (%v)", ErrUnsupported, err)
		}
		if errors.As(err, &ge) && strings.Contains(ge.Stderr, "cannot lock ref") {
			return fmt.Errorf("%w: the remote's branch is locked, by another push or by a lock file a killed git left there (%v)", ErrRejected, err)
		}
		if errors.As(err, &ge) && (strings.Contains(ge.Stderr, "rejected") || strings.Contains(ge.Stderr, "non-fast-forward") ||
			strings.Contains(ge.Stderr, "fetch first") || strings.Contains(ge.Stderr, "failed to update ref")) {
			return fmt.Errorf("%w: the remote has new commits (%v)", ErrRejected, err)
		}
		return fmt.Errorf("%w: push to %s: %w", ErrUnreachable, Remote, err)
	}
	// The remote now holds our tip: remember it as the remote's.
	tip, err := r.Head()
	if err != nil {
		return err
	}
	return r.SetRemoteTip(ctx, tip)
}

// breakStaleTrackingLock removes a lock on the remote-tracking ref that a
// killed git left. meta fetches only while holding its own lock, so a lock
// that outlives the grace period is no other meta's; a git user's fetch
// holds it for moments.
func (r *Repo) breakStaleTrackingLock(branch string) error {
	return breakStale(filepath.Join(r.gitDir, filepath.FromSlash(trackingRef(branch))+".lock"), StaleLockGrace)
}

// IsAncestor reports whether commit a is b or one of b's ancestors.
func (r *Repo) IsAncestor(ctx context.Context, a, b Hash) (bool, error) {
	if a.IsZero() {
		return true, nil
	}
	if b.IsZero() {
		return false, nil
	}
	_, err := r.git(ctx, "merge-base", "--is-ancestor", a.String(), b.String())
	var ge *GitError
	var exit *exec.ExitError
	if errors.As(err, &ge) && errors.As(ge.Err, &exit) && exit.ExitCode() == 1 {
		return false, nil
	}
	return err == nil, err
}

// MergeBase is the best common ancestor of a and b; zero when they share
// no history.
func (r *Repo) MergeBase(ctx context.Context, a, b Hash) (Hash, error) {
	out, err := r.git(ctx, "merge-base", a.String(), b.String())
	var ge *GitError
	var exit *exec.ExitError
	if errors.As(err, &ge) && errors.As(ge.Err, &exit) && exit.ExitCode() == 1 {
		return ZeroHash, nil
	}
	if err != nil {
		return ZeroHash, err
	}
	return NewHash(strings.TrimSpace(out)), nil
}

// Commits lists the commits reachable from to but not from from, oldest
// first (from may be zero: all of to's history).
func (r *Repo) Commits(ctx context.Context, from, to Hash) ([]Hash, error) {
	if to.IsZero() {
		return nil, nil
	}
	spec := to.String()
	if !from.IsZero() {
		spec = from.String() + ".." + to.String()
	}
	out, err := r.git(ctx, "rev-list", "--reverse", "--topo-order", spec)
	if err != nil {
		return nil, err
	}
	var hs []Hash
	for _, line := range strings.Fields(out) {
		hs = append(hs, NewHash(line))
	}
	return hs, nil
}

// CountCommits is how many commits are reachable from to but not from
// from (which may be zero), without listing them.
func (r *Repo) CountCommits(ctx context.Context, from, to Hash) (int, error) {
	if to.IsZero() {
		return 0, nil
	}
	spec := to.String()
	if !from.IsZero() {
		spec = from.String() + ".." + to.String()
	}
	out, err := r.git(ctx, "rev-list", "--count", spec)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// Clone clones url into dir, a new or empty directory, with the git
// binary. A clone in a format meta cannot use is left as git made it, with
// Open's ErrUnsupported: the caller takes it back.
func Clone(ctx context.Context, url, dir string) (*Repo, error) {
	if _, err := runGit(ctx, ".", "clone", "--quiet", "--origin", Remote, url, dir); err != nil {
		return nil, fmt.Errorf("%w: clone %s: %w", ErrUnreachable, url, err)
	}
	r, err := Open(dir)
	if err != nil {
		return nil, fmt.Errorf("clone %s: %w", url, err)
	}
	return r, nil
}

// SetRemote points the remote at url.
func (r *Repo) SetRemote(ctx context.Context, url string) error {
	if r.RemoteURL(ctx) != "" {
		_, err := r.git(ctx, "remote", "set-url", Remote, url)
		return err
	}
	_, err := r.git(ctx, "remote", "add", Remote, url)
	return err
}

// SetRemoteTip resets the remote-tracking copy of the branch, so a fetch
// that showed a rewritten remote keeps being compared with what was seen.
func (r *Repo) SetRemoteTip(ctx context.Context, tip Hash) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	branch, err := r.branch()
	if err != nil || tip.IsZero() {
		return err
	}
	if err := r.breakStaleTrackingLock(branch); err != nil {
		return err
	}
	ref := trackingRef(branch)
	cur, err := r.readRef(ref)
	if err != nil || cur == tip {
		return err
	}
	_, err = r.updateRef(ref, cur, tip, Signature{Name: "meta", When: time.Now()}, "meta: remote tip")
	return err
}
