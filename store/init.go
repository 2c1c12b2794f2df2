package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// InitOptions says how to create a log.
type InitOptions struct {
	// Project and Env become meta.yaml's defaults; either may be empty.
	Project string
	Env     string
	// Operator is the author of the commit that adds meta.yaml.
	Operator Signature
	// Signer, when set, signs that commit, and the log's commits from
	// then on (see Store.SetSigner).
	Signer signing.Signer
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
		if err := projects.ValidatePortable("project", opts.Project); err != nil {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	if opts.Env != "" {
		if err := projects.ValidateEnv(opts.Env); err != nil {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
		if err := projects.ValidatePortable("env", opts.Env); err != nil {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	if err := refuseNesting(dir); err != nil {
		return nil, err
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
	data := config.Config{Version: config.Initial, Branch: branch, Project: opts.Project, Env: opts.Env}.Marshal()
	repo.SetSigner(opts.Signer)
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	if h, err := repo.Commit(tip, []gitrepo.File{{Path: config.File, Data: data}}, "meta: start operator log\n", opts.Operator); err != nil {
		if h.IsZero() { // not committed: leave the directory as it was
			os.Remove(cfgPath)
		}
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	s, err := Open(dir)
	if err != nil {
		return nil, err
	}
	s.SetSigner(opts.Signer)
	return s, nil
}

// JoinOptions says how to join or start a shared log.
type JoinOptions struct {
	InitOptions
	// URL is the remote: any URL git can fetch from and push to.
	URL string
	// Branch is the remote's branch the log lives on, when the operator
	// says (else it is found; see useLogBranch).
	Branch string
}

// Join clones the log at opts.URL into dir, which must not exist or be
// empty. A remote without a log (empty, or a repository without meta.yaml)
// gets one: meta.yaml is committed and pushed. A remote in a format meta
// does not write is refused, and dir left as it was.
//
// The clone is made beside dir, in a directory of its own, and moved into
// place only once it is a log: a join killed half-way leaves dir as it
// was, and the next join starts over.
func Join(ctx context.Context, dir string, opts JoinOptions) (*Store, error) {
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("init %s: %w: the directory is not empty; clone into a new one", dir, ErrExists)
	}
	existed := err == nil
	if err := refuseNesting(dir); err != nil {
		return nil, err
	}
	s, err := joinOnce(ctx, dir, existed, opts)
	if errors.Is(err, errRaced) {
		// Another operator started the log on the same empty remote a
		// moment before: join theirs instead, as if this had come later.
		s, err = joinOnce(ctx, dir, existed, opts)
	}
	return s, err
}

// ErrManyLogs: the remote holds a log on more than one branch, and the
// join does not guess which.
var ErrManyLogs = errors.New("more than one log")

// joinStarted is called when a join has started a log and is about to
// push it: where a test lets another operator's start win the race.
var joinStarted = func() {}

// errRaced: a log this join started could not be pushed, because the
// remote got a log of its own meanwhile.
var errRaced = errors.New("the remote got a log meanwhile")

func joinOnce(ctx context.Context, dir string, existed bool, opts JoinOptions) (*Store, error) {
	staging := joinStaging(dir)
	if err := os.RemoveAll(staging); err != nil { // what a killed join left
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	defer os.RemoveAll(staging)
	in := func(err error) error { return stagedError{err, staging, dir} }
	repo, err := gitrepo.Clone(ctx, opts.URL, staging)
	if errors.Is(err, gitrepo.ErrUnsupported) {
		return nil, fmt.Errorf("init %s: %w", dir, in(err))
	}
	if err != nil {
		return nil, fmt.Errorf("init %s: %w: %w", dir, ErrSync, in(err))
	}
	err = useLogBranch(ctx, repo, opts.Branch)
	repo.Close()
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, in(err))
	}
	s, err := Open(staging)
	if err != nil && !errors.Is(err, ErrNotLog) {
		// A log is there, but no meta could read it: do not start another
		// one over it.
		return nil, fmt.Errorf("init %s: the remote holds a log this meta cannot read: %w", dir, in(err))
	}
	if errors.Is(err, ErrNotLog) && exists(filepath.Join(staging, config.File)) {
		// A log whose meta.yaml names a branch the remote does not have:
		// someone renamed or deleted the log's branch on the remote.
		return nil, fmt.Errorf("init %s: the remote holds a log on a branch other than the one its meta.yaml names, which the remote no longer has (renamed or deleted there): a clone of the log puts the branch back with `meta sync`; then join again (%w)", dir, in(err))
	}
	joined := err == nil
	if joined {
		s.Close()
	} else {
		// No log there yet: start one, pushed once it is in place.
		if s, err = Init(staging, opts.InitOptions); err != nil {
			return nil, in(err)
		}
		s.Close()
	}
	if err := moveInto(staging, dir); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	if s, err = Open(dir); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	s.SetSigner(opts.Signer)
	if joined {
		now := time.Now() // one instant: a sync after an attempt means it worked
		s.state.save(syncTimes{LastSync: now, LastAttempt: now})
		// Read every record once now, while the operator expects a clone
		// to take a moment, so the first head is as fast as any.
		if _, err := s.List(); err != nil {
			return nil, fmt.Errorf("init %s: the log was cloned, but reading it failed: %w", dir, err)
		}
		tip, err := s.repo.Head()
		if err == nil {
			err = s.checkPin(ctx, tip)
		}
		if err != nil {
			return nil, fmt.Errorf("init %s: the log was cloned, but pinning its operators failed: %w", dir, err)
		}
		return s, nil // joined an existing log
	}
	joinStarted()
	if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
		if errors.Is(err, gitrepo.ErrUnsupported) || errors.Is(err, ErrUnrelated) {
			// Nothing this clone writes can ever reach that remote, or it
			// holds a log now: this clone's is only its meta.yaml.
			s.Close()
			removeClone(dir, existed)
			if errors.Is(err, ErrUnrelated) {
				return nil, errRaced
			}
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
		return nil, fmt.Errorf("init %s: the log was created here but not pushed (`meta sync` pushes it): %w", dir, err)
	}
	return s, nil
}

// stagedError names the directory a join is for, not the one it clones
// into, in what git and Init said.
type stagedError struct {
	err          error
	staging, dir string
}

func (e stagedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.staging, e.dir)
}

func (e stagedError) Unwrap() error { return e.err }

// ErrNested: the directory is inside another log's work tree.
var ErrNested = errors.New("inside the log")

// refuseNesting refuses a log inside another log's work tree: its files
// would be the outer log's untracked files, and a read in it would answer
// for the wrong log.
func refuseNesting(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	if outer, err := Find(filepath.Dir(abs)); err == nil {
		return fmt.Errorf("init %s: %w at %s: start or join a log outside it", dir, ErrNested, outer)
	}
	return nil
}

// joinStaging is where a join into dir clones: beside it, hidden, named
// for it, so that a join killed half-way is cleared by the next.
func joinStaging(dir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(dir)), "."+filepath.Base(filepath.Clean(dir))+".meta-join")
}

// moveInto puts the finished clone in place: one rename, which replaces
// dir when it is an empty directory; entry by entry when dir cannot be
// replaced (a mount point).
func moveInto(staging, dir string) error {
	if err := os.Rename(staging, dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(staging, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// useLogBranch checks out, in a fresh clone, the branch the remote's log
// lives on, whatever the remote's HEAD names: a plain `git init --bare`
// names master, which a log started on main (or no branch at all) leaves
// dangling. want, when set, is the operator's choice.
//
// A branch holds the log when its meta.yaml names it, or names no branch
// (an older log): as its tip has it, or, when a later commit renamed the
// branch there (which the log's rules quarantine), as the first commit
// that added meta.yaml wrote it. A branch whose meta.yaml names another
// holds a copy of that log (a branch someone made from it), not the log.
// One that names itself is preferred to one that names none. When two
// branches hold a log alike, the join does not guess: anyone who can push
// can make a branch, and the operator says which log is theirs. When none
// holds one, a new log starts on the branch HEAD names (adopting what is
// there), or main.
func useLogBranch(ctx context.Context, repo *gitrepo.Repo, want string) error {
	branches, err := repo.RemoteBranches(ctx)
	if err != nil {
		return err
	}
	if want != "" {
		if err := config.ValidBranch(want); err != nil {
			return fmt.Errorf("--branch: %w", err)
		}
		if !slices.Contains(branches, want) {
			return fmt.Errorf("%w: --branch %s: the remote has no such branch (it has %s)", ErrNotFound, want, orNone(branches))
		}
		return repo.UseBranch(ctx, want)
	}
	head, err := repo.RemoteHead(ctx)
	if err != nil {
		return err
	}
	var named, unnamed []string
	seen := map[string]bool{}
	for _, b := range append([]string{head, gitrepo.DefaultBranch, "master"}, branches...) {
		if seen[b] || !slices.Contains(branches, b) {
			continue
		}
		seen[b] = true
		data, err := repo.RemoteFile(b, config.File)
		if err != nil {
			return err
		}
		if data == nil {
			continue
		}
		cfg, err := config.Parse(data)
		if err != nil || cfg.Branch != "" && cfg.Branch != b {
			first, err := repo.RemoteFirstFile(ctx, b, config.File)
			if err != nil {
				return err
			}
			if cfg, err = config.Parse(first); err != nil {
				continue
			}
		}
		switch cfg.Branch {
		case b:
			named = append(named, b)
		case "":
			unnamed = append(unnamed, b)
		}
	}
	logs := named
	if len(logs) == 0 {
		logs = unnamed
	}
	switch {
	case len(logs) == 1:
		return repo.UseBranch(ctx, logs[0])
	case len(logs) > 1:
		return fmt.Errorf("%w: the remote holds a log on each of the branches %s: pass --branch to say which is yours", ErrManyLogs, strings.Join(logs, ", "))
	}
	if head == "" {
		head = gitrepo.DefaultBranch
	}
	return repo.UseBranch(ctx, head)
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
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
