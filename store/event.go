package store

import (
	"fmt"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// An event is found by its id, or the start of it (Prefix), among every
// record the tip has as reads take them, and the records purges took out.
// Their ids are their file names: a lookup reads the trees of the log's
// months and decodes only the record it finds (and, for an ambiguous id,
// the ones it lists).

// eventRef is one record of the log at the tip: where it is, its blob, its
// id; for a record a purge took out, the purge event's id.
type eventRef struct {
	addr     projects.Address
	ref      recordRef
	id       string
	purgedBy string
}

// eventRefs lists the records of every app at tip, and those purges took
// out.
func (s *Store) eventRefs(tip gitrepo.Hash) ([]eventRef, error) {
	st, err := s.stateAt(tip)
	if err != nil {
		return nil, err
	}
	var out []eventRef
	for p, by := range st.Purged {
		if rec, err := projects.ParseRecordPath(p); err == nil {
			out = append(out, eventRef{addr: rec.Address, ref: recordRef{path: p}, id: rec.ID, purgedBy: by})
		}
	}
	apps, err := s.apps(tip)
	if err != nil {
		return nil, err
	}
	recipeLogs, err := s.recipeLogs(tip)
	if err != nil {
		return nil, err
	}
	for _, a := range append(apps, recipeLogs...) {
		refs, err := s.records(tip, a)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if rec, err := projects.ParseRecordPath(r.path); err == nil {
				out = append(out, eventRef{addr: a, ref: r, id: rec.ID})
			}
		}
	}
	return out, nil
}

// eventIDs is how an event is named: Prefix's rule over ULIDs.
func eventIDs[T any](id, describe func(T) string) Prefix[T] {
	return Prefix[T]{What: "event", Digits: ulidDigits, Len: projects.IDLen, ID: id, Describe: describe, Missing: noEvent}
}

// EventIDs is how an event is named among events read already (one app's,
// say), as Event names one in the whole log.
var EventIDs = eventIDs((*metav1.Event).GetId, func(ev *metav1.Event) string {
	return describe(record.KindName(ev.GetKind()), ev.GetAddress().GetApp(), ev.GetId())
})

// noEvent is the error for an id that names no event.
func noEvent(id string) error { return fmt.Errorf("%w with the id %s", ErrNotFound, id) }

// findEvent finds the record of the event id names at tip.
func (s *Store) findEvent(tip gitrepo.Hash, id string) (eventRef, error) {
	refs, err := s.eventRefs(tip)
	if err != nil {
		return eventRef{}, err
	}
	return eventIDs(func(r eventRef) string { return r.id }, func(r eventRef) string {
		if r.purgedBy != "" {
			return describe("purged", r.addr.App, r.id)
		}
		kind := "unreadable"
		if evs, err := s.read(tip, r.addr, []recordRef{r.ref}); err == nil {
			kind = record.KindName(evs[0].GetKind())
		}
		return describe(kind, r.addr.App, r.id)
	}).Find(id, refs)
}

// Event returns the event id names (the whole id or its start, see Prefix).
// Its errors name id.
func (s *Store) Event(id string) (*metav1.Event, error) {
	wrap := func(err error) error { return fmt.Errorf("event %s: %w", id, err) }
	if err := s.repairIfPending(); err != nil {
		return nil, wrap(err)
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, wrap(err)
	}
	r, err := s.findEvent(tip, id)
	if err != nil {
		return nil, err
	}
	if r.purgedBy != "" {
		return nil, fmt.Errorf("%w: it was purged (`meta show %s` shows the purge)", noEvent(r.id), r.purgedBy)
	}
	evs, err := s.read(tip, r.addr, []recordRef{r.ref})
	if err != nil {
		return nil, wrap(err)
	}
	return evs[0], nil
}

// describe is an event in an ambiguous id's list: the time its id holds,
// its kind and app.
func describe(kind, app, id string) string {
	at := "-"
	if t, err := record.IDTime(id); err == nil {
		at = t.Format(timeLayout)
	}
	return fmt.Sprintf("%s  %-8s  %s", at, kind, app)
}

// timeLayout is how messages show a time, in UTC as meta's text output
// does.
const timeLayout = "2006-01-02 15:04:05Z"
