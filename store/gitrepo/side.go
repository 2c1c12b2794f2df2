package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A side branch is a branch of the remote beside the log's that holds
// something other than the log (its derived state, say): meta writes each
// of its commits anew, with no parent, and force-pushes it, so it never
// grows a history and never merges. A plain `git clone` brings it along as
// refs/remotes/origin/NAME, which is why it is a branch and not a ref under
// refs/meta/.

// SideTip is the remote's side branch name as last fetched (or pushed); zero
// when there is none.
func (r *Repo) SideTip(name string) (Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readRef(trackingRef(name))
}

// FetchSide brings the remote's side branch name up to date and returns its
// tip: zero when the remote has none.
func (r *Repo) FetchSide(ctx context.Context, name string) (Hash, error) {
	spec := "+refs/heads/" + name + ":" + trackingRef(name)
	if _, err := r.git(ctx, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", Remote, spec); err != nil {
		var ge *GitError
		if errors.As(err, &ge) && strings.Contains(ge.Stderr, "couldn't find remote ref") {
			return ZeroHash, nil
		}
		return ZeroHash, fmt.Errorf("%w: fetch %s from %s: %w", ErrUnreachable, name, Remote, err)
	}
	return r.SideTip(name)
}

// PushSide makes commit the remote's side branch name, whatever it held,
// and records it as fetched.
func (r *Repo) PushSide(ctx context.Context, name string, commit Hash) error {
	if _, err := r.git(ctx, "push", "--quiet", "--porcelain", "--force", Remote, commit.String()+":refs/heads/"+name); err != nil {
		return fmt.Errorf("%w: push %s to %s: %w", ErrUnreachable, name, Remote, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ref := trackingRef(name)
	cur, err := r.readRef(ref)
	if err != nil || cur == commit {
		return err
	}
	_, err = r.updateRef(ref, cur, commit, Signature{Name: "meta", When: time.Now()}, "meta: pushed "+name)
	return err
}

// ObjectSize is the size of object h, read from its header without reading
// the object.
func (r *Repo) ObjectSize(ctx context.Context, h Hash) (int64, error) {
	out, err := r.git(ctx, "cat-file", "-s", h.String())
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(out), 10, 64)
}
