package store

import (
	"errors"
	"fmt"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Errors of leases.
var (
	// ErrLocked: another operator holds a lease on the app.
	ErrLocked = errors.New("locked")
	// ErrNotLocked: an unlock found no lease in force.
	ErrNotLocked = errors.New("not locked")
)

// MaxLease bounds a lock's time to live: a lease is for work in progress,
// and a forgotten one must end on its own within a day.
const MaxLease = 24 * time.Hour

// MinLease is the shortest lease: one over before anyone could see it is
// none.
const MinLease = time.Second

// LockedError says who holds the lease that refused an action, why, and
// until when.
type LockedError struct {
	Domain string
	Lock   *fold.Lock
	Now    time.Time
}

func (e *LockedError) Error() string {
	l := e.Lock
	msg := fmt.Sprintf("%s is locked by %s until %s (%s left, lock %s)", e.Domain, record.Operator(l.Holder, l.HolderEmail),
		l.Expires.Local().Format("2006-01-02 15:04:05 MST"), l.Expires.Sub(e.Now).Round(time.Second), l.EventID)
	if l.Reason != "" {
		msg += ": " + l.Reason
	}
	return msg + "; wait for `meta unlock`, or pass --force to go ahead anyway (the log records that you did)"
}

// Is lets callers match ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LeaseOf is the lease another operator holds on the app at now, as the
// error that refuses actor's action, or nil when actor is free to act.
func LeaseOf(h *fold.Head, domain string, actor *metav1.Actor, now time.Time) *LockedError {
	l := h.ActiveLock(now)
	if l == nil || l.HeldBy(actor.GetName(), actor.GetEmail()) {
		return nil
	}
	return &LockedError{Domain: domain, Lock: l, Now: now}
}

// checkLease is what every append asks of the app's lease before writing
// ev: another operator's lease refuses it unless forced, and a forced
// event names the lease it broke. An unlock learns which lease it ends.
func checkLease(h *fold.Head, ev *metav1.Event, domain string, actor *metav1.Actor, now time.Time, opts AppendOptions) error {
	if ev.GetKind() == metav1.Kind_KIND_UNLOCK {
		l := h.ActiveLock(now)
		if l == nil {
			return fmt.Errorf("%w: %s has no lease in force", ErrNotLocked, domain)
		}
		ev.GetUnlock().LockId = l.EventID
	}
	// What Swarm runs is recorded whoever holds the lease: it is not an
	// action, and hiding it would hide the truth.
	held := LeaseOf(h, domain, actor, now)
	if held == nil || ev.GetKind() == metav1.Kind_KIND_OBSERVE {
		return nil
	}
	if !opts.Force {
		return held
	}
	ev.BrokeLock = held.Lock.EventID
	return nil
}
