package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// Unpushed is a local event the remote does not have yet.
type Unpushed struct {
	EventID string `json:"event_id"`
	Domain  string `json:"domain"`
	Path    string `json:"path"`
	Commit  string `json:"commit"`
}

// Status is how a clone stands with its remote: `meta status`. Its JSON
// keys are part of meta's interface.
type Status struct {
	Remote string `json:"remote"`
	// LastSync is when a fetch last succeeded; zero if never.
	LastSync time.Time `json:"last_sync"`
	// Unpushed are local events the remote does not have.
	Unpushed []Unpushed `json:"unpushed"`
	// OtherChanges are files in the repository that meta does not manage
	// and that differ from the last commit.
	OtherChanges []string `json:"other_changes"`
}

// Status reports the remote, the last sync, unpushed events and files meta
// does not manage.
func (s *Store) Status(ctx context.Context) (*Status, error) {
	unpushed, err := s.Unpushed(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	others := s.repo.Others(projects.Root)
	if others == nil {
		others = []string{}
	}
	return &Status{
		Remote:       s.repo.RemoteURL(ctx),
		LastSync:     s.loadState().LastSync,
		Unpushed:     unpushed,
		OtherChanges: others,
	}, nil
}

// Unpushed lists local events the remote does not have yet, oldest first,
// for one app (domain) or all (""). Without a remote there are none: the
// log is not shared.
func (s *Store) Unpushed(ctx context.Context, domain string) ([]Unpushed, error) {
	out := []Unpushed{}
	if !s.HasRemote(ctx) {
		return out, nil
	}
	remote, err := s.repo.RemoteTip()
	if err != nil {
		return nil, err
	}
	local, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	commits, err := s.repo.Commits(ctx, remote, local)
	if err != nil {
		return nil, err
	}
	for _, c := range commits {
		parent, err := s.repo.Parent(c)
		if err != nil {
			return nil, err
		}
		changes, err := s.repo.Diff(parent, c)
		if err != nil {
			return nil, err
		}
		for _, ch := range changes {
			rec, err := projects.ParseRecordPath(ch.Path)
			if err != nil || ch.To.IsZero() || domain != "" && rec.Address.App != domain {
				continue
			}
			out = append(out, Unpushed{EventID: rec.ID, Domain: rec.Address.App, Path: ch.Path, Commit: c.String()})
		}
	}
	return out, nil
}

// JoinOptions says how to join or start a shared log.
type JoinOptions struct {
	InitOptions
	// URL is the remote: any URL git can fetch from and push to.
	URL string
}

// Join clones the log at opts.URL into dir, which must not exist or be
// empty. A remote without a log (empty, or a repository without meta.yaml)
// gets one: meta.yaml is committed and pushed.
func Join(ctx context.Context, dir string, opts JoinOptions) (*Store, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("init %s: %w: the directory is not empty; clone into a new one", dir, ErrExists)
	}
	repo, err := gitrepo.Clone(ctx, opts.URL, dir)
	if err != nil {
		return nil, fmt.Errorf("init %s: %w: %w", dir, ErrSync, err)
	}
	if err := repo.EnsureBranch(ctx, gitrepo.DefaultBranch); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	if s, err := Open(dir); err == nil {
		st := s.loadState()
		now := time.Now() // one instant: a sync after an attempt means it worked
		st.LastSync, st.LastAttempt = now, now
		os.MkdirAll(filepath.Join(s.gitDir, "meta"), 0o755)
		s.saveState(st)
		// Read every record once now, while the operator expects a clone
		// to take a moment, so the first head is as fast as any.
		if _, err := s.List(); err != nil {
			return nil, fmt.Errorf("init %s: the log was cloned, but reading it failed: %w", dir, err)
		}
		return s, nil // joined an existing log
	}
	s, err := Init(dir, opts.InitOptions)
	if err != nil {
		return nil, err
	}
	if err := s.Sync(ctx); err != nil {
		return nil, fmt.Errorf("init %s: the log was created here but not pushed: %w", dir, err)
	}
	return s, nil
}
