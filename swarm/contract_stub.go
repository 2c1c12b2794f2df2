package swarm

// TEMPORARY (branch i15-hub): stand-ins for the contract methods the swarm
// helper implements on i15-swarm; deleted when that branch is merged.

import (
	"context"
	"errors"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// Dial stands in for the real client.
func Dial(ctx context.Context, h Host) (Engine, error) {
	return nil, errors.New("swarm.Dial: not merged yet")
}

// Observation stands in for the real one.
func (s *Stack) Observation(source string) *metav1.Observation {
	o := &metav1.Observation{Source: source, Missing: s.Missing()}
	if app := s.App(); app != nil {
		o.Service = app.Name
		o.Version, o.Recipe, o.Chaos, o.ChaosVersion, _ = labels(app.Labels, s.Name)
		if !app.UpdateStale {
			o.UpdateState, o.UpdateMessage = app.UpdateState, app.UpdateMessage
		}
	}
	for _, sv := range s.Services {
		st := &metav1.ServiceStatus{Name: sv.Name, Running: uint32(sv.Running), Desired: uint32(sv.Desired), LastError: sv.LastError}
		if !sv.UpdateStale {
			st.UpdateState = sv.UpdateState
		}
		o.Services = append(o.Services, st)
	}
	return o
}

// Settled stands in for the real one.
func (s *Stack) Settled(want string, grace time.Duration) (Verdict, bool) {
	app := s.App()
	if app == nil {
		return Verdict{Outcome: metav1.Outcome_OUTCOME_FAILED, Detail: "stack gone"}, true
	}
	switch app.UpdateState {
	case "rollback_completed":
		return Verdict{Outcome: metav1.Outcome_OUTCOME_ROLLED_BACK}, true
	case "paused":
		return Verdict{Outcome: metav1.Outcome_OUTCOME_PAUSED}, true
	case "updating", "rollback_started":
		return Verdict{}, false
	}
	v, _, _, _, _ := labels(app.Labels, s.Name)
	if v == want && app.Running >= app.Desired && app.Desired > 0 {
		return Verdict{Outcome: metav1.Outcome_OUTCOME_SUCCEEDED}, true
	}
	return Verdict{}, false
}
