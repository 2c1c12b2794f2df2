package fold

import (
	"fmt"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Observation is what Swarm ran when an operator looked: the observe
// event's body, and who looked when.
type Observation struct {
	EventID  string    `json:"event_id"`
	Time     time.Time `json:"time"`
	Operator string    `json:"operator"`
	record.ObservedView
}

// SameAs says o saw what seen says, whoever looked, when and how: the
// log grows when reality changes, not every time someone looks.
func (o *Observation) SameAs(seen *metav1.Observation) bool {
	if o == nil {
		return false
	}
	return o.ObservedView.Same(record.ObservedViewOf(seen))
}

// observe takes in what Swarm was seen running and says whether, and why,
// it differs from what the log says should run.
func (h *Head) observe(ev *metav1.Event, at Ref) {
	o := Observation{EventID: at.EventID, Time: at.Time, Operator: at.Operator, ObservedView: record.ObservedViewOf(ev.GetObservation())}
	h.Observed, h.ObservedVersion = &o, o.Running()
	t := at.Time
	h.ObservedAt = &t
	h.Drift, h.DriftDetail = drift(h, &o)
}

// drift compares an observation with the head it was folded into.
func drift(h *Head, o *Observation) (reason, detail string) {
	seen, desired := o.Running(), running(h.Deployed)
	switch h.State {
	case StateUndeployed, StateRemoved, StateMoved:
		return DriftNotDeployed, fmt.Sprintf("Swarm runs %s although the log says the app is %s", orNone(seen), h.State)
	}
	switch o.UpdateState {
	case "rollback_started", "rollback_paused", "rollback_completed":
		return DriftSwarmRollback, fmt.Sprintf("Swarm rolled the update back (%s) and runs %s, not %s", o.UpdateState, orNone(seen), orNone(desired))
	case "updating":
		return DriftUpdating, fmt.Sprintf("Swarm is still updating the service to %s", orNone(seen))
	case "paused":
		return DriftUpdatePaused, fmt.Sprintf("Swarm paused the update to %s", orNone(seen))
	}
	if seen == desired {
		return "", ""
	}
	// Swarm swaps the previous spec back in on a rollback, so the labels
	// are those of the deploy before.
	if h.Previous != nil && seen == running(h.Previous) {
		return DriftSwarmRollback, fmt.Sprintf("the service is back at %s, the version deployed before %s", orNone(seen), orNone(desired))
	}
	return DriftUnrecorded, fmt.Sprintf("Swarm runs %s, which no deploy in the log put there (the log says %s)", orNone(seen), orNone(desired))
}

// running is the version a deploy put into service: its chaos version
// under --chaos, else its version; "" for none.
func running(r *Ref) string {
	switch {
	case r == nil:
		return ""
	case r.ChaosVersion != "":
		return r.ChaosVersion
	}
	return r.Version
}

func orNone(v string) string {
	if v == "" {
		return "no version"
	}
	return v
}
