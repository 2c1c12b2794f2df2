package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// InitOptions says how to create a log.
type InitOptions struct {
	// Project and Env become meta.yaml's defaults; either may be empty.
	Project string
	Env     string
	// Operator signs the commit that adds meta.yaml.
	Operator Signature
}

// Signature is who commits, and when.
type Signature = gitrepo.Signature

// Init makes dir a meta log: it creates a git repository there if there is
// none, or adopts the existing one, and commits meta.yaml, touching nothing
// else. A repository in a format meta does not write is refused, and left
// as it was.
func Init(dir string, opts InitOptions) (*Store, error) {
	if opts.Project != "" {
		if err := projects.ValidateProject(opts.Project); err != nil {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	if opts.Env != "" {
		if err := projects.ValidateEnv(opts.Env); err != nil {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	cfgPath := filepath.Join(dir, config.File)
	if _, err := os.Lstat(cfgPath); err == nil {
		return nil, fmt.Errorf("init %s: %w (%s exists)", dir, ErrExists, config.File)
	}
	repo, err := gitrepo.Open(dir)
	if errors.Is(err, gitrepo.ErrNotRepository) && !exists(filepath.Join(dir, ".git")) {
		repo, err = gitrepo.Init(dir, gitrepo.DefaultBranch)
	}
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	defer repo.Close()
	tip, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	branch, err := repo.Branch()
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	if err := config.ValidBranch(branch); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	data := config.Config{Version: config.Version, Branch: branch, Project: opts.Project, Env: opts.Env}.Marshal()
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	if h, err := repo.Commit(tip, []gitrepo.File{{Path: config.File, Data: data}}, "meta: start operator log\n", opts.Operator); err != nil {
		if h.IsZero() { // not committed: leave the directory as it was
			os.Remove(cfgPath)
		}
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	return Open(dir)
}

// JoinOptions says how to join or start a shared log.
type JoinOptions struct {
	InitOptions
	// URL is the remote: any URL git can fetch from and push to.
	URL string
}

// Join clones the log at opts.URL into dir, which must not exist or be
// empty. A remote without a log (empty, or a repository without meta.yaml)
// gets one: meta.yaml is committed and pushed. A remote in a format meta
// does not write is refused, and dir left as it was.
func Join(ctx context.Context, dir string, opts JoinOptions) (*Store, error) {
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("init %s: %w: the directory is not empty; clone into a new one", dir, ErrExists)
	}
	existed := err == nil
	repo, err := gitrepo.Clone(ctx, opts.URL, dir)
	if errors.Is(err, gitrepo.ErrUnsupported) {
		removeClone(dir, existed)
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("init %s: %w: %w", dir, ErrSync, err)
	}
	defer repo.Close()
	if err := useLogBranch(ctx, repo); err != nil {
		removeClone(dir, existed)
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	s, err := Open(dir)
	if err != nil && !errors.Is(err, ErrNotLog) {
		// A log is there, but no meta could read it: do not start another
		// one over it.
		removeClone(dir, existed)
		return nil, fmt.Errorf("init %s: the remote holds a log this meta cannot read: %w", dir, err)
	}
	if err == nil {
		now := time.Now() // one instant: a sync after an attempt means it worked
		s.state.save(syncTimes{LastSync: now, LastAttempt: now})
		// Read every record once now, while the operator expects a clone
		// to take a moment, so the first head is as fast as any.
		if _, err := s.List(); err != nil {
			return nil, fmt.Errorf("init %s: the log was cloned, but reading it failed: %w", dir, err)
		}
		return s, nil // joined an existing log
	}
	if s, err = Init(dir, opts.InitOptions); err != nil {
		return nil, err
	}
	if err := s.Sync(ctx, SyncOptions{}); err != nil {
		if errors.Is(err, gitrepo.ErrUnsupported) {
			// Nothing this clone writes can ever reach that remote.
			s.Close()
			removeClone(dir, existed)
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
		return nil, fmt.Errorf("init %s: the log was created here but not pushed: %w", dir, err)
	}
	return s, nil
}

// useLogBranch checks out, in a fresh clone, the branch the remote's log
// lives on, whatever the remote's HEAD names: a plain `git init --bare`
// names master, which a log started on main (or no branch at all) leaves
// dangling. The log's branch is the first of these that holds meta.yaml:
// the one HEAD names, main, master, then any other. When none does, a new
// log starts on the branch HEAD names (adopting what is there), or main.
func useLogBranch(ctx context.Context, repo *gitrepo.Repo) error {
	head, err := repo.RemoteHead(ctx)
	if err != nil {
		return err
	}
	branches, err := repo.RemoteBranches(ctx)
	if err != nil {
		return err
	}
	candidates := []string{head, gitrepo.DefaultBranch, "master"}
	candidates = append(candidates, branches...)
	for _, b := range candidates {
		if !slices.Contains(branches, b) {
			continue
		}
		data, err := repo.RemoteFile(b, config.File)
		if err != nil {
			return err
		}
		if data == nil {
			continue
		}
		// A log names its branch; an older one, without the field, is
		// where it was found.
		if cfg, err := config.Parse(data); err == nil && cfg.Branch != "" && cfg.Branch != b {
			return fmt.Errorf("the remote's branch %s holds a meta.yaml that names branch %s: push the log to %s, or mend meta.yaml", b, cfg.Branch, cfg.Branch)
		}
		return repo.UseBranch(ctx, b)
	}
	if head == "" {
		head = gitrepo.DefaultBranch
	}
	return repo.UseBranch(ctx, head)
}

// removeClone takes back a clone into dir: the directory goes, or its
// contents when it was there before.
func removeClone(dir string, existed bool) {
	if !existed {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
