package gitrepo

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Branch is the short name of the branch HEAD names, e.g. "main", whether
// or not it has commits yet.
func (r *Repo) Branch() (string, error) {
	name, err := r.branch()
	return strings.TrimPrefix(name, "refs/heads/"), err
}

// RemoteHead is the branch the remote's HEAD names, e.g. "master" for a
// repository made with a plain `git init --bare`, whether or not that
// branch exists there; "" when the remote does not say.
func (r *Repo) RemoteHead(ctx context.Context) (string, error) {
	out, err := r.git(ctx, "ls-remote", "--symref", Remote, "HEAD")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	for _, line := range strings.Split(out, "\n") {
		target, name, ok := strings.Cut(line, "\t")
		if ok && name == "HEAD" && strings.HasPrefix(target, "ref: refs/heads/") {
			return strings.TrimPrefix(target, "ref: refs/heads/"), nil
		}
	}
	return "", nil
}

// RemoteBranches lists the branches a clone or fetch brought from the
// remote, sorted.
func (r *Repo) RemoteBranches(ctx context.Context) ([]string, error) {
	out, err := r.git(ctx, "for-each-ref", "--format=%(refname)", "refs/remotes/"+Remote+"/")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ref := range strings.Fields(out) {
		name := strings.TrimPrefix(ref, "refs/remotes/"+Remote+"/")
		if name != "HEAD" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// RemoteFile returns the content of path on the remote's branch as last
// fetched; nil when it has no such file.
func (r *Repo) RemoteFile(branch, path string) ([]byte, error) {
	tip, err := r.readRef(trackingRef("refs/heads/" + branch))
	if err != nil || tip.IsZero() {
		return nil, err
	}
	return r.FileAt(tip, path)
}

// UseBranch points HEAD at branch: at the remote's copy of it when the
// remote has one (checking it out into what must be a fresh clone's work
// tree), else at a branch with no commits yet, which the first commit
// starts.
func (r *Repo) UseBranch(ctx context.Context, branch string) error {
	tip, err := r.readRef(trackingRef("refs/heads/" + branch))
	if err != nil {
		return err
	}
	if tip.IsZero() {
		_, err = r.git(ctx, "symbolic-ref", "HEAD", "refs/heads/"+branch)
		return err
	}
	_, err = r.git(ctx, "checkout", "-q", "-B", branch, "--track", Remote+"/"+branch)
	return err
}

// LsRemote asks the remote, now, for the tip of branch: zero when the
// remote has no such branch. An error is ErrUnreachable with all git said.
func (r *Repo) LsRemote(ctx context.Context, branch string) (Hash, error) {
	out, err := r.git(ctx, "ls-remote", Remote, "refs/heads/"+branch)
	if err != nil {
		return ZeroHash, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	for _, line := range strings.Split(out, "\n") {
		if h, ref, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok && ref == "refs/heads/"+branch && IsHash(h) {
			return NewHash(h), nil
		}
	}
	return ZeroHash, nil
}

// HasBranch says the clone has a local branch of that name.
func (r *Repo) HasBranch(name string) bool {
	h, err := r.readRef("refs/heads/" + name)
	return err == nil && !h.IsZero()
}

// RemoteFirstFile returns path as the first commit on the remote's branch
// that added it wrote it (the oldest of those reachable from the tip); nil
// when none did.
func (r *Repo) RemoteFirstFile(ctx context.Context, branch, path string) ([]byte, error) {
	out, err := r.git(ctx, "log", "--reverse", "--format=%H", "--diff-filter=A", Remote+"/"+branch, "--", path)
	if err != nil {
		return nil, err
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if !IsHash(first) {
		return nil, nil
	}
	return r.FileAt(NewHash(first), path)
}
