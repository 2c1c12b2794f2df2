package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// AppendOptions says how a write deals with the remote and with leases,
// and how an append checks and places its app.
type AppendOptions struct {
	// Offline skips the pull before and the push after: what is written
	// stays in this clone until a later sync.
	Offline bool
	// Force goes ahead despite another operator's lease on an app; the
	// events record the lease they broke.
	Force bool
	// Expect, when set, is the version (or event id) the app's head must
	// have after the pull; anything else refuses the append.
	Expect string
	// Server is the abra server whose env file names the app, which places
	// an app new to the log where meta.yaml's servers: map puts it.
	Server string
	// ID, when set, is the event's id, chosen by the operator's meta
	// before it handed the event to a hub (group.go): the direct path it
	// falls back to records the same event, and an event whose id the log
	// already has is not recorded again. Its time is the id's.
	ID string
}

// Appended is what Append did.
type Appended struct {
	*Written
	Event *metav1.Event
	Path  string
}

// errUnchanged stops an append whose news the log already has.
var errUnchanged = errors.New("unchanged")

// Append adds ev to the log as a new record, committed on its own. The
// caller sets what happened (kind, outcome, body, versions, message,
// command) and the app's domain in ev.Address.App; project and env may be
// left empty for an app the log knows, or default as place says. Append
// sets the id, time, format and parents (the app's current heads), and
// writes nothing when anything is wrong. With a remote, it first pulls
// (and refuses when it cannot), then pushes; a failed push leaves the
// event appended locally, with a warning.
//
// Online, when another writer on this machine holds the remote's turn,
// the append is handed to it to record with its own (spool.go).
func (s *Store) Append(ctx context.Context, ev *metav1.Event, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	if s.spools(ctx, ev, opts) {
		return s.appendSpooled(ctx, ev, actor, now, opts)
	}
	return s.append(ctx, "append", ev, actor, now, opts, nil)
}

// append is Append, stopped with errUnchanged when unless says so of the
// app's head after the pull; verb names the command in its errors.
func (s *Store) append(ctx context.Context, verb string, ev *metav1.Event, actor *metav1.Actor, now time.Time, opts AppendOptions, unless func(*fold.Head) bool) (*Appended, error) {
	domain := ev.GetAddress().GetApp()
	if ev.GetKind() == metav1.Kind_KIND_ENV {
		return nil, fmt.Errorf("append %s: %w: env events are written by the meta env commands, with the env file they describe", domain, record.ErrInvalid)
	}
	var already *Appended
	out, err := s.Write(ctx, actor, now, opts, func(tx *Tx) error {
		a, err := tx.Place(ev.GetAddress(), opts.Server)
		if err != nil {
			return err
		}
		h, err := tx.Head(a)
		if err != nil {
			return err
		}
		if opts.Expect != "" {
			if err := expect(h, opts.Expect); err != nil {
				return err
			}
		}
		if unless != nil && h != nil && unless(h) {
			return errUnchanged
		}
		if found, err := tx.recorded(a, opts.ID); err != nil || found != nil {
			if found != nil {
				already = found
				return errAlready
			}
			return err
		}
		tx.Add(a, ev)
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil, err
	}
	if errors.Is(err, errAlready) {
		// The hub recorded it before its answer was lost: it is in the log
		// once, as the remote has it.
		return already, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb, domain, err)
	}
	return &Appended{Written: out, Event: out.Events[0], Path: out.Paths[0]}, nil
}

