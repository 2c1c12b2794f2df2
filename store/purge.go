package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
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

// Purge takes the event id names (the whole id or its start, see Prefix)
// out of the log, recording why.
func (s *Store) Purge(ctx context.Context, id, reason string, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	if err := eventIDs[eventRef](nil, nil).Check(id); err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	if strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("purge %s: %w: say why with --reason: the log keeps who purged what, and why", id, record.ErrInvalid)
	}
	out := &Appended{}
	w, err := s.Write(ctx, actor, now, opts, func(tx *Tx) error {
		r, err := s.findEvent(tx.tip, id)
		if err != nil {
			return err
		}
		if r.purgedBy != "" {
			return fmt.Errorf("%w: %s (by %s)", ErrPurged, r.ref.path, r.purgedBy)
		}
		tx.purges = append(tx.purges, txEvent{addr: r.addr, purge: r.ref.path, ev: &metav1.Event{
			Kind:    metav1.Kind_KIND_PURGE,
			Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
			Message: reason,
			Body:    &metav1.Event_Purge{Purge: &metav1.Purge{EventId: r.id, Path: r.ref.path, Reason: reason}},
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
