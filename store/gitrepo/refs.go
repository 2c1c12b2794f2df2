package gitrepo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// branch is the full name of the branch HEAD points to.
func (r *Repo) branch() (string, error) {
	b, err := os.ReadFile(filepath.Join(r.gitDir, "HEAD"))
	if err != nil {
		return "", fmt.Errorf("read HEAD: %w", err)
	}
	head := strings.TrimSpace(string(b))
	name, ok := strings.CutPrefix(head, "ref: ")
	if !ok {
		return "", fmt.Errorf("%w at %s: check out a branch first", ErrDetached, head)
	}
	return name, nil
}

// Head is the commit at the tip of the current branch; the zero hash for a
// branch with no commits yet.
func (r *Repo) Head() (plumbing.Hash, error) {
	name, err := r.branch()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return r.readRef(name)
}

// readRef resolves a ref from its loose file or from packed-refs.
func (r *Repo) readRef(name string) (plumbing.Hash, error) {
	b, err := os.ReadFile(filepath.Join(r.gitDir, filepath.FromSlash(name)))
	if err == nil {
		s := strings.TrimSpace(string(b))
		if !plumbing.IsHash(s) {
			return plumbing.ZeroHash, fmt.Errorf("ref %s holds %q, not a commit id", name, s)
		}
		return plumbing.NewHash(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return plumbing.ZeroHash, fmt.Errorf("read ref %s: %w", name, err)
	}
	f, err := os.Open(filepath.Join(r.gitDir, "packed-refs"))
	if errors.Is(err, os.ErrNotExist) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read packed-refs: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		hash, ref, ok := strings.Cut(sc.Text(), " ")
		if ok && ref == name && plumbing.IsHash(hash) {
			return plumbing.NewHash(hash), nil
		}
	}
	return plumbing.ZeroHash, sc.Err()
}

// updateRef moves ref from old to new the way git does: it holds
// <ref>.lock (created exclusively, so git and other meta processes wait their
// turn), checks the ref still holds old, writes and syncs the lock file and
// renames it over the ref. The reflogs of the ref and HEAD get a line each.
// moved says whether the ref now holds new, even when err is not nil.
func (r *Repo) updateRef(name string, old, new plumbing.Hash, sig Signature, msg string) (moved bool, err error) {
	return r.moveRef(name, old, new, []refStep{{old: old, new: new, sig: sig, msg: msg}})
}

// moveRef is updateRef for a ref that moves from old to new through steps
// (a Chain's commits): one move, a reflog line for each step.
func (r *Repo) moveRef(name string, old, new plumbing.Hash, steps []refStep) (moved bool, err error) {
	path := filepath.Join(r.gitDir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("update %s: %w", name, err)
	}
	lockPath := path + ".lock"
	lock, err := takeLock(lockPath)
	if errors.Is(err, os.ErrExist) {
		return false, fmt.Errorf("update %s: %w: %s has been there for over %s; if no git or meta process is working in this clone, one that crashed left it: remove it (rm %s) and run the command again",
			name, ErrStaleLock, lockPath, StaleLockGrace, lockPath)
	}
	if err != nil {
		return false, fmt.Errorf("update %s: %w", name, err)
	}
	done := false
	defer func() {
		if !done {
			lock.Close()
			os.Remove(lockPath)
		}
	}()
	cur, err := r.readRef(name)
	if err != nil {
		return false, fmt.Errorf("update %s: %w", name, err)
	}
	if cur != old {
		return false, fmt.Errorf("update %s: %w: expected %s, found %s", name, ErrRaced, short(old), short(cur))
	}
	if _, err := lock.WriteString(new.String() + "\n"); err != nil {
		return false, fmt.Errorf("update %s: %w", name, err)
	}
	if err := lock.Sync(); err != nil {
		return false, fmt.Errorf("update %s: %w", name, err)
	}
	if err := lock.Close(); err != nil {
		return false, fmt.Errorf("update %s: %w", name, err)
	}
	if err := os.Rename(lockPath, path); err != nil {
		return false, fmt.Errorf("update %s: %w", name, err)
	}
	done = true
	if err := fsync(filepath.Dir(path)); err != nil {
		return true, fmt.Errorf("update %s: moved, but not synced: %w", name, err)
	}
	// The reflog is a convenience for git users; the commit stands without it.
	var lines strings.Builder
	for _, st := range steps {
		fmt.Fprintf(&lines, "%s %s %s <%s> %d %s\t%s\n", st.old, st.new, st.sig.Name, st.sig.Email, st.sig.When.Unix(), st.sig.When.Format("-0700"), st.msg)
	}
	line := lines.String()
	logs := []string{name}
	if branch, err := r.branch(); err == nil && branch == name {
		logs = append(logs, "HEAD") // as git does, for the branch HEAD names
	}
	for _, log := range logs {
		appendReflog(filepath.Join(r.gitDir, "logs", filepath.FromSlash(log)), line)
	}
	return true, nil
}

