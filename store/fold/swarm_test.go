package fold

import (
	"encoding/json"
	"testing"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

const (
	rolledBack = metav1.Outcome_OUTCOME_ROLLED_BACK
	paused     = metav1.Outcome_OUTCOME_PAUSED
	pending    = metav1.Outcome_OUTCOME_PENDING
)

// stack is an observation of every service of the stack: the app service
// at version, and each further service given as running/desired.
func stack(n int, version, state string, svcs []*metav1.ServiceStatus, parents ...int) *metav1.Event {
	e := observe(n, version, state, parents...)
	e.GetObservation().Services = svcs
	return e
}

func svc(name string, running, desired uint32, lastError string) *metav1.ServiceStatus {
	return &metav1.ServiceStatus{Name: name, Running: running, Desired: desired, LastError: lastError}
}

func gone(n int, parents ...int) *metav1.Event {
	e := observe(n, "", "", parents...)
	e.GetObservation().Service, e.GetObservation().Missing = "", true
	return e
}

// followed is a deploy event with what meta exec saw Swarm do with it.
// Swarm runs seen then.
func followed(n int, kind metav1.Kind, outcome metav1.Outcome, version, seen, state, message string, parents ...int) *metav1.Event {
	e := ev(n, kind, outcome, version, parents...)
	e.Swarm = &metav1.Observation{Service: "matrix_example_com_app", Version: seen, UpdateState: state, UpdateMessage: message}
	return e
}

// settles is an observation that settles the pending deploy pendingN.
func settles(e *metav1.Event, pendingN int, outcome metav1.Outcome) *metav1.Event {
	e.GetObservation().Settles, e.GetObservation().SettledOutcome = id(pendingN), outcome
	return e
}

// A deploy's outcome is what Swarm did with it: a rollback or a pause keeps
// the version before, a pending deploy waits for an observation to settle
// it, and only the pending deploy of now can be settled.
func TestSwarmOutcomes(t *testing.T) {
	deploy, upgrade := metav1.Kind_KIND_DEPLOY, metav1.Kind_KIND_UPGRADE
	const msg = "update rolled back due to failure or early termination of task x"
	tests := []struct {
		name        string
		events      []*metav1.Event
		state       string
		version     string
		failure     string // LastFailure's outcome and detail
		pending     string // Pending's event id
		drift       string
		deployedBy  string // Deployed's settled_by, if any
		lastSuccess string
	}{
		{name: "rolled back by Swarm", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), followed(2, upgrade, rolledBack, "1.1.0", "1.0.0", "rollback_completed", msg, 1),
		}, state: StateRolledBack, version: "1.0.0", failure: "rolled-back: " + msg, lastSuccess: id(1)},
		{name: "rolled back, then seen at the old version", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), followed(2, upgrade, rolledBack, "1.1.0", "1.0.0", "rollback_completed", msg, 1),
			stack(3, "1.0.0", "rollback_completed", []*metav1.ServiceStatus{svc("matrix_example_com_app", 1, 1, "task: non-zero exit (1)")}, 2),
		}, state: StateRolledBack, version: "1.0.0", failure: "rolled-back: " + msg, lastSuccess: id(1)},
		{name: "paused by Swarm", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), followed(2, upgrade, paused, "1.1.0", "1.1.0", "paused", "update paused due to failure", 1),
		}, state: StatePaused, version: "1.0.0", failure: "paused: update paused due to failure", drift: DriftUpdatePaused, lastSuccess: id(1)},
		{name: "succeeded as Swarm completed it", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), followed(2, upgrade, ok, "1.1.0", "1.1.0", "completed", "update completed", 1),
		}, state: StateDeployed, version: "1.1.0"},
		{name: "pending", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, pending, "1.1.0", 1),
		}, state: StatePending, version: "1.0.0", pending: id(2), lastSuccess: id(1)},
		{name: "pending, Swarm still updating", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, pending, "1.1.0", 1), observe(3, "1.0.0", "", 2),
		}, state: StatePending, version: "1.0.0", pending: id(2), drift: DriftUpdating, lastSuccess: id(1)},
		{name: "pending, settled succeeded", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, pending, "1.1.0", 1), settles(observe(3, "1.1.0", "completed", 2), 2, ok),
		}, state: StateDeployed, version: "1.1.0", deployedBy: id(3)},
		{name: "pending, settled rolled back", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, pending, "1.1.0", 1), settles(func() *metav1.Event {
				e := observe(3, "1.0.0", "rollback_completed", 2)
				e.GetObservation().UpdateMessage = msg
				return e
			}(), 2, rolledBack),
		}, state: StateRolledBack, version: "1.0.0", failure: "rolled-back: " + msg, lastSuccess: id(1)},
		{name: "a settlement of a deploy superseded", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, pending, "1.1.0", 1), ev(3, upgrade, pending, "1.2.0", 2),
			settles(observe(4, "1.1.0", "completed", 3), 2, ok),
		}, state: StatePending, version: "1.0.0", pending: id(3), drift: DriftUnrecorded, lastSuccess: id(1)},
		{name: "a later deploy ends pending", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, pending, "1.1.0", 1), ev(3, upgrade, ok, "1.2.0", 2),
		}, state: StateDeployed, version: "1.2.0"},
		{name: "an outcome of a newer meta changes nothing", events: []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, metav1.Outcome(42), "1.1.0", 1),
		}, state: StateDeployed, version: "1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Fold(tt.events)
			check := func(how string, h *Head) {
				t.Helper()
				failure, pendingID, deployedBy, lastSuccess := "", "", "", ""
				if f := h.LastFailure; f != nil {
					failure = f.Outcome + ": " + f.Detail
				}
				if p := h.Pending; p != nil {
					pendingID = p.EventID
				}
				if d := h.Deployed; d != nil {
					deployedBy = d.SettledBy
				}
				if s := h.LastSuccess; s != nil {
					lastSuccess = s.EventID
				}
				if h.State != tt.state || h.Version != tt.version || failure != tt.failure || pendingID != tt.pending || h.Drift != tt.drift || deployedBy != tt.deployedBy || lastSuccess != tt.lastSuccess {
					t.Fatalf("%s: state %q version %q failure %q pending %q drift %q (%s) settled by %q last success %q\nwant state %q version %q failure %q pending %q drift %q settled by %q last success %q",
						how, h.State, h.Version, failure, pendingID, h.Drift, h.DriftDetail, deployedBy, lastSuccess,
						tt.state, tt.version, tt.failure, tt.pending, tt.drift, tt.deployedBy, tt.lastSuccess)
				}
			}
			check("folded", h)
			var step *Head
			for _, e := range tt.events {
				before, _ := json.Marshal(step)
				given := step
				step = Next(step, e)
				if after, _ := json.Marshal(given); string(after) != string(before) {
					t.Fatalf("Next changed the head it was given:\n%s\n%s", before, after)
				}
			}
			check("step by step", step)
		})
	}
}

