package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// CorruptError says which record could not be read, and which commit last
// wrote it, so whoever committed it can be asked.
type CorruptError struct {
	Path   string
	Commit string // empty when the record is not committed
	Err    error
}

func (e *CorruptError) Error() string {
	where := "not committed"
	if e.Commit != "" {
		where = "written by commit " + e.Commit
	}
	return fmt.Sprintf("record %s (%s): %v", e.Path, where, e.Err)
}

// Unwrap lets callers match record.ErrCorrupt.
func (e *CorruptError) Unwrap() error { return e.Err }

// Locate finds the one project/env holding domain's events.
func (s *Store) Locate(domain string) (projects.Address, error) {
	if err := projects.ValidateApp(domain); err != nil {
		return projects.Address{}, err
	}
	found, err := s.files.Find(domain)
	if err != nil {
		return projects.Address{}, err
	}
	if here := s.dropMovedAway(found, projects.Address{}); len(here) > 0 {
		found = here
	}
	switch len(found) {
	case 0:
		return projects.Address{}, fmt.Errorf("%w for %s", ErrNotFound, domain)
	case 1:
		return found[0], nil
	}
	return projects.Address{}, ambiguous(domain, found)
}

// dropMovedAway leaves out the addresses an app moved away from (its log
// goes on where it arrived), except the one keep names.
func (s *Store) dropMovedAway(found []projects.Address, keep projects.Address) []projects.Address {
	if len(found) == 0 {
		return found
	}
	out := make([]projects.Address, 0, len(found))
	for _, a := range found {
		if a.Project == keep.Project && a.Env == keep.Env {
			out = append(out, a)
			continue
		}
		if h, _, err := s.head(a); err == nil && h.State == fold.StateMoved {
			continue
		}
		out = append(out, a)
	}
	return out
}

// events reads every event of the app at a, through the cache.
func (s *Store) events(a projects.Address) ([]*metav1.Event, error) {
	paths, err := s.recordPaths(a)
	if err != nil {
		return nil, err
	}
	return s.read(a, paths)
}

func (s *Store) recordPaths(a projects.Address) ([]string, error) {
	paths, err := s.files.RecordPaths(a)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w for %s", ErrNotFound, a.App)
	}
	return paths, nil
}

// head folds the app at a, or returns the head memoised for exactly its
// current records, which it also returns.
func (s *Store) head(a projects.Address) (*fold.Head, []string, error) {
	paths, err := s.recordPaths(a)
	if err != nil {
		return nil, nil, err
	}
	key := HeadKey(paths)
	if h, ok := s.cache.Head(a, key); ok {
		return h, paths, nil
	}
	events, err := s.read(a, paths)
	if err != nil {
		return nil, nil, err
	}
	h := fold.Fold(events)
	s.cache.StoreHead(a, key, h)
	return h, paths, nil
}

// read decodes the records at paths, from the cache where it has them.
func (s *Store) read(a projects.Address, paths []string) ([]*metav1.Event, error) {
	cached := s.cache.Load(a)
	raw := make([][]byte, len(paths))
	events := make([]*metav1.Event, len(paths))
	errs := make([]error, len(paths))
	missed := false
	for i, p := range paths {
		if data, ok := cached[p]; ok {
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
			for i := w; i < len(paths); i += workers {
				if raw[i] == nil {
					data, err := s.files.Read(paths[i])
					if err != nil {
						errs[i] = fmt.Errorf("read %s: %w", paths[i], err)
						continue
					}
					raw[i] = data
				}
				ev, err := record.Unmarshal(raw[i])
				if err == nil {
					err = record.CheckPath(ev, paths[i])
				}
				events[i], errs[i] = ev, err
			}
		}(w)
	}
	wg.Wait()
	for i, err := range errs {
		if errors.Is(err, record.ErrCorrupt) {
			return nil, &CorruptError{Path: paths[i], Commit: s.writtenIn(paths[i]), Err: err}
		}
		if err != nil {
			return nil, err
		}
	}
	if missed || len(cached) != len(paths) {
		for i, p := range paths {
			cached[p] = raw[i]
		}
		s.cache.Store(a, paths, cached)
	}
	return events, nil
}

// writtenIn finds the newest commit that wrote path, for error messages.
func (s *Store) writtenIn(path string) string {
	h, err := s.repo.LastWrite(context.Background(), path)
	if err != nil || h.IsZero() {
		return ""
	}
	return h.String()
}

// Head folds domain's events into its head.
func (s *Store) Head(domain string) (*fold.Head, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, fmt.Errorf("head %s: %w", domain, err)
	}
	a, err := s.Locate(domain)
	if err != nil {
		return nil, fmt.Errorf("head %s: %w", domain, err)
	}
	h, _, err := s.head(a)
	if err != nil {
		return nil, fmt.Errorf("head %s: %w", domain, err)
	}
	return h, nil
}

// Log returns domain's events newest first (the reverse of fold order), or
// every app's events newest first by time when domain is empty; at most n
// when n > 0.
func (s *Store) Log(domain string, n int) ([]*metav1.Event, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	var out []*metav1.Event
	if domain != "" {
		a, err := s.Locate(domain)
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", domain, err)
		}
		events, err := s.events(a)
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", domain, err)
		}
		out = fold.Order(events)
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	} else {
		apps, err := s.files.Apps()
		if err != nil {
			return nil, fmt.Errorf("log: %w", err)
		}
		for _, a := range apps {
			events, err := s.events(a)
			if errors.Is(err, ErrNotFound) {
				continue // an app directory without records yet
			}
			if err != nil {
				return nil, fmt.Errorf("log: %w", err)
			}
			out = append(out, events...)
		}
		sort.Slice(out, func(i, j int) bool { return fold.Before(out[j], out[i]) })
	}
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// List folds every app in the log, sorted by project, env and domain.
func (s *Store) List() ([]*fold.Head, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, fmt.Errorf("ls: %w", err)
	}
	apps, err := s.files.Apps()
	if err != nil {
		return nil, fmt.Errorf("ls: %w", err)
	}
	heads := make([]*fold.Head, 0, len(apps))
	for _, a := range apps {
		h, _, err := s.head(a)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ls: %w", err)
		}
		heads = append(heads, h)
	}
	return heads, nil
}

// Apps lists every app address in the log; shell completion uses it.
func (s *Store) Apps() ([]projects.Address, error) { return s.files.Apps() }
