package store

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Reads take the log as the branch tip has it, corrected by its history
// (package integrity): the apps are the directories of its tree, an app's
// records the files of its months, each known by its blob id; a record a
// later commit modified or deleted is read as its first commit wrote it,
// and a file that is no valid record where it lies is left out. The blob
// id keys the cache, and it checks the work tree's copy of a record before
// that copy stands in for the object: what a read folds is always what was
// committed first.

// recordRef is one record of an app at the tip: its path and its blob.
type recordRef struct {
	path string
	blob gitrepo.Hash
}

// dirs lists the directory names in dir at commit.
func (s *Store) dirs(commit gitrepo.Hash, dir string) ([]string, error) {
	entries, err := s.repo.ReadDir(commit, dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Dir {
			out = append(out, e.Name)
		}
	}
	return out, nil
}

// apps lists every app at commit, sorted by address: the app directories
// of its tree with valid names, and apps whose records only history holds
// (a later commit deleted them all).
func (s *Store) apps(commit gitrepo.Hash) ([]projects.Address, error) {
	var out []projects.Address
	err := s.envs(commit, func(project, env string) error {
		apps, err := s.dirs(commit, path.Join(projects.Root, project, env))
		for _, app := range apps {
			if projects.ValidateApp(app) == nil {
				out = append(out, projects.Address{Project: project, Env: env, App: app})
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	st, err := s.stateAt(commit)
	if err != nil {
		return nil, err
	}
	if restored := st.RestoredApps(); len(restored) > 0 {
		for _, a := range restored {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	}
	return out, nil
}

// envs calls fn for every project and env directory at commit whose names
// are valid: a directory no valid record can lie in holds nothing to read.
func (s *Store) envs(commit gitrepo.Hash, fn func(project, env string) error) error {
	ps, err := s.dirs(commit, projects.Root)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if projects.ValidateProject(p) != nil {
			continue
		}
		es, err := s.dirs(commit, path.Join(projects.Root, p))
		if err != nil {
			return err
		}
		for _, e := range es {
			if projects.ValidateEnv(e) != nil {
				continue
			}
			if err := fn(p, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// find lists the addresses under which domain has records at commit: a
// directory (git keeps no empty directories, so neither does a log), or
// records only history holds.
func (s *Store) find(commit gitrepo.Hash, domain string) ([]projects.Address, error) {
	var out []projects.Address
	err := s.envs(commit, func(project, env string) error {
		a := projects.Address{Project: project, Env: env, App: domain}
		tree, err := s.repo.TreeID(commit, a.Dir())
		if err == nil && !tree.IsZero() {
			out = append(out, a)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	st, err := s.stateAt(commit)
	if err != nil {
		return nil, err
	}
	for _, a := range st.RestoredApps() {
		if a.App == domain && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// records lists the app's records at commit, sorted by path, as history
// has them: each as first written, deleted ones too, and none that is no
// valid record where it lies.
func (s *Store) records(commit gitrepo.Hash, a projects.Address) ([]recordRef, error) {
	st, err := s.stateAt(commit)
	if err != nil {
		return nil, err
	}
	app := st.App(a)
	months, err := s.dirs(commit, a.Dir())
	if err != nil {
		return nil, err
	}
	var out []recordRef
	seen := 0
	for _, m := range months {
		// Concatenation, not path.Join: this runs once per record on a
		// cold read, and the parts are already clean.
		dir := a.Dir() + "/" + m
		entries, err := s.repo.ReadDir(commit, dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Dir || !strings.HasSuffix(e.Name, projects.RecordExt) {
				continue
			}
			p := dir + "/" + e.Name
			if app.Excluded[p] {
				continue
			}
			blob := e.ID
			if first, ok := app.Restored[p]; ok {
				blob = first
				seen++
			}
			out = append(out, recordRef{path: p, blob: blob})
		}
	}
	if seen < len(app.Restored) {
		// Records a later commit deleted: read them all the same.
		for p, blob := range app.Restored {
			if !app.Excluded[p] && !slices.ContainsFunc(out, func(r recordRef) bool { return r.path == p }) {
				out = append(out, recordRef{path: p, blob: blob})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	}
	return out, nil
}

// Locate finds the one project/env holding domain's events.
func (s *Store) Locate(domain string) (projects.Address, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return projects.Address{}, err
	}
	return s.locate(tip, domain)
}

// locate finds the app ref names: a domain, or project/env/domain (see
// projects.ParseRef) where the domain has events in more than one place.
func (s *Store) locate(tip gitrepo.Hash, ref string) (projects.Address, error) {
	want, err := projects.ParseRef(ref)
	if err != nil {
		return projects.Address{}, err
	}
	all, err := s.find(tip, want.App)
	if err != nil {
		return projects.Address{}, err
	}
	found := slices.DeleteFunc(slices.Clone(all), func(a projects.Address) bool { return !want.Matches(a) })
	if len(found) == 1 {
		return found[0], nil // named, even where it moved away from
	}
	if here := s.dropMovedAway(tip, found, projects.Address{}); len(here) > 0 {
		found = here
	}
	switch len(found) {
	case 0:
		if len(all) > 0 {
			return projects.Address{}, fmt.Errorf("%w for %s: %s has events only under %s", ErrNotFound, ref, want.App, addresses(all))
		}
		return projects.Address{}, fmt.Errorf("%w for %s", ErrNotFound, ref)
	case 1:
		return found[0], nil
	}
	return projects.Address{}, ambiguous(want.App, found)
}

// dropMovedAway leaves out the addresses an app moved away from (its log
// goes on where it arrived), except the one keep names.
func (s *Store) dropMovedAway(tip gitrepo.Hash, found []projects.Address, keep projects.Address) []projects.Address {
	out := make([]projects.Address, 0, len(found))
	for _, a := range found {
		if a.Project == keep.Project && a.Env == keep.Env {
			out = append(out, a)
			continue
		}
		if h, err := s.head(tip, a); err == nil && h.State == fold.StateMoved {
			continue
		}
		out = append(out, a)
	}
	return out
}

// ambiguous is the error for a domain with events in more than one place,
// saying how to name one.
func ambiguous(domain string, found []projects.Address) error {
	return fmt.Errorf("%w: %s has events under %s; pass --project and --env to choose, or name it as %s", ErrAmbiguous, domain, addresses(found), found[0])
}

func addresses(as []projects.Address) string {
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.String()
	}
	return strings.Join(names, " and ")
}

// head folds the app at a as commit has it, or returns the head memoised
// for the app's tree there.
func (s *Store) head(commit gitrepo.Hash, a projects.Address) (*fold.Head, error) {
	key, err := s.memoKey(commit, a)
	if err != nil {
		return nil, err
	}
	if h, ok := s.cache.Head(a, key); ok {
		return h, nil
	}
	if h, ok := s.derivedHead(a, key); ok {
		return h, nil
	}
	events, err := s.events(commit, a)
	if err != nil {
		return nil, err
	}
	h := fold.Fold(events)
	if again, err := s.memoKey(commit, a); err == nil && again == key {
		// Not when the read left a bad record out: the key changed with it.
		s.cache.StoreHead(a, key, h)
	}
	return h, nil
}

// memoKey is what the app's memoised head at commit is keyed by: the id of
// its tree there, combined with what history corrects in that tree, so that
// a head folded before a correction is never taken for one after.
func (s *Store) memoKey(commit gitrepo.Hash, a projects.Address) (gitrepo.Hash, error) {
	tree, err := s.repo.TreeID(commit, a.Dir())
	if err != nil {
		return gitrepo.ZeroHash, err
	}
	st, err := s.stateAt(commit)
	if err != nil {
		return gitrepo.ZeroHash, err
	}
	if k := st.App(a).Key(); k != "" {
		return gitrepo.BlobID([]byte(tree.String() + "\n" + k)), nil
	}
	return tree, nil
}

// events reads every event of the app at a as commit has it.
func (s *Store) events(commit gitrepo.Hash, a projects.Address) ([]*metav1.Event, error) {
	refs, err := s.records(commit, a)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%w for %s", ErrNotFound, a.App)
	}
	return s.read(commit, a, refs)
}

// read decodes the records refs names, each from the first place that has
// its exact bytes: the cache, the work tree, the repository. A record that
// is no valid event where it lies is left out, and the commit that wrote
// it quarantined (see reject): one bad record must not stop the reads of
// its app.
func (s *Store) read(commit gitrepo.Hash, a projects.Address, refs []recordRef) ([]*metav1.Event, error) {
	st, err := s.stateAt(commit)
	if err != nil {
		return nil, err
	}
	cached := s.cache.Records(a)
	raw := make([][]byte, len(refs))
	events := make([]*metav1.Event, len(refs))
	errs := make([]error, len(refs))
	missed := false
	for i, r := range refs {
		if data, ok := cached[r.blob]; ok {
			raw[i] = data
		} else {
			missed = true
		}
	}
	// Reading uncached records and decoding are independent per record:
	// spread them over the cores (a first read after a clone reads them all).
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(refs); i += workers {
				if raw[i] == nil {
					raw[i], errs[i] = s.recordBytes(refs[i])
					if errs[i] != nil {
						continue
					}
				}
				ev, err := record.Unmarshal(raw[i])
				if err == nil {
					err = record.CheckPath(ev, refs[i].path)
				}
				if err == nil {
					err = st.CheckEvent(s.repo, refs[i].path, ev)
				}
				events[i], errs[i] = ev, err
			}
		}(w)
	}
	wg.Wait()
	good := events[:0]
	var ids []gitrepo.Hash
	recs := make(map[gitrepo.Hash][]byte, len(refs))
	for i, err := range errs {
		switch {
		case errors.Is(err, record.ErrCorrupt):
			s.reject(commit, refs[i].path, refs[i].blob, err)
			missed = true
		case err != nil:
			return nil, err
		default:
			good = append(good, events[i])
			ids, recs[refs[i].blob] = append(ids, refs[i].blob), raw[i]
		}
	}
	if len(good) == 0 {
		return nil, fmt.Errorf("%w for %s", ErrNotFound, a.App)
	}
	if missed || len(cached) != len(ids) {
		s.cache.StoreRecords(a, ids, recs)
	}
	return good, nil
}

// recordBytes is the committed content of one record: the work tree's copy
// when it is exactly that (a hash of a small file costs less than a read
// from git), else the object itself.
func (s *Store) recordBytes(r recordRef) ([]byte, error) {
	if data, err := s.work.copyOf(r.path); err == nil && gitrepo.BlobID(data) == r.blob {
		return data, nil
	}
	data, err := s.repo.ReadBlob(r.blob)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.path, err)
	}
	return data, nil
}

// Head folds domain's events into its head, as it stands at the store's
// clock.
func (s *Store) Head(domain string) (*fold.Head, error) {
	wrap := func(err error) error { return fmt.Errorf("head %s: %w", domain, err) }
	if err := s.repairIfPending(); err != nil {
		return nil, wrap(err)
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, wrap(err)
	}
	a, err := s.locate(tip, domain)
	if err != nil {
		return nil, wrap(err)
	}
	h, err := s.head(tip, a)
	if err != nil {
		return nil, wrap(err)
	}
	return h.At(s.now()), nil
}

// Log returns domain's events newest first (the reverse of fold order), or
// every app's events newest first by time when domain is empty; at most n
// when n > 0.
func (s *Store) Log(domain string, n int) ([]*metav1.Event, error) {
	return s.Events(Query{Domain: domain, N: n})
}

// Query picks events from the log, for `meta log`. A field left zero lets
// every event through.
type Query struct {
	// Domain: only this app's events, in the reverse of fold order (else
	// every app's, newest first by time). It is a domain, or
	// project/env/domain (projects.ParseRef); with Project or Env, a
	// domain, the app there when it has events under two.
	Domain string
	// Project, Env: only events of apps there.
	Project, Env string
	// Since, Until: only events at or after Since, at or before Until.
	Since, Until time.Time
	// Kinds, Outcomes: only events of one of these.
	Kinds    []metav1.Kind
	Outcomes []metav1.Outcome
	// Operator: only events whose operator's name or email holds it, in
	// any case ("alice" finds "Alice Smith <alice@example.org>").
	Operator string
	// N: at most the N newest of the events the rest lets through.
	N int
}

// match reports whether q lets ev through, N aside.
func (q Query) match(ev *metav1.Event) bool {
	at := ev.GetTime().AsTime()
	actor := ev.GetActor()
	a := ev.GetAddress()
	return within(projects.Address{Project: a.GetProject(), Env: a.GetEnv()}, q.Project, q.Env) &&
		(q.Since.IsZero() || !at.Before(q.Since)) &&
		(q.Until.IsZero() || !at.After(q.Until)) &&
		(len(q.Kinds) == 0 || slices.Contains(q.Kinds, ev.GetKind())) &&
		(len(q.Outcomes) == 0 || slices.Contains(q.Outcomes, ev.GetOutcome())) &&
		(q.Operator == "" || containsFold(actor.GetName(), q.Operator) || containsFold(actor.GetEmail(), q.Operator))
}

// within reports whether a is in project and env ("" for any).
func within(a projects.Address, project, env string) bool {
	return projects.Address{Project: project, Env: env, App: a.App}.Matches(a)
}

func containsFold(s, part string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(part))
}

// Events returns the events q picks.
func (s *Store) Events(q Query) ([]*metav1.Event, error) {
	what := "log"
	if q.Domain != "" {
		what += " " + q.Domain
	}
	wrap := func(err error) error { return fmt.Errorf("%s: %w", what, err) }
	if err := s.repairIfPending(); err != nil {
		return nil, wrap(err)
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, wrap(err)
	}
	var out []*metav1.Event
	if q.Domain != "" {
		a, err := s.locate(tip, projects.Ref(q.Project, q.Env, q.Domain))
		if err != nil {
			return nil, wrap(err)
		}
		events, err := s.events(tip, a)
		if err != nil {
			return nil, wrap(err)
		}
		out = fold.Order(events)
		slices.Reverse(out)
	} else {
		apps, err := s.apps(tip)
		if err != nil {
			return nil, wrap(err)
		}
		for _, a := range apps {
			if !within(a, q.Project, q.Env) {
				continue // not read at all
			}
			events, err := s.events(tip, a)
			if errors.Is(err, ErrNotFound) {
				continue // an app directory without records yet
			}
			if err != nil {
				return nil, wrap(err)
			}
			out = append(out, events...)
		}
		sort.Slice(out, func(i, j int) bool { return fold.Before(out[j], out[i]) })
	}
	out = slices.DeleteFunc(out, func(ev *metav1.Event) bool { return !q.match(ev) })
	if q.N > 0 && len(out) > q.N {
		out = out[:q.N]
	}
	return out, nil
}

// List folds every app in the log, sorted by project, env and domain, as
// they stand at the store's clock.
func (s *Store) List() ([]*fold.Head, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, fmt.Errorf("ls: %w", err)
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, fmt.Errorf("ls: %w", err)
	}
	apps, err := s.apps(tip)
	if err != nil {
		return nil, fmt.Errorf("ls: %w", err)
	}
	now := s.now()
	heads := make([]*fold.Head, 0, len(apps))
	for _, a := range apps {
		h, err := s.head(tip, a)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ls: %w", err)
		}
		heads = append(heads, h.At(now))
	}
	return heads, nil
}

// Apps lists every app address in the log; shell completion uses it.
func (s *Store) Apps() ([]projects.Address, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	return s.apps(tip)
}
