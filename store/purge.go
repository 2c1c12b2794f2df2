package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// A record is never modified or deleted, except on purpose: a purge takes
// one event out of every read, in a commit that deletes its record and adds
// a purge event naming it, who purged it and why (never what it held).
// That commit breaks no rule (package integrity); a later one that adds the
// record again does, and a sync after a force-push never puts it back.
// The record stays in git's history: erasing it there too takes a history
// rewrite (git filter-repo) that every clone then takes in, and the purge
// event tells each clone not to bring the record back.

// ErrPurged: the event was purged already.
var ErrPurged = errors.New("purged already")

// Purge takes the event with id out of the log, recording why.
func (s *Store) Purge(ctx context.Context, id, reason string, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	if err := projects.ValidateID(id); err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	if strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("purge %s: %w: say why with --reason: the log keeps who purged what, and why", id, record.ErrInvalid)
	}
	out := &Appended{}
	w, err := s.Write(ctx, actor, now, opts, func(tx *Tx) error {
		a, path, err := s.findRecord(tx.tip, id)
		if err != nil {
			return err
		}
		tx.purges = append(tx.purges, txEvent{addr: a, purge: path, ev: &metav1.Event{
			Kind:    metav1.Kind_KIND_PURGE,
			Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
			Message: reason,
			Body:    &metav1.Event_Purge{Purge: &metav1.Purge{EventId: id, Path: path, Reason: reason}},
		}})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("purge %s: %w", id, err)
	}
	out.Written = w
	out.Event, out.Path = w.Events[0], w.Paths[0]
	return out, nil
}

// findRecord finds where the event with id is recorded at tip, as reads
// take it.
func (s *Store) findRecord(tip gitrepo.Hash, id string) (projects.Address, string, error) {
	st, err := s.stateAt(tip)
	if err != nil {
		return projects.Address{}, "", err
	}
	for p := range st.Purged {
		if rec, err := projects.ParseRecordPath(p); err == nil && rec.ID == id {
			return projects.Address{}, "", fmt.Errorf("%w: %s", ErrPurged, p)
		}
	}
	apps, err := s.apps(tip)
	if err != nil {
		return projects.Address{}, "", err
	}
	for _, a := range apps {
		refs, err := s.records(tip, a)
		if err != nil {
			return projects.Address{}, "", err
		}
		for _, r := range refs {
			if strings.HasSuffix(r.path, "/"+id+projects.RecordExt) {
				return a, r.path, nil
			}
		}
	}
	return projects.Address{}, "", fmt.Errorf("%w: no event %s in the log", ErrNotFound, id)
}

// commitPurge commits one purge on tip: the purge event's record added and
// the purged record deleted, in one commit made without the work tree and
// then brought into it, as a sync brings commits in (a kill half way is
// finished the same way).
func (s *Store) commitPurge(tip gitrepo.Hash, e txEvent, actor *metav1.Actor, now, when time.Time, opts AppendOptions, batch *Batch) (gitrepo.Hash, *stamped, error) {
	st, err := s.stampEvent(tip, e, actor, now, when, opts, batch)
	if err != nil {
		return gitrepo.ZeroHash, nil, err
	}
	sig := gitrepo.Signature{Name: actor.GetName(), Email: actor.GetEmail(), When: st.at}
	next, err := s.repo.Build(tip, []gitrepo.Edit{{Path: st.path, Data: st.data}, {Path: e.purge}}, commitMessage(st.ev), sig)
	if err != nil {
		return gitrepo.ZeroHash, nil, err
	}
	if err := s.moveTo(tip, next, "commit: "+record.KindName(st.ev.GetKind())); err != nil {
		return gitrepo.ZeroHash, nil, err
	}
	return next, st, nil
}
