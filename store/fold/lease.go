package fold

import (
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// Lock is a lease on an app: while it lasts, other operators' appends are
// refused unless forced.
type Lock struct {
	EventID     string    `json:"event_id"`
	Holder      string    `json:"holder"`
	HolderEmail string    `json:"holder_email"`
	Reason      string    `json:"reason"`
	Since       time.Time `json:"since"`
	Expires     time.Time `json:"expires"`
}

// Active says the lease still holds at t.
func (l *Lock) Active(t time.Time) bool { return l != nil && t.Before(l.Expires) }

// HeldBy says the lock belongs to the operator with this name and email.
// An empty email on either side matches any: the name decides.
func (l *Lock) HeldBy(name, email string) bool {
	return l != nil && l.Holder == name && (l.HolderEmail == "" || email == "" || l.HolderEmail == email)
}

// At is h as it stands at t: a lease past its expiry is over. Heads are
// folded without a clock, the same on every machine at any time; every
// reader (the CLI, the hub, meta exec) evaluates them at its own now.
func (h *Head) At(t time.Time) *Head {
	if h == nil || h.Lock == nil || h.Lock.Active(t) {
		return h
	}
	c := *h
	c.Lock = nil
	return &c
}

// ActiveLock is the lock that holds at now, or nil.
func (h *Head) ActiveLock(now time.Time) *Lock {
	if h == nil || !h.Lock.Active(now) {
		return nil
	}
	return h.Lock
}

// applyLock takes a lease or ends one. A lock taken while another
// operator's lease holds is void unless it names that lease in broke_lock
// (--force): two operators who locked without seeing each other get the
// same answer on every machine, the earlier in fold order wins.
func (h *Head) applyLock(ev *metav1.Event, at time.Time) {
	if ev.GetOutcome() != metav1.Outcome_OUTCOME_SUCCEEDED {
		return
	}
	actor := ev.GetActor()
	held := h.Lock.Active(at) && !h.Lock.HeldBy(actor.GetName(), actor.GetEmail()) && ev.GetBrokeLock() != h.Lock.EventID
	switch ev.GetKind() {
	case metav1.Kind_KIND_LOCK:
		if held {
			return
		}
		h.Lock = &Lock{
			EventID: ev.GetId(), Holder: actor.GetName(), HolderEmail: actor.GetEmail(),
			Reason: ev.GetMessage(), Since: at, Expires: ev.GetLock().GetExpires().AsTime().UTC(),
		}
	case metav1.Kind_KIND_UNLOCK:
		if h.Lock != nil && ev.GetUnlock().GetLockId() == h.Lock.EventID && !held {
			h.Lock = nil
		}
	}
}
