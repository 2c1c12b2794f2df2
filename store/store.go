// Package store is the meta operator log: an append-only set of immutable
// event records in a git repository, and the heads folded from them.
//
// Appending writes one new record file into the work tree (through afero)
// and commits exactly that file; nothing is ever modified or deleted. Reads
// fold an app's records into its head, the same way on every machine.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
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
	// ErrOperator: an operator or access change names an operator, key or
	// scope that is not there, or is there already.
	ErrOperator = errors.New("operator list")
)

// Store is an open meta log.
type Store struct {
	root   string
	cfg    Config
	files  *Files
	cache  *Cache
	repo   *gitrepo.Repo
	gitDir string
}

// Open opens the log whose work tree is root.
func Open(root string) (*Store, error) {
	data, err := os.ReadFile(filepath.Join(root, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %s has no %s", ErrNotLog, root, ConfigFile)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, err
	}
	repo, err := gitrepo.Open(root)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &Store{
		root:   root,
		cfg:    cfg,
		files:  NewFiles(afero.NewBasePathFs(afero.NewOsFs(), root)),
		cache:  NewCache(afero.NewBasePathFs(afero.NewOsFs(), filepath.Join(repo.GitDir(), "meta", "cache"))),
		repo:   repo,
		gitDir: repo.GitDir(),
	}, nil
}

// Root is the log's work tree.
func (s *Store) Root() string { return s.root }

// Config is the log's meta.yaml, as it was when the log was opened.
func (s *Store) Config() Config { return s.cfg }

// Find walks up from dir to the first directory holding meta.yaml and a
// .git directory: the root of the log dir is in.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if isFile(filepath.Join(d, ConfigFile)) && isDir(filepath.Join(d, ".git")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w: no %s in %s or any parent (run `meta init`, or pass --dir)", ErrNotLog, ConfigFile, abs)
		}
	}
}

func isFile(p string) bool { fi, err := os.Stat(p); return err == nil && fi.Mode().IsRegular() }
func isDir(p string) bool  { fi, err := os.Stat(p); return err == nil && fi.IsDir() }

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
// else.
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
	cfgPath := filepath.Join(dir, ConfigFile)
	if _, err := os.Lstat(cfgPath); err == nil {
		return nil, fmt.Errorf("init %s: %w (%s exists)", dir, ErrExists, ConfigFile)
	}
	repo, err := gitrepo.Open(dir)
	if errors.Is(err, gitrepo.ErrNotRepository) {
		if isDir(filepath.Join(dir, ".git")) {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
		repo, err = gitrepo.Init(dir, gitrepo.DefaultBranch)
	}
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	tip, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	data := Config{Version: ConfigVersion, Project: opts.Project, Env: opts.Env}.Marshal()
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	if h, err := repo.Commit(tip, []gitrepo.File{{Path: ConfigFile, Data: data}}, "meta: start operator log\n", opts.Operator); err != nil {
		if h.IsZero() { // not committed: leave the directory as it was
			os.Remove(cfgPath)
		}
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	return Open(dir)
}