// Observations say whether the app runs, not only which version: drift
// down when nothing runs or the stack is gone, degraded when a service
// runs fewer tasks than wanted.
func TestReplicaDrift(t *testing.T) {
	deploy := metav1.Kind_KIND_DEPLOY
	app, db := "matrix_example_com_app", "matrix_example_com_db"
	tests := []struct {
		name   string
		events []*metav1.Event
		drift  string
		detail string
	}{
		{"every task runs", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), stack(2, "1.0.0", "", []*metav1.ServiceStatus{svc(app, 2, 2, ""), svc(db, 1, 1, "")}, 1)}, "", ""},
		{"a crash loop", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), stack(2, "1.0.0", "", []*metav1.ServiceStatus{svc(app, 0, 1, "task: non-zero exit (1)"), svc(db, 1, 1, "")}, 1)},
			DriftDegraded, "matrix_example_com_app runs 0 of 1 (last error: task: non-zero exit (1))"},
		{"scaled to 0", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), stack(2, "1.0.0", "", []*metav1.ServiceStatus{svc(app, 0, 0, "")}, 1)}, DriftDown, "the app service matrix_example_com_app is scaled to 0 tasks"},
		{"the app scaled to 0, the db running", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), stack(2, "1.0.0", "", []*metav1.ServiceStatus{svc(app, 0, 0, ""), svc(db, 1, 1, "")}, 1)},
			DriftDown, "the app service matrix_example_com_app is scaled to 0 tasks"},
		{"the db scaled to 0", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), stack(2, "1.0.0", "", []*metav1.ServiceStatus{svc(app, 1, 1, ""), svc(db, 0, 0, "")}, 1)}, "", ""},
		{"nothing runs", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), stack(2, "1.0.0", "", []*metav1.ServiceStatus{svc(app, 0, 1, "no suitable node"), svc(db, 0, 1, "")}, 1)},
			DriftDown, "no task of any service runs: matrix_example_com_app runs 0 of 1 (last error: no suitable node); matrix_example_com_db runs 0 of 1"},
		{"the stack gone", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), gone(2, 1)}, DriftDown, "the stack is gone from Swarm while the log says 1.0.0 runs"},
		{"the stack gone under a pending deploy", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), ev(2, metav1.Kind_KIND_UPGRADE, pending, "1.1.0", 1), gone(3, 2)},
			DriftDown, "the stack is gone from Swarm while the log says the deploy of 1.1.0 is pending"},
		{"gone as the log says", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), ev(2, metav1.Kind_KIND_UNDEPLOY, ok, "", 1), gone(3, 2)}, "", ""},
		{"never deployed, not there", []*metav1.Event{ev(1, metav1.Kind_KIND_NEW, ok, ""), gone(2, 1)}, "", ""},
		{"the version first", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), stack(2, "2.0.0", "", []*metav1.ServiceStatus{svc(app, 0, 1, "")}, 1)},
			DriftUnrecorded, "Swarm runs 2.0.0, which no deploy in the log put there (the log says 1.0.0)"},
		{"a rollback state left from before", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), stack(2, "1.0.0", "rollback_completed", []*metav1.ServiceStatus{svc(app, 1, 1, "")}, 1)}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Fold(tt.events)
			if h.Drift != tt.drift || h.DriftDetail != tt.detail {
				t.Fatalf("drift %q (%s), want %q (%s)", h.Drift, h.DriftDetail, tt.drift, tt.detail)
			}
		})
	}
}

