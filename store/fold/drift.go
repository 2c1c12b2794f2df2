package fold

import (
	"fmt"
	"strings"
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
func (h *Head) observe(seen *metav1.Observation, at Ref) {
	o := Observation{EventID: at.EventID, Time: at.Time, Operator: at.Operator, ObservedView: record.ObservedViewOf(seen)}
	h.Observed, h.ObservedVersion = &o, o.Running()
	if stack, ok := strings.CutSuffix(o.Service, "_app"); ok && stack != "" {
		h.Stack = stack
	}
	t := at.Time
	h.ObservedAt = &t
	h.Drift, h.DriftDetail = drift(h, &o)
}

// drift compares an observation with the head it was folded into. The
// first reason that holds is the one given: whether the app should run at
// all, then what Swarm's update did, then which version runs, then how
// many of its tasks do.
func drift(h *Head, o *Observation) (reason, detail string) {
	seen, desired := o.Running(), h.Deployed.Running()
	switch h.State {
	case StateUndeployed, StateRemoved, StateMoved:
		if o.Missing {
			return "", ""
		}
		return DriftNotDeployed, fmt.Sprintf("Swarm runs %s although the log says the app is %s", orNone(seen), h.State)
	case StatePending:
		desired = h.Pending.Running()
	}
	if o.Missing {
		if h.Deployed == nil && h.Pending == nil {
			return "", "" // never deployed, and not there: as the log says
		}
		says := orNone(desired) + " runs"
		if h.State == StatePending {
			says = "the deploy of " + orNone(desired) + " is pending"
		}
		return DriftDown, "the stack is gone from Swarm while the log says " + says
	}
	switch o.UpdateState {
	case "rollback_started", "rollback_paused":
		return DriftSwarmRollback, fmt.Sprintf("Swarm is rolling the update back (%s) and runs %s, not %s", o.UpdateState, orNone(seen), orNone(desired))
	case "rollback_completed":
		// Left from an earlier update when Swarm runs what the log says
		// (the log recorded the rollback, or a later deploy started no
		// update of its own).
		if seen != desired {
			return DriftSwarmRollback, fmt.Sprintf("Swarm rolled the update back (%s) and runs %s, not %s", o.UpdateState, orNone(seen), orNone(desired))
		}
	case "updating":
		return DriftUpdating, fmt.Sprintf("Swarm is still updating the service to %s", orNone(seen))
	case "paused":
		return DriftUpdatePaused, fmt.Sprintf("Swarm paused the update to %s", orNone(seen))
	}
	if seen != desired {
		switch {
		case h.State == StatePending && seen == h.Deployed.Running():
			return DriftUpdating, fmt.Sprintf("the deploy of %s is pending and Swarm still runs %s", orNone(desired), orNone(seen))
		case h.Previous != nil && seen == h.Previous.Running():
			// Swarm swaps the previous spec back in on a rollback, so the
			// labels are those of the deploy before.
			return DriftSwarmRollback, fmt.Sprintf("the service is back at %s, the version deployed before %s", orNone(seen), orNone(desired))
		}
		return DriftUnrecorded, fmt.Sprintf("Swarm runs %s, which no deploy in the log put there (the log says %s)", orNone(seen), orNone(desired))
	}
	return replicas(o)
}

// replicas says whether the stack's services run as many tasks as Swarm
// wants them to: down when none runs a task, or when the app service (the
// one that serves, and gives the version) is scaled to none; degraded when
// some runs fewer than Swarm wants (one that keeps crashing, Swarm
// restarting it). An observation that read only the app service (docker
// service inspect) does not know.
func replicas(o *Observation) (reason, detail string) {
	if len(o.Services) == 0 {
		return "", ""
	}
	var short []string
	total := 0
	for _, s := range o.Services {
		if s.Name == o.Service && s.Desired == 0 && s.Running == 0 {
			return DriftDown, fmt.Sprintf("the app service %s is scaled to 0 tasks", s.Name)
		}
		total += int(s.Running)
		if s.Running < s.Desired {
			line := fmt.Sprintf("%s runs %d of %d", s.Name, s.Running, s.Desired)
			if s.LastError != "" {
				line += " (last error: " + s.LastError + ")"
			}
			short = append(short, line)
		}
	}
	switch {
	case total == 0:
		why := "no task of any service runs"
		if len(short) > 0 {
			why += ": " + strings.Join(short, "; ")
		}
		return DriftDown, why
	case len(short) > 0:
		return DriftDegraded, strings.Join(short, "; ")
	}
	return "", ""
}

// Running is the version the deploy r put into service: its chaos
// version under --chaos, else its version; "" for none (r nil too).
func (r *Ref) Running() string {
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
