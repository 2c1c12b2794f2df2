package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

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
//
// Only a place new at to can make a domain ambiguous, so only the domains
// of the records from..to adds are looked up, at to: a sync does not list
// every app, and never works out the state of history at from (which, no
// longer the tip, is not at hand: at 100k events that took seconds).
func (s *Store) noteAmbiguous(ctx context.Context, from, to gitrepo.Hash) {
	commits, err := s.repo.Commits(ctx, from, to)
	if err != nil {
		return
	}
	added, err := s.added(commits, from, "")
	if err != nil {
		return
	}
	fresh := map[projects.Address]bool{}
	for _, u := range added {
		rec, err := projects.ParseRecordPath(u.Path)
		if err != nil || fresh[rec.Address] {
			continue
		}
		if tree, err := s.repo.TreeID(from, rec.Address.Dir()); err == nil && tree.IsZero() {
			fresh[rec.Address] = true // a place the domain did not have
		}
	}
	noted := map[string]bool{}
	for _, a := range slices.SortedFunc(maps.Keys(fresh), func(x, y projects.Address) int { return strings.Compare(x.String(), y.String()) }) {
		if noted[a.App] {
			continue
		}
		found, err := s.find(to, a.App)
		if err != nil || len(found) < 2 {
			continue
		}
		if here := s.dropMovedAway(to, found, projects.Address{}); len(here) > 1 {
			noted[a.App] = true
			s.notef("%s now has events under %s (first events made apart); commands that take it need --project and --env, or the domain as %s", a.App, addresses(here), here[0])
		}
	}
}
