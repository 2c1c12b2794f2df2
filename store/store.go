// Package store is the meta operator log: an append-only set of immutable
// event records in a git repository, and the heads folded from them.
//
// Every write goes through one sequence (write.go): take the log's lock,
// finish what a killed meta left half done, pull, read meta.yaml afresh, let
// the caller place apps and add events, check leases, stamp and validate
// the events, note the files in the journal, write them, commit, index and
// push. Reads fold an app's records as the branch tip has them, the same way
// on every machine, through a cache keyed by content.
//
// The pieces live in packages of their own: the record format in
// store/record, the fold in store/fold, meta.yaml in store/config, the
// cache in store/cache, and every contact with git in store/gitrepo.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/store/cache"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// Errors callers branch on.
var (
	// ErrNotLog: the directory is not (inside) a meta log repository.
	ErrNotLog = errors.New("not a meta log")
	// ErrExists: init found a meta log already there.
	ErrExists = errors.New("already a meta log")
	// ErrNotFound: the log has no events for the app.
	ErrNotFound = errors.New("no events")
	// ErrAmbiguous: the domain has events under more than one project/env.
	ErrAmbiguous = errors.New("ambiguous domain")
	// ErrNeedAddress: an app's first event needs a project and an env.
	ErrNeedAddress = errors.New("project and env needed")
	// ErrMoved: an event names another project/env than the app's.
	ErrMoved = errors.New("app lives elsewhere")
	// ErrNoEnv: the app has no sealed env file in the log, or no version
	// with the digest asked for.
	ErrNoEnv = errors.New("no env file")
	// ErrNoChange: a write would change nothing.
	ErrNoChange = errors.New("nothing to change")
	// ErrUnsupported: the repository is in a format meta does not write.
	ErrUnsupported = gitrepo.ErrUnsupported
)

// Store is an open meta log.
type Store struct {
	root   string
	gitDir string
	repo   *gitrepo.Repo
	// cfg is meta.yaml as the last read or write took it: a write
	// reloads it while reads in other goroutines (the hub's) use it.
	cfg     atomic.Pointer[config.Config]
	work    *worktree
	cache   *cache.Cache
	journal journal
	state   syncState
	// imu guards integ, before and notes: reads may run in goroutines of
	// their own (the hub's).
	imu sync.Mutex
	// integ is the integrity state at the tip as last checked (see
	// quarantine.go); nil until the first read.
	integ *integrity.State
	// before holds the states at the commits this process committed on,
	// for a write it takes back.
	before map[string]*integrity.State
	// notes are what the command should tell (notes.go).
	notes []string
	// fetched: this Store tried a fetch since it was opened (see
	// RefreshAfterMiss).
	fetched atomic.Bool
	// OnCheck, when set, is told how many commits a walk of history has
	// checked (see quarantine.go), and when it is done: for progress on a
	// first walk of a long history.
	OnCheck func(commits int, done bool)
	// signer signs the commits the log makes; nil for none (SetSigner).
	signer signing.Signer
	// derived is the derived state the remote published, as far as this
	// process looked (derived.go).
	derived derivedCache
	// turns is the directory of this machine's turns at remotes (turn.go),
	// "" for none.
	turns string
	// onDerive, when set, is called as PublishDerived starts deriving,
	// for tests of what goes on meanwhile.
	onDerive func()
	// Clock is the time heads are evaluated at (a lease past its expiry
	// is over); time.Now when nil.
	Clock func() time.Time
}

// Open opens the log whose work tree is root.
//
// A work tree without meta.yaml is still the log's when its history holds
// a valid one: a commit that deleted it is quarantined, not obeyed.
func Open(root string) (*Store, error) { return OpenWith(root, OpenOptions{}) }

// OpenOptions are what Open may be told beyond the log's place.
type OpenOptions struct {
	// OnCheck is set as the Store's OnCheck before anything is read: the
	// first walk of a fresh clone's history happens as it opens.
	OnCheck func(commits int, done bool)
}

// OpenWith is Open with opts.
func OpenWith(root string, opts OpenOptions) (*Store, error) {
	hasConfig := isFile(filepath.Join(root, config.File))
	if !hasConfig && !isDir(filepath.Join(root, ".git")) {
		return nil, fmt.Errorf("%w: %s has no %s", ErrNotLog, root, config.File)
	}
	repo, err := gitrepo.Open(root)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	metaDir := metaDirOf(repo.GitDir())
	s := &Store{
		root:    root,
		gitDir:  repo.GitDir(),
		repo:    repo,
		work:    &worktree{fs: afero.NewBasePathFs(afero.NewOsFs(), root), root: root},
		cache:   cache.New(afero.NewBasePathFs(afero.NewOsFs(), filepath.Join(metaDir, "cache"))),
		journal: journal{dir: metaDir},
		state:   syncState{path: filepath.Join(metaDir, "sync.json")},
		OnCheck: opts.OnCheck,
		turns:   turnsDir(),
	}
	if !hasConfig {
		tip, err := repo.Head()
		if err == nil && !tip.IsZero() {
			var data []byte
			if data, err = s.configAt(tip); err == nil && data == nil {
				err = fmt.Errorf("%w: %s has no %s, and its history holds none", ErrNotLog, root, config.File)
			}
		} else if err == nil {
			err = fmt.Errorf("%w: %s has no %s", ErrNotLog, root, config.File)
		}
		if err != nil {
			repo.Close()
			return nil, err
		}
	}
	if _, err := s.reloadConfig(); err != nil {
		repo.Close()
		return nil, err
	}
	if branch, err := repo.Branch(); err != nil || s.Config().Branch != "" && branch != s.Config().Branch {
		repo.Close()
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		return nil, fmt.Errorf("%w: the log lives on branch %s (meta.yaml says so), but %s has %s checked out: `git -C %s checkout %s`", ErrNotLog, s.Config().Branch, root, branch, root, s.Config().Branch)
	}
	return s, nil
}