func appendReflog(path, line string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	f.WriteString(line)
	f.Close()
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "no commit"
	}
	return h.String()[:12]
}

// takeLock creates the lock file at p exclusively, as git does, waiting up
// to StaleLockGrace for another git or meta that holds it (a ref update
// holds it for moments) rather than failing at once: a write retried on
// the spot met the same lock again, five times in a row.
func takeLock(p string) (*os.File, error) {
	deadline := time.Now().Add(StaleLockGrace)
	for {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, os.ErrExist) || time.Now().After(deadline) {
			return f, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StaleLockGrace is how long a git lock file may live before meta takes it
// for a dead process's: git holds its locks for moments.
const StaleLockGrace = 2 * time.Second

// BreakStaleLocks removes the index and current-branch lock files left by a
// process that died holding them. Callers must know such a process died
// (meta's pending notes say so): a lock still there after wait is taken for
// its. A live git process that really held it for that long fails its own
// rename and reports an error; nothing is corrupted.
func (r *Repo) BreakStaleLocks(wait time.Duration) error {
	branch, err := r.branch()
	if err != nil {
		return err
	}
	for _, l := range []string{
		filepath.Join(r.gitDir, "index.lock"),
		filepath.Join(r.gitDir, filepath.FromSlash(branch)+".lock"),
	} {
		if err := breakStale(l, wait); err != nil {
			return err
		}
	}
	return nil
}

// breakStale waits up to wait for lock to go, then removes it.
func breakStale(lock string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for exists(lock) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.Remove(lock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", lock, err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// KeepRef points ref (a name under refs/meta/) at commit, so that git
// keeps the commit and everything it holds, though no branch reaches it.
func (r *Repo) KeepRef(ref string, commit Hash, sig Signature, why string) error {
	if !strings.HasPrefix(ref, "refs/meta/") {
		return fmt.Errorf("keep %s: meta keeps refs under refs/meta/ only", ref)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, err := r.readRef(ref)
	if err != nil || cur == commit {
		return err
	}
	_, err = r.updateRef(ref, cur, commit, sig, why)
	return err
}

// DropRef deletes a ref KeepRef made.
func (r *Repo) DropRef(ctx context.Context, ref string) error {
	if !strings.HasPrefix(ref, "refs/meta/") {
		return fmt.Errorf("drop %s: meta drops refs under refs/meta/ only", ref)
	}
	_, err := r.git(ctx, "update-ref", "-d", ref)
	return err
}

// Refs lists the refs under prefix (loose or packed) with their commits.
func (r *Repo) Refs(ctx context.Context, prefix string) (map[string]Hash, error) {
	out, err := r.git(ctx, "for-each-ref", "--format=%(objectname) %(refname)", prefix)
	if err != nil {
		return nil, err
	}
	refs := map[string]Hash{}
	for _, line := range strings.Split(out, "\n") {
		if h, name, ok := strings.Cut(strings.TrimSpace(line), " "); ok && plumbing.IsHash(h) {
			refs[name] = plumbing.NewHash(h)
		}
	}
	return refs, nil
}
