package store

import (
	"context"
	"fmt"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
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
		LastSync:     s.state.load().LastSync,
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