// Close releases the git process the log may have started for reading.
func (s *Store) Close() error { return s.repo.Close() }

// Root is the log's work tree.
func (s *Store) Root() string { return s.root }

// MetaDir is where the clone keeps what is its own and not the log's
// (derived state, the journal, the pin, the hub's tokens and NATS data):
// meta under its git directory, which git never shares.
func (s *Store) MetaDir() string { return metaDirOf(s.gitDir) }

// metaPath is the file name in MetaDir.
func (s *Store) metaPath(name string) string { return filepath.Join(s.MetaDir(), name) }

func metaDirOf(gitDir string) string { return filepath.Join(gitDir, "meta") }

// Config is the log's meta.yaml as this clone last read it: when the log
// was opened, or after the last pull that changed it.
func (s *Store) Config() config.Config {
	if c := s.cfg.Load(); c != nil {
		return *c
	}
	return config.Config{}
}

func (s *Store) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

// reloadConfig reads meta.yaml again, as the branch tip has it: after a
// pull or a write may have changed it. When a commit broke or deleted it,
// the last valid version stands (history keeps it; see package integrity),
// so no clone is stopped by one bad commit. An edit of the work tree's copy
// that is not committed is the operator's, not the log's, and changes
// nothing meta does (a log being started, whose meta.yaml is not committed
// yet, is read from the work tree).
func (s *Store) reloadConfig() ([]byte, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	data, err := s.configAt(tip)
	if err == nil && data == nil {
		data, err = s.work.read(config.File)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", config.File, err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w; mend it and commit it (git commit %s)", err, config.File)
	}
	s.cfg.Store(&cfg)
	if err := s.keepSigners(); err != nil {
		// Verifying with git is a convenience; the log goes on without it.
		s.notef("the allowed-signers file for git is not up to date: %v", err)
	}
	return data, nil
}

// configAt is meta.yaml as reads take it at commit: the tip's, or the last
// valid one when a later commit broke it.
func (s *Store) configAt(commit gitrepo.Hash) ([]byte, error) {
	if commit.IsZero() {
		return nil, nil
	}
	// A valid one is the tip's when the state kept for it says no commit
	// was left out that changed it: then no walk of history is needed. The
	// rules that quarantine a meta.yaml are config.Parse failing, a branch
	// other than the log's (see integrity.State.config), and a commit the
	// trust rule leaves out, whose meta.yaml parses well. One that names
	// another branch this clone has is valid there: this clone is on the
	// wrong branch, which Open says.
	data, err := s.repo.FileAt(commit, config.File)
	if err != nil {
		return nil, err
	}
	if kept := s.keptState(commit); data != nil && kept != nil && kept.Config == "" {
		if cfg, err := config.Parse(data); err == nil {
			branch, _ := s.repo.Branch()
			if cfg.Branch == "" || cfg.Branch == branch || s.repo.HasBranch(cfg.Branch) {
				return data, nil
			}
		}
	}
	st, err := s.stateAt(commit)
	if err != nil {
		return nil, err
	}
	if st.Config != "" {
		return s.repo.ReadBlob(gitrepo.NewHash(st.Config))
	}
	return s.repo.FileAt(commit, config.File)
}

// keptState is the integrity state at commit if one is at hand without a
// walk: the one this process published, or the one kept on disk.
func (s *Store) keptState(commit gitrepo.Hash) *integrity.State {
	s.imu.Lock()
	st := s.integ
	s.imu.Unlock()
	if st != nil && st.Checked == commit.String() {
		return st
	}
	if st := loadState(s.integrityPath()); st != nil && st.Checked == commit.String() {
		return st
	}
	return nil
}

// Find walks up from dir to the first directory holding meta.yaml and a
// .git directory: the root of the log dir is in.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		// The first work tree upward answers: a linked one inside a log
		// is not the log around it.
		if top, err := gitrepo.IsWorkTree(d); top {
			if err != nil {
				return "", fmt.Errorf("%w: %w", ErrNotLog, err)
			}
			// .git/meta: a log whose meta.yaml a commit deleted.
			if isFile(filepath.Join(d, config.File)) || isDir(filepath.Join(d, ".git", "meta")) {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w: no %s in %s or any parent (run `meta init`, or pass --dir)", ErrNotLog, config.File, abs)
		}
	}
}

func isFile(p string) bool { fi, err := os.Stat(p); return err == nil && fi.Mode().IsRegular() }
func isDir(p string) bool  { fi, err := os.Stat(p); return err == nil && fi.IsDir() }
