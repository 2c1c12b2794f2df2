package store

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"git.coopcloud.tech/coop-cloud/meta/projects"

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

// noteAmbiguous tells of the domains that have events in more than one
// place at to and did not at from: first events for one app made apart,
// offline, in different projects or envs. Reading it from now on takes
// --project and --env, so the sync that brought it says so.
func (s *Store) noteAmbiguous(from, to gitrepo.Hash) {
	before := s.ambiguousDomains(from)
	now := s.ambiguousDomains(to)
	for _, domain := range slices.Sorted(maps.Keys(now)) {
		if _, was := before[domain]; !was {
			s.notef("%s now has events under %s (first events made apart); commands that take it need --project and --env, or the domain as %s", domain, addresses(now[domain]), now[domain][0])
		}
	}
}

// ambiguousDomains are the domains with events in more than one place at
// commit, as locate finds them, by domain.
func (s *Store) ambiguousDomains(commit gitrepo.Hash) map[string][]projects.Address {
	out := map[string][]projects.Address{}
	if commit.IsZero() {
		return out
	}
	apps, err := s.apps(commit)
	if err != nil {
		return out
	}
	byDomain := map[string][]projects.Address{}
	for _, a := range apps {
		byDomain[a.App] = append(byDomain[a.App], a)
	}
	for domain, found := range byDomain {
		if len(found) < 2 {
			continue
		}
		if here := s.dropMovedAway(commit, found, projects.Address{}); len(here) > 1 {
			out[domain] = here
		}
	}
	return out
}
