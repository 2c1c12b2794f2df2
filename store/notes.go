package store

import (
	"context"
	"fmt"

	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// Notes are what a command should tell the operator that did not stop it:
// events a sync brought back, commits it set aside or quarantined. The
// store collects them; the command prints them.

func (s *Store) notef(format string, args ...any) {
	s.imu.Lock()
	defer s.imu.Unlock()
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// Notes returns what the store has to tell since the last call, and
// forgets it.
func (s *Store) Notes() []string {
	s.imu.Lock()
	defer s.imu.Unlock()
	out := s.notes
	s.notes = nil
	return out
}

// noteQuarantined tells of the commits from..to brought in that history
// quarantined.
func (s *Store) noteQuarantined(ctx context.Context, from, to gitrepo.Hash) {
	st, err := s.integrityAt(ctx, to)
	if err != nil {
		return
	}
	for _, f := range st.Findings {
		c := gitrepo.NewHash(f.Commit)
		if in, err := s.repo.IsAncestor(ctx, c, to); err != nil || !in {
			continue
		}
		if was, err := s.repo.IsAncestor(ctx, c, from); err != nil || was {
			continue
		}
		s.notef("quarantined commit %s by %s (%q): %s; reads leave out what it broke, the rest of the log goes on (`meta quarantine ls`)", f.Short(), f.Author, f.Subject, f.Summary())
	}
}
