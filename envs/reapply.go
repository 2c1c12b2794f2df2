package envs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// An env change made offline that collides with one pushed meanwhile is
// set aside by the sync (store/aside.go). Reapply puts it back on top of
// the log's env file key by key: the keys it added, changed or removed take
// the values it gave them, every other key keeps the log's. When the log
// changed one of those keys too since the change's base, to another value,
// that one change is refused (ErrConflict, exit 4), names the keys, and
// stays set aside; mine overrides the log's values for them.

// Reapplied is one change set aside and re-applied.
type Reapplied struct {
	Aside   store.Aside
	Results []*Result
}

// CollisionError names the keys a change set aside and the log both
// changed.
type CollisionError struct {
	Aside store.Aside
	// Keys are per app domain.
	Keys map[string][]string
}

func (e *CollisionError) Error() string {
	var parts []string
	for domain, keys := range e.Keys {
		parts = append(parts, domain+": "+strings.Join(keys, ", "))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%v: your change %s (%q) and the log's both changed %s; it stays set aside: `meta env reapply %s --mine` gives your values, `meta aside drop %s` keeps the log's",
		store.ErrConflict, e.Aside.Short(), e.Aside.Subject, strings.Join(parts, "; "), e.Aside.Short(), e.Aside.Short())
}

// Unwrap makes a collision an ErrConflict.
func (e *CollisionError) Unwrap() error { return store.ErrConflict }

// Reapply re-applies the env changes set aside: the one whose commit id
// starts with id, or every env change set aside when id is empty, oldest
// first. Each is committed as a new env event and its aside dropped; one
// that collides is left set aside and reported in the joined error, and
// the others go on.
func (e *Envs) Reapply(ctx context.Context, id string, mine bool) ([]Reapplied, error) {
	var todo []store.Aside
	if id != "" {
		a, err := e.Store.FindAside(ctx, id)
		if err != nil {
			return nil, err
		}
		if !a.EnvOnly() {
			return nil, fmt.Errorf("%w: %s (%q) is not an env change only; re-do it by its command (meta aside show %s), then meta aside drop %s", store.ErrConflict, a.Short(), a.Subject, a.Short(), a.Short())
		}
		todo = []store.Aside{a}
	} else {
		all, err := e.Store.Asides(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range all {
			if a.EnvOnly() {
				todo = append(todo, a)
			}
		}
	}
	var done []Reapplied
	var errs []error
	for _, a := range todo {
		r, err := e.reapply(ctx, a, mine)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := e.Store.DropAside(ctx, a); err != nil {
			errs = append(errs, err)
		}
		done = append(done, r)
	}
	return done, errors.Join(errs...)
}

// reapply re-applies one change set aside, file by file.
func (e *Envs) reapply(ctx context.Context, a store.Aside, mine bool) (Reapplied, error) {
	files, err := e.Store.AsideEnvs(ctx, a)
	if err != nil {
		return Reapplied{}, err
	}
	out := Reapplied{Aside: a}
	cfg := e.Store.Config()
	collide := map[string][]string{}
	type plan struct {
		addr        projects.Address
		before, now dotenv.File
	}
	var plans []plan
	for _, f := range files {
		var addrs []projects.Address
		var data [][]byte
		for _, d := range [][]byte{f.Before, f.Mine} {
			if d != nil {
				addrs, data = append(addrs, f.Address), append(data, d)
			}
		}
		opened, err := e.openAll(ctx, cfg, addrs, data)
		if err != nil {
			return out, fmt.Errorf("re-apply %s: %w", a.Short(), err)
		}
		var before, after dotenv.File
		if f.Before != nil {
			before, opened = opened[0], opened[1:]
		}
		if f.Mine != nil {
			after = opened[0]
		}
		plans = append(plans, plan{addr: f.Address, before: before, now: after})
	}
	note := Note{Message: fmt.Sprintf("re-applies the change set aside from commit %s (%s)", a.Short(), a.Subject)}
	for _, ev := range a.Events {
		if len(ev.Command) > 0 {
			note.Command = ev.Command
		}
	}
	for _, p := range plans {
		mineChanges := dotenv.Diff(p.before, p.now)
		res, err := e.Modify(ctx, &metav1.Address{Project: p.addr.Project, Env: p.addr.Env, App: p.addr.App}, "set", note, func(cur dotenv.File, exists bool) (dotenv.File, error) {
			theirs := dotenv.Diff(p.before, cur)
			var clash []string
			for _, k := range touched(mineChanges) {
				if !slices.Contains(touched(theirs), k) {
					continue
				}
				want, wantOK := p.now.Get(k)
				have, haveOK := cur.Get(k)
				if want != have || wantOK != haveOK {
					clash = append(clash, k)
				}
			}
			if len(clash) > 0 && !mine {
				collide[p.addr.App] = clash
				return cur, errCollision
			}
			for _, k := range touched(mineChanges) {
				if v, ok := p.now.Get(k); ok {
					if err := cur.Set(k, v); err != nil {
						return cur, err
					}
				} else {
					cur.Unset(k)
				}
			}
			return cur, nil
		})
		if errors.Is(err, errCollision) {
			continue
		}
		if errors.Is(err, store.ErrNoChange) {
			continue // the log already has it
		}
		if err != nil {
			return out, fmt.Errorf("re-apply %s: %w", a.Short(), err)
		}
		out.Results = append(out.Results, res)
	}
	if len(collide) > 0 {
		return out, &CollisionError{Aside: a, Keys: collide}
	}
	return out, nil
}

// errCollision stops a Modify whose change collides; reapply reports it.
var errCollision = errors.New("collision")

// touched are the keys a change added, changed or removed, sorted.
func touched(c dotenv.Changes) []string {
	out := append(append(append([]string{}, c.Added...), c.Changed...), c.Removed...)
	slices.Sort(out)
	return out
}