// expect refuses unless the app's head h is at the version or event id the
// operator expects.
func expect(h *fold.Head, want string) error {
	if h != nil {
		if projects.ValidateID(want) == nil {
			for _, id := range append(h.HeadIDs(), h.EventID) {
				if id == want {
					return nil
				}
			}
		} else if h.Version == want || h.ChaosVersion != "" && h.ChaosVersion == want {
			return nil
		}
	}
	have := "no events"
	if h != nil {
		have = fmt.Sprintf("%s %s (last event %s, %s by %s)", h.State, orDash(h.Version), h.EventID, h.Kind, h.Operator)
		if h.Forked {
			have += ", forked"
		}
	}
	return fmt.Errorf("%w: you expected %s, the log says %s", ErrUnexpected, want, have)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Observe records what Swarm runs for the app at domain, unless the last
// observation in the log (after pulling) says the same: the log grows when
// reality changes, not every time someone looks. It returns nil when
// nothing was appended. What the Engine said is made to fit an event
// (record.Fit) first.
func (s *Store) Observe(ctx context.Context, domain string, o *metav1.Observation, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	return s.ObserveSettling(ctx, domain, o, nil, actor, now, opts)
}

// Verdict says how Swarm ended the update that put version want into
// service, ok false while it has not (swarm.Stack.Settled).
type Verdict func(want string) (outcome metav1.Outcome, ok bool)

// ObserveSettling is Observe, and settles the app's pending deploy when
// verdict (nil: never) says how Swarm ended it: the observation then names
// the deploy (settles) and is recorded even if it says what the last one
// said. The pending deploy is the one of the head after the pull, under
// the log's lock, so two observers cannot settle it twice.
func (s *Store) ObserveSettling(ctx context.Context, domain string, o *metav1.Observation, verdict Verdict, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	record.Fit(o.ProtoReflect())
	ev := &metav1.Event{
		Kind:    metav1.Kind_KIND_OBSERVE,
		Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
		Address: &metav1.Address{App: domain},
		Recipe:  o.GetRecipe(),
		Version: o.GetVersion(),
		Body:    &metav1.Event_Observation{Observation: o},
	}
	if o.GetChaos() {
		ev.ChaosVersion = o.GetChaosVersion()
	}
	out, err := s.append(ctx, "observe", ev, actor, now, opts, func(h *fold.Head) bool {
		o.Settles, o.SettledOutcome = "", metav1.Outcome_OUTCOME_UNSPECIFIED
		if p := h.Pending; p != nil && verdict != nil {
			if outcome, ok := verdict(p.Running()); ok {
				o.Settles, o.SettledOutcome = p.EventID, outcome
			}
		}
		return o.GetSettles() == "" && h.Observed.SameAs(o)
	})
	if errors.Is(err, errUnchanged) {
		return nil, nil
	}
	return out, err
}

// Lock leases the app at domain to actor for ttl, with the reason given.
// The holder may renew their own lease; another operator's needs
// opts.Force, which the event records. Online, the lease is taken only if
// it reaches the remote first: of two operators racing, exactly one wins
// and the other is refused with ErrLocked.
func (s *Store) Lock(ctx context.Context, domain string, actor *metav1.Actor, now time.Time, ttl time.Duration, reason string, opts AppendOptions) (*Appended, error) {
	if ttl <= 0 || ttl > MaxLease {
		return nil, fmt.Errorf("lock %s: %w: the lease must be more than 0 and at most %s, got %s", domain, record.ErrInvalid, MaxLease, ttl)
	}
	if ttl < MinLease {
		return nil, fmt.Errorf("lock %s: %w: the lease must be at least %s, got %s", domain, record.ErrInvalid, MinLease, ttl)
	}
	ev := &metav1.Event{
		Kind:    metav1.Kind_KIND_LOCK,
		Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
		Address: &metav1.Address{App: domain},
		Message: reason,
		Body:    &metav1.Event_Lock{Lock: &metav1.Lock{Expires: timestamppb.New(now.Add(ttl))}},
	}
	return s.append(ctx, "lock", ev, actor, now, opts, nil)
}

// Unlock ends the lease on the app at domain. Only its holder may, unless
// opts.Force. With no lease in force it returns ErrNotLocked.
func (s *Store) Unlock(ctx context.Context, domain string, actor *metav1.Actor, now time.Time, message string, opts AppendOptions) (*Appended, error) {
	ev := &metav1.Event{
		Kind:    metav1.Kind_KIND_UNLOCK,
		Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
		Address: &metav1.Address{App: domain},
		Message: message,
		Body:    &metav1.Event_Unlock{Unlock: &metav1.Unlock{}},
	}
	return s.append(ctx, "unlock", ev, actor, now, opts, nil)
}