// The same observation is the same whoever made it, however, and whatever
// it settled, but not when what runs differs in any way it tells.
func TestSameAs(t *testing.T) {
	base := func() *metav1.Observation {
		return &metav1.Observation{Service: "s_app", Version: "1.0.0", Source: "serve", Server: "s1",
			Services: []*metav1.ServiceStatus{{Name: "s_app", Running: 1, Desired: 1}}}
	}
	h := Fold([]*metav1.Event{ev(1, metav1.Kind_KIND_DEPLOY, ok, "1.0.0"), func() *metav1.Event {
		e := observe(2, "1.0.0", "", 1)
		e.Body = &metav1.Event_Observation{Observation: base()}
		return e
	}()})
	same := base()
	same.Source, same.Settles, same.SettledOutcome = "docker", id(1), ok
	if !h.Observed.SameAs(same) {
		t.Error("another source, settling a deploy, is the same observation")
	}
	for name, change := range map[string]func(*metav1.Observation){
		"replicas":   func(o *metav1.Observation) { o.Services[0].Running = 0 },
		"last error": func(o *metav1.Observation) { o.Services[0].LastError = "task: non-zero exit (1)" },
		"a service":  func(o *metav1.Observation) { o.Services = append(o.Services, &metav1.ServiceStatus{Name: "s_db"}) },
		"missing":    func(o *metav1.Observation) { o.Missing = true },
		"server":     func(o *metav1.Observation) { o.Server = "s2" },
	} {
		o := base()
		change(o)
		if h.Observed.SameAs(o) {
			t.Errorf("%s: taken for the same observation", name)
		}
	}
}

// The stack an app runs as is the one its last deploy said (STACK_NAME
// included), or the one an observation saw its app service in.
func TestStack(t *testing.T) {
	d := ev(1, metav1.Kind_KIND_DEPLOY, ok, "1.0.0")
	d.Stack = "custom_stack"
	if h := Fold([]*metav1.Event{d}); h.Stack != "custom_stack" {
		t.Fatalf("after the deploy: %q", h.Stack)
	}
	o := observe(2, "1.0.0", "", 1)
	o.GetObservation().Service = "other_app"
	if h := Fold([]*metav1.Event{d, o}); h.Stack != "other" {
		t.Fatalf("after the observation: %q", h.Stack)
	}
	if h := Fold([]*metav1.Event{ev(1, metav1.Kind_KIND_DEPLOY, ok, "1.0.0")}); h.Stack != "" {
		t.Fatalf("nobody said: %q", h.Stack)
	}
}
