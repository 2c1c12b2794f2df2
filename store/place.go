package store

import (
	"cmp"
	"fmt"
	"slices"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// Placement is where a write puts an app's events, and for an app new to
// the log, why there.
type Placement struct {
	projects.Address
	// New: the log has no events of the app; the write starts its log.
	New bool
	// From says what chose the project and env of a new app.
	From string
}

// String is the line meta prints when a write starts an app's log, the
// same from every command: "new app D in project P, env E (from ...)".
func (p Placement) String() string {
	return fmt.Sprintf("new app %s in project %s, env %s (%s)", p.App, p.Project, p.Env, p.From)
}

// place settles which project/env an event for a.App goes to, the one
// rule for every write: where the app already lives; else what the caller
// asked for; else, for an app that abra keeps under server, where
// meta.yaml's servers: map puts that server; else meta.yaml's defaults.
// cfg is meta.yaml as the write read it after its pull.
func (s *Store) place(tip gitrepo.Hash, cfg config.Config, a *metav1.Address, server string) (Placement, error) {
	// The app may be named project/env/domain (projects.ParseRef), as
	// well as by the address's own project and env.
	want, err := projects.ParseRef(a.GetApp())
	if err != nil {
		return Placement{}, err
	}
	for _, f := range []struct{ field, named, given string }{{"project", want.Project, a.GetProject()}, {"env", want.Env, a.GetEnv()}} {
		if f.named != "" && f.given != "" && f.named != f.given {
			return Placement{}, fmt.Errorf("%w: %s names %s %s, and --%s says %s", ErrNeedAddress, a.GetApp(), f.field, f.named, f.field, f.given)
		}
	}
	want.Project, want.Env = cmp.Or(want.Project, a.GetProject()), cmp.Or(want.Env, a.GetEnv())
	if want.Project != "" {
		if err := projects.ValidateProject(want.Project); err != nil {
			return Placement{}, err
		}
	}
	if want.Env != "" {
		if err := projects.ValidateEnv(want.Env); err != nil {
			return Placement{}, err
		}
	}
	found, err := s.find(tip, want.App)
	if err != nil {
		return Placement{}, err
	}
	found = s.dropMovedAway(tip, found, want)
	switch {
	case len(found) > 1:
		if named := slices.DeleteFunc(slices.Clone(found), func(a projects.Address) bool { return !want.Matches(a) }); len(named) == 1 {
			return Placement{Address: named[0]}, nil // the caller chose one
		}
		return Placement{}, ambiguous(want.App, found)
	case len(found) == 1:
		have := found[0]
		if want.Project != "" && want.Project != have.Project || want.Env != "" && want.Env != have.Env {
			return Placement{}, fmt.Errorf("%w: %s has its events under %s, not %s/%s", ErrMoved, want.App, have, orAny(want.Project), orAny(want.Env))
		}
		return Placement{Address: have}, nil
	}
	// A new app; projectFrom and envFrom say what chose each.
	projectFrom, envFrom := "the command line", "the command line"
	if server != "" && want.Project == "" && want.Env == "" {
		want.Project, want.Env = cfg.PlaceServer(server)
		if _, mapped := cfg.Servers[server]; mapped {
			projectFrom = "servers: in " + config.File + " for abra server " + server
			envFrom = projectFrom
		} else {
			projectFrom, envFrom = config.File, "abra server "+server
		}
	}
	if want.Project == "" {
		want.Project, projectFrom = cfg.Project, config.File
	}
	if want.Env == "" {
		want.Env, envFrom = cfg.Env, config.File
	}
	if want.Project == "" || want.Env == "" {
		hint := fmt.Sprintf("pass --project and --env, or set project and env in %s", config.File)
		if server != "" {
			hint += fmt.Sprintf(" (or map server %s under servers: there)", server)
		}
		return Placement{}, fmt.Errorf("%w: %s has no events yet; %s", ErrNeedAddress, want.App, hint)
	}
	if err := want.Validate(); err != nil {
		return Placement{}, err
	}
	from := "from " + projectFrom
	if envFrom != projectFrom {
		from = "project from " + projectFrom + ", env from " + envFrom
	}
	return Placement{Address: want, New: true, From: from}, want.Portable() // its directories are made now
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// PlaceArrival is where an app moving from its address from to an abra
// server arrives: the env meta.yaml's servers: map gives that server, in
// the project the map names, else the default project, else the project
// the app leaves. The arrival env may hold older events of the app (a move
// back): its log goes on there.
func (tx *Tx) PlaceArrival(from projects.Address, server string) (projects.Address, error) {
	project, env := tx.cfg.PlaceServer(server)
	if project == "" {
		project = from.Project
	}
	a := projects.Address{Project: project, Env: env, App: from.App}
	if err := a.Validate(); err != nil {
		return projects.Address{}, err
	}
	return a, a.Portable()
}
