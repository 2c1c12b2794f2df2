package store

import (
	"context"
	"errors"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

// errUnchanged stops an append whose news the log already has.
var errUnchanged = errors.New("unchanged")

// Observe records what Swarm runs for the app at domain, unless the last
// observation in the log (after pulling) says the same: the log grows when
// reality changes, not every time someone looks. It returns nil when
// nothing was appended.
func (s *Store) Observe(ctx context.Context, domain string, o *metav1.Observation, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
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
	seen := fold.ObservationOf(o)
	opts.unless = func(h *fold.Head) bool { return h.Observed.SameAs(seen) }
	out, err := s.Append(ctx, ev, actor, now, opts)
	if errors.Is(err, errUnchanged) {
		return nil, nil
	}
	return out, err
}
